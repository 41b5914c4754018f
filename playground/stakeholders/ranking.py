"""Rank variants from pairwise votes: a Bradley-Terry fit with bootstrap intervals, on an Elo-like scale.

P(i beats j) = 1 / (1 + exp(theta_j - theta_i)). A tie, and a "both bad", counts as half a win for each side (as
Chatbot Arena does). The fit maximises the log-likelihood with scipy; `prior` adds a Gaussian prior N(0, 1/prior)
on each theta so that a variant that never lost (common with a handful of votes) gets a finite rating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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


def _encode(outcomes: list[Outcome], items: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = {name: k for k, name in enumerate(items)}
    return (np.array([index[o.first] for o in outcomes], dtype=int),
            np.array([index[o.second] for o in outcomes], dtype=int),
            np.array([o.score for o in outcomes], dtype=float))


def _fit(first: np.ndarray, second: np.ndarray, score: np.ndarray, weight: np.ndarray, n: int, prior: float,
         start: np.ndarray | None = None) -> np.ndarray:
    """Log-strengths maximising the weighted log-likelihood (each game counted `weight` times) minus the prior."""
    from scipy.optimize import minimize     # here, not at import: scipy.optimize costs the app ~0.4 s of start-up

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        diff = theta[first] - theta[second]
        # -[s log sigma(d) + (1 - s) log sigma(-d)], written with logaddexp to stay finite for large |d|
        loss = np.sum(weight * (score * np.logaddexp(0.0, -diff) + (1.0 - score) * np.logaddexp(0.0, diff)))
        residual = weight * (score - 1.0 / (1.0 + np.exp(-diff)))   # d loss / d diff = -(s - sigma(d))
        grad = np.bincount(second, residual, n) - np.bincount(first, residual, n)
        return float(loss) + 0.5 * prior * float(theta @ theta), grad + prior * theta

    # Conjugate gradients: for a handful of variants it needs no matrix work, which keeps the 300 bootstrap fits
    # fast even on a busy CPU (L-BFGS-B measured ~10x slower per fit here).
    result = minimize(objective, np.zeros(n) if start is None else start, jac=True, method="CG",
                      options={"maxiter": 2000, "gtol": 1e-9})
    theta = np.clip(result.x, -30.0, 30.0)
    return theta - theta.mean()


def fit(outcomes: list[Outcome], items: list[str], prior: float = 0.0) -> np.ndarray:
    """Maximum-likelihood (or MAP, with `prior`) log-strengths theta, one per item, centred on zero."""
    if not items:
        return np.zeros(0)
    first, second, score = _encode(outcomes, items)
    return _fit(first, second, score, np.ones(len(outcomes)), len(items), prior)


def rank(outcomes: list[Outcome], items: list[str] | None = None, *, prior: float = 1.0, n_boot: int = 300,
         seed: int = 0) -> list[RankRow]:
    """Ratings with 95% bootstrap intervals (votes resampled with replacement), best first."""
    items = list(items) if items is not None else sorted({o.first for o in outcomes} | {o.second for o in outcomes})
    if not items:
        return []
    n, m = len(items), len(outcomes)
    first, second, score = _encode(outcomes, items)
    theta = _fit(first, second, score, np.ones(m), n, prior)
    rng = np.random.default_rng(seed)
    samples = np.empty((n_boot, n)) if m and n_boot else np.tile(theta, (1, 1))
    for b in range(n_boot if m else 0):
        # a resample with replacement = each vote counted as often as it was drawn; warm start: fewer steps
        weight = np.bincount(rng.integers(0, m, m), minlength=m).astype(float)
        samples[b] = _fit(first, second, score, weight, n, prior, start=theta)
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
    return sorted(rows, key=lambda r: -r.rating)          # stable: equal ratings keep the order given


def _elo(theta: float) -> float:
    return round(ELO_BASE + ELO_SCALE * float(theta), 1)


def win_probability(rating_a: float, rating_b: float) -> float:
    """P(a beats b) implied by two ratings on this scale."""
    return 1.0 / (1.0 + 10 ** ((rating_b - rating_a) / 400))
