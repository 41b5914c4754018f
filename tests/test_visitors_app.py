"""Visitors kept apart on a public deployment, seen as remote callers: two gradio_client sessions against a served
app with PLAYGROUND_PUBLIC on. One cannot read, rate, export or pick a winner in the other's comparison by id."""

from __future__ import annotations


import pytest

from conftest import _free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def public_app(settings, catalog, tmp_path_factory):
    from playground.services import Services
    from playground.ui.app import build_app, launch_kwargs

    data = tmp_path_factory.mktemp("public")
    (data / "models").symlink_to(settings.models_dir, target_is_directory=True)
    public = settings.replace(data_dir=data, public=True)
    demo = build_app(public, Services.create(public, catalog=catalog))
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True,
                **launch_kwargs(public))
    yield demo
    demo.close()


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
