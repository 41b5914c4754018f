"""Statistics against values computed by hand: means, paired differences, sign tests, ties, one seed, failed cells."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binomtest

from playground.scoring.stats import (bootstrap_interval, pairs_for_sign_test, seeds_needed, sign_test,
                                      summarize)
from playground.store import RunRecord
from playground.store.scores import Score


def table(rows, metric="s", better="higher"):
    """rows: (variant, seed, value or None for a missing score, status) -> runs and their scores."""
    runs, scores = [], {}
    for run_id, (variant, seed, value, *rest) in enumerate(rows, start=1):
        status = rest[0] if rest else "ok"
        runs.append(RunRecord(modality="image", model_id="m", prompt=f"{variant} prompt", seed=seed, params={},
                              variant=variant, status=status, id=run_id, variables={"subject": "fox"}))
        if value is not None and status == "ok":
            scores[run_id] = {metric: Score(metric, value, detail={"check": metric, "better": better})}
    return runs, scores


def metric_of(summary, name="s"):
    return next(m for m in summary.metrics if m.name == name)


def test_small_table_with_a_tie_and_a_failed_cell():
    runs, scores = table([("plain", 1, 0.10), ("role", 1, 0.15),
                          ("plain", 2, 0.20), ("role", 2, 0.20),          # a tie
                          ("plain", 3, 0.30), ("role", 3, 0.40),
                          ("plain", 4, 0.50), ("role", 4, None, "error")])  # role's seed-4 cell failed
    summary = summarize(runs, scores)
    assert summary.variants == ["plain", "role"] and summary.cells == 8 and summary.failed == 1
    metric = metric_of(summary)
    plain, role = metric.variants
    assert (plain.n, plain.failed, plain.mean) == (4, 0, pytest.approx(0.275))
    assert (role.n, role.failed, role.mean) == (3, 1, pytest.approx(0.25))
    assert len(plain.points) == 4 and {p.run_id for p in role.points} == {2, 4, 6}

    pair = metric.pairs[0]
    # Paired over seeds 1-3 only (seed 4 has no partner): role - plain = +0.05, 0, +0.10.
    assert (pair.a, pair.b, pair.n) == ("role", "plain", 3)
    assert pair.mean_diff == pytest.approx(0.05)
    assert (pair.wins, pair.losses, pair.ties) == (2, 0, 1)
    assert pair.p_value == pytest.approx(0.5)                 # two wins, ties left out: 2 x 0.5^2
    assert 0.0 <= pair.low < 0.05 < pair.high <= 0.10 + 1e-12
    assert not pair.clear and metric.winner is None
    # sd of (0.05, 0, 0.10) is 0.05 -> (1.96 * 0.05 / 0.05)^2 = 3.84 -> 4 pairs for the interval; the sign test
    # needs 6 untied pairs at a 100% win share, 9 pairs at 2 of 3 untied; one pair per seed: 9 - 3 = 6 more seeds.
    assert pair.more_seeds == 6
    assert "1 tied" in pair.sentence and "about 6 more seeds" in pair.sentence
    assert "No clear winner on s" in metric.verdict


def test_clear_win_over_twelve_pairs():
    diffs = [0.03, 0.02, 0.04, 0.03, 0.05, 0.02, 0.03, 0.04, 0.01, 0.03, 0.04, -0.01]
    rows = []
    for i, d in enumerate(diffs):
        rows += [("plain", i, 0.20), ("role", i, 0.20 + d)]
    summary = summarize(*table(rows, metric="clip"))
    metric = metric_of(summary, "clip")
    pair = metric.pairs[0]
    assert (pair.a, pair.b, pair.n, pair.wins, pair.losses) == ("role", "plain", 12, 11, 1)
    assert pair.mean_diff == pytest.approx(sum(diffs) / 12)
    assert pair.p_value == pytest.approx(26 / 4096)           # 2 x (C(12,0) + C(12,1)) / 2^12
    assert pair.low > 0 and pair.clear and pair.more_seeds is None
    assert metric.winner == "role" and summary.winners() == {"clip": "role"}
    assert pair.sentence.startswith("role beats plain on clip by +0.028 (95% CI +")     # 0.33 / 12 = 0.0275
    assert "better in 11 of 12 pairs" in pair.sentence


def test_one_seed_gives_no_interval():
    summary = summarize(*table([("plain", 1, 0.2), ("role", 1, 0.3)]))
    metric = metric_of(summary)
    assert [v.low for v in metric.variants] == [None, None] and [v.mean for v in metric.variants] == [0.2, 0.3]
    pair = metric.pairs[0]
    assert pair.n == 1 and pair.low is None and not pair.clear and pair.more_seeds is None
    assert "single pair" in pair.sentence


def test_all_ties():
    summary = summarize(*table([("a", s, 1.0) for s in range(4)] + [("b", s, 1.0) for s in range(4)]))
    pair = metric_of(summary).pairs[0]
    assert (pair.ties, pair.p_value, pair.low, pair.high, pair.clear) == (4, None, 0.0, 0.0, False)
    assert "tie" in pair.sentence and pair.more_seeds is None


def test_the_panel_calls_a_tie_not_clear():
    from playground.scoring.panel import summary_html

    summary = summarize(*table([("a", s, 1.0) for s in range(4)] + [("b", s, 1.0) for s in range(4)]))
    html = summary_html(summary)             # pairs reach the template as dicts, which have a .clear method
    assert "not clear" in html and 'class="pp-clear"' not in html


def test_lower_is_better_scores_and_three_variants():
    rows = []
    for seed in range(8):
        rows += [("slow", seed, 2.0 + 0.01 * seed), ("fast", seed, 1.0 + 0.01 * seed), ("mid", seed, 1.5)]
    metric = metric_of(summarize(*table(rows, metric="latency", better="lower")), "latency")
    assert metric.winner == "fast"
    fast_slow = next(p for p in metric.pairs if {p.a, p.b} == {"fast", "slow"})
    assert (fast_slow.a, fast_slow.mean_diff, fast_slow.wins) == ("fast", pytest.approx(-1.0), 8)
    assert fast_slow.sentence.startswith("fast beats slow on latency by -1.000")
    assert fast_slow.p_value == pytest.approx(2 / 256)


def test_a_measurement_without_a_better_side_never_wins():
    rows = [(v, s, x) for s in range(8) for v, x in (("short", 10.0), ("long", 50.0))]
    metric = metric_of(summarize(*table(rows, metric="length", better=None)), "length")
    assert metric.winner is None and "no better side" in metric.verdict
    assert metric.pairs[0].sentence.startswith("long is higher than short on length by +40.00 (95% CI +40.00 to +40.00)")


def test_human_stars_and_thumbs_go_through_the_same_statistics():
    runs, scores = table([("plain", s, None) for s in range(3)] + [("role", s, None) for s in range(3)])
    for run, stars, thumbs in zip(runs, [2, 3, None, 4, 5, 4], [-1, 0, None, 1, 1, None]):
        run.stars, run.thumbs = stars, thumbs
    summary = summarize(runs, scores)
    stars = metric_of(summary, "stars")
    assert stars.kind == "human" and [v.mean for v in stars.variants] == [2.5, pytest.approx(13 / 3)]
    assert stars.variants[0].missing == 1
    pair = stars.pairs[0]                  # paired where both are rated: seeds 0 and 1: +2, +2
    assert (pair.a, pair.n, pair.mean_diff, pair.wins) == ("role", 2, 2.0, 2)
    thumbs = metric_of(summary, "thumbs")
    assert [v.n for v in thumbs.variants] == [2, 2]


def test_bootstrap_is_reproducible_and_matches_the_data():
    values = [0.1, 0.4, 0.2, 0.9, 0.5]
    assert bootstrap_interval(values) == bootstrap_interval(values)
    low, high = bootstrap_interval(values)
    assert min(values) <= low < sum(values) / 5 < high <= max(values)
    assert bootstrap_interval([3.0]) == (None, None) and bootstrap_interval([2.0, 2.0]) == (2.0, 2.0)


def test_sign_test_and_sample_size_helpers():
    assert sign_test(11, 1) == pytest.approx(binomtest(11, 12).pvalue)
    assert sign_test(0, 0) is None
    assert pairs_for_sign_test(3, 0) == 6                    # 6 of 6: p = 2/64 < 0.05; 5 of 5: p = 0.0625
    assert pairs_for_sign_test(2, 2) is None
    # mean 1, sd 2: (1.96 * 2 / 1)^2 = 15.4 -> 16 pairs; sign test at 3 of 4 wins: 
    diffs = [1.0, 3.0, -1.0, 1.0]
    n_sign = pairs_for_sign_test(3, 1)
    expected = max(math.ceil((1.959963984540054 * 2.0 / 1.0) ** 2), n_sign) - 4
    assert seeds_needed(diffs, 1.0, 3, 1) == expected
    assert seeds_needed(diffs, 2.0, 3, 1) == math.ceil(expected / 2)


def test_even_pairs_and_hopeless_differences_are_said_plainly():
    even = metric_of(summarize(*table([("a", 1, 1.0), ("b", 1, 2.0), ("a", 2, 2.0), ("b", 2, 1.0)])))
    assert "are even on s" in even.pairs[0].sentence and even.pairs[0].more_seeds is None
    rows = []
    for seed, d in enumerate([0.1, -0.1, 0.1, -0.1, 0.1, -0.1, 0.001]):
        rows += [("a", seed, 0.5), ("b", seed, 0.5 + d)]
    pair = metric_of(summarize(*table(rows))).pairs[0]
    assert pair.more_seeds > 100 and "over 100 more seeds would be needed" in pair.sentence


def test_sign_test_sample_size_for_a_slim_majority_uses_the_normal_approximation():
    # 51 of 100: (1.96 / 0.02)^2 = 9604 pairs, found without thousands of exact tests
    assert pairs_for_sign_test(51, 49) == math.ceil((1.959963984540054 / 0.02) ** 2)
    assert pairs_for_sign_test(8, 2) == 12             # exact: 10 of 12 wins, p = 0.039 (9 of 11: 0.065)


def test_no_leader_is_named_when_the_best_mean_is_shared():
    metric = metric_of(summarize(*table([(v, s, 1.0) for s in range(3) for v in ("a", "b")], better="lower")))
    assert metric.verdict == "No clear winner on s."
