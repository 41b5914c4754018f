"""Rank variants from pairwise votes: a Bradley-Terry fit with bootstrap intervals, on an Elo-like scale.

P(i beats j) = 1 / (1 + exp(theta_j - theta_i)). A tie, and a "both bad", counts as half a win for each side (as
Chatbot Arena does). The fit maximises the log-likelihood with scipy; `prior` adds a Gaussian prior N(0, 1/prior)
on each theta so that a variant that never lost (common with a handful of votes) gets a finite rating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from ..store import RunRecord
from ..store.votes import Vote

ELO_SCALE = 400 / math.log(10)
ELO_BASE = 1000.0


@dataclass(frozen=True)
class Outcome:
    """One game between two variants: score 1 = first won, 0 = second won, 0.5 = tie / both bad."""

    first: str
    second: str
    score: float


@dataclass(frozen=True)
class RankRow:
    variant: str
    rating: float        # Elo-like: 1000 + 400 * log10(strength), strengths centred on a geometric mean of 1
    low: float           # bootstrap 95% interval of the rating
    high: float
    wins: int
    ties: int            # ties and "both bad"
    losses: int

    @property
    def games(self) -> int:
        return self.wins + self.ties + self.losses


def outcomes_from_votes(votes: list[Vote], runs: list[RunRecord]) -> list[Outcome]:
    """Votes on runs -> games between the runs' variants (votes whose runs are gone are skipped)."""
    variant = {r.id: r.variant or f"column {r.col}" for r in runs}
    games = []
    for vote in votes:
        a, b = variant.get(vote.run_low), variant.get(vote.run_high)
        if a is None or b is None or a == b:
            continue
        score = 0.5 if vote.winner_run_id is None else float(vote.winner_run_id == vote.run_low)
        games.append(Outcome(a, b, score))
    return games


def fit(outcomes: list[Outcome], items: list[str], prior: float = 0.0) -> np.ndarray:
    """Maximum-likelihood (or MAP, with `prior`) log-strengths theta, one per item, centred on zero."""
    index = {name: k for k, name in enumerate(items)}
    n = len(items)
    if n == 0:
        return np.zeros(0)
    first = np.array([index[o.first] for o in outcomes], dtype=int)
    second = np.array([index[o.second] for o in outcomes], dtype=int)
    score = np.array([o.score for o in outcomes], dtype=float)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        diff = theta[first] - theta[second]
        # -[s log sigma(d) + (1 - s) log sigma(-d)], written with logaddexp to stay finite for large |d|
        loss = np.sum(score * np.logaddexp(0.0, -diff) + (1.0 - score) * np.logaddexp(0.0, diff))
        residual = score - 1.0 / (1.0 + np.exp(-diff))          # d loss / d diff = -(s - sigma(d))
        grad = np.zeros(n)
        np.add.at(grad, first, -residual)
        np.add.at(grad, second, residual)
        loss += 0.5 * prior * float(theta @ theta)
        grad += prior * theta
        return float(loss), grad

    result = minimize(objective, np.zeros(n), jac=True, method="L-BFGS-B",
                      options={"maxiter": 1000, "gtol": 1e-10, "ftol": 1e-14})
    theta = np.clip(result.x, -30.0, 30.0)
    return theta - theta.mean()


def rank(outcomes: list[Outcome], items: list[str] | None = None, *, prior: float = 1.0, n_boot: int = 300,
         seed: int = 0) -> list[RankRow]:
    """Ratings with 95% bootstrap intervals (votes resampled with replacement), best first."""
    items = list(items) if items is not None else sorted({o.first for o in outcomes} | {o.second for o in outcomes})
    if not items:
        return []
    theta = fit(outcomes, items, prior)
    rng = np.random.default_rng(seed)
    samples = np.empty((n_boot, len(items))) if outcomes else np.zeros((1, len(items)))
    for b in range(n_boot if outcomes else 0):
        picks = rng.integers(0, len(outcomes), len(outcomes))
        samples[b] = fit([outcomes[k] for k in picks], items, prior)
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    tally = {name: [0, 0, 0] for name in items}
    for o in outcomes:
        if o.score == 0.5:
            tally[o.first][1] += 1
            tally[o.second][1] += 1
        else:
            winner, loser = (o.first, o.second) if o.score == 1 else (o.second, o.first)
            tally[winner][0] += 1
            tally[loser][2] += 1
    rows = [RankRow(name, _elo(theta[k]), _elo(low[k]), _elo(high[k]), *tally[name]) for k, name in enumerate(items)]
    return sorted(rows, key=lambda r: (-r.rating, r.variant))


def _elo(theta: float) -> float:
    return round(ELO_BASE + ELO_SCALE * float(theta), 1)


def win_probability(rating_a: float, rating_b: float) -> float:
    """P(a beats b) implied by two ratings on this scale."""
    return 1.0 / (1.0 + 10 ** ((rating_b - rating_a) / 400))
