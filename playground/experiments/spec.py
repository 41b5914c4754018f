"""What an experiment is: a template's variants x a dataset's rows (or a sample of them) x seeds x models, with
checks. The spec holds everything that decides its cells (the template's text and hash, the dataset's version, the
mapping, the sample, seeds, models, params, checks) and never the cells themselves: a Plan derives them, the same
way every time, so a job resumed after a restart sees exactly the cells it started with.

A cell is named by its key, `r<dataset row>.v<variant index>.s<seed>.m<model index>`; it is logged once per
experiment (a unique index in the log), and the same key is the `custom_id` of a batch request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..datasets import DatasetInfo, Sample, map_columns, select_rows
from ..jobs import spec_hash
from ..registry import InvalidInput
from ..spec import merged_params
from ..templates import Template, TemplateError, parse_template

MAX_MODELS = 8
MAX_SEEDS = 100
_KEY = re.compile(r"^r(\d+)\.v(\d+)\.s(\d+)\.m(\d+)$")


class ExperimentSpec(BaseModel):
    """Everything that decides an experiment's cells and how they are scored."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    template: str = Field(min_length=1, max_length=200_000)     # the template file's text: exactly what runs
    template_name: str = Field(min_length=1, max_length=100)
    template_hash: str = Field(min_length=64, max_length=64)
    dataset: str = Field(pattern=r"^[0-9a-f]{64}$")               # the dataset's version (its content hash)
    dataset_name: str = Field("", max_length=200)
    mapping: dict[str, str] = Field(default_factory=dict)         # variable -> column (by name when left out)
    expected: str | None = Field(None, max_length=200)            # the column checks read as the reference
    sample: Sample = Field(default_factory=Sample)
    variants: list[str] | None = Field(None, min_length=1, max_length=8)   # default: every variant
    models: list[str] = Field(min_length=1, max_length=MAX_MODELS)
    seeds: list[int] = Field(min_length=1, max_length=MAX_SEEDS)
    params: dict = Field(default_factory=dict)
    checks: list[dict] = Field(default_factory=list, max_length=20)
    rerun: bool = False                                           # True: never serve a cell from the cache
    title: str = Field("", max_length=300)
    parent: int | None = Field(None, ge=1)                        # the experiment whose rows this one re-runs

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must differ from each other")
        if any(not 0 <= s <= 2**32 - 1 for s in seeds):
            raise ValueError(f"seeds are whole numbers from 0 to {2**32 - 1}")
        return seeds

    @field_validator("models")
    @classmethod
    def _models(cls, models: list[str]) -> list[str]:
        if len(set(models)) != len(models):
            raise ValueError("each model once")
        return models

    @property
    def key(self) -> str:
        """The hash the same experiment is found by (its title left out)."""
        return spec_hash(self.model_dump(exclude={"title"}))

    @classmethod
    def parse(cls, data: dict) -> "ExperimentSpec":
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "experiment"
            raise InvalidInput(where, problem["msg"]) from None


def cell_key(row: int, variant: int, seed: int, model: int) -> str:
    return f"r{row}.v{variant}.s{seed}.m{model}"


def parse_key(key: str) -> tuple[int, int, int, int] | None:
    """(dataset row, variant index, seed, model index) of a cell key; None when it is not one."""
    match = _KEY.match(key) if isinstance(key, str) else None
    return tuple(int(g) for g in match.groups()) if match else None


@dataclass
class Plan:
    """An experiment resolved against its template and dataset: the rows it runs on and how cells are laid out.

    Grid layout (so History, the grid and the statistics read it like any comparison): a column per variant; a
    grid row per (dataset row, model, seed), numbered position x models x seeds + model x seeds + seed."""

    spec: ExperimentSpec
    template: Template
    dataset: DatasetInfo
    rows: list[int]                       # dataset rows, in order
    variants: list[str]
    mapping: dict[str, str]               # variable -> column
    notes: list[str] = field(default_factory=list)

    @property
    def modality(self) -> str:
        return self.template.modality

    @property
    def params(self) -> dict:
        """What every cell runs with: the template's params, the first model's needs, the experiment's own."""
        return merged_params(self.template, self.spec.models, self.spec.params)

    @property
    def per_row(self) -> int:
        return len(self.variants) * len(self.spec.seeds) * len(self.spec.models)

    @property
    def total(self) -> int:
        return len(self.rows) * self.per_row

    @property
    def columns(self) -> list[str]:
        """The dataset columns cells read."""
        wanted = list(dict.fromkeys(self.mapping.values()))
        if self.spec.expected and self.spec.expected not in wanted:
            wanted.append(self.spec.expected)
        return wanted

    def grid_row(self, position: int, model: int, seed_index: int) -> int:
        return (position * len(self.spec.models) + model) * len(self.spec.seeds) + seed_index

    def keys(self, position: int):
        """(key, variant index, seed index, model index) of every cell of one dataset row, in run order."""
        row = self.rows[position]
        for m in range(len(self.spec.models)):
            for s, seed in enumerate(self.spec.seeds):
                for v in range(len(self.variants)):
                    yield cell_key(row, v, seed, m), v, s, m

    def describe(self) -> str:
        counts = [(len(self.rows), "row"), (len(self.variants), "variant"), (len(self.spec.seeds), "seed"),
                  (len(self.spec.models), "model")]
        return " x ".join(f"{n:,} {what}{'s' if n != 1 else ''}" for n, what in counts) + f" = {self.total:,} cells"


def load_template(spec: ExperimentSpec) -> Template:
    template = parse_template(spec.template, source="user")
    if template.hash != spec.template_hash:
        raise InvalidInput("template", "its text does not match its hash; the spec was edited by hand")
    return template


def make_plan(spec: ExperimentSpec, datasets, owner: str | None = None) -> Plan:
    """Resolve a spec: its template, its dataset (by version), its columns and its rows. Raises DatasetError,
    TemplateError or InvalidInput with what to change."""
    template = load_template(spec)
    info = datasets.get(spec.dataset, owner=owner)
    variants = list(spec.variants or template.variants)
    unknown = [v for v in variants if v not in template.variants]
    if unknown:
        raise TemplateError(f"{template.name} has no variant {unknown[0]!r}; its variants: "
                            f"{', '.join(template.variants)}")
    columns = {c.name: c.type for c in info.columns}
    mapping = map_columns(template.variables, columns, spec.mapping, spec.expected,
                          template=f"template {template.name!r}")
    table = datasets.table(info, _sample_columns(spec.sample, info))
    rows = select_rows(table, spec.sample, f"dataset {info.name!r}")
    plan = Plan(spec, template, info, rows, variants, mapping)
    defaults = [v for v in template.variables if v not in mapping]
    if defaults:
        plan.notes.append(f"no column for {', '.join(defaults)}: every row uses the template's default")
    return plan


def _sample_columns(sample: Sample, info: DatasetInfo) -> list[str] | None:
    """Only what the sample reads; None (every column) when rows are split by the hash of their content."""
    if sample.split and (sample.split_column not in info.column_names or sample.split_shares is not None):
        return None
    wanted = list(sample.where)
    if sample.split:
        wanted.append(sample.split_column)
    for name in wanted:
        info.column(name)
    return wanted or [info.column_names[0]]


def spec_summary(spec: ExperimentSpec) -> dict:
    """The short form a comparison keeps next to the full spec (what History and exports show)."""
    return {"template": spec.template_name, "dataset": spec.dataset_name, "dataset_version": spec.dataset,
            "sample": spec.sample.describe(), "models": spec.models, "seeds": spec.seeds,
            "expected": spec.expected, "mapping": spec.mapping}

