"""Runs a comparison grid: cells grouped by model, one batched backend call per group, results logged as they come.

No gradio here, and no model library at import time: the UI, the CLI and the tests all drive this same code.
"""

from __future__ import annotations

import io
import queue
import threading
from dataclasses import dataclass, field
from typing import Iterator

from . import __version__
from .backends.base import GenerationRequest, InvalidInput, Output, check_seed, gpu_decorator
from .backends.catalog import Catalog, backend_class, preset_params
from .settings import Settings
from .store import RunLog, RunRecord
from .templates import PromptCell, Template, TemplateError, expand

# Cells per backend call: enough to use a GPU well, small enough that results keep arriving on a CPU.
BATCH_SIZE = {"text": 8, "image": 4, "music": 4}


@dataclass
class Cell:
    """One output to produce: a rendered prompt, the model and seed to run it with, and where it sits in the grid."""

    prompt: str
    model_id: str
    seed: int
    variant: str = ""
    values: dict = field(default_factory=dict)
    system: str | None = None
    negative_prompt: str | None = None
    row: int = 0
    col: int = 0

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

    def to_dict(self) -> dict:
        return {"modality": self.modality, "params": self.params, "template_name": self.template_name,
                "template_hash": self.template_hash, "title": self.title,
                "cells": [vars(c) for c in self.cells]}


@dataclass
class CellResult:
    index: int                   # position in spec.cells
    cell: Cell
    record: RunRecord
    output: Output | None = None     # in-memory output (None when served from the log)
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.record.status == "ok"


@dataclass
class Progress:
    """One event of a running comparison: a finished cell, or partial text while a batch streams."""

    done: int
    total: int
    comparison_id: int
    result: CellResult | None = None
    partial: dict[int, str] = field(default_factory=dict)   # cell index -> text so far
    step: tuple[int, int] | None = None                      # (step, steps) of the running batch


def build_spec(template: Template, *, modality: str | None = None, values: dict | None = None,
               variants: dict | None = None, models: list[str], seeds: list[int], params: dict | None = None,
               max_cells: int = 64, rerun: bool = False, title: str = "") -> ComparisonSpec:
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
    # The template's params, then what the first model needs (turbo: few steps), then the caller's choices.
    merged = {**template.params, **preset_params(models[0], modality), **(params or {})}
    return ComparisonSpec(modality=modality, cells=cells, params=merged, template_name=template.name,
                          template_hash=template.hash, rerun=rerun,
                          title=title or f"{template.name} · {len(cells)} cells")


class Cancelled(Exception):
    pass


