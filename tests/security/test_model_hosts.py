"""A model id names a model, never a server: the operator alone chooses hosts, and a token goes only to the host it
was configured for. A loopback listener stands in for a stranger's host and records every request that reaches
it; through every door a model id comes in (runner, checks, CLI files, imports and re-runs, the API), it must
record none, and above all none carrying the operator's token."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from playground.registry import InvalidInput
from playground.runner import Runner
from playground.spec import build_spec, spec_from_runs
from playground.store import ImportLimits, RunLog
from playground.templates import make_template

TOKEN = "hf_operatorWRITEtoken0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent.parent


class Recorder(http.server.BaseHTTPRequestHandler):
    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"choices": [{"message": {"content": "stolen"}}]}')

    do_GET = do_POST = do_PUT = _record

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()


def with_credential(server) -> list[dict]:
    return [r for r in server.seen if TOKEN in json.dumps(r["headers"]) or TOKEN.encode() in r["body"]
            or "authorization" in {k.lower() for k in r["headers"]}]


def hostile_ids(url: str) -> list[str]:
    host = url.removeprefix("http://")
    return [f"hf:{url}/x", f"hf:{url.upper()}/x", f"hf://{host}/x", f"hf:{host}/x", f"openai:{url}/v1",
            f"hf:https://{host}"]


@pytest.fixture
def operator(monkeypatch, settings, tmp_path):
    """An operator with an HF token and the hub 'online' (the client would otherwise refuse every request)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")     # the operator's own (closed) server
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(settings.models_dir, target_is_directory=True)
    return settings.replace(data_dir=data)


def template(modality: str = "text"):
    return make_template(name="hosts", modality=modality, variants={"a": "a lantern", "b": "a kettle"})


def test_no_model_id_addresses_a_host_in_any_tab(listener, operator, catalog):
    from playground.engines.catalog import Catalog

    runner = Runner(Catalog(operator), RunLog(operator.data_dir), operator)
    for modality in ("text", "image"):
        for model in hostile_ids(listener.url):
            if model.startswith("openai:") and modality != "text":
                continue
            with pytest.raises(InvalidInput, match="model"):
                list(runner.run(build_spec(template(modality), models=[model], seeds=[1])))
    assert listener.seen == []


def test_a_judge_model_cannot_address_a_host(listener, operator):
    from playground.engines.catalog import Catalog

    runner = Runner(Catalog(operator), RunLog(operator.data_dir), operator)
    spec = build_spec(template(), models=["tiny-text"], seeds=[1], params={"max_new_tokens": 2},
                      checks=[{"type": "llm_judge", "rubric": "good?", "model": f"hf:{listener.url}/judge"}])
    with pytest.raises(InvalidInput, match="URL"):
        list(runner.run(spec))
    assert runner.log.list_comparisons() == []          # refused before anything was logged
    assert listener.seen == []


def test_the_hf_engine_itself_refuses_a_url_for_a_model(listener, operator):
    """Defence in depth: even a resolved model that slipped past the catalog never reaches the client."""
    from playground.engines.catalog import Resolved
    from playground.engines.hf_inference import HFInferenceModel
    from playground.registry import ENGINES

    forged = Resolved(f"hf:{listener.url}/x", "text", ENGINES["hf-text"], f"{listener.url}/x")
    with pytest.raises(InvalidInput):
        HFInferenceModel(forged, operator)
    assert listener.seen == []


def test_an_imported_run_rerun_cannot_address_a_host(listener, operator, tmp_path):
    from playground.engines.catalog import Catalog

    log = RunLog(operator.data_dir)
    row = {"modality": "text", "model_id": f"hf:{listener.url}/x", "prompt": "hello", "seed": 1, "params": {},
           "status": "ok", "output_text": "hi", "backend": "hf-text", "row": 0, "col": 0,
           "uid": "forgedrun0001", "comparison": {"uid": "forgedcomparison01", "title": "shared"}}
    export = tmp_path / "shared.jsonl"
    export.write_text(json.dumps(row) + "\n")
    report = log.import_jsonl(export, ImportLimits.from_settings(operator))
    assert report.imported == 1
    runs = log.list_runs()
    runner = Runner(Catalog(operator), log, operator)
    with pytest.raises(InvalidInput, match="URL"):
        list(runner.run(spec_from_runs(runs)))
    assert listener.seen == []


def test_a_cli_comparison_file_cannot_address_a_host(listener, operator, tmp_path):
    spec = {"template": "product-tagline", "models": [f"hf:{listener.url}/x"], "seeds": [1]}
    path = tmp_path / "comparison.json"
    path.write_text(json.dumps(spec))
    env = {**os.environ, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0", "PLAYGROUND_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "playground", "--data-dir", str(operator.data_dir), "run",
                           str(path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "URL" in done.stderr, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    assert listener.seen == []


@pytest.mark.slow
def test_the_api_cannot_address_a_host(listener, served_app, monkeypatch):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    client = Client(served_app.url, verbose=False)
    for model in hostile_ids(listener.url):
        with pytest.raises(AppError, match="model"):
            client.predict("product-tagline", None, None, [model], [1], {"max_new_tokens": 2}, False,
                           api_name="/compare")
    with pytest.raises(AppError, match="URL"):
        client.predict("product-tagline", None, None, ["tiny-text"], [1], {"max_new_tokens": 2}, False,
                       [{"type": "llm_judge", "rubric": "good?", "model": f"hf:{listener.url}/judge"}],
                       api_name="/compare")
    assert listener.seen == [] and with_credential(listener) == []
