"""Remote engines against real servers on 127.0.0.1: `transformers serve` (transformers' own OpenAI-compatible
server) on the tiny text model, and, at the edge of the outside world, a small HTTP server for faults that server
cannot produce (a refused key, a 429 storm, malformed SSE, a cut stream) and for the text-to-image provider shape."""

from __future__ import annotations

import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from playground.engines.catalog import Catalog
from playground.registry import InvalidInput
from playground.runner import Runner
from playground.spec import build_spec
from playground.store import RunLog
from playground.templates import make_template

SECRET = "sk-test-0123456789abcdefSECRET"
SERVED = "playground/tiny-text"     # the id transformers serve answers for (see start_transformers_serve)
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_transformers_serve(folder: Path, tmp: Path) -> tuple[subprocess.Popen, str]:
    """The server answers for the model SERVED, a hub-style id (a model id is never a path or a URL): the folder is
    linked under that relative name in the server's working directory."""
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp / "hf-home")}
    (tmp / "hf-home" / "hub").mkdir(parents=True, exist_ok=True)
    link = tmp / "serve-root" / SERVED
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(folder, target_is_directory=True)
    process = subprocess.Popen(["transformers", "serve", SERVED, "--host", "127.0.0.1", "--port", str(port)],
                               env=env, cwd=tmp / "serve-root", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.5)
        if process.poll() is not None:
            break
    process.kill()
    raise RuntimeError("transformers serve did not start")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.fixture(scope="module")
def tiny_folder(catalog) -> Path:
    return Path(catalog.resolve("text", "tiny-text").source)


@pytest.fixture(scope="module")
def served(tiny_folder, tmp_path_factory):
    process, url = start_transformers_serve(tiny_folder, tmp_path_factory.mktemp("serve"))
    yield url
    stop(process)


