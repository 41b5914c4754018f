"""Visitors kept apart: owner ids, and a run log that shows, rates and exports only a visitor's own comparisons."""

from __future__ import annotations

import json
import sqlite3
from types import SimpleNamespace

import pytest

from playground.settings import Settings
from playground.store import RunLog, RunRecord
from playground.visitors import (UnknownVisitor, ensure_browser_id, keeps_visitors_apart, new_browser_id, owner_for,
                                 visitor_id)

ALICE, BOB = "hf:alice", "anon:" + "b" * 32


@pytest.fixture
def log(tmp_path):
    run_log = RunLog(tmp_path / "data", orphan_age_s=0)
    yield run_log
    run_log.close()


def _comparison(log: RunLog, owner: str | None, prompt: str, artifact: bytes | None = None) -> tuple[int, int]:
    comparison_id = log.start_comparison("text", f"{owner}'s comparison", "product-tagline", {"k": 1}, owner=owner)
    run_id = log.add_run(RunRecord(modality="text", model_id="tiny-text", prompt=prompt, seed=1, params={},
                                   comparison_id=comparison_id, template_name="product-tagline", variant="plain",
                                   output_text=f"output of {prompt}"),
                         artifact=artifact, artifact_ext="png" if artifact else None)
    log.finish_comparison(comparison_id)
    return comparison_id, run_id


# ---- the owner id ----------------------------------------------------------------------------------------------------

def test_signed_in_user_wins_over_the_browser_and_the_session():
    request = SimpleNamespace(username=None, session_hash="s1")
    browser = new_browser_id()
    assert visitor_id(request, SimpleNamespace(username="alice"), browser) == "hf:alice"
    assert visitor_id(request, {"preferred_username": "alice"}, browser) == "hf:alice"     # OAuthProfile is a dict
    assert visitor_id(SimpleNamespace(username="carol", session_hash="s1"), None, browser) == "user:carol"
    assert visitor_id(request, None, browser) == f"anon:{browser}"
    assert visitor_id(request, None, None) == "session:s1"
    with pytest.raises(UnknownVisitor):
        visitor_id(None, None, None)


def test_browser_ids_are_random_and_only_ours_are_kept():
    first, second = new_browser_id(), new_browser_id()
    assert first != second and len(first) == 32
    assert ensure_browser_id(first) == first
    for forged in (None, "", "hf:alice", "x" * 31, "x" * 33, "../" * 11, 12345, "a" * 31 + "!"):
        kept = ensure_browser_id(forged)
        assert kept != forged and len(kept) == 32
    # A forged BrowserState value never becomes an owner id; the session is used instead.
    assert visitor_id(SimpleNamespace(username=None, session_hash="s9"), None, "hf:alice") == "session:s9"


def test_an_anonymous_id_can_never_name_a_signed_in_user():
    browser = "alice" + "x" * 27
    assert visitor_id(None, None, browser) != visitor_id(None, SimpleNamespace(username=browser), None)


