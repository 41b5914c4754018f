"""Blind A/B votes on real comparisons (tiny models, a real run log): pairing, fairness, one vote per voter and
pair, Bradley-Terry against hand-checked numbers, and the DPO / CSV exports."""

from __future__ import annotations

import csv
import json
import math
import random
import sqlite3

import pytest

from playground.runner import Runner
from playground.spec import build_spec
from playground.stakeholders.preferences import comparison_ranking, export_preferences, preference_pairs
from playground.stakeholders.ranking import Outcome, fit, rank, win_probability
from playground.stakeholders.votes import PairTokens, candidate_pairs, cast, next_pair, progress
from playground.store import RunLog
from playground.store.votes import DuplicateVote, list_votes, record_vote
from playground.templates import make_template

VARIANTS = {"plain": "Write a tagline for {{ product }}.",
            "role": "You are a copywriter. Write a tagline for {{ product }}.",
            "short": "Tagline, five words, for {{ product }}."}


@pytest.fixture
def log(tmp_path):
    run_log = RunLog(tmp_path)
    yield run_log
    run_log.close()


def run_comparison(catalog, log, settings, modality="text", seeds=(1, 2), variants=VARIANTS, params=None) -> int:
    template = make_template(name="vote-test", modality=modality, variants=variants,
                             variables={"product": "a lantern"})
    spec = build_spec(template, models=[f"tiny-{modality}"], seeds=list(seeds),
                      params=params or {"max_new_tokens": 4})
    comparison_id = None
    for progress_ in Runner(catalog, log, settings).run(spec):
        comparison_id = progress_.comparison_id
    return comparison_id


@pytest.fixture
def text_comparison(catalog, log, settings) -> int:
    return run_comparison(catalog, log, settings)


def test_pairs_are_same_values_seed_model_from_different_variants(log, text_comparison):
    runs = log.get_comparison(text_comparison).runs
    pairs = candidate_pairs(runs)
    assert len(pairs) == 6                                      # 3 variant pairs x 2 seeds
    for a, b in pairs:
        assert a.variant != b.variant
        assert (a.seed, a.variables, a.model_id) == (b.seed, b.variables, b.model_id)


def test_left_right_is_balanced_over_many_draws(log, text_comparison):
    rng = random.Random(1234)
    left_is_lower_column, draws = 0, 4000
    shown = {}
    for _ in range(draws):
        pair = next_pair(log, text_comparison, "someone", rng)
        left_is_lower_column += pair.left.col < pair.right.col
        shown[pair.key] = shown.get(pair.key, 0) + 1
    # Binomial(4000, 0.5): sd ~ 32; 4 sd either side
    assert abs(left_is_lower_column - draws / 2) < 4 * math.sqrt(draws) / 2
    assert len(shown) == 6 and min(shown.values()) > draws / 6 * 0.8     # every pair comes up about as often
    # each variant shows on the left about half of the times it is shown
    for variant in VARIANTS:
        rng = random.Random(7)
        left = total = 0
        for _ in range(3000):
            pair = next_pair(log, text_comparison, "someone", rng)
            if variant in (pair.left.variant, pair.right.variant):
                total += 1
                left += pair.left.variant == variant
        assert abs(left / total - 0.5) < 0.05


def test_one_vote_per_voter_per_pair(log, text_comparison):
    rng = random.Random(0)
    pair = next_pair(log, text_comparison, "ann", rng)
    cast(log, pair, "A", "ann", "crisper")
    with pytest.raises(DuplicateVote):
        cast(log, pair, "B", "ann")
    swapped = type(pair)(pair.comparison_id, pair.right, pair.left)    # the same pair shown the other way round
    with pytest.raises(DuplicateVote):
        cast(log, swapped, "tie", "ann")
    with pytest.raises(sqlite3.IntegrityError):                  # the table itself refuses it, not only the code
        with log._write() as tx:
            tx.execute("INSERT INTO votes (comparison_id, run_low, run_high, left_run_id, outcome, voter, "
                       "created_at) VALUES (?, ?, ?, ?, 'tie', 'ann', 'now')",
                       (text_comparison, *pair.key, pair.key[0]))
    cast(log, pair, "B", "bob")                                  # another voter may vote on it
    votes = list_votes(log, text_comparison)
    assert [(v.voter, v.winner_run_id) for v in votes] == [("ann", pair.left.id), ("bob", pair.right.id)]
    assert votes[0].reason == "crisper" and votes[0].left_run_id == pair.left.id
    # ann never gets this pair again; after voting on all 6 she gets none
    assert progress(log, text_comparison, "ann") == (1, 6)
    for _ in range(5):
        nxt = next_pair(log, text_comparison, "ann", rng)
        assert nxt.key != pair.key
        cast(log, nxt, "tie", "ann")
    assert next_pair(log, text_comparison, "ann", rng) is None


