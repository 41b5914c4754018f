"""Improve from a served app, as remote callers and a browser see it: the improve_* endpoints (projection, start,
follow, save) with the search running as the app's own server-side job; limits refused on the server; on a public
deployment a visitor sees only their own searches; and the Improve tab driven in a real browser for a text, an
image and a music template. The proposer is a scripted OpenAI-compatible server at the edge; generation and checks
behind it are real."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from gradio_client import Client

from playground.ui.app import build_app, launch_kwargs
from tests.test_improve import PRODUCTS, PROMPT_TOKENS, lab_services, proposals, scripted  # noqa: F401

ANSWERS = {(1, 1): "<PROMPT>Tagline: {{ product }}</PROMPT>",
           (1, 2): "<PROMPT>Please write, with care and attention to every detail, one tagline for {{ product }}."
                   "</PROMPT>"}
SEARCH = {"template": "product-tagline", "variant": "plain", "proposer": "lab:proposer", "models": ["tiny-text"],
          "checks": [PROMPT_TOKENS], "rows": 3, "test_rows": 6, "rounds": 1, "candidates": 2,
          "params": {"max_new_tokens": 3}}


def served(services):
    from tests.conftest import _free_port

    demo = build_app(services.settings, services)
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True,
                **launch_kwargs(services.settings))
    return demo


def follow(client: Client, search_id: int, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = client.predict(search_id, api_name="/improve_status")
        if found["status"] not in ("queued", "running"):
            return found
        assert time.monotonic() < deadline, found["line"]
        time.sleep(0.3)


def rows() -> list[dict]:
    return [{"product": p, "split": "dev" if i % 2 else "test"} for i, p in enumerate(PRODUCTS)]


def test_the_api_projects_starts_follows_and_saves_a_search(scripted, tmp_path, settings, monkeypatch):
    services = lab_services(tmp_path, settings, scripted, monkeypatch, max_improve_rounds=4)
    scripted.reply = proposals(SimpleNamespace(seed=0), ANSWERS)
    demo = served(services)
    try:
        client = Client(demo.local_url, verbose=False)
        search = {**SEARCH, "data": rows()}
        plan = client.predict(search, api_name="/improve_plan")
        assert (plan["proposer"], plan["generator"]) == (2, 3 + 2 * 3 + 2 * 6)
        assert "projected calls (at most)" in plan["text"] and scripted.seen == []       # nothing spent
        with pytest.raises(Exception, match="rounds: must be a whole number between 1 and 4, got 5"):
            client.predict({**search, "rounds": 5}, api_name="/improve_plan")
        with pytest.raises(Exception, match="max_improve_calls"):
            services_limit = services.settings.replace(max_improve_calls=10)
            demo.services.settings = services_limit
            try:
                client.predict(search, api_name="/improve_plan")
            finally:
                demo.services.settings = services.settings.replace(max_improve_calls=20_000)
        started = client.predict(search, api_name="/improve_start")
        found = follow(client, started["id"])
        assert found["status"] == "done", found
        record = found["record"]
        assert record["best"] == "r1-c1" and record["test"]["improved"]
        assert record["test"]["sentence"].startswith("improved beats original on prompt-tokens")
        assert "<svg" in found["chart_svg"] and "pp-best-line" in found["chart_svg"]
        assert [s["id"] for s in client.predict(api_name="/improve_searches")] == [started["id"]]
        saved = client.predict(started["id"], "tagline-better", None, api_name="/improve_save")
        assert saved == {"template": "tagline-better", "variant": "plain-improved", "text": "Tagline: {{ product }}"}
        assert "tagline-better" in services.library.templates
    finally:
        demo.close()
        services.stop_jobs()


def test_a_visitor_sees_only_their_own_searches(scripted, tmp_path, settings, monkeypatch):
    services = lab_services(tmp_path, settings, scripted, monkeypatch, public=True)
    scripted.reply = proposals(SimpleNamespace(seed=0), ANSWERS)
    demo = served(services)
    try:
        alice, bob = Client(demo.local_url, verbose=False), Client(demo.local_url, verbose=False)
        started = alice.predict({**SEARCH, "data": rows()}, api_name="/improve_start")
        assert follow(alice, started["id"])["status"] == "done"
        assert bob.predict(api_name="/improve_searches") == []
        with pytest.raises(Exception, match="No comparison|not found|no comparison"):
            bob.predict(started["id"], api_name="/improve_status")
        with pytest.raises(Exception):
            bob.predict(started["id"], api_name="/improve_cancel")
        assert alice.predict(started["id"], api_name="/improve_status")["status"] == "done"
        saved = alice.predict(started["id"], "tagline-mine", None, api_name="/improve_save")
        assert saved["template"] == "tagline-mine"
        with pytest.raises(Exception, match="No comparison|not found|no comparison"):
            bob.predict(started["id"], "tagline-stolen", None, api_name="/improve_save")
        assert "tagline-mine" not in services.library.templates           # the visitor's own, not shared
        owners = {r[0] for r in services.log._db().execute("SELECT DISTINCT owner FROM jobs")}
        (owner,) = owners
        assert "tagline-mine" in services.library_for(owner).templates
    finally:
        demo.close()
        services.stop_jobs()