def lab(tmp_path, settings, url, models, **extra) -> tuple[Runner, RunLog, Catalog]:
    """A data dir whose endpoints.yaml names one server `lab` with its key in LAB_KEY."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(settings.models_dir, target_is_directory=True)
    entry = {"name": "lab", "base_url": url, "api_key_env": "LAB_KEY", "models": models, **extra}
    (data / "endpoints.yaml").write_text(json.dumps({"endpoints": [entry]}))
    local = settings.replace(data_dir=data, remote_retries=extra.pop("retries", 1))
    catalog = Catalog(local)
    log = RunLog(data)
    return Runner(catalog, log, local), log, catalog


def tagline() -> object:
    return make_template(name="remote-test", modality="text", system="Answer in one line.",
                         variants={"plain": "Write a tagline for {{ product }}.",
                                   "role": "You are a copywriter. A tagline for {{ product }}."},
                         variables={"product": "a lantern"})


def no_secret_in(folder: Path) -> bool:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and SECRET.encode() in path.read_bytes():
            return False
    return True


# ---- against transformers serve -------------------------------------------------------------------------------------

def test_local_and_remote_models_share_one_grid(served, tiny_folder, tmp_path, settings, monkeypatch):
    monkeypatch.setenv("LAB_KEY", SECRET)
    runner, log, catalog = lab(tmp_path, settings, served, [SERVED])
    remote = f"lab:{SERVED}"
    assert (f"{SERVED} · lab (http://127.0.0.1:{served.split(':')[2].split('/')[0]})", remote) in \
        catalog.model_choices("text")
    spec = build_spec(tagline(), values={"product": ["a lantern", "a kettle"]}, models=[remote, "tiny-text"],
                      seeds=[1, 2], params={"max_new_tokens": 6, "top_k": 20}, rerun=True)
    events = list(runner.run(spec))
    results = [e.result.record for e in events if e.result]
    assert len(results) == 16 and all(r.status == "ok" for r in results), [r.error for r in results]
    partial_cells = {i for e in events for i in e.partial}
    assert any(spec.cells[i].model_id == remote for i in partial_cells)       # the remote cells streamed
    remote_runs = [r for r in results if r.model_id == remote]
    first = remote_runs[0]
    assert first.backend == "openai" and first.endpoint == served.rsplit("/", 1)[0]
    assert json.loads(first.formatted_prompt)[0] == {"role": "system", "content": "Answer in one line."}
    assert first.model_revision.startswith(SERVED) and first.completion_tokens == 6
    assert first.prompt_tokens > 0 and first.ttft_s is not None and "openai" in first.versions
    assert "top_k" not in first.params and first.params["max_new_tokens"] == 6   # each engine its own options
    assert log.get_comparison(first.comparison_id).status == "done"
    export = log.export(tmp_path / "data" / "out.zip", "zip", runs=results)
    assert export.exists() and no_secret_in(tmp_path / "data")


def test_many_cells_are_in_flight_at_once(served, tiny_folder, tmp_path, settings, monkeypatch):
    from playground.engines import openai_compat

    runner, log, _ = lab(tmp_path, settings, served, [SERVED], max_concurrency=8)
    active, peak, lock = [0], [0], threading.Condition()
    real = openai_compat.OpenAICompatModel._one

    def counting(self, *args):
        with lock:          # each request waits (up to 10 s) for the others to start: a busy machine stays exact
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            lock.notify_all()
            lock.wait_for(lambda: peak[0] >= 8, timeout=10)
        try:
            return real(self, *args)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(openai_compat.OpenAICompatModel, "_one", counting)
    spec = build_spec(tagline(), values={"product": ["a", "b", "c", "d"]}, models=[f"lab:{SERVED}"],
                      seeds=[1], params={"max_new_tokens": 24}, rerun=True)
    results = [e.result.record for e in runner.run(spec) if e.result]
    assert len(results) == 8 and all(r.status == "ok" for r in results)
    assert peak[0] == 8


def test_stop_mid_stream_cancels_the_rest(served, tiny_folder, tmp_path, settings):
    runner, log, _ = lab(tmp_path, settings, served, [SERVED], max_concurrency=2)
    spec = build_spec(tagline(), values={"product": ["a", "b", "c", "d"]}, models=[f"lab:{SERVED}"],
                      seeds=[1], params={"max_new_tokens": 200}, rerun=True)
    cancel = threading.Event()
    started = None
    for event in runner.run(spec, cancel=cancel):
        if event.partial and started is None:
            started = time.perf_counter()
            cancel.set()
    assert started is not None and time.perf_counter() - started < 10
    comparison = log.list_comparisons()[0]
    assert comparison.status == "cancelled" and comparison.run_count < 8


def test_a_bad_model_name_fails_its_cells_with_what_to_fix(served, tmp_path, settings):
    runner, log, _ = lab(tmp_path, settings, served, [])
    spec = build_spec(tagline(), models=["lab:no-such/model", "tiny-text"], seeds=[1], params={"max_new_tokens": 3})
    records = [e.result.record for e in runner.run(spec) if e.result]
    failed = [r for r in records if r.model_id == "lab:no-such/model"]
    assert len(failed) == 2 and all(r.status == "error" for r in failed)
    assert "127.0.0.1" in failed[0].error and ("model" in failed[0].error or "400" in failed[0].error)
    # The server's own reason, not just its status code.
    assert f"answered 400: Server is pinned to '{SERVED}'; requested 'no-such/model'" in failed[0].error, \
        failed[0].error
    assert all(r.status == "ok" for r in records if r.model_id == "tiny-text")
    assert log.get_comparison(records[0].comparison_id).status == "partial"


def test_a_server_killed_mid_grid_fails_the_rest_and_keeps_what_was_logged(tiny_folder, tmp_path, settings):
    process, url = start_transformers_serve(tiny_folder, tmp_path)
    runner, log, _ = lab(tmp_path, settings, url, [SERVED], max_concurrency=1)
    spec = build_spec(tagline(), values={"product": ["a", "b", "c", "d"]}, models=[f"lab:{SERVED}"],
                      seeds=[1], params={"max_new_tokens": 4}, rerun=True)
    records = []
    try:
        for event in runner.run(spec):
            if event.result:
                records.append(event.result.record)
                if len(records) == 1:
                    stop(process)
    finally:
        stop(process)
    assert len(records) == 8 and records[0].status == "ok"
    assert all(r.status == "error" and "cannot reach" in r.error for r in records[2:])
    comparison = log.get_comparison(records[0].comparison_id)
    assert comparison.status == "partial" and len(comparison.runs) == 8


def test_the_cli_runs_remote_and_local_models_and_keeps_no_key(served, tiny_folder, tmp_path, models_dir):
    data = tmp_path / "cli-data"
    data.mkdir()
    (data / "models").symlink_to(models_dir, target_is_directory=True)
    env = {**os.environ, "OPENAI_BASE_URL": served, "OPENAI_API_KEY": SECRET, "HF_HUB_OFFLINE": "1"}
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "playground", "--data-dir", str(data), "run",
                           "prompts/text/product-tagline.md", "--models", f"openai:{SERVED}", "tiny-text",
                           "--seeds", "1", "2", "--param", "max_new_tokens=4"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    log = RunLog(data)
    runs = log.list_runs(limit=100)
    assert len(runs) == 12 and all(r.status == "ok" for r in runs)
    assert {r.backend for r in runs} == {"openai", "local-text"}
    log.close()
    assert no_secret_in(data) and SECRET not in done.stdout + done.stderr


@pytest.fixture
def hub_online(monkeypatch):
    """The tests run with HF_HUB_OFFLINE=1, which huggingface_hub applies to every request, local servers too."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def test_hf_inference_client_streams_chat_from_the_same_server(served, tiny_folder, tmp_path, settings, monkeypatch,
                                                               hub_online):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    runner, log, _ = lab(tmp_path, settings, served, [])
    runner.settings = runner.settings.replace(hf_base_url=served.removesuffix("/v1"))
    runner.catalog.settings = runner.settings
    spec = build_spec(tagline(), models=[f"hf:{SERVED}"], seeds=[1], params={"max_new_tokens": 5})
    events = list(runner.run(spec))
    records = [e.result.record for e in events if e.result]
    assert [r.status for r in records] == ["ok", "ok"], records[0].error
    assert records[0].backend == "hf-text" and records[0].completion_tokens == 5
    assert any(e.partial for e in events) and no_secret_in(tmp_path / "data")


