"""Runs a comparison grid: cells grouped by model, one batched backend call per group, results logged as they come.

No gradio here, and no model library at import time: the UI, the CLI and the tests all drive this same code.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Iterator

from . import __version__
from .engines import gpu
from .engines.base import Failed, Finished, GenerationRequest, Output, Partial, Step, check_seed, to_wav_bytes
from .engines.catalog import Catalog, Resolved
from .registry import ENGINES, InvalidInput, engines_for, modality, validate_options
from .scoring import CheckError, Score, ScorerContext, make_checks, score_and_save
from .settings import Settings
from .store import RunLog, RunRecord
from .spec import Cell, ComparisonSpec
from .templates import TemplateError

log = logging.getLogger(__name__)


@dataclass
class CellResult:
    index: int                   # position in spec.cells
    cell: Cell
    record: RunRecord
    output: Output | None = None     # in-memory output (None when served from the log)
    cached: bool = False
    scores: list[Score] = field(default_factory=list)

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
    stage: str | None = None                                 # what is happening now, for people to read


class Cancelled(Exception):
    pass


@dataclass
class Checked:
    """A spec that passed every check: each model resolved once, each engine's options validated."""

    models: dict[tuple[str, str | None], Resolved]     # (model id, logged revision) -> resolved
    options: dict[str, dict]                            # engine name -> validated options
    checks: list = field(default_factory=list)          # the comparison's checks, built once for every cell

    def resolved(self, cell: Cell) -> Resolved:
        return self.models[(cell.model_id, cell.revision)]


