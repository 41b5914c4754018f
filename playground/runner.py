"""Runs a comparison grid: cells grouped by model, one batched backend call per group, results logged as they come.

Comparisons may run side by side (the app serves several at once). Local model work takes turns: a comparison
holds the model turn while it loads a local model and while the model streams a batch, so models are never loaded,
evicted or run under one another; checks run on a thread beside it, outside the turn; remote cells need no turn
and run beside it. What is written for each cell is in cell_log.py. No gradio here, and no model library at import
time: the UI, the CLI and the tests all drive this same code.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterator

from .cell_log import CellLogging, CellResult, Checked
from .engines import gpu
from .engines.base import Failed, Finished, GenerationRequest, Partial, Step
from .engines.catalog import Catalog, Resolved
from .registry import InvalidInput, engine_for, engine_options, modality, validate_options
from .scoring import CheckError, ScorerContext, make_checks
from .scoring.models import check_scorer_model
from .settings import Settings
from .store import RunLog
from .spec import ComparisonSpec, check_cells

__all__ = ["Cancelled", "CellResult", "Checked", "Progress", "Runner"]

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """One event of a running comparison: a finished cell, or partial text while a batch streams."""

    done: int
    total: int
    comparison_id: int
    result: CellResult | None = None
    partial: dict[int, str] = field(default_factory=dict)   # cell index -> text so far
    step: tuple[int, int] | None = None                      # (step, steps) of the running batch
    stage: str | None = None                                 # what is happening now, for people to read


class Cancelled(Exception):
    pass


class Runner(CellLogging):
    def __init__(self, catalog: Catalog, log: RunLog, settings: Settings):
        self.catalog = catalog
        self.log = log
        self.settings = settings
        self._judges: dict[str, tuple[Resolved, dict]] = {}
        self._judges_lock = threading.Lock()
        # Local model work (a load, a batch's generation) takes turns here; checks run outside the turn, so one
        # comparison's slow check never holds up another visitor's generation.
        self._turn = threading.Lock()
        self.scoring = ScorerContext.from_settings(settings, generate=self._judge_with(None),
                                                   generate_for=self._judge_with)

    def _judge_model(self, model_id: str) -> tuple[Resolved, dict]:
        """A judge model resolved once (a hub look-up), with greedy options: not again for every judged cell."""
        with self._judges_lock:
            if model_id not in self._judges:
                resolved = self.catalog.resolve("text", model_id)
                greedy = {"do_sample": False} if "do_sample" in resolved.engine.options.model_fields else \
                    {"temperature": 0.0}
                self._judges[model_id] = (resolved, validate_options(
                    resolved.engine.options, {"max_new_tokens": 256, **greedy}, self.settings))
            return self._judges[model_id]

    def _judge_with(self, model_id: str | None):
        """`prompt -> text` on any text engine, local or remote: what an LLM-judge check talks to."""
        def generate(prompt: str) -> str:
            resolved, options = self._judge_model(model_id or self.catalog.default_model("text"))
            model = self.catalog.remote(resolved) if resolved.engine.remote else self.catalog.get(resolved)
            for event in self._stream(model, resolved, [GenerationRequest(prompt, 0)], options):
                if isinstance(event, Finished):
                    return event.output.text or ""
                if isinstance(event, Failed):
                    raise RuntimeError(event.error)
            return ""
        return generate

    def check(self, spec: ComparisonSpec, max_cells: int | None = None) -> Checked:
        """Refuse bad input before anything is logged or loaded; every model is resolved once (one hub look-up).
        `max_cells`: the limit for this spec when the caller is not a grid (an experiment's chunk)."""
        self.check_cells(spec, max_cells)
        return self.prepare(spec.modality, list(dict.fromkeys((c.model_id, c.revision) for c in spec.cells)),
                            spec.params, spec.checks, has_reference=bool(spec.expected))

    def check_cells(self, spec: ComparisonSpec, max_cells: int | None = None) -> None:
        check_cells(spec, max_cells or self.settings.max_cells, self.settings.max_prompt_chars)

    def prepare(self, modality_name: str, models: list[tuple[str, str | None]], params: dict | None,
                checks: list | None, has_reference: bool = False) -> Checked:
        """Resolve each (model id, revision) once, build the checks and validate each engine's options: what every
        cell of a comparison (or of an experiment, chunk after chunk) runs with."""
        modality(modality_name)
        resolved = {key: self.catalog.resolve(modality_name, key[0], key[1]) for key in dict.fromkeys(models)}
        try:
            checks = make_checks(checks, modality_name, has_reference=has_reference)
        except CheckError as error:
            raise InvalidInput("checks", str(error)) from None
        local_judge = False
        for check in checks:        # a judge or scorer model is checked like any other model id, before anything runs
            if check.type == "llm_judge" and check.options.get("model"):
                self._judge_model(check.options["model"])
            elif getattr(check, "runs_torch", False) and check.options.get("model"):
                try:
                    check_scorer_model(self.scoring, check.options["model"])
                except ValueError as error:
                    raise InvalidInput("checks", str(error)) from None
            if check.type == "llm_judge":
                judge = check.options.get("model") or self.catalog.default_model("text")
                local_judge = local_judge or not engine_for("text", judge, self.catalog.endpoints).remote
        options = engine_options(modality_name, list(dict.fromkeys(r.engine.name for r in resolved.values())),
                                 params, self.settings)
        for name in options:
            if options[name].get("precision") == "auto":
                # Logged as the dtype it means here: a re-run elsewhere, and the cache, use exactly that dtype.
                from .engines.base import choose_device, choose_dtype

                options[name]["precision"] = choose_dtype(choose_device(self.settings.device), self.settings.dtype)
        return Checked(resolved, options, checks, local_judge)

    def run(self, spec: ComparisonSpec, cancel: threading.Event | None = None, owner: str | None = None,
            into: int | None = None, checked: Checked | None = None, batch_size: int | None = None,
            max_cells: int | None = None) -> Iterator[Progress]:
        """Yields progress events; every finished cell is in the log before it is yielded. `owner` is the visitor
        the comparison belongs to on a public deployment (None: local, seen by everyone). `into` logs the cells
        into an existing comparison (a re-run of one of its cells, an experiment's next chunk) instead of starting
        a new one. An experiment passes what it prepared once (`checked`), the cells an engine gets at once
        (`batch_size`, default the engine's) and its own cell limit (`max_cells`)."""
        if checked is None:
            checked = self.check(spec, max_cells)
        else:
            self.check_cells(spec, max_cells)
        cancel = cancel or threading.Event()
        if into is not None:
            comparison_id = self.log.get_comparison_header(into, owner=owner).id
        else:
            comparison_id = self.log.start_comparison(spec.modality, spec.title or "comparison",
                                                      template_name=spec.template_name,
                                                      spec={**spec.to_dict(), "pid": os.getpid()}, owner=owner)
        total, counts = len(spec.cells), {"ok": 0, "error": 0}
        status = "running"
        try:
            pending: dict[tuple[str, str | None], list[int]] = {}
            for index, cell in enumerate(spec.cells):
                record = self._record(spec, cell, comparison_id, checked)
                cached = None if spec.rerun else self.log.find_cached(record, owner=owner)
                if cached is not None:
                    record = self._log_cache_hit(cached, record)
                    counts["ok"] += 1
                    yield Progress(sum(counts.values()), total, comparison_id, CellResult(
                        index, cell, record, cached=True, scores=self._score(checked, record, None)))
                else:
                    pending.setdefault((cell.model_id, cell.revision), []).append(index)
            for key, indices in pending.items():
                group = self._run_model(spec, checked, checked.models[key], indices, comparison_id, cancel,
                                        batch_size)
                try:
                    for event in group:
                        if isinstance(event, CellResult):
                            counts["ok" if event.ok else "error"] += 1
                            event = Progress(0, 0, comparison_id, event)
                        event.done, event.total = sum(counts.values()), total
                        yield event
                finally:
                    group.close()           # gives the model turn back, whatever ended the loop
            status = "done" if not counts["error"] else ("failed" if not counts["ok"] else "partial")
        except Cancelled:
            status = "cancelled"
        except GeneratorExit:     # the consumer stopped listening (the browser tab closed, Stop was pressed)
            status = "cancelled"
            raise
        finally:
            if status == "running":      # an unexpected error: say so rather than leave it running
                status = "failed" if not counts["ok"] else "partial"
            if into is None:            # a re-run cell leaves its comparison's status as it was
                self.log.finish_comparison(comparison_id, status)

    # -- one model's cells ------------------------------------------------------------------------------------------

    def _run_model(self, spec, checked, resolved: Resolved, indices, comparison_id, cancel, batch_size=None):
        if resolved.engine.remote:
            yield from self._run_batches(spec, checked, self.catalog.remote(resolved), resolved, indices,
                                         comparison_id, cancel, 0.0, batch_size)
            return
        yield from self._run_local(spec, checked, resolved, indices, comparison_id, cancel, batch_size)

    def _take_turn(self, comparison_id, cancel) -> Iterator[Progress]:
        """Wait for the model turn, saying so while another comparison holds it; Stop ends the wait."""
        while not self._turn.acquire(timeout=0.25):
            if cancel.is_set():
                raise Cancelled
            yield Progress(0, 0, comparison_id, stage="waiting for the model: another comparison is using it")

    def _run_local(self, spec, checked, resolved: Resolved, indices, comparison_id, cancel, batch_size=None):
        warm = self.catalog.find_loaded(spec.modality, resolved.model_id, resolved.revision) is not None
        if not warm:
            yield Progress(0, 0, comparison_id, stage=f"loading {resolved.model_id}")
        yield from self._take_turn(comparison_id, cancel)
        try:
            model = self.catalog.get(resolved)
        except Exception as error:       # a model that will not load fails its cells, not the comparison
            log.warning("model %s failed to load: %s", resolved.model_id, error)
            for index in indices:
                yield self._log_failure(spec, index, comparison_id, checked, error)
            return
        finally:
            self._turn.release()
        load_s = 0.0 if warm else model.load_s     # the load is charged to the first batch only
        yield from self._run_batches(spec, checked, model, resolved, indices, comparison_id, cancel, load_s, batch_size)

    def _run_batches(self, spec, checked, model, resolved: Resolved, indices, comparison_id, cancel, load_s,
                     batch_size=None):
        """A local model's batches each run in the model turn, held while the model streams: with continuous
        batching it is still generating other cells after the first is out, so neither an eviction nor another
        comparison may touch it then. Its cells are scored on a thread of their own meanwhile, outside the turn,
        so one comparison's slow checks hold up no other comparison's generation (a local judge waits for the
        turn like any model work)."""
        options = checked.options[resolved.engine.name]
        for batch in _chunks(indices, batch_size or resolved.engine.batch_size):
            if cancel.is_set():
                raise Cancelled
            if resolved.engine.remote:
                yield Progress(0, 0, comparison_id, stage=f"generating with {resolved.model_id}")
                for event in self._run_batch(spec, checked, model, resolved, batch, options, comparison_id,
                                             cancel, load_s):
                    if isinstance(event, CellResult) and event.output is not None:
                        event.scores = self._score(checked, event.record, event.output)
                    yield event
            else:
                yield from self._take_turn(comparison_id, cancel)
                try:
                    model = self.catalog.get(resolved)     # the same one, unless another comparison evicted it
                except Exception as error:
                    self._turn.release()
                    for index in batch:
                        yield self._log_failure(spec, index, comparison_id, checked, error)
                    continue
                yield from self._run_local_batch(spec, checked, model, resolved, batch, options, comparison_id,
                                                 cancel, load_s)
            load_s = 0.0

    def _run_local_batch(self, spec, checked, model, resolved, batch, options, comparison_id, cancel, load_s):
        """One local batch, entered holding the turn, which it hands on when the model's stream ends. Cells are
        passed on in order as their scores come in."""
        scorer = ThreadPoolExecutor(1, thread_name_prefix="checks") if checked.checks else None
        scoring: deque[tuple[CellResult, Future]] = deque()

        def scored(wait: bool) -> Iterator[CellResult]:
            while scoring and (wait or scoring[0][1].done()):
                result, future = scoring.popleft()
                result.scores = future.result()
                yield result

        holding = True
        try:
            yield Progress(0, 0, comparison_id, stage=f"generating with {resolved.model_id}")
            for event in self._run_batch(spec, checked, model, resolved, batch, options, comparison_id, cancel,
                                         load_s):
                if scorer is not None and isinstance(event, CellResult) and event.output is not None:
                    scoring.append((event, scorer.submit(self._score, checked, event.record, event.output)))
                elif scorer is not None and isinstance(event, CellResult):
                    scoring.append((event, _done([])))         # a failed cell keeps its place in the order
                else:
                    yield event
                yield from scored(wait=False)
            self._turn.release()
            holding = False
            yield from scored(wait=True)
        finally:
            if holding:
                self._turn.release()
            if scorer is not None:      # stopped midway: the cells already logged are still scored
                scorer.shutdown(wait=False)

    def _stream(self, model, resolved: Resolved, requests, options):
        if resolved.engine.remote:
            return model.stream(requests, options)
        return gpu.stream_on_gpu(resolved.modality, resolved.model_id, resolved.revision, requests, options)

    def _run_batch(self, spec, checked, model, resolved, batch, options, comparison_id, cancel, load_s):
        cells = [spec.cells[i] for i in batch]
        requests = [GenerationRequest(c.prompt, c.seed, c.system, c.negative_prompt) for c in cells]
        finished: set[int] = set()
        stream = self._stream(model, resolved, requests, options)
        try:
            for event in stream:
                if cancel.is_set():
                    raise Cancelled
                if isinstance(event, Partial) and not event.texts:
                    # A remote stream's heartbeat: nothing new, but the caller hears from the run (and can stop it).
                    yield Progress(0, 0, comparison_id, stage=f"generating with {resolved.model_id}")
                elif isinstance(event, Partial):
                    yield Progress(0, 0, comparison_id, partial={batch[i]: t for i, t in event.texts.items()})
                elif isinstance(event, Step):
                    yield Progress(0, 0, comparison_id, step=(event.step, event.steps))
                elif isinstance(event, Finished):
                    finished.add(event.index)
                    yield self._log_output(spec, checked, batch[event.index], comparison_id, model, event.output,
                                           load_s)
                elif isinstance(event, Failed):
                    finished.add(event.index)
                    yield self._log_failure(spec, batch[event.index], comparison_id, checked, event.error, model,
                                            text=event.text)
        except Cancelled:
            raise
        except Exception as error:
            rest = [index for i, index in enumerate(batch) if i not in finished]
            if len(rest) > 1 and not resolved.engine.remote:    # find the failing cell: the others still run
                for index in rest:
                    yield from self._run_batch(spec, checked, model, resolved, [index], options, comparison_id,
                                               cancel, 0.0)
                return
            log.warning("cells of %s failed: %s", resolved.model_id, error)
            for index in rest:
                yield self._log_failure(spec, index, comparison_id, checked, error, model)
        finally:
            stream.close()          # stops the model within one step if it is still running

def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