def test_bad_votes_are_refused_with_a_clear_message(log, text_comparison, catalog, settings):
    runs = log.get_comparison(text_comparison).runs
    other = run_comparison(catalog, log, settings, seeds=(9,))
    foreign = log.get_comparison(other).runs[0]
    with pytest.raises(ValueError, match="not both part of comparison"):
        record_vote(log, comparison_id=text_comparison, left_run_id=runs[0].id, right_run_id=foreign.id,
                    outcome="tie", voter="x")
    with pytest.raises(ValueError, match="outcome must be"):
        record_vote(log, comparison_id=text_comparison, left_run_id=runs[0].id, right_run_id=runs[1].id,
                    outcome="maybe", voter="x")
    with pytest.raises(ValueError, match="voter"):
        record_vote(log, comparison_id=text_comparison, left_run_id=runs[0].id, right_run_id=runs[1].id,
                    outcome="tie", voter="  ")
    with pytest.raises(ValueError, match="reason is limited"):
        record_vote(log, comparison_id=text_comparison, left_run_id=runs[0].id, right_run_id=runs[1].id,
                    outcome="tie", voter="x", reason="y" * 5000)
    with pytest.raises(ValueError, match="choice must be"):
        cast(log, next_pair(log, text_comparison, "x", random.Random(0)), "left", "x")
    assert list_votes(log) == []


def test_pair_tokens_hide_the_runs_and_are_spent_once():
    tokens = PairTokens(max_size=2)
    a, b, c = object(), object(), object()
    ta = tokens.issue(a, "ann")
    assert len(ta) >= 20 and ta.isascii()
    with pytest.raises(LookupError, match="another voter"):
        tokens.take(ta, "bob")
    tb = tokens.issue(b, "ann")
    assert tokens.take(tb, "ann") is b
    with pytest.raises(LookupError, match="no longer open"):
        tokens.take(tb, "ann")
    tokens.issue(a, "x"), tokens.issue(b, "x"), tokens.issue(c, "x")
    assert len(tokens._pairs) == 2                                # bounded


def test_bradley_terry_matches_hand_checked_examples():
    # Two variants, a beats b 3 times out of 4: MLE strength ratio 3, so theta_a - theta_b = ln 3.
    theta = fit([Outcome("a", "b", 1)] * 3 + [Outcome("a", "b", 0)], ["a", "b"])
    assert theta[0] - theta[1] == pytest.approx(math.log(3), abs=1e-5)
    # A win and two ties: ties count half, so a scores 2 of 3 -> ratio 2.
    theta = fit([Outcome("a", "b", 1), Outcome("a", "b", 0.5), Outcome("b", "a", 0.5)], ["a", "b"])
    assert theta[0] - theta[1] == pytest.approx(math.log(2), abs=1e-5)
    # A cycle where each beats the next 2 to 1: all equal.
    cycle = [Outcome(x, y, 1) for x, y in (("a", "b"), ("b", "c"), ("c", "a"))] * 2 + \
            [Outcome(y, x, 1) for x, y in (("a", "b"), ("b", "c"), ("c", "a"))]
    assert fit(cycle, ["a", "b", "c"]) == pytest.approx([0, 0, 0], abs=1e-5)
    # Three variants, worked by hand: a-b 2:1, b-c 2:1, a-c 2:1 -> strengths satisfy
    # W_i = sum_j n_ij p_i / (p_i + p_j); solution p = (1.813, 1, 0.552) (checked by substitution below).
    games = [Outcome("a", "b", 1)] * 2 + [Outcome("b", "a", 1)] + [Outcome("b", "c", 1)] * 2 + \
            [Outcome("c", "b", 1)] + [Outcome("a", "c", 1)] * 2 + [Outcome("c", "a", 1)]
    p = [math.exp(t) for t in fit(games, ["a", "b", "c"])]
    wins = {0: 4, 1: 3, 2: 2}
    for i in range(3):
        expected = sum(3 * p[i] / (p[i] + p[j]) for j in range(3) if j != i)
        assert expected == pytest.approx(wins[i], abs=1e-4)
    assert p[0] / p[1] == pytest.approx(p[1] / p[2], rel=1e-4)       # symmetric by construction


def test_rank_rows_carry_counts_intervals_and_elo_scale():
    rows = rank([Outcome("a", "b", 1)] * 3 + [Outcome("a", "b", 0)] + [Outcome("a", "c", 0.5)], ["a", "b", "c"],
                prior=0.0, n_boot=200, seed=1)
    by = {r.variant: r for r in rows}
    assert rows[0].variant == "a"
    assert (by["a"].wins, by["a"].ties, by["a"].losses) == (3, 1, 1)
    assert (by["b"].wins, by["b"].losses, by["c"].ties) == (1, 3, 1)
    assert win_probability(by["a"].rating, by["b"].rating) == pytest.approx(0.75, abs=0.002)
    for r in rows:
        assert r.low <= r.rating <= r.high
    # With the default prior, an unbeaten variant still gets a finite rating
    solo = rank([Outcome("a", "b", 1)])
    assert 1000 < solo[0].rating < 1200 and solo[1].rating < 1000


