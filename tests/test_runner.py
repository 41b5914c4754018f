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

from playground.backends.base import InvalidInput
from playground.runner import Runner, build_spec, spec_from_runs
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
    assert run.model_revision.startswith("built:") and run.device == "cpu" and run.dtype == "float32"
    assert run.versions["torch"] and run.params["max_new_tokens"] == 6
    assert run.prompt_tokens > 0 and run.completion_tokens > 0 and run.wall_s > 0


def test_second_run_is_served_from_the_cache(runner, log):
    spec = build_spec(tagline(), models=["tiny-text"], seeds=[5], params={"max_new_tokens": 6})
    first = run_all(runner, spec)
    started = time.perf_counter()
    second = run_all(runner, spec)
    cached_latency = (time.perf_counter() - started) / len(second)
    assert all(p.result.cached for p in second)
    assert [p.result.record.output_text for p in second] == [p.result.record.output_text for p in first]
    assert all(p.result.record.cached_from == f.result.record.id for p, f in zip(second, first))
    print(f"\ncached cell latency: {cached_latency * 1000:.1f} ms")
    fresh = run_all(runner, replace(spec, rerun=True))
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
