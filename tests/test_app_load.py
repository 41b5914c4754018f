"""A served app shared by many callers at its default settings: a burst of comparisons is queued, not refused, and
a remote comparison that hangs neither holds the local ones up nor its own cancel."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from playground.engines.catalog import Catalog
from playground.services import Services
from playground.ui.app import build_app, launch_kwargs
from tests.conftest import _free_port
from tests.test_remote_faults import kept_open, script_server

pytestmark = pytest.mark.slow


def _serve(settings, catalog=None):
    services = Services.create(settings, catalog=catalog)
    demo = build_app(settings, services)
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True,
                **launch_kwargs(settings))
    return demo


def _data_dir(tmp_path, settings):
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(settings.models_dir, target_is_directory=True)
    return data


def test_a_burst_of_sixteen_callers_with_four_comparisons_each_is_queued_not_refused(tmp_path, settings, catalog):
    from gradio_client import Client

    local = settings.replace(data_dir=_data_dir(tmp_path, settings))
    assert (local.queue_size, local.concurrency) == (settings.queue_size, settings.concurrency)   # the defaults
    demo = _serve(local, catalog)
    try:
        # A shared machine may be slow to answer a burst: the clients wait a minute, not httpx's default 5 s.
        clients = [Client(demo.local_url, verbose=False, httpx_kwargs={"timeout": 60}) for _ in range(16)]
        jobs = [client.submit(template="product-tagline", models=["tiny-text"], seeds=[100 * number + k],
                              params={"max_new_tokens": 2}, checks=[], api_name="/compare")
                for number, client in enumerate(clients) for k in range(4)]
        outcomes = []
        for job in jobs:
            try:
                outcomes.append(job.result(timeout=600)["status"])
            except Exception as error:          # noqa: BLE001 - counted: a refusal shows up here
                outcomes.append(f"{type(error).__name__}: {error}")
    finally:
        demo.close()
    refused = [o for o in outcomes if o != "done"]
    assert not refused, f"{len(refused)} of 64 refused, e.g. {refused[0]}"
    comparisons = demo.services.log.list_comparisons(limit=100)
    assert len(comparisons) == 64 and all(c.run_count == 3 for c in comparisons)


@pytest.fixture
def keep_alive_server():
    with script_server(kept_open) as server:
        yield server


def test_a_hung_remote_comparison_holds_up_no_local_one_and_is_cancelled_at_once(tmp_path, settings,
                                                                                 keep_alive_server):
    from gradio_client import Client

    data = _data_dir(tmp_path, settings)
    entry = {"name": "lab", "base_url": f"http://127.0.0.1:{keep_alive_server.server_port}/v1", "models": ["m"]}
    (data / "endpoints.yaml").write_text(json.dumps({"endpoints": [entry]}))
    local = settings.replace(data_dir=data)
    demo = _serve(local, Catalog(local))
    try:
        client = Client(demo.local_url, verbose=False)
        hung = client.submit(template="product-tagline", models=["lab:m"], seeds=[1], api_name="/compare")
        with ThreadPoolExecutor(1) as pool:
            while keep_alive_server.requests < 3:           # all three cells stream, and keep streaming
                threading.Event().wait(0.1)
            other = client.submit(template="product-tagline", models=["tiny-text"], seeds=[1],
                                  params={"max_new_tokens": 2}, api_name="/compare")
            assert other.result(timeout=120)["status"] == "done"
            assert not hung.done()
            cancelled = pool.submit(hung.cancel)
            assert cancelled.result(timeout=30) is True         # the client's own cancel gives up after 5 s
        assert keep_alive_server.gone.wait(15)                  # the open streams were let go
        statuses = [c.status for c in demo.services.log.list_comparisons()]      # newest first
    finally:
        demo.close()
    assert statuses == ["done", "cancelled"]
