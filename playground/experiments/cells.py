"""An experiment's cells, streamed: dataset rows read a block at a time, each variant rendered once per row (every
seed and model of the row shares the render), and cells handed out in chunks the runner runs into the experiment's
comparison. Nothing here holds more than one chunk, whatever the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from ..datasets import as_reference, as_value, reference_media
from ..spec import Cell, ComparisonSpec
from ..templates import TemplateError, render_source
from .spec import Plan

ROWS_PER_READ = 1024


@dataclass
class Chunk:
    """Cells to run (a spec the runner takes) and cells that cannot run (their message says why)."""

    spec: ComparisonSpec
    failed: list[tuple[Cell, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.spec.cells) + len(self.failed)


def comparison_spec(plan: Plan, cells: list[Cell]) -> ComparisonSpec:
    """The runner's view of a chunk: the experiment's params, checks and reference column."""
    spec = plan.spec
    params = plan.params
    checks = [dict(c) for c in plan.template.checks] + list(spec.checks)
    return ComparisonSpec(modality=plan.modality, cells=cells, params=params, title=spec.title,
                          template_name=plan.template.name, template_hash=plan.template.hash, rerun=spec.rerun,
                          checks=checks, expected=spec.expected)


def row_values(plan: Plan, datasets, positions: list[int]) -> Iterator[tuple[int, dict, str | None, str | None]]:
    """(position, template values, reference, reference file) of the rows at these positions of the plan, read in
    blocks. A reference is text; an image or audio reference is kept as a file (its path under the data dir)."""
    table = datasets.table(plan.dataset, plan.columns)
    expected = plan.spec.expected
    for start in range(0, len(positions), ROWS_PER_READ):
        block = positions[start:start + ROWS_PER_READ]
        records = rows_at(table, [plan.rows[p] for p in block])
        for position, record in zip(block, records):
            values = {variable: as_value(record[column]) for variable, column in plan.mapping.items()}
            media = reference_media(record[expected]) if expected else None
            yield (position, values, as_reference(record[expected]) if expected else None,
                   datasets.keep_reference(media) if media else None)


def rows_at(table, rows: list[int]) -> list[dict]:
    """The rows at these (ascending) numbers, read as runs of consecutive rows: zero-copy slices, and no
    pyarrow.compute (which would load pandas for nothing)."""
    found, start = [], 0
    while start < len(rows):
        end = start + 1
        while end < len(rows) and rows[end] == rows[end - 1] + 1:
            end += 1
        found += table.slice(rows[start], end - start).to_pylist()
        start = end
    return found


def render_row(plan: Plan, values: dict, max_chars: int) -> dict[str, tuple[str, str | None, str | None]] | str:
    """variant -> (prompt, system, negative prompt) for one row, or the message of why the row cannot render."""
    template = plan.template
    merged = {**template.defaults(), **values}
    try:
        system = render_source(template.system, merged, max_chars=max_chars, where="system") \
            if template.system else None
        negative = render_source(template.negative_prompt, merged, max_chars=max_chars, where="negative_prompt") \
            if template.negative_prompt else None
        rendered = {}
        for variant in plan.variants:
            prompt = template.render(variant, values, max_chars=max_chars)
            if not prompt.strip():
                return f"variant {variant!r} renders to an empty prompt for this row: fill its columns"
            rendered[variant] = (prompt, system, negative)
        return rendered
    except TemplateError as error:
        return error.message


def pending_chunks(plan: Plan, datasets, skip: set[str], chunk_cells: int, max_chars: int,
                   positions: Iterable[int] | None = None) -> Iterator[Chunk]:
    """The cells not in `skip`, in row order, a chunk of about `chunk_cells` at a time. Rows whose cells are all
    in `skip` are not even read."""
    wanted = [p for p in (range(len(plan.rows)) if positions is None else positions)
              if any(key not in skip for key, *_ in plan.keys(p))]
    cells: list[Cell] = []
    failed: list[tuple[Cell, str]] = []
    for position, values, reference, reference_file in row_values(plan, datasets, wanted):
        rendered = render_row(plan, values, max_chars)
        for key, v, s, m in plan.keys(position):
            if key in skip:
                continue
            variant = plan.variants[v]
            prompt, system, negative = rendered[variant] if isinstance(rendered, dict) else ("", None, None)
            cell = Cell(prompt=prompt, model_id=plan.spec.models[m], seed=plan.spec.seeds[s], variant=variant,
                        values=values, system=system, negative_prompt=negative, row=plan.grid_row(position, m, s),
                        col=v, key=key, reference=reference, reference_file=reference_file)
            if isinstance(rendered, str):
                failed.append((cell, f"row {plan.rows[position]}: {rendered}"))
            else:
                cells.append(cell)
        if len(cells) + len(failed) >= chunk_cells:
            yield Chunk(comparison_spec(plan, cells), failed)
            cells, failed = [], []
    if cells or failed:
        yield Chunk(comparison_spec(plan, cells), failed)