def test_ranking_of_a_comparison_and_dpo_export(log, text_comparison, tmp_path):
    rng = random.Random(3)
    winners = []
    while (pair := next_pair(log, text_comparison, "ann", rng)) is not None:
        # ann always prefers "role", otherwise ties
        if "role" in (pair.left.variant, pair.right.variant):
            choice = "A" if pair.left.variant == "role" else "B"
            winners.append(pair.left if choice == "A" else pair.right)
            cast(log, pair, choice, "ann", "sounds professional")
        else:
            cast(log, pair, "both bad", "ann")
    ranking = comparison_ranking(log, text_comparison, n_boot=50)
    assert [r.variant for r in ranking][0] == "role"
    assert ranking[0].wins == 4 and ranking[0].losses == 0

    pairs = preference_pairs(log, text_comparison)
    assert len(pairs) == 4
    for item, winner in zip(pairs, winners):
        assert set(item) == {"prompt", "chosen", "rejected"}
        assert all(isinstance(v, str) for v in item.values())
        assert item["prompt"] == winner.prompt and item["chosen"] == winner.output_text
    jsonl = export_preferences(log, tmp_path / "out" / "prefs.jsonl", "jsonl", comparison_id=text_comparison)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert lines == pairs
    table = export_preferences(log, tmp_path / "prefs.csv", "csv")
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert len(rows) == 6 and {r["outcome"] for r in rows} == {"win", "both_bad"}
    assert {r["winner_variant"] for r in rows if r["outcome"] == "win"} == {"role"}
    with pytest.raises(ValueError, match="jsonl or csv"):
        export_preferences(log, tmp_path / "x.zip", "zip")


def test_image_preferences_name_the_files(catalog, log, settings):
    comparison = run_comparison(catalog, log, settings, modality="image", seeds=(1,),
                                variants={"a": "a red {{ product }}", "b": "a blue {{ product }}"},
                                params={"num_inference_steps": 2})
    pair = next_pair(log, comparison, "ann", random.Random(0))
    cast(log, pair, "B", "ann")
    (item,) = preference_pairs(log, comparison)
    assert item["chosen"] == pair.right.artifact and item["chosen"].endswith(".png")     # inside the data dir
    assert item["rejected"] == pair.left.artifact


def test_api_voting_is_blind(served_app):
    """Through the public API: the pair carries a token and the two texts, nothing naming a variant or a run."""
    from gradio_client import Client

    services = served_app.services
    secret = {"zebra-secret": "Write a tagline for {{ product }}.",
              "otter-secret": "You are a copywriter. Write a tagline for {{ product }}."}
    comparison_id = run_comparison(services.catalog, services.log, services.settings, seeds=(11, 12),
                                   variants=secret)
    runs = services.log.get_comparison(comparison_id).runs
    client = Client(served_app.url, verbose=False)
    dealt = client.predict(comparison_id, "carol", api_name="/vote_pair")
    assert set(dealt) == {"token", "values", "a", "b", "voted", "total"} and dealt["total"] == 2
    raw = json.dumps(dealt)
    assert "secret" not in raw and "run" not in raw
    assert dealt["values"] == {"product": "a lantern"} and (dealt["voted"], dealt["total"]) == (0, 2)
    assert {dealt["a"], dealt["b"]} <= {r.output_text for r in runs}           # the outputs, and nothing else
    assert client.predict(dealt["token"], "A", "carol", "short and clear", api_name="/vote_cast") == {"saved": True}
    with pytest.raises(Exception, match="no longer open"):
        client.predict(dealt["token"], "B", "carol", "", api_name="/vote_cast")
    (vote,) = list_votes(services.log, comparison_id)
    assert vote.voter.startswith("session:") and vote.reason == "short and clear"   # the server names the voter
    assert services.log.get_run(vote.winner_run_id).output_text == dealt["a"]
    second = client.predict(comparison_id, "carol", api_name="/vote_pair")
    client.predict(second["token"], "tie", "carol", "", api_name="/vote_cast")
    assert client.predict(comparison_id, "carol", api_name="/vote_pair") == {"done": True, "voted": 2, "total": 2}


def test_ranking_html_lists_variants_with_automatic_scores(log, text_comparison):
    from types import SimpleNamespace

    from playground.ui.vote import ranking_html

    pair = next_pair(log, text_comparison, "ann", random.Random(5))
    cast(log, pair, "A", "ann")
    page = ranking_html(SimpleNamespace(log=log), text_comparison,
                        scores={pair.left.variant: {"judge": "<b>9</b>"}})
    assert page.index(pair.left.variant) < page.index(pair.right.variant)      # the winner ranks higher
    assert "judge" in page and "&lt;b&gt;9&lt;/b&gt;" in page and "<b>9</b>" not in page
    assert page.count("<tr>") == 4                                               # header + 3 variants
