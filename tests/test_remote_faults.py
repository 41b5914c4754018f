"""Remote engines under faults a real server will not produce on demand, from a scripted HTTP/1.1 server on
127.0.0.1 that streams real SSE: a stream kept open by keep-alive comments, a stream cut mid-chunk, a 4xx with the
server's reason, 429 with Retry-After, and server errors that pass."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time

import pytest

from playground.engines.catalog import Catalog
from playground.runner import Runner
from playground.spec import build_spec
from playground.store import RunLog
from tests.test_engines_remote import SECRET, no_secret_in, tagline

pytestmark = pytest.mark.slow


def _chunk(handler, data: bytes) -> None:
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    handler.wfile.flush()


def _event(handler, content: str | None, finish: str | None = None) -> None:
    chunk = {"id": "1", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]}
    _chunk(handler, f"data: {json.dumps(chunk)}\n\n".encode())


def _start(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()


def stream(handler, number: int = 0, pieces=("Hel", "lo"), wait_s: float = 0.0) -> None:
    """A whole answer, as a well-behaved server streams it."""
    _start(handler)
    for piece in pieces:
        time.sleep(wait_s)
        _event(handler, piece)
    _event(handler, None, "stop")
    _chunk(handler, b"data: [DONE]\n\n")
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


def kept_open(handler, number: int = 0) -> None:
    """One piece, then only `: keep-alive` comments (as relays send while an upstream is slow), for up to 60 s."""
    _start(handler)
    _event(handler, "Hel")
    try:
        for _ in range(300):
            time.sleep(0.2)
            _chunk(handler, b": keep-alive\n\n")
    except OSError:
        handler.server.gone.set()          # the client let go
    handler.close_connection = True


def cut(handler, number: int = 0) -> None:
    """One piece, then half a chunk, then the connection closes."""
    _start(handler)
    _event(handler, "Hel")
    handler.wfile.write(b"40\r\ndata: {\"id\"")
    handler.wfile.flush()
    handler.close_connection = True


def answer(handler, status: int, body: dict, **headers) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(data)


class Script(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server = self.server
        with server.lock:
            server.requests += 1
            number = server.requests
            server.active += 1
            server.arrivals.append((time.monotonic(), server.active))
        try:
            server.plan(self, number)
        finally:
            with server.lock:
                server.active -= 1

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def script_server(plan):
    """A scripted OpenAI-compatible server on loopback answering with `plan` (set `.plan` to change it)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Script)
    server.daemon_threads = True
    server.lock, server.requests, server.active, server.arrivals = threading.Lock(), 0, 0, []
    server.gone, server.plan = threading.Event(), plan
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def scripted():
    with script_server(stream) as server:
        yield server


def lab(tmp_path, settings, server, *, max_concurrency=2, **changes) -> tuple[Runner, RunLog]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(settings.models_dir, target_is_directory=True)
    entry = {"name": "lab", "base_url": f"http://127.0.0.1:{server.server_port}/v1", "api_key_env": "LAB_KEY",
             "models": ["m"], "max_concurrency": max_concurrency}
    (data / "endpoints.yaml").write_text(json.dumps({"endpoints": [entry]}))
    local = settings.replace(data_dir=data, **{"remote_retries": 1, **changes})
    log = RunLog(data)
    return Runner(Catalog(local), log, local), log


def run_in_thread(runner, spec, cancel=None) -> tuple[threading.Thread, list]:
    events: list = []
    worker = threading.Thread(target=lambda: events.extend(runner.run(spec, cancel=cancel)), daemon=True)
    worker.start()
    return worker, events


def records(events) -> list:
    return [event.result.record for event in events if event.result]


def test_a_stream_kept_open_by_keep_alive_comments_fails_at_the_cells_time_limit(scripted, tmp_path, settings,
                                                                                 monkeypatch):
    monkeypatch.setenv("LAB_KEY", SECRET)
    scripted.plan = kept_open
    runner, log = lab(tmp_path, settings, scripted, remote_cell_timeout_s=2.0, remote_timeout_s=1.0)
    worker, events = run_in_thread(runner, build_spec(tagline(), models=["lab:m"], seeds=[1]))
    worker.join(40)                        # the server keeps the streams open for 60 s
    assert not worker.is_alive(), "the cells ran past their time limit"
    failed = records(events)
    assert [r.status for r in failed] == ["error", "error"]
    assert "took longer than 2 s for this cell" in failed[0].error and "remote_cell_timeout_s" in failed[0].error
    assert failed[0].output_text == "Hel" and "the 3 characters it sent are kept" in failed[0].error
    assert scripted.gone.wait(10)          # the stream was let go, not left open
    assert log.get_comparison(failed[0].comparison_id).status == "failed" and no_secret_in(tmp_path / "data")


