"""The served app on tiny models: start-up stays light, and every public endpoint answers through gradio_client."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_building_the_app_imports_no_model_library():
    code = ("import sys; from playground.settings import Settings; from playground.ui.app import build_app; "
            "import tempfile; build_app(Settings(data_dir=tempfile.mkdtemp(), offline=True)); "
            "print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture(scope="module")
def client(served_app):
    from gradio_client import Client

    return Client(served_app.url, verbose=False)


def test_list_and_render_templates(client):
    templates = client.predict("text", api_name="/list_templates")
    assert len(templates) >= 8 and all(t["modality"] == "text" for t in templates)
    name = templates[0]["name"]
    prompts = client.predict(name, None, api_name="/render_template")
    assert len(prompts) == len(templates[0]["variants"]) and all(p["prompt"] for p in prompts)


@pytest.mark.parametrize("modality, params", [
    ("text", {"max_new_tokens": 6}),
    ("image", {"width": 64, "height": 64, "num_inference_steps": 2}),
    ("music", {"duration_s": 0.5}),
])
def test_compare_each_modality(client, modality, params):
    template = client.predict(modality, api_name="/list_templates")[0]
    result = client.predict(template["name"], None, None, None, [1], params, False, api_name="/compare")
    runs = result["runs"]
    assert len(runs) == len(template["variants"]) and all(r["status"] == "ok" for r in runs)
    if modality == "text":
        assert all(isinstance(r["text"], str) for r in runs)
    else:
        assert all(r["file"].endswith(".png" if modality == "image" else ".wav") for r in runs)
    again = client.predict(result["comparison_id"], api_name="/comparison")
    assert [r["run_id"] for r in again["runs"]] == [r["run_id"] for r in runs]


def test_rate_history_and_export(client, served_app):
    template = client.predict("text", api_name="/list_templates")[1]
    result = client.predict(template["name"], None, None, None, [4], {"max_new_tokens": 4}, False,
                            api_name="/compare")
    run_id = result["runs"][0]["run_id"]
    rated = client.predict(run_id, 4, None, "crisp", api_name="/rate")
    assert rated["stars"] == 4 and rated["note"] == "crisp"
    history = client.predict("text", template["name"], "", 100, api_name="/history")
    assert any(r["run_id"] == run_id and r["stars"] == 4 for r in history)
    exported = client.predict(result["comparison_id"], "zip", api_name="/export_comparison")
    with zipfile.ZipFile(exported) as archive:
        rows = [json.loads(line) for line in archive.read("runs.jsonl").decode().splitlines()]
    assert {row["variant"] for row in rows} == set(template["variants"])


@pytest.mark.parametrize("args, message", [
    (("no-such-template", None, None, None, [1], {}, False), "no-such-template"),
    (("{text}", None, None, ["nobody/nothing"], [1], {}, False), "hub is offline"),
    (("{text}", None, None, None, [1], {"max_new_tokens": 10**9}, False), "max_new_tokens"),
    (("{text}", None, None, None, [-1], {}, False), "seed"),
    (("{image}", None, None, ["tiny-text"], [1], {}, False), "is a text model"),
    (("{image}", None, None, None, [1], {"width": 100000}, False), "width"),
    (("{music}", None, None, None, [1], {"duration_s": 600}, False), "duration_s"),
])
def test_bad_input_gets_a_clear_error_and_the_app_keeps_serving(client, args, message):
    from gradio_client.exceptions import AppError

    names = {m: client.predict(m, api_name="/list_templates")[0]["name"] for m in ("text", "image", "music")}
    args = (args[0].format(**names),) + args[1:]
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/compare")
    assert client.predict("music", api_name="/list_templates")