class Runner:
    def __init__(self, catalog: Catalog, log: RunLog, settings: Settings):
        self.catalog = catalog
        self.log = log
        self.settings = settings
        self._judges: dict[str, tuple[Resolved, dict]] = {}
        self._judges_lock = threading.Lock()
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

    def check(self, spec: ComparisonSpec) -> Checked:
        """Refuse bad input before anything is logged or loaded; every model is resolved once (one hub look-up)."""
        modality(spec.modality)
        if not spec.cells:
            raise InvalidInput("cells", "the comparison has no cells")
        if len(spec.cells) > self.settings.max_cells:
            raise InvalidInput("cells", f"{len(spec.cells)} cells; the limit is {self.settings.max_cells}")
        for cell in spec.cells:
            if not isinstance(cell.prompt, str) or not cell.prompt.strip():
                raise InvalidInput("prompt", f"cell {cell.label!r} has an empty prompt")
            if len(cell.prompt) > self.settings.max_prompt_chars:
                raise InvalidInput("prompt", f"cell {cell.label!r} has {len(cell.prompt)} characters; "
                                   f"the limit is {self.settings.max_prompt_chars}")
            check_seed(cell.seed)
        models = {}
        for key in dict.fromkeys((c.model_id, c.revision) for c in spec.cells):
            models[key] = self.catalog.resolve(spec.modality, key[0], key[1])
        try:
            checks = make_checks(spec.checks, spec.modality)
        except CheckError as error:
            raise InvalidInput("checks", str(error)) from None
        engines = list(dict.fromkeys(r.engine.name for r in models.values()))
        params = dict(spec.params or {})
        # The UI sends every option of the tab; each engine takes the ones it knows, and a name no engine of this
        # modality knows is a typo.
        known = set().union(*(e.options.model_fields for e in engines_for(spec.modality)))
        unknown = sorted(set(params) - known)
        if unknown:
            raise InvalidInput(unknown[0], f"unknown option; allowed: {', '.join(sorted(known))}")
        options = {}
        for name in engines:        # a grid may mix engines: each takes the options it knows
            fields = ENGINES[name].options.model_fields
            options[name] = validate_options(ENGINES[name].options, {k: v for k, v in params.items() if k in fields},
                                             self.settings)
            if options[name].get("precision") == "auto":
                # Logged as the dtype it means here: a re-run elsewhere, and the cache, use exactly that dtype.
                from .engines.base import choose_device, choose_dtype

                options[name]["precision"] = choose_dtype(choose_device(self.settings.device), self.settings.dtype)
        return Checked(models, options, checks)

    def run(self, spec: ComparisonSpec, cancel: threading.Event | None = None, owner: str | None = None,
            into: int | None = None) -> Iterator[Progress]:
        """Yields progress events; every finished cell is in the log before it is yielded. `owner` is the visitor
        the comparison belongs to on a public deployment (None: local, seen by everyone). `into` logs the cells
        into an existing comparison (a re-run of one of its cells) instead of starting a new one."""
        checked = self.check(spec)
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
                cached = None if spec.rerun else self.log.find_cached(record)
                if cached is not None:
                    record = self._log_cache_hit(cached, record)
                    counts["ok"] += 1
                    yield Progress(sum(counts.values()), total, comparison_id, CellResult(
                        index, cell, record, cached=True, scores=self._score(checked, record, None)))
                else:
                    pending.setdefault((cell.model_id, cell.revision), []).append(index)
            for key, indices in pending.items():
                for event in self._run_model(spec, checked, checked.models[key], indices, comparison_id, cancel):
                    if isinstance(event, CellResult):
                        counts["ok" if event.ok else "error"] += 1
                        event = Progress(0, 0, comparison_id, event)
                    event.done, event.total = sum(counts.values()), total
                    yield event
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

    def _run_model(self, spec, checked, resolved: Resolved, indices, comparison_id, cancel):
        engine = resolved.engine
        if engine.remote:
            model = self.catalog.remote(resolved)
        else:
            warm = self.catalog.find_loaded(spec.modality, resolved.model_id, resolved.revision) is not None
            if not warm:
                yield Progress(0, 0, comparison_id, stage=f"loading {resolved.model_id}")
            try:
                model = self.catalog.get(resolved)
            except Exception as error:       # a model that will not load fails its cells, not the comparison
                log.warning("model %s failed to load: %s", resolved.model_id, error)
                for index in indices:
                    yield self._log_failure(spec, index, comparison_id, checked, error)
                return
            load_s = 0.0 if warm else model.load_s     # the load is charged to the first batch only
        options = checked.options[engine.name]
        for batch in _chunks(indices, engine.batch_size):
            if cancel.is_set():
                raise Cancelled
            yield Progress(0, 0, comparison_id, stage=f"generating with {resolved.model_id}")
            yield from self._run_batch(spec, checked, model, resolved, batch, options, comparison_id, cancel,
                                       0.0 if engine.remote else load_s)
            load_s = 0.0

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
                if isinstance(event, Partial):
                    yield Progress(0, 0, comparison_id, partial={batch[i]: t for i, t in event.texts.items()})
                elif isinstance(event, Step):
                    yield Progress(0, 0, comparison_id, step=(event.step, event.steps))
                elif isinstance(event, Finished):
                    finished.add(event.index)
                    yield self._log_output(spec, checked, batch[event.index], comparison_id, model, event.output,
                                           load_s)
                elif isinstance(event, Failed):
                    finished.add(event.index)
                    yield self._log_failure(spec, batch[event.index], comparison_id, checked, event.error, model)
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

    # -- records ----------------------------------------------------------------------------------------------------

    def _record(self, spec, cell, comparison_id, checked: Checked, model=None) -> RunRecord:
        resolved = checked.resolved(cell)
        versions = library_versions() if not resolved.engine.remote else \
            {"playground": __version__, **getattr(model, "versions", {})}
        return RunRecord(
            modality=spec.modality, model_id=cell.model_id, prompt=cell.prompt, seed=cell.seed,
            params=checked.options[resolved.engine.name], comparison_id=comparison_id, row=cell.row, col=cell.col,
            template_name=spec.template_name, template_hash=spec.template_hash, variant=cell.variant,
            variables=dict(cell.values), system=cell.system, negative_prompt=cell.negative_prompt,
            model_revision=resolved.revision, backend=resolved.engine.name,
            endpoint=resolved.endpoint.host if resolved.endpoint else None,
            device=getattr(model, "device", None), dtype=getattr(model, "dtype", None), versions=versions)

    def _log_output(self, spec, checked, index, comparison_id, model, output: Output, load_s) -> CellResult:
        cell = spec.cells[index]
        record = self._record(spec, cell, comparison_id, checked, model)
        _fill_metrics(record, output, load_s)
        if model is not None and hasattr(model, "seconds_per_cell") and record.wall_s:
            # wall_s is the whole batch's: the next GPU lease is sized per cell
            model.seconds_per_cell = record.wall_s / max(int((record.metrics or {}).get("batch_rows") or 1), 1)
        try:
            artifact, ext = _artifact(output)
            self.log.add_run(record, artifact=artifact, artifact_ext=ext)
        except OSError as error:       # disk full, permissions: this cell fails, the grid goes on
            record.status, record.artifact = "error", None
            record.error = f"could not save the output in the data dir ({error.strerror or error}): free some " \
                           "space there or fix its permissions"
            self.log.add_run(record)
            return CellResult(index, cell, record)
        return CellResult(index, cell, record, output=output, scores=self._score(checked, record, output))

    def _score(self, checked: Checked, record: RunRecord, output) -> list[Score]:
        """The comparison's checks on one logged cell; a scorer that breaks never loses the cell."""
        if not checked.checks:
            return []
        try:
            return score_and_save(self.log, record, output, checked.checks, self.scoring)
        except Exception as error:          # e.g. a scorer model that will not load: the cell stays logged
            log.warning("scoring run %s failed: %s", record.id, error)
            return []

    def _log_cache_hit(self, cached: RunRecord, fresh: RunRecord) -> RunRecord:
        """A cached cell becomes a run of this comparison that points at the original output."""
        fresh.status, fresh.cached_from = "ok", cached.id
        for name in ("output_text", "device", "dtype", "tokens_per_s", "realtime_factor", "prompt_tokens",
                     "completion_tokens", "formatted_prompt", "endpoint", "model_revision"):
            setattr(fresh, name, getattr(cached, name))
        fresh.wall_s = fresh.load_s = 0.0
        fresh.artifact = cached.artifact         # shares the original file rather than copying it
        self.log.add_run(fresh)
        return fresh

    def _log_failure(self, spec, index, comparison_id, checked, error, model=None) -> CellResult:
        cell = spec.cells[index]
        record = self._record(spec, cell, comparison_id, checked, model)
        record.status = "error"
        record.error = error if isinstance(error, str) else str(error) if isinstance(
            error, (InvalidInput, TemplateError)) else f"{type(error).__name__}: {error}"
        self.log.add_run(record)
        return CellResult(index, cell, record)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _fill_metrics(record: RunRecord, output: Output, load_s: float) -> None:
    metrics = dict(output.metrics)
    record.output_text = output.text
    record.wall_s = metrics.pop("wall_s", None)
    record.load_s = load_s
    for name in ("tokens_per_s", "realtime_factor", "prompt_tokens", "completion_tokens", "formatted_prompt",
                 "ttft_s", "endpoint"):
        value = metrics.pop(name, None)
        if value is not None:
            setattr(record, name, value)
    if metrics.get("revision"):      # a remote server names what it really ran
        record.model_revision = metrics.pop("revision")
    record.metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}


def _artifact(output: Output) -> tuple[bytes | None, str | None]:
    if output.image is not None:
        buffer = io.BytesIO()
        output.image.save(buffer, format="PNG")
        return buffer.getvalue(), "png"
    if output.audio is not None:
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
