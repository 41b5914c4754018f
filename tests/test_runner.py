"""The comparison runner on tiny models and a temporary run log: grouping, batching, cache, failures, cancel, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from playground.registry import InvalidInput
from playground.runner import Runner
from playground.spec import build_spec, spec_from_runs
from playground.store import RunLog
from playground.templates import make_template

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def log(tmp_path):
    run_log = RunLog(tmp_path)
    yield run_log
    run_log.close()


@pytest.fixture
def runner(catalog, log, settings):
    return Runner(catalog, log, settings)


def tagline(modality="text", **extra):
    variants = {"plain": "Write a tagline for {{ product }}.",
                "role": "You are a copywriter. Write a tagline for {{ product }}.",
                "short": "Tagline, five words, for {{ product }}."}
    return make_template(name="tagline-test", modality=modality, variants=variants,
                         variables={"product": "a lantern"}, **extra)


def run_all(runner, spec, cancel=None):
    return [p for p in runner.run(spec, cancel=cancel) if p.result is not None]


def test_build_spec_lays_out_variants_as_columns():
    spec = build_spec(tagline(), values={"product": ["a lantern", "a kettle"]}, models=["tiny-text"],
                      seeds=[1, 2], params={"max_new_tokens": 4})
    assert len(spec.cells) == 3 * 2 * 2
    assert {c.col for c in spec.cells} == {0, 1, 2}
    assert len({c.row for c in spec.cells}) == 4
    first_row = [c for c in spec.cells if c.row == 0]
    assert [c.variant for c in first_row] == ["plain", "role", "short"]
    assert spec.template_hash == tagline().hash


def test_grid_over_the_cap_is_refused():
    with pytest.raises(InvalidInput, match="limit is 8"):
        build_spec(tagline(), models=["tiny-text"], seeds=[1, 2, 3], max_cells=8)


def test_text_comparison_is_logged_cell_by_cell(runner, log, catalog):
    spec = build_spec(tagline(), models=["tiny-text"], seeds=[1, 2], params={"max_new_tokens": 6})
    events = list(runner.run(spec))
    results = [e.result for e in events if e.result]
    assert [e.done for e in events if e.result] == list(range(1, 7))
    assert all(r.ok and r.record.output_text is not None for r in results)
    comparison = log.get_comparison(events[0].comparison_id)
    assert comparison.status == "done" and len(comparison.runs) == 6
    run = comparison.runs[0]
    assert run.template_name == "tagline-test" and run.template_hash == tagline().hash
    from playground.engines.base import choose_dtype

    assert run.model_revision.startswith("built:") and run.device == "cpu" and run.dtype == choose_dtype("cpu")
    assert run.params["precision"] == run.dtype        # "auto" is logged as what it meant here
    assert run.versions["torch"] and run.params["max_new_tokens"] == 6
    assert run.prompt_tokens > 0 and run.completion_tokens > 0 and run.wall_s > 0


def in_cell_order(progress):
    """Finished cells in the order of the grid (a batch's cells may finish in any order)."""
    return sorted(progress, key=lambda p: p.result.index)


def test_second_run_is_served_from_the_cache(runner, log):
    spec = build_spec(tagline(), models=["tiny-text"], seeds=[5], params={"max_new_tokens": 6})
    first = in_cell_order(run_all(runner, spec))
    started = time.perf_counter()
    second = in_cell_order(run_all(runner, spec))
    cached_latency = (time.perf_counter() - started) / len(second)
    assert all(p.result.cached for p in second)
    assert [p.result.record.output_text for p in second] == [p.result.record.output_text for p in first]
    assert all(p.result.record.cached_from == f.result.record.id for p, f in zip(second, first))
    print(f"\ncached cell latency: {cached_latency * 1000:.1f} ms")
    fresh = in_cell_order(run_all(runner, replace(spec, rerun=True)))
    assert not any(p.result.cached for p in fresh)
    assert [p.result.record.output_text for p in fresh] == [p.result.record.output_text for p in first]


def test_one_failing_cell_does_not_stop_the_others(runner, log):
    template = make_template(name="context-test", modality="text",
                             variants={"short": "Say hi.", "huge": "word " * 1500})
    spec = build_spec(template, models=["tiny-text"], seeds=[1], params={"max_new_tokens": 700})
    results = [p.result for p in run_all(runner, spec)]
    by_variant = {r.cell.variant: r.record for r in results}
    assert by_variant["short"].status == "ok"
    assert by_variant["huge"].status == "error" and "context" in by_variant["huge"].error
    logged = log.get_comparison(results[0].record.comparison_id).runs
    assert sorted(r.status for r in logged) == ["error", "ok"]


def test_bad_input_is_refused_before_anything_is_logged(runner, log):
    before = len(log.list_comparisons())
    for models, params, field in ((["tiny-text", "nobody/nothing"], {}, "model"),
                                  (["tiny-image"], {}, "model"),
                                  (["tiny-text"], {"max_new_tokens": 10**9}, "max_new_tokens")):
        spec = build_spec(tagline(), models=models, seeds=[1], params=params)
        with pytest.raises(InvalidInput) as error:
            list(runner.run(spec))
        assert error.value.field == field
    assert len(log.list_comparisons()) == before


def test_cancel_stops_the_rest_of_the_grid(runner, log):
    spec = build_spec(tagline(), values={"product": ["a", "b", "c", "d"]}, models=["tiny-text"], seeds=[1, 2],
                      params={"max_new_tokens": 64})
    cancel = threading.Event()
    seen = []
    for progress in runner.run(spec, cancel=cancel):
        seen.append(progress)
        cancel.set()            # stop as soon as anything arrives
    comparison = log.get_comparison(seen[0].comparison_id)
    assert comparison.status == "cancelled"
    assert len(comparison.runs) < len(spec.cells)


@pytest.mark.parametrize("modality, model, params, ext", [
    ("image", "tiny-image", {"width": 64, "height": 64, "num_inference_steps": 2}, ".png"),
    ("music", "tiny-music", {"duration_s": 0.5}, ".wav"),
])
def test_media_comparisons_write_artifacts(runner, log, modality, model, params, ext):
    spec = build_spec(tagline(modality), models=[model], seeds=[3], params=params)
    results = [p.result for p in run_all(runner, spec)]
    assert len(results) == 3
    for result in results:
        assert result.ok, result.record.error
        path = log.artifact_path(result.record)
        assert path.suffix == ext and path.stat().st_size > 0
    # Re-running the logged comparison reproduces every file byte for byte.
    again = [p.result for p in run_all(runner, spec_from_runs(log.get_comparison(results[0].record.comparison_id).runs))]
    for old, new in zip(results, again):
        assert log.artifact_path(new.record).read_bytes() == log.artifact_path(old.record).read_bytes()


def test_cli_runs_a_template_file_end_to_end(tmp_path, models_dir):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(models_dir, target_is_directory=True)
    comparison = {"modality": "text", "name": "cli-test", "variants": {"a": "Hello {{ who }}", "b": "Hi {{ who }}"},
                  "values": {"who": ["there", "world"]}, "models": ["tiny-text"], "seeds": [1],
                  "params": {"max_new_tokens": 5}}
    spec_file = tmp_path / "comparison.json"
    spec_file.write_text(json.dumps(comparison))
    export = tmp_path / "out.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "playground", "--offline", "--data-dir", str(data_dir), "run",
                           str(spec_file), "--export", str(export), "--quiet"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "4 cells, 0 failed" in done.stdout
    lines = export.read_text().splitlines()
    assert len(lines) == 4 and {json.loads(line)["variant"] for line in lines} == {"a", "b"}

    archive = tmp_path / "all.zip"
    done = subprocess.run([sys.executable, "-m", "playground", "--data-dir", str(data_dir), "export", str(archive)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "exported 4 runs" in done.stdout, done.stderr
    done = subprocess.run([sys.executable, "-m", "playground", "--data-dir", str(tmp_path / "other"), "import",
                           str(archive)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "imported 4 runs, 0 bad rows" in done.stdout, done.stderr

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    done = subprocess.run([sys.executable, "-m", "playground", "--offline", "--data-dir", str(data_dir), "run",
                           str(bad)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not valid JSON" in done.stderr


@pytest.mark.parametrize("modality, model, params", [
    ("text", "tiny-text", {"max_new_tokens": 200}),
    ("image", "tiny-image", {"width": 64, "height": 64, "num_inference_steps": 20}),
    ("music", "tiny-music", {"duration_s": 3.0}),
])
def test_stop_interrupts_a_running_batch(runner, log, modality, model, params):
    spec = build_spec(tagline(modality), models=[model], seeds=[1], params=params)
    cancel = threading.Event()
    events = []
    for progress in runner.run(spec, cancel=cancel):
        events.append(progress)
        if progress.partial or progress.step:       # the batch is under way: press Stop
            cancel.set()
    comparison = log.get_comparison(events[0].comparison_id)
    assert comparison.status == "cancelled" and comparison.runs == []
    assert not any(e.result for e in events)


# ---- comparison status, failures that are not the model's, resolution ----------------------------------------------

def test_status_says_whether_every_cell_worked(runner, log):
    good = make_template(name="ok-test", modality="text", variants={"a": "Say hi.", "b": "Say bye."})
    mixed = make_template(name="mixed-test", modality="text", variants={"short": "Say hi.", "huge": "word " * 1500})
    bad = make_template(name="bad-test", modality="text", variants={"huge": "word " * 1500})
    statuses = {}
    for template in (good, mixed, bad):
        spec = build_spec(template, models=["tiny-text"], seeds=[1], params={"max_new_tokens": 700}, rerun=True)
        comparison_id = run_all(runner, spec)[0].comparison_id
        statuses[template.name] = log.get_comparison(comparison_id).status
    assert statuses == {"ok-test": "done", "mixed-test": "partial", "bad-test": "failed"}


def test_a_failed_media_write_fails_its_own_cell_only(runner, log, monkeypatch):
    real_write = log._write_artifact
    calls = []

    def flaky(data, ext):
        calls.append(ext)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write(data, ext)

    monkeypatch.setattr(log, "_write_artifact", flaky)
    spec = build_spec(tagline("image"), models=["tiny-image"], seeds=[1],
                      params={"width": 64, "height": 64, "num_inference_steps": 1}, rerun=True)
    results = [p.result.record for p in run_all(runner, spec)]
    assert [r.status for r in results].count("error") == 1 and len(results) == 3
    failed = next(r for r in results if r.status == "error")
    assert "No space left on device" in failed.error and "data dir" in failed.error and failed.artifact is None
    assert log.get_comparison(results[0].comparison_id).status == "partial"


def test_a_writer_killed_while_the_log_is_open_reads_as_interrupted_without_a_restart(tmp_path, monkeypatch):
    run_log = RunLog(tmp_path)             # the app's log, open since before the other process started
    writer = subprocess.Popen([sys.executable, "-c", "import os, sys, time; from playground.store import RunLog; "
                               "log = RunLog(sys.argv[1]); print(log.start_comparison('text', 'cli run', "
                               "spec={'pid': os.getpid()}), flush=True); time.sleep(120)", str(tmp_path)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        comparison = int(writer.stdout.readline())
        assert run_log.get_comparison_header(comparison).status == "running"
    finally:
        writer.kill()
        writer.wait(30)
    clock = [time.monotonic()]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    assert run_log.list_comparisons()[0].status == "running"              # checked a moment ago: not yet
    clock[0] += run_log.stale_check_every_s
    assert run_log.list_comparisons()[0].status == "interrupted"
    assert run_log.get_comparison_header(comparison).status == "interrupted"
    run_log.close()


def test_a_killed_run_is_marked_interrupted_at_start_up(tmp_path):
    run_log = RunLog(tmp_path)
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = int(child.stdout)           # a process that has ended
    stale = run_log.start_comparison("text", "killed", spec={"pid": gone})
    alive = run_log.start_comparison("text", "still running", spec={"pid": os.getpid()})
    assert run_log.interrupt_stale() == 1
    assert run_log.get_comparison(stale).status == "interrupted"
    assert run_log.get_comparison(alive).status == "running"
    run_log.close()


def test_each_model_is_resolved_once_per_comparison(runner, catalog, monkeypatch):
    calls = []
    real = catalog.resolve
    monkeypatch.setattr(catalog, "resolve", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    spec = build_spec(tagline(), values={"product": ["a", "b", "c", "d"]}, models=["tiny-text"], seeds=[1, 2, 3],
                      params={"max_new_tokens": 2}, rerun=True)
    assert len(spec.cells) == 36
    run_all(runner, spec)
    assert calls == ["tiny-text"]


def test_the_record_keeps_what_the_model_saw(runner):
    spec = build_spec(tagline(system="Be brief."), models=["tiny-text"], seeds=[1], params={"max_new_tokens": 3},
                      rerun=True)
    record = run_all(runner, spec)[0].result.record
    assert record.formatted_prompt.startswith("<|system|>\nBe brief.") and record.backend == "local-text"
    assert record.model_revision.startswith("built:tiny-text@") and record.ttft_s is not None


# ---- the GPU boundary ----------------------------------------------------------------------------------------------

def test_gpu_function_arguments_and_events_pickle(catalog, settings):
    import pickle

    from conftest import load, options
    from playground.engines import gpu
    from playground.engines.base import GenerationRequest

    model = load(catalog, "image", "tiny-image")
    args = ("image", model.model_id, model.revision, [GenerationRequest("a red fox", 3)],
            options("image", {"width": 64, "height": 64, "num_inference_steps": 2}, settings))
    assert pickle.loads(pickle.dumps(args)) == args
    events = list(gpu.stream_on_gpu(*args))
    assert [type(e).__name__ for e in events] == ["Step", "Step", "Finished"]
    for event in events:
        assert type(pickle.loads(pickle.dumps(event))) is type(event)
    assert 15 <= gpu.lease_seconds(*args) <= 300


_FORKED_GPU_RUN = r"""
import multiprocessing, pickle, sys
import numpy as np
import torch

torch.set_num_threads(1)      # OpenMP's pool does not survive fork(): one thread, in the parent and the child alike
from playground.engines import gpu
from playground.engines.base import Finished, GenerationRequest
from playground.engines.catalog import Catalog
from playground.registry import engine_for, validate_options
from playground.settings import Settings

settings = Settings(data_dir=sys.argv[1], offline=True, device="cpu")
catalog = Catalog(settings)
gpu.attach(catalog)
VALUES = {"text": {"max_new_tokens": 6, "temperature": 1.0},
          "image": {"width": 64, "height": 64, "num_inference_steps": 2}, "music": {"duration_s": 0.5}}


def child(args, connection):
    for event in gpu.stream_on_gpu(*pickle.loads(args)):
        connection.send_bytes(pickle.dumps(event))
    connection.close()


def same(a, b):
    if a.text is not None:
        return a.text == b.text
    if a.image is not None:
        return np.array_equal(np.asarray(a.image), np.asarray(b.image))
    return np.array_equal(a.audio[1], b.audio[1])


for modality, values in VALUES.items():
    model = catalog.get(catalog.resolve(modality, f"tiny-{modality}"))
    args = (modality, model.model_id, model.revision, [GenerationRequest("calm piano", 5), GenerationRequest("a fox", 6)],
            validate_options(engine_for(modality, model.model_id).options, values, settings))
    here = [e for e in gpu.stream_on_gpu(*args) if isinstance(e, Finished)]
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=child, args=(pickle.dumps(args), send))
    process.start()
    send.close()
    there = []
    while receive.poll(120):
        try:
            there.append(pickle.loads(receive.recv_bytes()))
        except EOFError:
            break
    process.join(30)
    there = [e for e in there if isinstance(e, Finished)]
    ok = process.exitcode == 0 and [e.index for e in there] == [e.index for e in here] and all(
        same(a.output, b.output) for a, b in zip(here, there))
    print(modality, "identical" if ok else f"DIFFERENT (exit {process.exitcode}, {len(there)} cells)", flush=True)
    if process.exitcode is None:
        process.kill()
"""


@pytest.mark.slow
def test_gpu_function_in_a_forked_child_matches_in_process(settings):
    """As the ZeroGPU runtime does: a forked worker runs the GPU function on pickled arguments and its events are
    pickled back; every cell equals the in-process one bit for bit, for text, image and music."""
    done = subprocess.run([sys.executable, "-c", _FORKED_GPU_RUN, str(settings.data_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["text", "identical", "image", "identical", "music", "identical"], done.stdout


def test_spaces_installed_off_a_space_changes_nothing():
    """The real `spaces` package: off ZeroGPU its decorator hands back the function itself."""
    import spaces

    from playground.engines import gpu

    assert "SPACES_ZERO_GPU" not in os.environ
    assert spaces.GPU(duration=gpu.lease_seconds)(gpu._stream_on_gpu) is gpu._stream_on_gpu
    assert gpu.stream_on_gpu is gpu._stream_on_gpu


# ---- scores ---------------------------------------------------------------------------------------------------------

def test_checks_score_every_cell_as_it_finishes_and_are_exported(runner, log, tmp_path):
    import csv

    from playground.store.scores import scores_for_runs

    template = tagline("image", checks=({"type": "clip"},))
    spec = build_spec(template, models=["tiny-image"], seeds=[1, 2], rerun=True,
                      params={"width": 64, "height": 64, "num_inference_steps": 1}, checks=[{"type": "latency"}])
    results = [p.result for p in run_all(runner, spec)]
    assert len(results) == 6 and all({s.name for s in r.scores} == {"clip", "latency"} for r in results)
    stored = scores_for_runs(log, [r.record.id for r in results])
    assert all(stored[r.record.id]["clip"].value is not None for r in results)
    header = next(csv.reader(log.export(tmp_path / "out.csv", "csv", runs=[r.record for r in results]).open()))
    assert "score:clip" in header and "score:latency" in header
    # The summary panel under the grid: a chart per score and the pairwise table.
    from playground.ui.evidence import evidence

    panel, _ = evidence(log, results[0].record.comparison_id)
    assert "<svg" in panel and "clip" in panel and "latency" in panel
    # The same cells again come from the cache and are scored too.
    again = [p.result for p in run_all(runner, replace(spec, rerun=False))]
    assert all(r.cached and {s.name for s in r.scores} == {"clip", "latency"} for r in again)


def test_a_bad_check_is_refused_before_anything_runs(runner, log):
    before = len(log.list_comparisons())
    spec = build_spec(tagline(), models=["tiny-text"], seeds=[1], checks=[{"type": "clip"}])
    with pytest.raises(InvalidInput) as error:
        list(runner.run(spec))
    assert error.value.field == "checks" and len(log.list_comparisons()) == before


def test_an_llm_judge_runs_on_a_real_text_engine_looked_up_once(runner, log, catalog, monkeypatch):
    from playground.store.scores import scores_for_runs

    calls = []
    real = catalog.resolve
    monkeypatch.setattr(catalog, "resolve", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    spec = build_spec(tagline(), models=["tiny-text"], seeds=[1, 2], params={"max_new_tokens": 2}, rerun=True,
                      checks=[{"type": "llm_judge", "rubric": "Is it one catchy line?", "model": "tiny-text"}])
    results = [p.result for p in run_all(runner, spec)]
    stored = scores_for_runs(log, [r.record.id for r in results])
    for result in results:                  # the tiny judge writes noise, but its prompt and answer are kept
        (score,) = stored[result.record.id].values()
        detail = score.detail
        assert "Is it one catchy line?" in detail["judge_prompt"] and "judge_output" in detail
    assert calls.count("tiny-text") == 2    # once for the grid, once for the judge: not once per judged cell
