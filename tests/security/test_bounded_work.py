"""Inputs within every limit that still asked for minutes of CPU: a Diff of two 20,000-character outputs, stats on
runs carrying hundreds of scores, catastrophic `regex` checks, a `ratio` similarity against a 20,000-character
reference, and slow checks holding every visitor's generation. Work is counted where it can be (the comparisons
difflib makes), so these tests need no clock; a thread with a deadline keeps a regression from hanging the run."""

from __future__ import annotations

import difflib
import random
import threading

import pytest

from public_mode import public_app, visitor  # noqa: F401 (fixtures)

from playground.store import RunLog, RunRecord

WORK_CAP = 10_000_000                   # difflib element comparisons a test allows (the bound is 3 million)


@pytest.fixture
def counted(monkeypatch):
    """Counts what every difflib search for a longest match may scan, and stops one that passes WORK_CAP."""
    spent = [0]
    original = difflib.SequenceMatcher.find_longest_match

    def find_longest_match(self, alo=0, ahi=None, blo=0, bhi=None):
        ahi = len(self.a) if ahi is None else ahi
        spent[0] += (ahi - alo) + sum(len(self.b2j.get(self.a[i], ())) for i in range(alo, ahi))
        assert spent[0] <= WORK_CAP, "the comparison went past its work bound"
        return original(self, alo, ahi, blo, len(self.b) if bhi is None else bhi)

    monkeypatch.setattr(difflib.SequenceMatcher, "find_longest_match", find_longest_match)
    return spent


def within(seconds: float, fn, *args):
    """fn(*args) in a thread; a test failure rather than a hung run when it takes longer than `seconds`."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", fn(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert "value" in result, f"{getattr(fn, '__name__', fn)} did not finish"
    return result["value"]


HOSTILE_PAIRS = {
    "one word repeated": (" ".join(["a"] * 10_000)[:20_000], " ".join(["a", "b"] * 5_000)[:20_000]),
    "few words shuffled": tuple(" ".join(random.Random(seed).choice(["x", "y", "z", "w"]) for _ in range(10_000))
                                [:20_000] for seed in (1, 2)),
}


@pytest.mark.parametrize("name", list(HOSTILE_PAIRS))
def test_the_diff_of_two_long_outputs_is_bounded(counted, name):
    from playground.stakeholders.diffs import diff_stats, word_diff, word_diff_html

    old, new = HOSTILE_PAIRS[name]
    pieces = within(60, word_diff, old, new)
    assert "".join(t for op, t in pieces if op != "insert") == old            # still a true diff of the two
    assert "".join(t for op, t in pieces if op != "delete") == new
    assert within(60, diff_stats, old, new)["kept"] >= 0 and "pp-diff" in word_diff_html(old, new)
    assert counted[0] <= WORK_CAP


def test_a_small_diff_stays_word_by_word():
    from playground.stakeholders.diffs import word_diff

    assert word_diff("the quick brown fox", "the slow brown fox") == [
        ("equal", "the "), ("delete", "quick"), ("insert", "slow"), ("equal", " brown fox")]


def test_ratio_similarity_against_a_long_reference_is_bounded(counted):
    from playground.scoring import CellInput, make_check

    reference = " ".join(random.Random(3).choice(["lantern", "light", "solar", "glow"]) for _ in range(3_000))[:20_000]
    check = make_check({"type": "similarity", "reference": reference, "method": "ratio"})
    score = within(60, check.score, CellInput(modality="text", prompt="p", text=reference[::-1]), None)
    assert score.value is None and "token_f1" in score.detail["error"]
    assert counted[0] <= WORK_CAP
    short = make_check({"type": "similarity", "reference": "abcd", "method": "ratio"})
    assert short.score(CellInput(modality="text", prompt="p", text="abce"), None).value == pytest.approx(0.75)


def test_catastrophic_regex_checks_share_one_budget_per_comparison():
    from playground.scoring import CellInput, make_checks
    from playground.scoring.cell import score_cell

    patterns = [r"(a+)+$", r"(a|aa)+$", r"((a+)+)+c", r"(\w+\s?)+$", r"(a+)+b"]
    checks = make_checks([{"type": "regex", "pattern": p, "name": f"slow-{i}"} for i, p in enumerate(patterns)])
    record = RunRecord(modality="text", model_id="m", prompt="p", seed=1, params={}, output_text="a" * 5_000 + "!")

    def score_twelve_cells():
        return [score_cell(record, record.output_text, checks, None) for _ in range(12)]

    scores = [s for cell in within(120, score_twelve_cells) for s in cell]
    ran_out = [s for s in scores if "used up" in (s.detail.get("error") or "")]
    assert len(scores) == 60 and all(s.value is None for s in scores)
    assert len(ran_out) >= 5 * 6          # most cells are not searched at all once a check's budget is spent


def test_imported_runs_carry_a_bounded_number_of_scores(tmp_path):
    import json

    row = dict(modality="text", model_id="m", prompt="p", seed=1, params={}, output_text="o", uid="many-scores-1",
               scores={f"s{i}": {"value": i} for i in range(300)})
    (tmp_path / "many.jsonl").write_text(json.dumps(row) + "\n")
    with RunLog(tmp_path / "data") as log:
        report = log.import_jsonl(tmp_path / "many.jsonl")
    assert report.imported == 0 and "at most 32" in report.errors[0][1]


def test_stats_summarize_a_bounded_number_of_score_names(tmp_path):
    from playground.scoring import Score
    from playground.scoring.stats import comparison_summary
    from playground.store.scores import save_scores

    with RunLog(tmp_path / "data") as log:
        comparison = log.start_comparison("text", "many scores")
        for i in range(16):
            run_id = log.add_run(RunRecord(modality="text", model_id="m", prompt="p", seed=i // 2, params={},
                                           comparison_id=comparison, variant=f"v{i % 2}", col=i % 2, row=i // 2,
                                           output_text="o"))
            save_scores(log, run_id, [Score(f"name-{k:03d}", float(k + i)) for k in range(60)])
        summary = within(120, comparison_summary, log, comparison)
    assert len(summary.metrics) <= 32 and len(summary.left_out) == 60 - len(summary.metrics)


@pytest.fixture
def gate():
    """A check that holds its cell until the test opens the gate: a stand-in for any slow check."""
    from playground.scoring.base import REGISTRY, Check, register

    opened, entered = threading.Event(), threading.Event()

    @register
    class Gate(Check):
        type, modalities = "test_gate", ("text",)

        def score(self, cell, context):
            entered.set()
            opened.wait(120)
            return self.make(1.0, True)

    yield opened, entered
    opened.set()
    REGISTRY.pop("test_gate", None)


@pytest.mark.slow
def test_a_slow_check_does_not_hold_another_visitors_generation(visitor, gate):
    opened, entered = gate
    alice, bob = visitor(), visitor()
    args = (None, None, ["tiny-text"], [7], {"max_new_tokens": 2}, True)
    slow = alice.submit("product-tagline", *args, [{"type": "test_gate"}], api_name="/compare")
    assert entered.wait(120), "the gated check never started"
    try:
        quick = bob.submit("product-tagline", *args, None, api_name="/compare").result(timeout=120)
        assert all(run["status"] == "ok" for run in quick["runs"])
    finally:
        opened.set()
    assert all(run["status"] == "ok" for run in slow.result(timeout=120)["runs"])
