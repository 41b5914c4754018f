"""The served app refuses hostile renders and imports quickly, and keeps answering other clients meanwhile."""

from __future__ import annotations

import json
import threading
import time
import zipfile

import pytest

pytestmark = pytest.mark.slow

WORDWRAP_BOMB = "{% set s = ('a' * 100000) %}{{ (s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s)|wordwrap(1)|length }}"


@pytest.fixture(scope="module")
def clients(served_app):
    from gradio_client import Client

    return Client(served_app.url, verbose=False), Client(served_app.url, verbose=False)


def baseline(client, seconds: float = 2.0) -> float:
    """The slowest answer to the same call with no hostile work running (this machine may be shared and busy)."""
    with Bystander(client) as idle:
        time.sleep(seconds)
    return max(idle.times)


def answered_in_time(times: list[float], idle: float) -> bool:
    """Within 1 s, or, on a machine so busy that idle answers take longer, within four times the idle time: a server
    held up by the hostile request would take as long as that request (seconds), far beyond either bound."""
    return bool(times) and max(times) < max(1.0, 4 * idle)


class Bystander:
    """A second client asking for the template list over and over; records how long each answer took."""

    def __init__(self, client):
        self.client, self.times, self.stop = client, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            start = time.perf_counter()
            assert self.client.predict("text", api_name="/list_templates")
            self.times.append(time.perf_counter() - start)
            time.sleep(0.05)

    def __enter__(self) -> Bystander:
        self.client.predict("text", api_name="/list_templates")          # connected and warm
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def test_a_hostile_variant_is_refused_quickly_while_others_are_served(clients):
    from gradio_client.exceptions import AppError

    hostile, other = clients
    name = hostile.predict("text", api_name="/list_templates")[0]["name"]
    idle = baseline(other)
    with Bystander(other) as bystander:
        start = time.perf_counter()
        with pytest.raises(AppError, match="took more than"):
            hostile.predict(name, None, {"bomb": WORDWRAP_BOMB}, None, [1], {"max_new_tokens": 2}, False,
                            api_name="/compare")
        assert time.perf_counter() - start < 10
    assert answered_in_time(bystander.times, idle), (bystander.times, idle)


def test_a_huge_value_is_refused_before_rendering(clients):
    from gradio_client.exceptions import AppError

    hostile, _ = clients
    template = hostile.predict("text", api_name="/list_templates")[0]
    variable = next(iter(template["variables"]))
    start = time.perf_counter()
    with pytest.raises(AppError, match="characters"):
        hostile.predict(template["name"], {variable: "word " * 400_000}, api_name="/render_template")
    assert time.perf_counter() - start < 5


def test_a_zip_bomb_import_is_refused_while_others_are_served(clients, tmp_path):
    from gradio_client import handle_file

    hostile, other = clients
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("runs.jsonl", json.dumps({"modality": "image", "model_id": "m", "prompt": "p", "seed": 1,
                                                   "params": {}, "artifact": "x.png"}) + "\n")
        with archive.open("media/x.png", "w", force_zip64=True) as member:
            for _ in range(80):
                member.write(b"\0" * 2**20)
    assert bomb.stat().st_size < 2**20
    idle = baseline(other)
    with Bystander(other) as bystander:
        start = time.perf_counter()
        answer = hostile.predict(handle_file(str(bomb)), api_name="/import_runs")
        assert time.perf_counter() - start < 10
    assert answer["imported"] == 0 and "max_import_member_bytes" in answer["errors"][0]["message"]
    assert answered_in_time(bystander.times, idle), (bystander.times, idle)
