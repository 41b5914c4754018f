"""What pages say about a run or a comparison, in the same words wherever it is shown: the grid, History, the
report, Diff and Vote."""

from __future__ import annotations

STATUS_WORDS = {"running": "running", "done": "done", "partial": "done, some cells failed", "failed": "failed",
                "cancelled": "stopped", "interrupted": "interrupted by a restart"}


def rerun_badge(run) -> str | None:
    """A cell that re-ran another says so, with its seed (which may differ from its row's)."""
    return f"re-run · seed {run.seed}" if getattr(run, "replaces", None) is not None else None


def planned_cells(comparison) -> int | None:
    """How many cells the comparison was started with (its spec's cells), when it says."""
    cells = comparison.spec.get("cells") if isinstance(comparison.spec, dict) else None
    return len(cells) if isinstance(cells, list) else None


def status_text(comparison) -> str:
    """The comparison's status for people: 'done', 'stopped', ..."""
    return STATUS_WORDS.get(comparison.status, comparison.status)


def cells_text(comparison) -> str:
    """Its live cells, and how many were planned when fewer ran (a stopped comparison): '6', '4 of 6'."""
    live, planned = comparison.run_count or 0, planned_cells(comparison)
    return f"{live} of {planned}" if planned and live < planned else str(live)
