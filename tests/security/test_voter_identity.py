"""The server chooses who votes: a signed-in user, a browser id the server issued and signed, or the API client's
session. Nothing a caller types (the API's `voter`, a value planted in the page's storage) makes a new voter, so
one client casts at most one vote per pair. Vote exports carry no formulas and no server paths."""

from __future__ import annotations

import csv
import io
import json
from types import SimpleNamespace

import pytest

from public_mode import public_app, visitor  # noqa: F401 (fixtures)

from playground.settings import Settings
from playground.stakeholders.preferences import export_preferences
from playground.store import RunLog, RunRecord
from playground.store.votes import list_votes, record_vote
from playground.visitors import Visitors, new_browser_id


@pytest.fixture
def visitors(tmp_path):
    return Visitors(Settings(data_dir=tmp_path, public=True))


def request(session: str, username: str | None = None):
    return SimpleNamespace(session_hash=session, username=username)


def test_a_stored_value_counts_only_with_the_servers_signature(visitors):
    from playground.visitors import sign_browser_id

    planted = "anon:" + "x" * 32
    assert visitors.voter(request("s1"), planted) == "session:s1"
    forged = sign_browser_id("not the server's key", new_browser_id())
    assert visitors.voter(request("s2"), forged) == "session:s2"
    issued = visitors.identify(request("s3"), None, None)
    browser_id = issued.partition(".")[0]
    assert visitors.voter(request("s3"), planted) == f"anon:{browser_id}"          # the session decides
    assert visitors.voter(request("s4"), issued) == f"anon:{browser_id}"           # same browser, new page
    assert visitors.identify(request("s5"), None, issued) == issued                # kept across reloads
    assert visitors.voter(request("s6", "carol"), issued) == "user:carol"          # a sign-in wins


@pytest.mark.slow
def test_one_api_client_votes_once_per_pair_whatever_it_calls_itself(visitor):
    alice = visitor()
    result = alice.predict("product-tagline", None, None, ["tiny-text"], [1, 2], {"max_new_tokens": 2}, False, None,
                           api_name="/compare")
    total = alice.predict(result["comparison_id"], "", api_name="/vote_pair")["total"]
    saved = 0
    for attempt in range(30):
        dealt = alice.predict(result["comparison_id"], f"voter-{attempt}", api_name="/vote_pair")
        if dealt.get("done"):
            break
        alice.predict(dealt["token"], "A", f"voter-{attempt}", "", api_name="/vote_cast")
        saved += 1
    assert saved == total == 6


@pytest.mark.slow
@pytest.mark.parametrize("bad", [True, 1.9, "1"])
def test_vote_pair_takes_only_a_whole_number_as_comparison_id(visitor, bad):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="whole number"):
        visitor().predict(bad, "", api_name="/vote_pair")


def _voted_comparison(log: RunLog, modality: str = "text") -> int:
    comparison = log.start_comparison(modality, "votes")
    ids = []
    for variant in ("plain", "role"):
        record = RunRecord(modality=modality, model_id=f"tiny-{modality}", prompt=f"{variant} prompt", seed=1,
                           params={}, comparison_id=comparison, variant=variant,
                           output_text=None if modality == "image" else f"{variant} output")
        ids.append(log.add_run(record, artifact=b"\x89PNG fake" if modality == "image" else None,
                               artifact_ext="png" if modality == "image" else None))
    record_vote(log, comparison_id=comparison, left_run_id=ids[0], right_run_id=ids[1], outcome="win",
                winner_run_id=ids[0], voter="anon:a", reason='=HYPERLINK("http://127.0.0.1:9/x","click")')
    return comparison


def test_the_votes_csv_runs_no_formula(tmp_path):
    with RunLog(tmp_path / "data") as log:
        comparison = _voted_comparison(log)
        text = export_preferences(log, tmp_path / "votes.csv", "csv", comparison_id=comparison).read_text()
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["reason"].startswith("'=HYPERLINK")
    assert not any(value.startswith(("=", "+", "-", "@")) for value in row.values())


def test_image_preferences_name_no_server_path(tmp_path):
    with RunLog(tmp_path / "data") as log:
        comparison = _voted_comparison(log, "image")
        text = export_preferences(log, tmp_path / "prefs.jsonl", "jsonl", comparison_id=comparison).read_text()
        (pair,) = [json.loads(line) for line in text.splitlines()]
        assert str(tmp_path) not in text and not pair["chosen"].startswith("/")
        assert (log.data_dir / pair["chosen"]).is_file()          # the file's place inside the data dir


def test_votes_take_the_stores_id_rule(tmp_path):
    with RunLog(tmp_path / "data") as log:
        comparison = _voted_comparison(log)
        for bad in (True, 1.9):
            with pytest.raises(ValueError, match="whole number"):
                list_votes(log, bad)
        assert len(list_votes(log, comparison)) == 1
