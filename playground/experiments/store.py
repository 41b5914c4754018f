"""What the log says about an experiment: which cells are logged (by key), how many are done, failed and how many
tokens they used, and the comparison's status. Plain SQL over the runs of one comparison."""

from __future__ import annotations

from ..store import COMPARISON_STATUSES


def logged_cells(log, comparison_id: int) -> dict[str, str]:
    """cell key -> status of every logged cell of the experiment."""
    rows = log._db().execute("SELECT cell_key, status FROM runs WHERE comparison_id = ? AND cell_key IS NOT NULL",
                             (comparison_id,))
    return {key: status for key, status in rows}


def cell_counts(log, comparison_id: int) -> dict[str, int]:
    """{"ok": n, "error": n, "tokens": n} over the experiment's logged cells."""
    counts = {"ok": 0, "error": 0, "cancelled": 0, "tokens": 0}
    rows = log._db().execute("SELECT status, count(*), sum(coalesce(prompt_tokens, 0) + "
                             "coalesce(completion_tokens, 0)) FROM runs WHERE comparison_id = ? AND cell_key IS NOT "
                             "NULL GROUP BY status", (comparison_id,))
    for status, count, tokens in rows:
        counts[status] = count
        counts["tokens"] += tokens or 0
    return counts


def set_status(log, comparison_id: int, status: str) -> None:
    """An experiment's comparison says `running` while its job is unfinished, then how it ended."""
    if status not in COMPARISON_STATUSES:
        raise ValueError(f"status must be one of {', '.join(COMPARISON_STATUSES)}")
    with log._write() as tx:
        tx.execute("UPDATE comparisons SET status = ? WHERE id = ?", (status, comparison_id))


def imported_experiments(log, owner: str | None, limit: int) -> list[int]:
    """Ids of experiments that came from an export: comparisons with an experiment's spec and no job (newest
    first; `owner` None: everyone's)."""
    where, args = ("json_extract(spec, '$.experiment') IS NOT NULL AND id NOT IN "
                   "(SELECT comparison_id FROM jobs WHERE comparison_id IS NOT NULL)"), []
    if owner is not None:
        where, args = where + " AND owner = ?", [owner]
    rows = log._db().execute(f"SELECT id FROM comparisons WHERE {where} ORDER BY id DESC LIMIT ?", (*args, limit))
    return [row[0] for row in rows]
