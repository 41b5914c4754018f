"""Experiments and datasets as the Experiments tab and the API send them: the experiment to start (or estimate), a
page of its results, an action on its job, two experiments to compare, rows to run again, and a dataset's rows."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, PlainValidator, ValidationInfo, WithJsonSchema

from ..datasets import Sample
from ..settings import MAX_ID
from .base import Count, Id, InvalidInput, ModelId, Name, Strict, _limit, items, refuse, shown, storable, text, whole
from .comparison import CheckDeclaration, ParamValue, Seed, Title

MAX_MODELS = 8              # an experiment's models (ExperimentSpec holds the same bounds)
MAX_SEEDS = 100
MAX_PAGE_ROWS = 200         # rows of the results table in one answer
MAX_RERUN_ROWS = 100_000
DatasetRef = text(200, empty=False)          # a dataset's name, id (as text) or version
Column = text("max_name_chars", empty=False)
DatasetRow = whole(0, MAX_ID)
ACTIONS = ("pause", "resume", "cancel", "retry_failed")


class SampleRequest(Sample):
    """Which rows, as a request sends it: strict like every request (a row count is a whole number, not "10")."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class ExperimentRequest(Strict):
    """A library template's variants x a dataset's rows (or a sample) x seeds x models, with checks."""

    template: Name = Field(description="a library template's name (see list_templates)")
    dataset: DatasetRef = Field(description="a dataset added before: its name, id or version (see dataset_add)")
    models: Annotated[list[ModelId], items(MAX_MODELS, at_least=1)] = Field(
        description='a list of strings (model ids), e.g. ["tiny-text"]')
    seeds: Annotated[list[Seed], items(MAX_SEEDS, at_least=1)] = Field(
        default_factory=lambda: [1], description="a list of whole numbers, each a repeat of every cell, e.g. [1, 2]")
    variants: Annotated[list[Name], items("max_variants", at_least=1)] | None = Field(
        None, description="the template's variants to include (default: all)")
    mapping: Annotated[dict[Name, Column], items("max_variables")] | None = Field(
        None, description="an object of variable name -> dataset column (default: by name)")
    expected: Column | None = Field(None, description="the column checks read as the reference answer")
    sample: SampleRequest | None = Field(None, description="which rows: first, random + seed, start/stop, where, "
                                                           "split, rows")
    params: dict[Name, ParamValue] | None = Field(
        None, description="an object of option name -> number, true/false or text")
    checks: Annotated[list[CheckDeclaration], items("max_checks")] | None = Field(
        None, description='a list of objects like {"type": "contains"}')
    title: Title | None = None
    rerun: bool = False

    def spec(self, services, owner: str | None = None):
        """The ExperimentSpec this asks for (template and dataset looked up; nothing checked against them yet)."""
        from ..experiments import build_spec

        return build_spec(services, template=self.template, dataset=self.dataset, owner=owner,
                          models=list(self.models), seeds=list(self.seeds), mapping=dict(self.mapping or {}),
                          expected=self.expected, variants=list(self.variants) if self.variants else None,
                          sample=self.sample.model_dump(exclude_defaults=True) if self.sample else None,
                          params=dict(self.params or {}), checks=list(self.checks or []), title=self.title or "",
                          rerun=self.rerun)


def _where_value(value: Any, info: ValidationInfo) -> str:
    """A dataset column's value to match: text, or a number or true/false as their text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if not isinstance(value, str):
        raise refuse("value", "must be text or a number, got {got}", got=shown(value))
    if len(value) > _limit(info, "max_value_chars"):
        raise refuse("too_long", "is too long")
    return storable(value)


WhereValue = Annotated[Any, PlainValidator(_where_value), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]})]


class ResultsQuery(Strict):
    """One page of an experiment's rows x variants table."""

    experiment_id: Id
    offset: Count = 0
    limit: whole(1, MAX_PAGE_ROWS) = 50
    only: Literal["all", "failed", "disagree", "check_failed"] = "all"
    check: Name | None = Field(None, description="the check that 'disagree', 'check_failed' and the sort read "
                                                  "(default: the first)")
    where: Annotated[dict[Column, WhereValue], items(20)] | None = Field(
        None, description="an object of dataset column -> the value its rows must hold")
    sort: Annotated[list[Name], items(2, at_least=2)] | None = Field(
        None, description="two variants [a, b]: the rows where a beats b by most come first")


