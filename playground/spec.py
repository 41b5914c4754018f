"""A comparison as cells: template x values x variants x seeds x models laid out as a grid (columns are variants),
and the same spec rebuilt from logged runs to run again. No gradio, no torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from .engines.base import check_seed
from .engines.catalog import preset_params
from .registry import ENGINES, InvalidInput, modality
from .store import RunRecord
from .templates import PromptCell, Template, expand


@dataclass
class Cell:
    """One output to produce: a rendered prompt, the model and seed to run it with, and where it sits in the grid."""

    prompt: str
    model_id: str
    seed: int
    variant: str = ""
    revision: str | None = None      # a logged revision to load again (re-runs); None: the current one
    values: dict = field(default_factory=dict)
    system: str | None = None
    negative_prompt: str | None = None
    row: int = 0
    col: int = 0
    replaces: int | None = None      # a re-run of one cell: the logged run it replaces in the grid
    key: str | None = None           # an experiment's cell key (logged once per comparison); None in a grid
    reference: str | None = None     # the row's reference answer, for checks that compare with one
    reference_file: str | None = None   # the row's reference image or audio (a path under the data dir)

    @property
    def label(self) -> str:
        parts = [self.variant or "prompt"]
        parts += [f"{k}={v}" for k, v in self.values.items()]
        return " · ".join(parts + [f"seed {self.seed}"])


@dataclass
class ComparisonSpec:
    """Everything needed to run (and re-run) a comparison."""

    modality: str
    cells: list[Cell]
    params: dict = field(default_factory=dict)
    title: str = ""
    template_name: str | None = None
    template_hash: str | None = None
    rerun: bool = False          # True: ignore cached results and generate again
    checks: list[dict] = field(default_factory=list)   # scored on every cell as it finishes
    expected: str | None = None  # the dataset column each cell's reference came from (checks may read it)

    def to_dict(self) -> dict:
        return {"modality": self.modality, "params": self.params, "template_name": self.template_name,
                "template_hash": self.template_hash, "title": self.title, "checks": self.checks,
                "expected": self.expected,
                "cells": [vars(c) for c in self.cells]}



def check_cells(spec: ComparisonSpec, limit: int, max_prompt_chars: int) -> None:
    """A spec's cells before anything runs: some, at most `limit`, each with a prompt within bounds and a seed."""
    modality(spec.modality)
    if not spec.cells:
        raise InvalidInput("cells", "the comparison has no cells")
    if len(spec.cells) > limit:
        raise InvalidInput("cells", f"{len(spec.cells)} cells; the limit is {limit}")
    for cell in spec.cells:
        if not isinstance(cell.prompt, str) or not cell.prompt.strip():
            raise InvalidInput("prompt", f"cell {cell.label!r} has an empty prompt")
        if len(cell.prompt) > max_prompt_chars:
            raise InvalidInput("prompt", f"cell {cell.label!r} has {len(cell.prompt)} characters; "
                               f"the limit is {max_prompt_chars}")
        check_seed(cell.seed)


def build_spec(template: Template, *, modality: str | None = None, values: dict | None = None,
               variants: dict | None = None, models: list[str], seeds: list[int], params: dict | None = None,
               max_cells: int = 64, rerun: bool = False, title: str = "",
               checks: list[dict] | None = None) -> ComparisonSpec:
    """Template x values x variants x seeds x models -> cells. Columns are variants; rows the rest."""
    modality = modality or template.modality
    if not models:
        raise InvalidInput("models", "pick at least one model")
    if not seeds:
        raise InvalidInput("seeds", "give at least one seed")
    prompt_cells: list[PromptCell] = expand(template, values=values, variants=variants, max_cells=max_cells)
    rows_per_block = max(pc.row for pc in prompt_cells) + 1
    total = len(prompt_cells) * len(seeds) * len(models)
    if total > max_cells:
        raise InvalidInput("cells", f"{len(prompt_cells)} prompts x {len(seeds)} seeds x {len(models)} models = "
                           f"{total} cells; the limit is {max_cells}. Use fewer values, seeds or models")
    cells = []
    for m, model in enumerate(models):
        for s, seed in enumerate(seeds):
            for pc in prompt_cells:
                cells.append(Cell(prompt=pc.prompt, model_id=model, seed=int(seed), variant=pc.variant,
                                  values=dict(pc.values), system=pc.system, negative_prompt=pc.negative_prompt,
                                  row=(m * len(seeds) + s) * rows_per_block + pc.row, col=pc.col))
    return ComparisonSpec(modality=modality, cells=cells, params=merged_params(template, models, params, modality),
                          template_name=template.name,
                          template_hash=template.hash, rerun=rerun,
                          title=title or f"{template.name} · {len(cells)} cells",
                          checks=[dict(c) for c in getattr(template, "checks", ())] + list(checks or []))



def merged_params(template, models: list[str], params: dict | None, modality_name: str | None = None) -> dict:
    """The options a comparison or an experiment runs with: the template's params, then what the first model needs
    (turbo: few steps; a tiny model: its own size), then the caller's choices."""
    return {**template.params, **preset_params(models[0], modality_name or template.modality), **(params or {})}


def spec_from_runs(records: list[RunRecord], *, title: str = "", new_seeds: list[int] | None = None,
                   rerun: bool = True, checks: list[dict] | None = None) -> ComparisonSpec:
    """Rebuild a comparison from its logged runs, to run it again (same seeds, or `new_seeds` per row)."""
    if not records:
        raise InvalidInput("comparison", "has no runs to re-run")
    cells = []
    for record in records:
        seed = record.seed if new_seeds is None else new_seeds[record.row % len(new_seeds)]
        cells.append(Cell(prompt=record.prompt, model_id=record.model_id, seed=seed, variant=record.variant or "",
                          values=dict(record.variables or {}), system=record.system,
                          negative_prompt=record.negative_prompt, row=record.row, col=record.col,
                          revision=_pinned_revision(record)))
    first = records[0]
    params = {k: v for k, v in first.params.items()}
    return ComparisonSpec(modality=first.modality, cells=cells, params=params, title=title,
                          template_name=first.template_name, template_hash=first.template_hash, rerun=rerun,
                          checks=list(checks or []))


def _pinned_revision(record: RunRecord) -> str | None:
    """The hub commit a re-run must load again; built and local models are checked afresh, remote ones can't pin."""
    revision = record.model_revision
    engine = ENGINES.get(record.backend or "")
    if not revision or (engine is not None and engine.remote) or ":" in revision:
        return None
    return revision
