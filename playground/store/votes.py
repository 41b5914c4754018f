"""Blind A/B votes in the run log: one row per (voter, pair of runs), enforced by a UNIQUE constraint.

A pair is stored with its run ids in ascending order (run_low < run_high), whichever side each was shown on, so
"the same pair" means the same two outputs no matter how they were laid out; left_run_id keeps the layout for
position-bias checks.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ..settings import defaults
from .log import RunLog
from .records import _now, check_id

OUTCOMES = ("win", "tie", "both_bad")
MAX_REASON = defaults().max_reason_chars     # the request layer's limits, held at the log's own door too
MAX_VOTER = defaults().max_voter_chars


class DuplicateVote(ValueError):
    """This voter has already voted on this pair."""


@dataclass(frozen=True)
class Vote:
    id: int
    comparison_id: int
    run_low: int
    run_high: int
    left_run_id: int
    outcome: str
    winner_run_id: int | None
    voter: str
    reason: str | None
    created_at: str

    @property
    def loser_run_id(self) -> int | None:
        if self.winner_run_id is None:
            return None
        return self.run_high if self.winner_run_id == self.run_low else self.run_low


def record_vote(log: RunLog, *, comparison_id: int, left_run_id: int, right_run_id: int, outcome: str,
                voter: str, winner_run_id: int | None = None, reason: str | None = None) -> int:
    """Log one vote; raises DuplicateVote when this voter already voted on this pair, ValueError on bad input."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    if left_run_id == right_run_id:
        raise ValueError("a vote compares two different runs")
    if (outcome == "win") != (winner_run_id is not None):
        raise ValueError("a 'win' names its winner_run_id; a tie or 'both_bad' names none")
    if winner_run_id is not None and winner_run_id not in (left_run_id, right_run_id):
        raise ValueError(f"run #{winner_run_id} is not one of the two runs voted on")
    voter = (voter or "").strip()
    if not voter or len(voter) > MAX_VOTER:
        raise ValueError(f"a vote needs a voter name or id of 1 to {MAX_VOTER} characters")
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > MAX_REASON:
        raise ValueError(f"the reason is limited to {MAX_REASON:,} characters; shorten it")
    comparison_id = check_id(comparison_id, "comparison")
    low, high = sorted((check_id(left_run_id), check_id(right_run_id)))
    try:
        with log._write() as tx:
            found = tx.execute("SELECT count(*) FROM runs WHERE id IN (?, ?) AND comparison_id = ?",
                               (low, high, comparison_id)).fetchone()[0]
            if found != 2:
                raise ValueError(f"runs #{low} and #{high} are not both part of comparison #{comparison_id}")
            cursor = tx.execute(
                "INSERT INTO votes (comparison_id, run_low, run_high, left_run_id, outcome, winner_run_id, voter, "
                "reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (comparison_id, low, high, int(left_run_id), outcome, winner_run_id, voter, reason, _now()))
    except sqlite3.IntegrityError as error:
        if "UNIQUE" in str(error):
            raise DuplicateVote("you have already voted on this pair") from None
        raise
    return cursor.lastrowid


def list_votes(log: RunLog, comparison_id: int | None = None) -> list[Vote]:
    """Votes in the order they were cast (all of them, or one comparison's)."""
    sql = "SELECT * FROM votes" + (" WHERE comparison_id = ?" if comparison_id is not None else "") + " ORDER BY id"
    rows = log._db().execute(sql, () if comparison_id is None else (check_id(comparison_id, "comparison"),)).fetchall()
    return [Vote(**{k: row[k] for k in row.keys()}) for row in rows]


def voted_pairs(log: RunLog, comparison_id: int, voter: str) -> set[tuple[int, int]]:
    """The (run_low, run_high) pairs this voter has voted on in one comparison."""
    rows = log._db().execute("SELECT run_low, run_high FROM votes WHERE comparison_id = ? AND voter = ?",
                             (check_id(comparison_id, "comparison"), voter)).fetchall()
    return {(row[0], row[1]) for row in rows}