class ExperimentAction(Strict):
    experiment_id: Id
    action: Literal[ACTIONS] = Field(description="pause, resume, cancel or retry_failed")


class ExperimentPair(Strict):
    """A baseline and a candidate experiment on the same dataset version, compared on one check."""

    baseline: Id
    candidate: Id
    check: Name
    baseline_variant: Name | None = None
    candidate_variant: Name | None = None


class RerunRows(Strict):
    """Chosen dataset rows of an experiment, run again as a new experiment linked to it."""

    experiment_id: Id
    rows: Annotated[list[DatasetRow], items(MAX_RERUN_ROWS, at_least=1)] = Field(
        description="dataset row numbers (from 0), e.g. [4, 17]")
    title: Title | None = None


HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")


def _hub_id(value: str) -> str:
    """A Hugging Face dataset id, `owner/name` or `name`: never a path, a URL or `..` (from a page or a remote
    caller, a path would read the server's own files)."""
    if not HUB_ID.fullmatch(value) or ".." in value:
        raise refuse("hub_id", "must be a Hugging Face dataset id like owner/name (letters, digits, '-', '_', '.'), "
                               "got {got}; to use a file, upload it", got=shown(value))
    return value


HubDatasetId = Annotated[text(200, empty=False), AfterValidator(_hub_id)]


def _row(value: Any, info: ValidationInfo) -> dict:
    if not isinstance(value, dict) or not value:
        raise refuse("row", "must be an object of column -> value, got {got}", got=shown(value))
    for key in value:
        if not isinstance(key, str) or not key.strip() or len(key) > _limit(info, "max_name_chars"):
            raise refuse("column", "column names are non-empty text of at most {limit} characters",
                         limit=_limit(info, "max_name_chars"))
    return value


DatasetRowObject = Annotated[dict, PlainValidator(_row), WithJsonSchema(
    {"type": "object", "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "number"},
                                                          {"type": "boolean"}, {"type": "null"}]}})]


class DatasetRows(Strict):
    rows: Annotated[list[DatasetRowObject], items("max_dataset_rows", at_least=1)] = Field(
        description='a list of objects, one per row, e.g. [{"product": "a kettle", "expected": "kettle"}]')
    name: Name


class DatasetSource(Strict):
    """A dataset file (uploaded) or a Hugging Face dataset id with its config and split; exactly one of the two."""

    file: text(4096) | None = None
    hub_id: HubDatasetId | None = None
    config: text(200) | None = None
    split: text(200) | None = None
    name: text("max_name_chars") | None = None
    fmt: Literal["", "csv", "tsv", "jsonl", "json", "parquet"] = ""

    def source(self) -> str:
        file, hub = (self.file or "").strip(), (self.hub_id or "").strip()
        if bool(file) == bool(hub):
            raise InvalidInput("source", "give either a file or a Hugging Face dataset id (hub_id), not both or "
                               "neither")
        return file or hub

    def add(self, services, owner: str | None):
        """Add it to the datasets. Where visitors are kept apart, an id that also names a folder or file on the
        server (the `datasets` library would read that instead of the Hub) is refused."""
        from pathlib import Path

        from ..visitors import keeps_visitors_apart

        source = self.source()
        if self.hub_id and keeps_visitors_apart(services.settings) and Path(source).exists():
            raise InvalidInput("hub_id", f"{source!r} is not a Hugging Face dataset id here; to use a file, upload "
                                         "it")
        return services.datasets.add(source, name=self.name or None, fmt=self.fmt or None, config=self.config,
                                      split=self.split, owner=owner)
