"""Experiments end to end from the command line, as CI runs them: a 1,200-cell experiment SIGKILLed a third of the
way and finished by the same command with every cell logged once; --fail-under gating; the batch hand-off round
trip through a real `transformers serve`; an app process that resumes a killed job at start-up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from playground.store import RunLog

ROOT = Path(__file__).resolve().parent.parent
TAGLINE = ROOT / "prompts" / "text" / "product-tagline.md"
pytestmark = pytest.mark.slow


def data_dir(tmp_path, models_dir) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "models").symlink_to(models_dir, target_is_directory=True)
    return folder


def products(path: Path, count: int) -> Path:
    path.write_text("product,expected\n" + "".join(f"gadget number {i},gadget\n" for i in range(count)))
    return path


def cli(folder: Path, *args) -> list[str]:
    return [sys.executable, "-m", "playground", "--data-dir", str(folder), "--offline", *args]


def environment() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}


def experiment_cells(folder: Path) -> list[tuple]:
    with RunLog(folder) as log:
        return log._db().execute("SELECT cell_key, status FROM runs WHERE cell_key IS NOT NULL").fetchall()


def test_a_killed_experiment_finishes_with_every_cell_once_and_gates_ci(tmp_path, models_dir, text_model):
    folder = data_dir(tmp_path, models_dir)
    rows = products(tmp_path / "products.csv", 200)
    command = cli(folder, "experiment", "run", str(TAGLINE), "--dataset", str(rows), "--models", "tiny-text",
                  "--seeds", "1", "2", "--param", "max_new_tokens=1")
    first = subprocess.Popen(command, env=environment(), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 900
    while len(experiment_cells(folder)) < 400:
        assert first.poll() is None, first.stdout.read()
        assert time.monotonic() < deadline, "the experiment did not get a third of the way"
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    logged = len(experiment_cells(folder))
    assert 400 <= logged < 1200
    again = subprocess.run(command, env=environment(), cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(continuing)" in again.stderr
    cells = experiment_cells(folder)
    assert len(cells) == 1200 and len({key for key, _ in cells}) == 1200
    assert all(status == "ok" for _, status in cells)
    assert "1,200/1,200 cells · 0 failed" in again.stdout
    with RunLog(folder) as log:
        (experiment,) = log.list_comparisons()
        assert experiment.run_count == 1200 and experiment.status == "done"
    gated = subprocess.run(command + ["--fail-under", "length=1000000"], env=environment(), cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert "FAIL --fail-under plain: length mean" in gated.stdout and "< 1e+06" in gated.stdout
    assert len(experiment_cells(folder)) == 1200                 # nothing ran twice


def test_cli_commands_and_bad_input(tmp_path, models_dir, text_model):
    folder = data_dir(tmp_path, models_dir)
    rows = products(tmp_path / "products.csv", 4)
    base = ["experiment", "run", "product-tagline", "--dataset", str(rows), "--models", "tiny-text"]

    def call(*args):
        return subprocess.run(cli(folder, *args), env=environment(), cwd=ROOT, capture_output=True, text=True,
                              timeout=600)

    wrong = call(*base, "--map", "product=prodct")
    assert wrong.returncode == 2 and "no column 'prodct'; did you mean 'product'" in wrong.stderr
    dry = call(*base, "--dry-run", "--param", "max_new_tokens=1")
    assert dry.returncode == 0 and "4 rows x 3 variants x 1 seed x 1 model = 12 cells" in dry.stdout
    spec = tmp_path / "experiment.yaml"
    spec.write_text(f"template: {TAGLINE}\ndataset: products.csv\nmodels: [tiny-text]\nseeds: [3]\n"
                    "params: {max_new_tokens: 1}\nexpected: expected\nchecks: [{type: contains}]\n"
                    "fail_under: {contains: 0}\n")
    done = call("experiment", "run", str(spec), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every --fail-under threshold met" in done.stdout
    status = json.loads(call("experiment", "status", "1", "--json").stdout)
    assert (status["status"], status["done"], status["total"]) == ("done", 12, 12)
    assert "#1" in call("experiment", "list").stdout
    exported = tmp_path / "results.parquet"
    assert call("experiment", "export", "1", "-o", str(exported)).returncode == 0
    (tmp_path / "other").mkdir()
    other = data_dir(tmp_path / "other", models_dir)
    imported = subprocess.run(cli(other, "experiment", "import", str(exported)), env=environment(), cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
    assert "imported 12 runs" in imported.stdout
    shown = call("dataset", "show", "products")
    assert "product (text), expected (text)" in shown.stdout
    assert call("experiment", "cancel", "1").returncode == 2        # a finished experiment stays as it is


def test_batch_round_trip_through_transformers_serve(tmp_path, models_dir, text_model, monkeypatch):
    from test_engines_remote import SERVED, start_transformers_serve, stop

    process, url = start_transformers_serve(Path(text_model.source), tmp_path)
    try:
        folder = data_dir(tmp_path, models_dir)
        (folder / "endpoints.yaml").write_text(json.dumps({"endpoints": [
            {"name": "lab", "base_url": url, "models": [SERVED]}]}))
        rows = products(tmp_path / "products.csv", 5)
        created = subprocess.run(cli(folder, "experiment", "create", "product-tagline", "--dataset", str(rows),
                                     "--models", f"lab:{SERVED}", "--seeds", "1", "2", "--param",
                                     "max_new_tokens=4"), env=environment(), cwd=ROOT, capture_output=True, text=True,
                                 timeout=600)
        assert created.returncode == 0 and "30 cells, paused" in created.stdout, created.stdout + created.stderr
        requests_file = tmp_path / "requests.jsonl"
        exported = subprocess.run(cli(folder, "experiment", "export-batch", "1", "-o", str(requests_file)),
                                  env=environment(), cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert "wrote 30 requests" in exported.stdout, exported.stderr
        requests = [json.loads(line) for line in requests_file.read_text().splitlines()]
        assert requests[0]["body"]["model"] == SERVED

        def send(request):         # what a batch engine does with each line, written in its output format
            post = urllib.request.Request(url.removesuffix("/v1") + request["url"], method=request["method"],
                                          data=json.dumps(request["body"]).encode(),
                                          headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(post, timeout=300) as answer:
                body = json.loads(answer.read())
            return {"id": f"batch_req_{request['custom_id']}", "custom_id": request["custom_id"],
                    "response": {"status_code": 200, "request_id": body.get("id"), "body": body}, "error": None}

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(send, requests))
        results = tmp_path / "results.jsonl"
        results.write_text("".join(json.dumps(a) + "\n" for a in answers))
        imported = subprocess.run(cli(folder, "experiment", "import-batch", "1", str(results)), env=environment(),
                                  cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert imported.returncode == 0 and "logged 30 answers" in imported.stdout, imported.stdout + imported.stderr
        again = subprocess.run(cli(folder, "experiment", "import-batch", "1", str(results)), env=environment(),
                               cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert "logged 0 answers" in again.stdout and "30 cells were already logged" in again.stdout
        cells = experiment_cells(folder)
        assert len(cells) == 30 and len({key for key, _ in cells}) == 30
        with RunLog(folder) as log:
            runs = log.list_runs(limit=100)
            assert all(r.output_text is not None and r.completion_tokens for r in runs)
            assert {r.model_id for r in runs} == {f"lab:{SERVED}"}
    finally:
        stop(process)


def test_the_app_resumes_a_killed_job_at_start_up(tmp_path, models_dir, text_model, settings, catalog):
    folder = data_dir(tmp_path, models_dir)
    rows = products(tmp_path / "products.csv", 200)       # 600 cells: a fast machine is still midway at the kill
    command = cli(folder, "experiment", "run", "product-tagline", "--dataset", str(rows), "--models", "tiny-text",
                  "--param", "max_new_tokens=1")
    killed = subprocess.Popen(command, env=environment(), cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(experiment_cells(folder)) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert 10 <= len(experiment_cells(folder)) < 600
    from playground.services import Services

    services = Services.create(settings.replace(data_dir=folder), catalog=catalog)
    services.start_jobs()                       # what the app does when it starts
    try:
        deadline = time.monotonic() + 600
        while services.jobs.list()[0].status != "done":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        cells = experiment_cells(folder)
        assert len(cells) == 600 and len({key for key, _ in cells}) == 600
    finally:
        services.stop_jobs()
        services.log.close()
