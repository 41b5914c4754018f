"""Scores of runs in the run log: one row per (run, score name); computing a score again replaces it.

A score is a number (`value`, None when it could not be computed), an optional pass/fail, and a JSON `detail`
(which check made it, which way is better, what a judge model was asked and said). Export rows carry them too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Iterable

from .records import _now

_MAX_NAME = 200
MAX_SCORES_PER_RUN = 32      # on import: a run made here has one score per check (at most 20 checks)
_CHUNK = 500          # run ids per query, under SQLite's bound-variable limit


@dataclass
class Score:
    """One automatic (or human) judgement of one run."""

    name: str
    value: float | None
    passed: bool | None = None
    detail: dict = field(default_factory=dict)
    run_id: int | None = None
    created_at: str | None = None

    def to_dict(self) -> dict:
        return {"value": self.value, "passed": self.passed, "detail": self.detail}


def check_score(score: Score) -> tuple[str, float | None, int | None, str]:
    """The score as a row of the scores table, or ValueError saying what is wrong with it (a NaN, a non-number)."""
    if not isinstance(score.name, str) or not score.name.strip() or len(score.name) > _MAX_NAME:
        raise ValueError(f"a score name is text of 1 to {_MAX_NAME} characters, got {score.name!r}")
    value = score.value
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"score {score.name!r}: value must be a number or None, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"score {score.name!r}: value must be finite, got {value!r}")
    if score.passed is not None and not isinstance(score.passed, bool):
        raise ValueError(f"score {score.name!r}: passed must be true, false or None, got {score.passed!r}")
    detail = json.dumps(score.detail or {}, ensure_ascii=False, sort_keys=True, default=str)
    return score.name, value, None if score.passed is None else int(score.passed), detail


def save_scores(log, run_id: int, scores: Iterable[Score]) -> None:
    """Store the scores of one run in one transaction; a score already there under the same name is replaced."""
    scores = list(scores)
    rows = [check_score(score) for score in scores]
    if not rows:
        return
    with log._write() as tx:
        if tx.execute("SELECT 1 FROM runs WHERE id = ?", (int(run_id),)).fetchone() is None:
            raise KeyError(f"no run #{run_id} in the log")
        insert_scores(tx, run_id, scores)


def insert_scores(tx, run_id: int, scores: Iterable[Score]) -> None:
    """Store scores inside an open transaction (an import adds a run and its scores together)."""
    scores = list(scores)
    rows, now = [check_score(score) for score in scores], _now()
    tx.executemany(
        "INSERT INTO scores (run_id, name, value, passed, detail, created_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (run_id, name) DO UPDATE SET value = excluded.value, passed = excluded.passed, "
        "detail = excluded.detail, created_at = excluded.created_at",
        [(int(run_id), name, value, passed, detail, now) for name, value, passed, detail in rows])
    for score in scores:
        score.run_id, score.created_at = int(run_id), now


def scores_for_runs(log, run_ids: Iterable[int]) -> dict[int, dict[str, Score]]:
    """{run_id: {name: Score}} for the runs given (runs without scores are left out)."""
    ids = sorted({int(i) for i in run_ids})
    found: dict[int, dict[str, Score]] = {}
    db = log._db()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        rows = db.execute(f"SELECT run_id, name, value, passed, detail, created_at FROM scores "
                          f"WHERE run_id IN ({', '.join('?' for _ in chunk)}) ORDER BY run_id, name", chunk)
        for row in rows:
            found.setdefault(row["run_id"], {})[row["name"]] = Score(
                name=row["name"], value=row["value"], passed=None if row["passed"] is None else bool(row["passed"]),
                detail=json.loads(row["detail"] or "{}"), run_id=row["run_id"], created_at=row["created_at"])
    return found


def delete_scores(log, run_id: int, names: Iterable[str] | None = None) -> int:
    """Remove a run's scores (all, or those named); returns how many went."""
    with log._write() as tx:
        if names is None:
            cursor = tx.execute("DELETE FROM scores WHERE run_id = ?", (int(run_id),))
        else:
            names = list(names)
            cursor = tx.execute(f"DELETE FROM scores WHERE run_id = ? AND name IN ({', '.join('?' for _ in names)})",
                                (int(run_id), *names))
    return cursor.rowcount


# ---- export and import --------------------------------------------------------------------------------------------

SCORE_COLUMN_PREFIX = "score:"
PASSED_COLUMN_PREFIX = "passed:"


def add_score_columns(log, rows: list[dict], *, flat: bool = True) -> list[str]:
    """Add each exported row's scores, in place: `row["scores"]` (name -> value, passed, detail) for JSONL and zip,
    and, with `flat`, `score:<name>` / `passed:<name>` keys for CSV. Rows are export rows (they carry the run's
    `id`). Returns the flat column names, sorted, for a CSV header."""
    by_run = scores_for_runs(log, [row["id"] for row in rows if row.get("id") is not None])
    columns: set[str] = set()
    for row in rows:
        scores = by_run.get(row.get("id"), {})
        row["scores"] = {name: score.to_dict() for name, score in scores.items()}
        for name, score in scores.items() if flat else ():
            row[SCORE_COLUMN_PREFIX + name] = score.value
            columns.add(SCORE_COLUMN_PREFIX + name)
            if score.passed is not None:
                row[PASSED_COLUMN_PREFIX + name] = score.passed
                columns.add(PASSED_COLUMN_PREFIX + name)
    return sorted(columns)


def scores_from_export_row(row: dict) -> list[Score]:
    """The scores an exported row carries (`scores` key), checked; for import. A bad entry (a NaN value, a detail
    that is not an object) is imported as that score's failure, with no value and the reason in its detail; a
    `scores` field that is not an object, or a name no score can have, raises ValueError."""
    raw = row.get("scores")
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise ValueError("field 'scores' must be an object of name -> {value, passed, detail}")
    if len(raw) > MAX_SCORES_PER_RUN:
        raise ValueError(f"field 'scores' holds {len(raw)} scores; a run may carry at most {MAX_SCORES_PER_RUN}")
    scores = []
    for name, entry in raw.items():
        failed = Score(name=name, value=None)
        check_score(failed)                  # the name itself
        try:
            if not isinstance(entry, dict):
                raise ValueError(f"score {name!r} must be an object with value, passed and detail")
            detail = entry.get("detail") or {}
            if not isinstance(detail, dict):
                raise ValueError(f"score {name!r}: detail must be an object")
            score = Score(name=name, value=entry.get("value"), passed=entry.get("passed"), detail=detail)
            check_score(score)
        except ValueError as error:
            detail = entry.get("detail") if isinstance(entry, dict) and isinstance(entry.get("detail"), dict) else {}
            score = Score(name=name, value=None, detail={**detail, "error": f"not imported as given: {error}"[:500]})
            check_score(score)
        scores.append(score)
    return scores
