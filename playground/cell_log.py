"""What the runner writes for each cell: its record, its output or its failure, a cache hit, and its scores. A mixin
of the Runner (it reads `self.log`, `self.scoring` and `self._turn`); no gradio, no torch at import."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from . import __version__
from .engines.base import LocalModel, Output, library_versions
from .engines.catalog import Resolved
from .outputs import artifact_bytes, fill_metrics
from .registry import InvalidInput
from .scoring import Score, score_and_save
from .spec import Cell, ComparisonSpec
from .store import AlreadyLogged, RunRecord
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
class Checked:
    """A spec that passed every check: each model resolved once, each engine's options validated."""

    models: dict[tuple[str, str | None], Resolved]     # (model id, logged revision) -> resolved
    options: dict[str, dict]                            # engine name -> validated options
    checks: list = field(default_factory=list)          # the comparison's checks, built once for every cell
    local_judge: bool = False                           # a judge check runs a local model: scoring takes the turn

    def resolved(self, cell: Cell) -> Resolved:
        return self.models[(cell.model_id, cell.revision)]


class CellLogging:
    """The runner's records of cells (see the module docstring)."""

    def _record(self, spec, cell, comparison_id, checked: Checked, model=None) -> RunRecord:
        resolved = checked.resolved(cell)
        if model is not None:
            versions = {"playground": __version__, **model.versions}
        else:                       # failed or cached before a model was at hand
            versions = {"playground": __version__} if resolved.engine.remote else library_versions()
        return RunRecord(
            modality=spec.modality, model_id=cell.model_id, prompt=cell.prompt, seed=cell.seed,
            params=checked.options[resolved.engine.name], comparison_id=comparison_id, row=cell.row, col=cell.col,
            template_name=spec.template_name, template_hash=spec.template_hash, variant=cell.variant,
            variables=dict(cell.values), system=cell.system, negative_prompt=cell.negative_prompt,
            model_revision=resolved.revision, backend=resolved.engine.name,
            endpoint=resolved.endpoint.host if resolved.endpoint else None,
            device=model.device if model is not None else None, dtype=model.dtype if model is not None else None,
            versions=versions, cell_key=cell.key, reference=cell.reference,
            reference_file=cell.reference_file, replaces=cell.replaces)

    def _log_output(self, spec, checked, index, comparison_id, model, output: Output, load_s,
                    imported: bool = False) -> CellResult:
        """The cell logged with its output; the caller scores it (outside the model turn)."""
        cell = spec.cells[index]
        record = self._record(spec, cell, comparison_id, checked, model)
        fill_metrics(record, output, load_s)
        record.imported = imported
        if isinstance(model, LocalModel) and record.wall_s:
            # wall_s is the whole batch's: the next GPU lease is sized per cell
            model.seconds_per_cell = record.wall_s / max(int((record.metrics or {}).get("batch_rows") or 1), 1)
        try:
            artifact, ext = artifact_bytes(output)
            self.log.add_run(record, artifact=artifact, artifact_ext=ext)
        except AlreadyLogged as logged:
            return self._logged_before(index, cell, logged)
        except OSError as error:       # disk full, permissions: this cell fails, the grid goes on
            record.status, record.artifact = "error", None
            record.error = f"could not save the output in the data dir ({error.strerror or error}): free some " \
                           "space there or fix its permissions"
            self.log.add_run(record)
            return CellResult(index, cell, record)
        return CellResult(index, cell, record, output=output)

    def _score(self, checked: Checked, record: RunRecord, output) -> list[Score]:
        """The comparison's checks on one logged cell, outside the model turn; a scorer that breaks never loses the
        cell. A local judge model takes the turn like any other model work."""
        if not checked.checks:
            return []
        turn = self._turn if checked.local_judge else contextlib.nullcontext()
        try:
            with turn:
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
        try:
            self.log.add_run(fresh)
        except AlreadyLogged as logged:
            return self.log.get_run(logged.run_id)
        return fresh

    def _log_failure(self, spec, index, comparison_id, checked, error, model=None, text: str | None = None
                     ) -> CellResult:
        """`text`: what the cell produced before it failed (a stream cut off mid-answer), kept in its record."""
        cell = spec.cells[index]
        record = self._record(spec, cell, comparison_id, checked, model)
        record.status, record.output_text = "error", text
        record.error = error if isinstance(error, str) else str(error) if isinstance(
            error, (InvalidInput, TemplateError)) else f"{type(error).__name__}: {error}"
        try:
            self.log.add_run(record)
        except AlreadyLogged as logged:
            return self._logged_before(index, cell, logged)
        return CellResult(index, cell, record)

    def _logged_before(self, index: int, cell: Cell, logged: AlreadyLogged) -> CellResult:
        """An experiment's cell that another attempt logged first: its run, not a second one."""
        log.warning("%s", logged)
        return CellResult(index, cell, self.log.get_run(logged.run_id), cached=True)

    # -- cells that come from elsewhere (a batch engine's answers, rows that cannot be rendered) ----------------------

    def log_output(self, spec: ComparisonSpec, index: int, comparison_id: int, checked: Checked,
                   output: Output) -> CellResult:
        """Log (and score) an output made outside this process (a batch engine's answer), as the cell
        `spec.cells[index]` of a comparison. It is marked imported: never served from the cache to other cells."""
        result = self._log_output(spec, checked, index, comparison_id, None, output, 0.0, imported=True)
        if result.output is not None:
            result.scores = self._score(checked, result.record, result.output)
        return result

    def log_failure(self, spec: ComparisonSpec, index: int, comparison_id: int, checked: Checked,
                    error: str | Exception) -> CellResult:
        """Log `spec.cells[index]` as failed with `error` (what to change), without running it."""
        return self._log_failure(spec, index, comparison_id, checked, error)