def test_stop_aborts_a_stream_kept_open_at_once(scripted, tmp_path, settings):
    scripted.plan = kept_open
    runner, log = lab(tmp_path, settings, scripted)
    cancel = threading.Event()
    spec = build_spec(tagline(), models=["lab:m"], seeds=[1])
    events = []

    def drive():
        for event in runner.run(spec, cancel=cancel):
            events.append(event)
            if event.partial:
                cancel.set()                 # Stop, once the cells are streaming
    worker = threading.Thread(target=drive, daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "Stop waited for the open streams"
    assert any(event.partial for event in events)
    assert log.list_comparisons()[0].status == "cancelled"
    assert scripted.gone.wait(10)


def test_a_stream_cut_mid_token_says_so_and_keeps_its_text(scripted, tmp_path, settings):
    scripted.plan = cut
    runner, _ = lab(tmp_path, settings, scripted)
    failed = [r for r in records(runner.run(build_spec(tagline(), models=["lab:m", "tiny-text"], seeds=[1],
                                                       params={"max_new_tokens": 3}))) if r.model_id == "lab:m"]
    assert [r.status for r in failed] == ["error", "error"] and scripted.requests == 2     # not tried again
    assert "cut off mid-stream after 3 characters" in failed[0].error, failed[0].error
    assert "peer closed connection" in failed[0].error and "cannot reach" not in failed[0].error
    assert failed[0].output_text == "Hel"


def test_a_refusal_shows_the_servers_reason_without_the_key(scripted, tmp_path, settings, monkeypatch):
    monkeypatch.setenv("LAB_KEY", SECRET)
    scripted.plan = lambda handler, number: answer(handler, 400, {
        "detail": f"Server is pinned to 'a-folder'; requested 'm' (key {SECRET})"})
    runner, _ = lab(tmp_path, settings, scripted)
    (failed, _) = records(runner.run(build_spec(tagline(), models=["lab:m"], seeds=[1])))
    assert "answered 400: Server is pinned to 'a-folder'; requested 'm'" in failed.error, failed.error
    assert SECRET not in failed.error and SECRET[:8] not in failed.error and scripted.requests == 2


def test_429_with_retry_after_is_honoured_and_lowers_the_requests_in_flight(scripted, tmp_path, settings):
    limited = []

    def plan(handler, number):
        if number <= 8:                       # the first burst: every request told to wait 2 s
            limited.append(time.monotonic())
            answer(handler, 429, {"error": {"message": "slow down"}}, Retry_After="2")
        else:
            stream(handler, wait_s=0.3)
    scripted.plan = plan
    # No retries: a 429 that says when to come back is waited out, not counted against them.
    runner, log = lab(tmp_path, settings, scripted, max_concurrency=8, remote_retries=0)
    spec = build_spec(tagline(), values={"product": ["a", "b", "c", "d"]}, models=["lab:m"], seeds=[1])
    done = records(runner.run(spec))
    assert [r.status for r in done] == ["ok"] * 8, [r.error for r in done]
    later = scripted.arrivals[8:]
    assert min(when for when, _ in later) - limited[0] >= 1.9              # nobody came back before 2 s
    assert max(active for _, active in later) <= 4                          # half as many in flight after the 429s


@pytest.fixture
def hub_online(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.mark.parametrize("engine", ["lab", "hf"])
def test_server_errors_and_dropped_connections_are_tried_again(scripted, tmp_path, settings, monkeypatch, engine,
                                                               hub_online):
    def plan(handler, number):
        if number % 2:                        # each cell's first attempt fails: a 502, or a connection dropped
            if number % 4 == 1:
                answer(handler, 502, {"error": "bad gateway"})
            else:
                handler.close_connection = True
                handler.connection.close()
            return
        stream(handler)
    scripted.plan = plan
    runner, log = lab(tmp_path, settings, scripted, max_concurrency=1, remote_retries=2)
    if engine == "hf":
        monkeypatch.setenv("HF_TOKEN", SECRET)
        runner.settings = runner.settings.replace(hf_base_url=f"http://127.0.0.1:{scripted.server_port}",
                                                  remote_concurrency=1)
        runner.catalog.settings = runner.settings
    model = "lab:m" if engine == "lab" else "hf:owner/model"
    spec = build_spec(tagline(), values={"product": ["a", "b"]}, models=[model], seeds=[1])
    done = records(runner.run(spec))
    assert [r.status for r in done] == ["ok"] * 4, [r.error for r in done]
    assert {r.output_text for r in done} == {"Hello"} and scripted.requests == 8