class Runner:
    def __init__(self, catalog: Catalog, log: RunLog, settings: Settings):
        self.catalog = catalog
        self.log = log
        self.settings = settings

    def check(self, spec: ComparisonSpec) -> dict:
        """Refuse bad input before anything is logged or loaded; returns the validated params."""
        if spec.modality not in BATCH_SIZE:
            raise InvalidInput("modality", f"must be one of {', '.join(BATCH_SIZE)}, got {spec.modality!r}")
        if not spec.cells:
            raise InvalidInput("cells", "the comparison has no cells")
        if len(spec.cells) > self.settings.max_cells:
            raise InvalidInput("cells", f"{len(spec.cells)} cells; the limit is {self.settings.max_cells}")
        for cell in spec.cells:
            if not cell.prompt or not cell.prompt.strip():
                raise InvalidInput("prompt", f"cell {cell.label!r} has an empty prompt")
            if len(cell.prompt) > self.settings.max_prompt_chars:
                raise InvalidInput("prompt", f"cell {cell.label!r} has {len(cell.prompt)} characters; "
                                   f"the limit is {self.settings.max_prompt_chars}")
            check_seed(cell.seed)
        for model_id in dict.fromkeys(c.model_id for c in spec.cells):
            self.catalog.resolve(spec.modality, model_id)
        return backend_class(spec.modality).validate(spec.params, self.settings)

    def run(self, spec: ComparisonSpec, cancel: threading.Event | None = None) -> Iterator[Progress]:
        """Yields progress events; every finished cell is in the log before it is yielded."""
        params = self.check(spec)
        cancel = cancel or threading.Event()
        comparison_id = self.log.start_comparison(spec.modality, spec.title or "comparison",
                                                  template_name=spec.template_name, spec=spec.to_dict())
        total, done = len(spec.cells), 0
        status = "done"
        try:
            pending: dict[str, list[int]] = {}
            for index, cell in enumerate(spec.cells):
                record = self._record(spec, cell, comparison_id, params)
                cached = None if spec.rerun else self.log.find_cached(record)
                if cached is not None:
                    record = self._log_cache_hit(cached, record)
                    done += 1
                    yield Progress(done, total, comparison_id, CellResult(index, cell, record, cached=True))
                else:
                    pending.setdefault(cell.model_id, []).append(index)
            for model_id, indices in pending.items():
                for result in self._run_model(spec, model_id, indices, params, comparison_id,
                                              cancel):
                    if isinstance(result, Progress):
                        result.done, result.total = done, total
                        yield result
                        continue
                    done += 1
                    yield Progress(done, total, comparison_id, result)
        except Cancelled:
            status = "cancelled"
        except GeneratorExit:     # the consumer stopped listening (the browser tab closed, Stop was pressed)
            status = "cancelled"
            raise
        finally:
            self.log.finish_comparison(comparison_id, status)

    # -- one model's cells ------------------------------------------------------------------------------------------

    def _run_model(self, spec, model_id, indices, params, comparison_id, cancel) -> Iterator[CellResult | Progress]:
        was_warm = (spec.modality, model_id) in self.catalog.loaded()
        try:
            backend = self.catalog.get(spec.modality, model_id)
        except Exception as error:           # a model that will not load fails its cells, not the comparison
            for index in indices:
                yield self._log_failure(spec, index, comparison_id, params, error)
            return
        load_s = 0.0 if was_warm else backend.load_s     # the load is charged to the first batch only
        for batch in _chunks(indices, BATCH_SIZE[spec.modality]):
            if cancel.is_set():
                raise Cancelled
            yield from self._run_batch(spec, backend, batch, params, comparison_id, cancel, load_s)
            load_s = 0.0

    def _run_batch(self, spec, backend, batch, params, comparison_id, cancel,
                   load_s: float = 0.0) -> Iterator[CellResult | Progress]:
        cells = [spec.cells[i] for i in batch]
        requests = [GenerationRequest(c.prompt, c.seed, c.system, c.negative_prompt) for c in cells]
        events: queue.Queue = queue.Queue()

        def on_progress(update):
            if cancel.is_set():
                raise Cancelled     # raised inside generate: stops the batch at the next step
            events.put(("progress", update))

        def work():
            try:
                events.put(("done", _generate(backend, requests, params, on_progress)))
            except BaseException as error:  # handed to the consuming thread, which decides
                events.put(("error", error))

        threading.Thread(target=work, daemon=True, name="generate").start()
        while True:
            kind, payload = events.get()
            if kind == "progress":
                if isinstance(payload, list):
                    yield Progress(0, 0, comparison_id, partial=dict(zip(batch, payload)))
                else:
                    yield Progress(0, 0, comparison_id, step=tuple(payload))
                continue
            break
        if kind == "error":
            if isinstance(payload, Cancelled):
                raise Cancelled
            if len(batch) > 1:       # find the failing cell: the others still get their output
                for index in batch:
                    yield from self._run_batch(spec, backend, [index], params, comparison_id, cancel)
                return
            yield self._log_failure(spec, batch[0], comparison_id, params, payload, backend)
            return
        for index, cell, output in zip(batch, cells, payload):
            record = self._record(spec, cell, comparison_id, params, backend)
            _fill_metrics(record, output, load_s)
            artifact, ext = _artifact(output)
            self.log.add_run(record, artifact=artifact, artifact_ext=ext)
            yield CellResult(index, cell, record, output=output)

    # -- records ----------------------------------------------------------------------------------------------------

    def _record(self, spec, cell, comparison_id, params, backend=None) -> RunRecord:
        return RunRecord(
            modality=spec.modality, model_id=cell.model_id, prompt=cell.prompt, seed=cell.seed, params=params,
            comparison_id=comparison_id, row=cell.row, col=cell.col, template_name=spec.template_name,
            template_hash=spec.template_hash, variant=cell.variant, variables=dict(cell.values),
            system=cell.system, negative_prompt=cell.negative_prompt,
            model_revision=backend.revision if backend else self.catalog.revision(spec.modality, cell.model_id),
            backend=backend.backend_name if backend else backend_class(spec.modality).backend_name,
            device=backend.device if backend else None, dtype=backend.dtype if backend else None,
            versions=library_versions())

    def _log_cache_hit(self, cached: RunRecord, fresh: RunRecord) -> RunRecord:
        """A cached cell becomes a run of this comparison that points at the original output."""
        fresh.status, fresh.cached_from = "ok", cached.id
        for name in ("output_text", "device", "dtype", "wall_s", "load_s", "tokens_per_s", "realtime_factor",
                     "prompt_tokens", "completion_tokens"):
            setattr(fresh, name, getattr(cached, name))
        fresh.wall_s = fresh.load_s = 0.0
        fresh.artifact = cached.artifact         # shares the original file rather than copying it
        self.log.add_run(fresh)
        return fresh

    def _log_failure(self, spec, index, comparison_id, params, error, backend=None) -> CellResult:
        cell = spec.cells[index]
        record = self._record(spec, cell, comparison_id, params, backend) if backend else RunRecord(
            modality=spec.modality, model_id=cell.model_id, prompt=cell.prompt, seed=cell.seed, params=params,
            comparison_id=comparison_id, row=cell.row, col=cell.col, template_name=spec.template_name,
            template_hash=spec.template_hash, variant=cell.variant, variables=dict(cell.values), system=cell.system,
            negative_prompt=cell.negative_prompt, versions=library_versions())
        record.status = "error"
        record.error = str(error) if isinstance(error, (InvalidInput, TemplateError)) else \
            f"{type(error).__name__}: {error}"
        self.log.add_run(record)
        return CellResult(index, cell, record)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@gpu_decorator()
