"""Which variant wins, and how sure that is: statistics over the cells of one comparison.

Per variant and score: the mean with a 95% bootstrap interval. Per pair of variants: the paired difference over
cells that share values, seed and model, with its bootstrap interval and a sign test. A win is called clear only
when both agree: the interval of the paired difference excludes zero and the sign test rejects a coin flip at 5%.
Otherwise the summary says why not, and roughly how many more seeds would likely settle it. Human stars and
thumbs go through the same statistics. Bootstrap resamples come from a fixed seed, so a summary is reproducible.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np

ALPHA = 0.05
Z95 = 1.959963984540054
RESAMPLES = 2000
MANY_SEEDS = 100                  # beyond this, "run more seeds" is no longer useful advice
MAX_METRICS = 32                  # score names summarized per comparison (each costs bootstraps per variant pair)
SEED = 0
HUMAN_METRICS = {"stars": "higher", "thumbs": "higher"}
LARGE = 2000                      # values beyond which the bootstrap draws its own resamples (memory stays small)
DISTINCT_DRAW = 1000              # distinct values up to which a resample is one multinomial draw
BATCH = 50                        # resamples drawn at once otherwise
MAX_POINTS = 400                  # dots per variant a chart shows (an experiment has thousands of cells)


@dataclass
class Point:
    run_id: int | None
    value: float
    label: str


@dataclass
class VariantStats:
    variant: str
    n: int = 0
    mean: float | None = None
    low: float | None = None          # 95% bootstrap interval of the mean (None with fewer than 2 values)
    high: float | None = None
    failed: int = 0                   # cells that failed to generate (excluded)
    missing: int = 0                  # finished cells without this score (unrated, or the scorer failed)
    points: list[Point] = field(default_factory=list)


@dataclass
class PairStats:
    a: str                            # the variant ahead (for a score without a direction: the higher one)
    b: str
    n: int = 0                        # paired cells (same values, seed and model)
    mean_diff: float | None = None    # mean of a - b over the pairs
    low: float | None = None
    high: float | None = None
    wins: int = 0                     # pairs where a is better (higher, or lower for lower-is-better scores)
    losses: int = 0
    ties: int = 0
    p_value: float | None = None      # two-sided sign test over the untied pairs
    clear: bool = False
    intervals_overlap: bool | None = None
    more_seeds: int | None = None     # rough estimate of the extra seeds that would likely settle it
    sentence: str = ""


@dataclass
class MetricSummary:
    name: str
    better: str | None                # "higher", "lower", or None (a measurement with no better side)
    kind: str = "score"               # "score" or "human"
    variants: list[VariantStats] = field(default_factory=list)
    pairs: list[PairStats] = field(default_factory=list)
    winner: str | None = None
    verdict: str = ""
    note: str = ""                    # e.g. that the scores came from a meaningless tiny model


@dataclass
class Summary:
    variants: list[str]
    metrics: list[MetricSummary]
    cells: int = 0
    failed: int = 0
    comparison_id: int | None = None
    title: str = ""
    modality: str = ""
    resamples: int = RESAMPLES
    seed: int = SEED
    left_out: list[str] = field(default_factory=list)     # score names past MAX_METRICS, not summarized

    def winners(self) -> dict[str, str]:
        """score name -> the variant that clearly wins on it (only clear wins)."""
        return {m.name: m.winner for m in self.metrics if m.winner}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def bootstrap_interval(values, *, resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float | None, float | None]:
    """95% percentile-bootstrap interval of the mean; (None, None) below two values; exact for constant values."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None, None
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    if x.size > LARGE:
        return _large_bootstrap(x, resamples, seed)
    from scipy import stats as _stats      # imported on first use: scipy.stats takes a second to import

    result = _stats.bootstrap((x,), np.mean, n_resamples=resamples, method="percentile", confidence_level=0.95,
                              vectorized=True, rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _large_bootstrap(x: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """The same percentile bootstrap for thousands of values (an experiment's rows) without a resamples x n array:
    drawing n values with replacement is a multinomial draw over the distinct values (exact, and small when scores
    take few values: pass/fail, counts); otherwise the resamples are drawn in batches."""
    rng = np.random.default_rng(seed)
    distinct, counts = np.unique(x, return_counts=True)
    if distinct.size <= DISTINCT_DRAW:
        draws = rng.multinomial(x.size, counts / x.size, size=resamples)
        means = draws @ distinct / x.size
    else:
        means = np.concatenate([x[rng.integers(0, x.size, size=(min(BATCH, resamples - start), x.size))]
                                .mean(axis=1) for start in range(0, resamples, BATCH)])
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def sign_test(wins: int, losses: int) -> float | None:
    """Two-sided binomial sign test over untied pairs; None when every pair is a tie."""
    from scipy import stats as _stats

    if wins + losses == 0:
        return None
    return float(_stats.binomtest(wins, wins + losses, 0.5).pvalue)


def pairs_for_sign_test(wins: int, losses: int) -> int | None:
    """The fewest untied pairs at which the observed share of wins would pass the sign test at 5%: exact
    binomial search for small counts, the normal approximation n = (1.96 / (2 share - 1))^2 beyond."""
    from scipy import stats as _stats

    if wins + losses == 0 or wins == losses:
        return None
    share = max(wins, losses) / (wins + losses)
    approximate = math.ceil((Z95 / (2 * share - 1)) ** 2)
    if approximate > 200:
        return approximate
    for n in range(1, 400):
        if _stats.binomtest(round(share * n), n, 0.5).pvalue < ALPHA:
            return n
    return approximate


def seeds_needed(diffs, pairs_per_seed: float, wins: int, losses: int) -> int | None:
    """Extra seeds that would likely make the difference clear: n ≈ (1.96·sd / |mean diff|)² pairs for the
    interval, and enough pairs for the sign test at the observed share of wins. None when no difference is seen."""
    d = np.asarray(diffs, dtype=float)
    mean = float(np.mean(d)) if d.size else 0.0
    if d.size < 2 or mean == 0.0:
        return None
    sd = float(np.std(d, ddof=1))
    n_interval = math.ceil((Z95 * sd / abs(mean)) ** 2) if sd > 0 else 2
    n_sign = pairs_for_sign_test(wins, losses)
    if n_sign is None:
        return None
    untied_share = (wins + losses) / d.size
    needed = max(n_interval, math.ceil(n_sign / untied_share))
    return max(math.ceil((needed - d.size) / max(pairs_per_seed, 1e-9)), 1)


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    digits = 3 if abs(x) < 10 else 2 if abs(x) < 1000 else 0
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _cell_key(record) -> str:
    """What pairs cells across variants: the same values, seed and model; in an experiment, the same dataset row
    (its grid row), since two rows of a dataset may share their values."""
    if getattr(record, "cell_key", None):
        return json.dumps([{"row": record.row}, record.seed, record.model_id], sort_keys=True, default=str)
    return json.dumps([record.variables or {}, record.seed, record.model_id], sort_keys=True, default=str)


def _points(by_cell: dict) -> list[Point]:
    """The dots of one variant's chart: every cell, or an even spread of MAX_POINTS of them in a big experiment."""
    entries = [entry for group in by_cell.values() for entry in group]
    step = max(1, -(-len(entries) // MAX_POINTS))
    return [Point(run.id, value, _label(run)) for value, run in entries[::step]]


def _label(record) -> str:
    parts = [f"{k}={v}" for k, v in (record.variables or {}).items()] + [f"seed {record.seed}", record.model_id]
    return " · ".join(parts)


def summarize(runs, scores: dict[int, dict], *, resamples: int = RESAMPLES, seed: int = SEED,
              comparison=None) -> Summary:
    """runs (RunRecords of one comparison) + {run_id: {name: Score}} -> the Summary of every score and rating."""
    variants: list[str] = []
    for run in runs:
        if (run.variant or "prompt") not in variants:
            variants.append(run.variant or "prompt")
    ok_runs = [r for r in runs if r.status == "ok"]
    failed = {v: sum(1 for r in runs if r.status != "ok" and (r.variant or "prompt") == v) for v in variants}

    names: dict[str, tuple[str | None, str]] = {}
    notes: dict[str, str] = {}
    kept, left_out = _kept_names(ok_runs, scores)
    for run in ok_runs:
        for name, score in sorted((scores.get(run.id) or {}).items()):
            if name not in kept:
                continue
            if name not in names:
                names[name] = (score.detail.get("better", "higher"), "score")
            if score.detail.get("meaningless"):
                notes[name] = score.detail.get("note") or "scored by a meaningless tiny model"
    for name, better in HUMAN_METRICS.items():
        if name not in names and any(getattr(r, name) is not None for r in ok_runs):
            names[name] = (better, "human")

    keys = {id(run): _cell_key(run) for run in ok_runs}       # once per run, not once per run and score
    metrics = []
    for name, (better, kind) in names.items():
        values: dict[str, dict[str, list]] = {v: {} for v in variants}
        missing = {v: 0 for v in variants}
        for run in ok_runs:
            variant = run.variant or "prompt"
            value = getattr(run, name) if kind == "human" else getattr(
                (scores.get(run.id) or {}).get(name), "value", None)
            if value is None:
                missing[variant] += 1
                continue
            values[variant].setdefault(keys[id(run)], []).append((float(value), run))
        metrics.append(_metric(name, better, kind, variants, values, failed, missing, resamples, seed))
        metrics[-1].note = notes.get(name, "")
    summary = Summary(variants=variants, metrics=metrics, cells=len(runs), failed=sum(failed.values()),
                      resamples=resamples, seed=seed, left_out=left_out)
    if comparison is not None:
        summary.comparison_id, summary.title, summary.modality = comparison.id, comparison.title, comparison.modality
    return summary


def _kept_names(runs, scores: dict[int, dict]) -> tuple[set[str], list[str]]:
    """The MAX_METRICS score names most runs carry (then by name), and the names left out. A comparison made here
    has at most one name per check; an imported one could carry hundreds, each a round of bootstraps."""
    counts: dict[str, int] = {}
    for run in runs:
        for name in scores.get(run.id) or {}:
            counts[name] = counts.get(name, 0) + 1
    ranked = sorted(counts, key=lambda name: (-counts[name], name))
    return set(ranked[:MAX_METRICS]), sorted(ranked[MAX_METRICS:])


def _metric(name, better, kind, variants, values, failed, missing, resamples, seed) -> MetricSummary:
    metric = MetricSummary(name=name, better=better, kind=kind)
    cell_means: dict[str, dict[str, float]] = {}
    for variant in variants:
        by_cell = values[variant]
        # A cell run twice in one comparison counts once, at its mean: pairs and intervals stay honest.
        cell_means[variant] = {key: sum(v for v, _ in entries) / len(entries) for key, entries in by_cell.items()}
        xs = list(cell_means[variant].values())
        low, high = bootstrap_interval(xs, resamples=resamples, seed=seed)
        metric.variants.append(VariantStats(
            variant=variant, n=len(xs), mean=float(np.mean(xs)) if xs else None, low=low, high=high,
            failed=failed[variant], missing=missing[variant],
            points=_points(by_cell)))
    stats_of = {v.variant: v for v in metric.variants}
    for i, a in enumerate(variants):
        for b in variants[i + 1:]:
            metric.pairs.append(_pair(name, better, a, b, cell_means, stats_of, resamples, seed))
    _verdict(metric, variants)
    return metric


def _pair(name, better, a, b, cell_means, stats_of, resamples, seed) -> PairStats:
    keys = [k for k in cell_means[a] if k in cell_means[b]]
    diffs = np.array([cell_means[a][k] - cell_means[b][k] for k in keys], dtype=float)
    sign = -1.0 if better == "lower" else 1.0
    if diffs.size and sign * float(np.mean(diffs)) < 0:          # put the one ahead first
        a, b, diffs = b, a, -diffs
    pair = PairStats(a=a, b=b, n=int(diffs.size))
    sa, sb = stats_of[a], stats_of[b]
    if sa.low is not None and sb.low is not None:
        pair.intervals_overlap = not (sa.low > sb.high or sb.low > sa.high)
    if not diffs.size:
        pair.sentence = f"{a} vs {b} on {name}: no cells to pair (same values, seed and model in both)."
        return pair
    pair.mean_diff = float(np.mean(diffs))
    pair.low, pair.high = bootstrap_interval(diffs, resamples=resamples, seed=seed)
    improvement = sign * diffs
    pair.wins, pair.losses = int(np.sum(improvement > 0)), int(np.sum(improvement < 0))
    pair.ties = int(diffs.size - pair.wins - pair.losses)
    pair.p_value = sign_test(pair.wins, pair.losses)
    excludes_zero = pair.low is not None and (pair.low > 0 or pair.high < 0)
    pair.clear = bool(better is not None and excludes_zero and pair.p_value is not None and pair.p_value < ALPHA)
    seeds = len({json.loads(k)[1] for k in keys})
    if not pair.clear:
        pair.more_seeds = seeds_needed(diffs, diffs.size / max(seeds, 1), pair.wins, pair.losses)
    pair.sentence = _sentence(name, better, pair)
    return pair


def _sentence(name: str, better: str | None, p: PairStats) -> str:
    interval = f"95% CI {_fmt(p.low, True)} to {_fmt(p.high, True)}" if p.low is not None else "no interval"
    tally = f"{'better' if better else 'higher'} in {p.wins} of {p.n} pairs"
    if p.ties:
        tally += f", {p.ties} tied"
    test = f"sign test p = {p.p_value:.3g}" if p.p_value is not None else "no untied pairs"
    if p.n == 1:
        return (f"{p.a} vs {p.b} on {name}: {_fmt(p.mean_diff, True)} from a single pair; one pair cannot tell "
                f"an effect from luck: run more seeds.")
    if p.wins == 0 and p.losses == 0:
        return f"{p.a} and {p.b} tie on {name}: equal in all {p.n} pairs."
    if p.clear:
        return f"{p.a} beats {p.b} on {name} by {_fmt(p.mean_diff, True)} ({interval}), {tally} ({test})."
    if better is None:
        return (f"{p.a} is higher than {p.b} on {name} by {_fmt(p.mean_diff, True)} ({interval}), {tally} "
                f"({test}); {name} is a measurement with no better side.")
    reasons = []
    if p.low is not None and p.low <= 0 <= p.high:
        reasons.append("the interval includes 0")
    elif p.p_value is not None and p.p_value >= ALPHA:
        reasons.append("too few pairs for the sign test")
    if p.intervals_overlap:
        reasons.append("the variants' intervals overlap")
    if abs(p.mean_diff) < 1e-12:
        head = f"{p.a} and {p.b} are even on {name} ({_fmt(p.mean_diff, True)}, {interval})"
    else:
        head = f"{p.a} leads {p.b} on {name} by {_fmt(p.mean_diff, True)} ({interval})"
    text = f"{head}, {tally} ({test}); not clear: {', '.join(reasons) or 'too little evidence'}"
    if p.more_seeds and p.more_seeds > MANY_SEEDS:
        text += f"; over {MANY_SEEDS} more seeds would be needed, so the difference may well be nothing"
    elif p.more_seeds:
        text += f"; about {p.more_seeds} more seed{'s' if p.more_seeds != 1 else ''} would likely settle it"
    return text + "."


def _verdict(metric: MetricSummary, variants: list[str]) -> None:
    if len(variants) < 2:
        metric.verdict = f"{metric.name}: one variant, nothing to compare."
        return
    if metric.better is None:
        metric.verdict = f"{metric.name}: a measurement with no better side; no winner is called."
        return
    for variant in variants:
        mine = [p for p in metric.pairs if variant in (p.a, p.b)]
        if mine and all(p.clear and p.a == variant for p in mine):
            metric.winner = variant
            metric.verdict = f"{variant} wins on {metric.name}."
            return
    means = [v for v in metric.variants if v.mean is not None]
    leader = max(means, key=lambda v: v.mean if metric.better == "higher" else -v.mean, default=None)
    if leader is not None and sum(1 for v in means if v.mean == leader.mean) > 1:
        leader = None                     # several share the best mean: naming one would mislead
    metric.verdict = (f"No clear winner on {metric.name}" +
                      (f" (highest mean: {leader.variant})" if leader and metric.better == "higher" else
                       f" (lowest mean: {leader.variant})" if leader else "") + ".")


def comparison_summary(log, comparison_id: int, *, resamples: int = RESAMPLES, seed: int = SEED) -> Summary:
    """The Summary of a logged comparison: its runs, their stored scores, and their ratings."""
    from ..store.scores import scores_for_runs

    comparison = log.get_comparison_header(comparison_id)
    runs = summary_runs(log, comparison.id)
    scores = scores_for_runs(log, [r.id for r in runs])
    return summarize(runs, scores, resamples=resamples, seed=seed, comparison=comparison)


def summary_runs(log, comparison_id: int) -> list:
    """The runs of a comparison with only what a summary reads (not their prompts, outputs or params): an
    experiment's tens of thousands of runs load in a fraction of the time."""
    from ..store import RunRecord
    from ..store.queries import LIVE

    rows = log._db().execute(
        "SELECT r.id, r.status, r.modality, r.model_id, r.seed, r.variant, r.variables, r.row, r.col, r.cell_key, "
        "g.stars AS stars, g.thumbs AS thumbs FROM runs r LEFT JOIN ratings g ON g.id = "
        f"(SELECT max(id) FROM ratings WHERE run_id = r.id) WHERE r.comparison_id = ? AND {LIVE} "
        "ORDER BY r.row, r.col, r.id", (comparison_id,))
    return [RunRecord(modality=row["modality"], model_id=row["model_id"], prompt="", seed=row["seed"], params={},
                      status=row["status"], variant=row["variant"], variables=json.loads(row["variables"] or "{}"),
                      row=row["row"], col=row["col"], cell_key=row["cell_key"], id=row["id"], stars=row["stars"],
                      thumbs=row["thumbs"]) for row in rows]
