"""An experiment's results out and back in: its runs with their scores as JSONL, CSV or Parquet (the run log's own
export), and an export imported again idempotently (runs already in the log are skipped by their uid), with the
experiment's spec travelling in its comparison."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..store import ImportLimits, ImportReport
from .api import get

FORMATS = ("jsonl", "csv", "parquet")


def export_results(services, experiment_id: int, dest: Path, *, owner: str | None = None) -> int:
    """Write every run of the experiment (and its scores) to `dest`; the format is its extension. Returns how many."""
    dest = Path(dest)
    fmt = dest.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"{dest.name}: the file must end in .jsonl, .csv or .parquet")
    experiment = get(services, experiment_id, owner)
    runs = services.log.list_runs(comparison_id=experiment.id, limit=10**9, newest_first=False)
    services.log.export(dest, fmt, runs=runs)
    return len(runs)


def import_limits(settings) -> ImportLimits:
    """An experiment is a comparison of up to max_experiment_cells cells: its export imports under that limit."""
    limits = ImportLimits.from_settings(settings)
    return replace(limits, max_cells=max(limits.max_cells, settings.max_experiment_cells),
                   max_rows=max(limits.max_rows, settings.max_experiment_cells))


def import_results(services, path: Path, *, owner: str | None = None) -> ImportReport:
    """Add an exported experiment (.jsonl, .zip or .parquet) to the log; importing it twice adds nothing."""
    return services.log.import_jsonl(Path(path), import_limits(services.settings), owner=owner)