def _generate(backend, requests, params, on_progress) -> list[Output]:
    """The one place model work happens; on ZeroGPU Spaces it runs with a GPU attached."""
    return backend.generate(requests, params, on_progress)


def _fill_metrics(record: RunRecord, output: Output, load_s: float) -> None:
    metrics = output.metrics
    record.output_text = output.text
    record.wall_s = metrics.get("wall_s")
    record.load_s = load_s
    record.tokens_per_s = metrics.get("tokens_per_s")
    record.realtime_factor = metrics.get("realtime_factor")
    record.prompt_tokens = metrics.get("prompt_tokens")
    record.completion_tokens = metrics.get("completion_tokens")


def _artifact(output: Output) -> tuple[bytes | None, str | None]:
    if output.image is not None:
        buffer = io.BytesIO()
        output.image.save(buffer, format="PNG")
        return buffer.getvalue(), "png"
    if output.audio is not None:
        from .backends.music import to_wav_bytes

        return to_wav_bytes(*output.audio), "wav"
    return None, None


_versions: dict[str, str] = {}


def library_versions() -> dict[str, str]:
    """Versions that shape outputs; read once (importlib.metadata is slow enough to matter per cell)."""
    if not _versions:
        from importlib.metadata import PackageNotFoundError, version

        _versions["playground"] = __version__
        for name in ("torch", "transformers", "diffusers", "accelerate"):
            try:
                _versions[name] = version(name)
            except PackageNotFoundError:
                pass
    return dict(_versions)



def spec_from_runs(records: list[RunRecord], *, title: str = "", new_seeds: list[int] | None = None,
                   rerun: bool = True) -> ComparisonSpec:
    """Rebuild a comparison from its logged runs, to run it again (same seeds, or `new_seeds` per row)."""
    if not records:
        raise InvalidInput("comparison", "has no runs to re-run")
    cells = []
    for record in records:
        seed = record.seed if new_seeds is None else new_seeds[record.row % len(new_seeds)]
        cells.append(Cell(prompt=record.prompt, model_id=record.model_id, seed=seed, variant=record.variant or "",
                          values=dict(record.variables or {}), system=record.system,
                          negative_prompt=record.negative_prompt, row=record.row, col=record.col))
    first = records[0]
    params = {k: v for k, v in first.params.items()}
    return ComparisonSpec(modality=first.modality, cells=cells, params=params, title=title,
                          template_name=first.template_name, template_hash=first.template_hash, rerun=rerun)
