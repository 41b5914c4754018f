"""Visitors kept apart on a public deployment, seen as remote callers: two gradio_client sessions against a served
app with PLAYGROUND_PUBLIC on. One cannot read, rate, export or pick a winner in the other's comparison by id."""

from __future__ import annotations

import re

import pytest

from security.public_mode import public_app  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow


def test_one_visitor_cannot_reach_anothers_runs(public_app):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    alice, bob = Client(public_app.local_url, verbose=False), Client(public_app.local_url, verbose=False)
    result = alice.predict("product-tagline", None, None, ["tiny-text"], [1], {"max_new_tokens": 2}, False,
                           api_name="/compare")
    cid, run_id = result["comparison_id"], result["runs"][0]["run_id"]
    assert alice.predict(cid, api_name="/comparison")["comparison_id"] == cid
    alice.predict(run_id, 4, None, "mine", api_name="/rate")
    for call in (lambda: bob.predict(cid, api_name="/comparison"),
                 lambda: bob.predict(run_id, 1, None, "guessed", api_name="/rate"),
                 lambda: bob.predict(cid, run_id, api_name="/pick_winner"),
                 lambda: bob.predict(cid, "jsonl", api_name="/export_comparison"),
                 lambda: bob.predict(cid, "bob", api_name="/vote_pair"),
                 lambda: bob.predict(cid, api_name="/stats")):
        with pytest.raises(AppError, match="no (comparison|run) #"):
            call()
    assert bob.predict("", "", "", 50, 0, api_name="/history") == []
    assert [r["run_id"] for r in alice.predict("", "", "", 50, 0, api_name="/history")] != []
    assert alice.predict(cid, api_name="/comparison")["runs"][0]["stars"] == 4      # Bob's guess changed nothing


def _grid_call(page, grid_id: int, fn_name: str, payload: dict) -> dict:
    """A call of the grid's own server functions, as the page's script makes it (any page can post this)."""
    return page.evaluate("""async ([gridId, fnName, payload]) => {
        const response = await fetch('gradio_api/component_server/', {method: 'POST',
            headers: {'content-type': 'application/json'},
            body: JSON.stringify({data: payload, component_id: gridId, fn_name: fnName, session_hash: 'probe'})});
        return response.json();
    }""", [grid_id, fn_name, payload])


@pytest.mark.browser
def test_the_owner_rates_and_picks_in_the_grid_and_another_visitor_cannot(public_app, browser):
    """With visitors kept apart, the grid's stars, notes and winner button work for the page that ran the
    comparison; another visitor's page is refused, with or without a grid key of its own."""
    log = public_app.services.log
    grid_id = next(block_id for block_id, block in public_app.blocks.items()
                   if getattr(block, "elem_id", None) == "text-grid")
    pages = []
    try:
        for _ in range(2):
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(public_app.local_url)
            page.wait_for_selector("#text-run")
            page.click("#text-run")
            page.locator("#text-grid .pp-cell.pp-ok").first.wait_for(timeout=120_000)
            pages.append((context, page))
        (_, alice), (_, bob) = pages
        cell = alice.locator("#text-grid .pp-cell.pp-ok").first
        run_id = int(cell.get_attribute("data-run"))
        cell.locator(".pp-star").nth(3).click()
        alice.wait_for_function(f"document.querySelectorAll('#text-grid .pp-cell[data-run=\"{run_id}\"] "
                                ".pp-star.on').length == 4")
        cell.locator("[data-action=winner]").click()
        alice.locator("#text-grid .pp-cell.pp-winner").wait_for()
        assert log.get_run(run_id).stars == 4 and cell.locator(".pp-cell-msg").count() == 0
        comparison_id = int(alice.locator("#text-grid .pp-grid-wrap").get_attribute("data-comparison"))
        assert log.get_comparison_header(comparison_id).winner_run_id == run_id

        bobs_key = bob.locator("#text-grid .pp-grid-wrap").get_attribute("data-key")
        assert bobs_key and bobs_key != alice.locator("#text-grid .pp-grid-wrap").get_attribute("data-key")
        for payload in ({"run_id": run_id, "stars": 1, "key": bobs_key}, {"run_id": run_id, "note": "mine now"},
                        {"run_id": run_id, "stars": 1, "key": "0" * 40}):
            answer = _grid_call(bob, grid_id, "rate_cell", payload)
            assert answer["ok"] is False and answer["error"], (payload, answer)
        answer = _grid_call(bob, grid_id, "pick_winner", {"comparison_id": comparison_id, "run_id": run_id,
                                                          "key": bobs_key})
        assert answer["ok"] is False and re.search(r"no (comparison|run) #", answer["error"])
        assert log.get_run(run_id).stars == 4 and log.get_run(run_id).note is None
    finally:
        for context, _ in pages:
            context.close()