def test_visitors_are_kept_apart_on_a_space_unless_history_is_shared(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    request = SimpleNamespace(username=None, session_hash="s1")
    assert owner_for(Settings(), request) is None                        # local use: one shared log
    assert owner_for(Settings(public=True), request) == "session:s1"
    monkeypatch.setenv("SPACE_ID", "someone/prompt-playground")
    assert keeps_visitors_apart(Settings())
    assert owner_for(Settings(), request, SimpleNamespace(username="alice")) == "hf:alice"
    assert owner_for(Settings(shared_history=True), request) is None


def test_settings_read_the_visitor_and_dataset_fields_from_the_environment(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_PUBLIC", "1")
    monkeypatch.setenv("PLAYGROUND_SHARED_HISTORY", "true")
    monkeypatch.setenv("PLAYGROUND_HUB_DATASET", "someone/playground-log")
    monkeypatch.setenv("PLAYGROUND_HUB_SYNC_EVERY_MIN", "2.5")
    settings = Settings.from_env()
    assert (settings.public, settings.shared_history, settings.hub_dataset, settings.hub_sync_every_min) == \
        (True, True, "someone/playground-log", 2.5)


# ---- the run log, filtered by owner ----------------------------------------------------------------------------------

def test_a_visitor_lists_only_their_own_comparisons_and_runs(log):
    alice_comparison, alice_run = _comparison(log, ALICE, "alice lantern secret")
    bob_comparison, bob_run = _comparison(log, BOB, "bob lantern plan")
    local_comparison, local_run = _comparison(log, None, "local lantern")

    assert [c.id for c in log.list_comparisons(owner=ALICE)] == [alice_comparison]
    assert [c.id for c in log.list_comparisons(owner=BOB)] == [bob_comparison]
    assert {c.id for c in log.list_comparisons()} == {alice_comparison, bob_comparison, local_comparison}
    assert [r.id for r in log.list_runs(owner=ALICE)] == [alice_run]
    assert [r.id for r in log.list_runs(owner=BOB, query="lantern")] == [bob_run]       # search too
    assert log.list_runs(owner=BOB, query="secret") == []
    assert log.list_runs(owner=ALICE, comparison_id=bob_comparison) == []
    assert [r.id for r in log.list_runs(owner=None, query="lantern", newest_first=False)] == \
        [alice_run, bob_run, local_run]
    assert [s["runs"] for s in log.variant_summary(owner=ALICE)] == [1]
    assert [s["runs"] for s in log.variant_summary()] == [3]


@pytest.mark.parametrize("guess", ["foreign", "missing"])
def test_guessing_ids_reads_like_a_missing_run(log, guess):
    """Reading, opening or rating another visitor's run fails exactly as a missing id does: no existence oracle."""
    _comparison(log, ALICE, "alice private prompt")
    bob_comparison, bob_run = _comparison(log, BOB, "bob private prompt")
    run_id, comparison_id = (bob_run, bob_comparison) if guess == "foreign" else (bob_run + 100, bob_comparison + 100)

    errors = []
    for call in (lambda: log.get_run(run_id, owner=ALICE),
                 lambda: log.rate(run_id, stars=1, note="guessed", owner=ALICE),
                 lambda: log.get_comparison(comparison_id, owner=ALICE),
                 lambda: log.get_comparison_header(comparison_id, owner=ALICE),
                 lambda: log.set_winner(comparison_id, run_id, owner=ALICE)):
        with pytest.raises(KeyError) as caught:
            call()
        errors.append(str(caught.value).replace(str(run_id), "N").replace(str(comparison_id), "N"))
    assert errors == ["no run #N in the log", "no run #N in the log", "no comparison #N in the log",
                      "no comparison #N in the log", "no run #N in the log"]
    # Nothing of Bob's changed: no rating, no winner.
    assert log.get_run(bob_run).stars is None and log.get_run(bob_run).note is None
    assert log.get_comparison(bob_comparison).winner_run_id is None


def test_a_visitor_reads_rates_and_picks_winners_on_their_own_runs(log):
    comparison_id, run_id = _comparison(log, ALICE, "alice prompt")
    assert log.get_run(run_id, owner=ALICE).prompt == "alice prompt"
    log.rate(run_id, stars=4, note="good", owner=ALICE)
    log.set_winner(comparison_id, run_id, owner=ALICE)
    comparison = log.get_comparison(comparison_id, owner=ALICE)
    assert comparison.winner_run_id == run_id and comparison.runs[0].stars == 4


def test_an_export_of_a_visitors_runs_holds_nothing_of_anyone_else(log, tmp_path):
    _comparison(log, ALICE, "alice only", artifact=b"alice-image")
    _comparison(log, BOB, "bob only", artifact=b"bob-image")
    dest = log.export(tmp_path / "alice.jsonl", "jsonl", runs=log.list_runs(owner=ALICE, limit=1_000_000))
    rows = [json.loads(line) for line in dest.read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["alice only"]
    assert "bob" not in dest.read_text()


def test_migration_7_keeps_existing_comparisons_shared(tmp_path):
    """A log from before visitors were kept apart: its comparisons get owner NULL (local / shared), not lost."""
    folder = tmp_path / "old"
    with RunLog(folder) as log:
        comparison_id, _ = _comparison(log, None, "made before owners")
    db = sqlite3.connect(folder / "runs.db")
    assert db.execute("SELECT owner FROM comparisons WHERE id = ?", (comparison_id,)).fetchone() == (None,)
    assert db.execute("SELECT count(*) FROM _migrations WHERE id = 7").fetchone() == (1,)
    db.close()


def test_the_browser_state_secret_outlives_a_restart(tmp_path, monkeypatch):
    from playground.visitors import browser_state_secret

    monkeypatch.delenv("PLAYGROUND_BROWSER_SECRET", raising=False)
    first = browser_state_secret(tmp_path)
    assert len(first) >= 32 and browser_state_secret(tmp_path) == first
    assert (tmp_path / "browser-secret").stat().st_mode & 0o077 == 0          # readable by the server only
    monkeypatch.setenv("PLAYGROUND_BROWSER_SECRET", "set-by-the-operator")
    assert browser_state_secret(tmp_path) == "set-by-the-operator"
