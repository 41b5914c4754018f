"""Blind pairs to vote on: which outputs may be compared, which one to show next, and on which side.

Two outputs form a pair when they answer the same values, seed and model from two different variants. The page
only ever sees an opaque token for a pair; which runs (and so which variants) sit behind it stays on the server
in a `PairTokens` table until the vote comes back.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from ..store import RunLog, RunRecord
from ..store.votes import record_vote, voted_pairs

CHOICES = ("A", "B", "tie", "both bad")


@dataclass(frozen=True)
class Pair:
    """Two runs to compare, as laid out for one voter: `left` is shown as A, `right` as B."""

    comparison_id: int
    left: RunRecord
    right: RunRecord

    @property
    def key(self) -> tuple[int, int]:
        return tuple(sorted((self.left.id, self.right.id)))


def _has_output(run: RunRecord) -> bool:
    return run.status == "ok" and (run.output_text is not None or run.artifact is not None)


def candidate_pairs(runs: list[RunRecord]) -> list[tuple[RunRecord, RunRecord]]:
    """Every pair of finished outputs for the same (values, seed, model) from two different variants."""
    groups: dict[tuple, list[RunRecord]] = {}
    for run in runs:
        if _has_output(run) and run.id is not None:
            key = (json.dumps(run.variables, sort_keys=True, default=str), run.seed, run.model_id,
                   run.model_revision)
            groups.setdefault(key, []).append(run)
    pairs = []
    for group in groups.values():
        for a, b in itertools.combinations(sorted(group, key=lambda r: (r.col, r.id)), 2):
            if a.variant != b.variant:
                pairs.append((a, b))
    return pairs


def next_pair(log: RunLog, comparison_id: int, voter: str, rng: random.Random) -> Pair | None:
    """A pair this voter has not voted on yet, chosen at random, sides shuffled; None when none is left."""
    runs = log.get_comparison(comparison_id).runs
    done = voted_pairs(log, comparison_id, voter)
    open_pairs = [p for p in candidate_pairs(runs) if tuple(sorted((p[0].id, p[1].id))) not in done]
    if not open_pairs:
        return None
    first, second = rng.choice(open_pairs)
    if rng.random() < 0.5:
        first, second = second, first
    return Pair(comparison_id, first, second)


def progress(log: RunLog, comparison_id: int, voter: str) -> tuple[int, int]:
    """(pairs this voter has voted on, pairs there are) in one comparison."""
    total = len(candidate_pairs(log.get_comparison(comparison_id).runs))
    return len(voted_pairs(log, comparison_id, voter)), total


class PairTokens:
    """Server-side table of pairs handed out: opaque token -> (pair, voter). Bounded and expiring."""

    def __init__(self, max_size: int = 10_000, ttl_s: float = 24 * 3600):
        self.max_size, self.ttl_s = max_size, ttl_s
        self._pairs: OrderedDict[str, tuple[Pair, str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, pair: Pair, voter: str) -> str:
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._pairs[token] = (pair, voter, time.monotonic())
            while len(self._pairs) > self.max_size:
                self._pairs.popitem(last=False)
        return token

    def take(self, token: str, voter: str) -> Pair:
        """The pair behind a token, once: a token is spent by the vote it carries."""
        with self._lock:
            entry = self._pairs.pop(str(token or ""), None)
        if entry is None:
            raise LookupError("this pair is no longer open (already voted, or expired): load the next one")
        pair, owner, issued = entry
        if owner != voter:
            raise LookupError("this pair was dealt to another voter: load the next one")
        if time.monotonic() - issued > self.ttl_s:
            raise LookupError("this pair has expired: load the next one")
        return pair


def cast(log: RunLog, pair: Pair, choice: str, voter: str, reason: str | None = None) -> int:
    """Log the voter's choice ("A" = left, "B" = right, "tie", "both bad") on a pair; returns the vote id."""
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {', '.join(CHOICES)}, got {choice!r}")
    winner = {"A": pair.left.id, "B": pair.right.id}.get(choice)
    outcome = "win" if winner is not None else ("tie" if choice == "tie" else "both_bad")
    return record_vote(log, comparison_id=pair.comparison_id, left_run_id=pair.left.id, right_run_id=pair.right.id,
                       outcome=outcome, winner_run_id=winner, voter=voter, reason=reason)