# ---- faults a real server will not produce on demand: a scripted server on 127.0.0.1 ------------------------------

class Script(http.server.BaseHTTPRequestHandler):
    """Answers POSTs as `self.server.behaviour` says; counts requests."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests += 1
        self.server.authorizations.append(self.headers.get("Authorization"))
        behaviour = self.server.behaviour
        if behaviour == "401":
            self._json(401, {"error": {"message": f"Incorrect API key provided: {SECRET}", "type": "auth"}})
        elif behaviour == "429":
            self._json(429, {"error": {"message": "slow down"}})
        elif behaviour in ("malformed", "cut"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            chunk = {"id": "1", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if behaviour == "malformed":
                self.wfile.write(b"data: {not json\n\n")
            self.wfile.flush()
        elif behaviour == "image":
            from PIL import Image

            buffer = io.BytesIO()
            Image.new("RGB", (64, 64), (200, 30, 30)).save(buffer, format="PNG")
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(buffer.getvalue())

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Script)
    server.requests, server.authorizations, server.behaviour = 0, [], "401"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.mark.parametrize("behaviour, expected", [
    ("401", "refused the API key (401): set LAB_KEY"),
    ("429", "rate limiting (429) after 1 retries"),
    ("malformed", "127.0.0.1"),
    ("cut", "cut off mid-stream"),
])
def test_server_faults_fail_cells_with_what_to_fix(scripted, tmp_path, settings, monkeypatch, behaviour, expected):
    monkeypatch.setenv("LAB_KEY", SECRET)
    scripted.behaviour = behaviour
    runner, log, _ = lab(tmp_path, settings, f"http://127.0.0.1:{scripted.server_port}/v1", ["m"])
    spec = build_spec(tagline(), models=["lab:m", "tiny-text"], seeds=[1], params={"max_new_tokens": 3})
    records = [e.result.record for e in runner.run(spec) if e.result]
    failed = [r for r in records if r.model_id == "lab:m"]
    assert len(failed) == 2 and all(r.status == "error" for r in failed)
    assert expected in failed[0].error, failed[0].error
    assert SECRET not in failed[0].error and SECRET[:8] not in failed[0].error
    assert all(r.status == "ok" for r in records if r.model_id == "tiny-text")
    if behaviour == "429":
        assert scripted.requests == 4          # two cells, each tried once and retried once
    assert scripted.authorizations[0] == f"Bearer {SECRET}"
    assert no_secret_in(tmp_path / "data")


def test_hf_text_to_image_through_a_dedicated_endpoint(scripted, tmp_path, settings, monkeypatch, hub_online):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    scripted.behaviour = "image"
    runner, log, _ = lab(tmp_path, settings, "http://127.0.0.1:1/v1", [])
    runner.settings = runner.settings.replace(hf_base_url=f"http://127.0.0.1:{scripted.server_port}")
    runner.catalog.settings = runner.settings
    template = make_template(name="image-remote", modality="image", variants={"a": "a red fox", "b": "a blue fox"})
    spec = build_spec(template, models=["hf:owner/any-model"], seeds=[3],
                      params={"width": 64, "height": 64, "num_inference_steps": 2})
    records = [e.result.record for e in runner.run(spec) if e.result]
    assert [r.status for r in records] == ["ok", "ok"]
    assert records[0].artifact.endswith(".png") and records[0].backend == "hf-image"
    assert no_secret_in(tmp_path / "data")


def test_remote_ids_are_checked(tmp_path, settings):
    _, _, catalog = lab(tmp_path, settings, "http://127.0.0.1:9/v1", ["m"])
    with pytest.raises(InvalidInput, match="unknown engine prefix 'nope:'"):
        catalog.resolve("text", "nope:model")
    with pytest.raises(InvalidInput, match="not available for music"):
        catalog.resolve("music", "lab:m")
    with pytest.raises(InvalidInput, match="no OpenAI-compatible endpoint"):
        Catalog(settings.replace(data_dir=tmp_path / "empty")).resolve("text", "openai:gpt")
