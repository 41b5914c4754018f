"""Experiments on the tiny text model and a temporary data dir: cells as ordinary runs logged once each, resumed
from the log, failed cells retried, limits and bad input refused up front, results paged, two experiments
compared, rows re-run, results exported and imported, batch answers taken back."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time

import pytest

from playground import experiments, jobs
from playground.datasets import DatasetError
from playground.experiments.batch import export_batch, import_batch
from playground.experiments.compare import compare_experiments, rerun_rows
from playground.experiments.estimate import estimate
from playground.experiments.results import fail_under, results_page, variant_means
from playground.experiments.transfer import export_results, import_results
from playground.jobs import JobWorker
from playground.registry import InvalidInput
from playground.scoring import CellInput, comparison_summary, make_check
from playground.scoring.base import CheckError
from playground.services import Services
from playground.store import RunRecord
from playground.templates import TemplateError, make_template

PRODUCTS = ["a lantern", "a kettle", "a bicycle", "a tent", "a blender", "a lamp"]


def tagline():
    return make_template(name="tagline-exp", modality="text",
                         variants={"plain": "Write a tagline for {{ product }}.",
                                   "role": "You are a copywriter. A tagline for {{ product }}."},
                         variables={"product": "a lantern", "tone": "warm"}, params={"max_new_tokens": 1},
                         checks=[{"type": "length", "unit": "chars"}])


def data_dir(tmp_path, settings, **limits):
    folder = tmp_path / "data"
    folder.mkdir(parents=True)
    (folder / "models").symlink_to(settings.models_dir, target_is_directory=True)
    return settings.replace(data_dir=folder, **limits)


@pytest.fixture
def services(tmp_path, settings, catalog):
    made = Services.create(data_dir(tmp_path, settings), catalog=catalog)
    yield made
    made.stop_jobs()
    made.log.close()


@pytest.fixture
def rows(services):
    return services.datasets.add_rows([{"product": p, "expected": p.split()[-1], "kind": "big" if i % 2 else "small"}
                                       for i, p in enumerate(PRODUCTS)], name="products")


def run(services, experiment):
    return JobWorker(services, services.jobs).run_one(experiment.job.id)


def spec(services, dataset, **extra):
    options = {"models": ["tiny-text"], "seeds": [1, 2], "params": {"max_new_tokens": 1}}
    return experiments.build_spec(services, template=tagline(), dataset=dataset, **{**options, **extra})


def runs_of(services, experiment_id):
    return services.log.list_runs(comparison_id=experiment_id, limit=10_000, newest_first=False)


def test_each_cell_is_an_ordinary_run_logged_once(services, rows):
    experiment = experiments.submit(services, spec(services, rows, expected="expected",
                                                   checks=[{"type": "contains"}]))
    assert experiment.created and experiment.job.status == "queued"
    assert run(services, experiment).status == "done"
    runs = runs_of(services, experiment.id)
    assert len(runs) == 6 * 2 * 2 and all(r.status == "ok" for r in runs)
    assert len({r.cell_key for r in runs}) == len(runs)
    assert {(r.row, r.col) for r in runs} == {(row, col) for row in range(12) for col in range(2)}
    first = [r for r in runs if r.row == 0]
    assert [r.variant for r in first] == ["plain", "role"] and first[0].variables == {"product": "a lantern"}
    assert first[0].reference == "lantern" and first[0].cell_key == "r0.v0.s1.m0"
    header = services.log.get_comparison_header(experiment.id)
    assert header.status == "done" and header.spec["experiment"]["dataset"] == rows.version
    summary = comparison_summary(services.log, experiment.id)
    assert {m.name for m in summary.metrics} == {"length", "contains"}
    assert summary.metrics[0].pairs[0].n == 12                  # paired by dataset row, seed and model
    status = experiments.status(services, experiment.id)
    assert (status.status, status.done, status.failed, status.total) == ("done", 24, 0, 24)
    again = experiments.submit(services, spec(services, rows, expected="expected", checks=[{"type": "contains"}]))
    assert not again.created and again.id == experiment.id       # the same spec finds its experiment


def wait_for(predicate, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_paused_experiment_resumes_with_only_the_missing_cells(services, rows):
    # 480 cells: continuous batching finishes 120 faster than the test can press pause
    experiment = experiments.submit(services, spec(services, rows, seeds=list(range(1, 41))), start=False)
    assert experiment.job.status == "paused"
    services.start_jobs()
    experiments.resume(services, experiment.id)
    wait_for(lambda: len(runs_of(services, experiment.id)) >= 8)
    paused = experiments.pause(services, experiment.id)           # this process runs it: it stops at once
    wait_for(lambda: services.jobs.get(experiment.job.id).worker is None)
    before = runs_of(services, experiment.id)
    assert paused.status == "paused" and 8 <= len(before) < 480
    time.sleep(0.5)
    assert len(runs_of(services, experiment.id)) == len(before)
    experiments.resume(services, experiment.id)
    wait_for(lambda: services.jobs.get(experiment.job.id).status == "done")
    runs = runs_of(services, experiment.id)
    assert len(runs) == 480 and len({r.cell_key for r in runs}) == 480
    assert {r.id for r in before} <= {r.id for r in runs}


def test_a_killed_job_continues_where_it_stopped(services, rows):
    experiment = experiments.submit(services, spec(services, rows), start=False)
    subset = experiments.build_spec(services, template=tagline(), dataset=rows, models=["tiny-text"], seeds=[1, 2],
                                    sample={"first": 2})
    partial = experiments.submit(services, subset)
    run(services, partial)
    logged = runs_of(services, partial.id)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with services.log._write() as tx:       # the same cells, logged into the big one by a process that then died
        tx.execute("UPDATE runs SET comparison_id = ? WHERE comparison_id = ?", (experiment.id, partial.id))
        tx.execute("UPDATE jobs SET status = 'running', worker = 'gone', pid = ?, host = ?, heartbeat_at = ? "
                   "WHERE id = ?", (gone.pid, jobs.HOST, time.time(), experiment.job.id))
    services.start_jobs()                   # what the app does at start-up
    wait_for(lambda: services.jobs.get(experiment.job.id).status == "done")
    runs = runs_of(services, experiment.id)
    assert services.jobs.get(experiment.job.id).status == "done"
    assert len(runs) == 24 and len({r.cell_key for r in runs}) == 24
    assert {r.id for r in logged} <= {r.id for r in runs}       # what was logged before stays, not run again


def test_retry_errors_runs_only_the_failed_cells_again(services, rows):
    experiment = experiments.submit(services, spec(services, rows, seeds=[1]), start=False)
    failed = RunRecord(modality="text", model_id="tiny-text", prompt="x", seed=1, params={}, status="error",
                       comparison_id=experiment.id, error="the server was busy (503)", cell_key="r3.v1.s1.m0",
                       row=3, col=1)
    services.log.add_run(failed)
    experiments.resume(services, experiment.id)
    run(services, experiment)
    status = experiments.status(services, experiment.id)
    assert (status.done, status.failed, status.status) == (11, 1, "done")
    assert services.log.get_comparison_header(experiment.id).status == "partial"
    experiments.resume(services, experiment.id, retry_errors=True)
    run(services, experiment)
    runs = runs_of(services, experiment.id)
    assert len(runs) == 12 and all(r.status == "ok" for r in runs)
    retried = next(r for r in runs if r.cell_key == "r3.v1.s1.m0")
    assert retried.metrics["attempt"] == 2 and retried.id != failed.id
    assert experiments.status(services, experiment.id).failed == 0


def test_a_job_whose_rows_are_gone_fails_with_what_to_do(services, rows):
    experiment = experiments.submit(services, spec(services, rows), start=False)
    (services.datasets.root / rows.version / "data.parquet").unlink()
    experiments.resume(services, experiment.id)
    failed = run(services, experiment)
    assert failed.status == "failed" and "are missing" in failed.error and "add the dataset again" in failed.error
    assert services.log.get_comparison_header(experiment.id).status == "failed"       # not left "running"


def test_rows_that_cannot_render_fail_their_cells_only(services):
    long_value = "x" * 30_000
    dataset = services.datasets.add_rows([{"product": "a lamp"}, {"product": long_value}], name="one long")
    experiment = experiments.submit(services, spec(services, dataset, seeds=[1]))
    run(services, experiment)
    runs = runs_of(services, experiment.id)
    assert [r.status for r in runs] == ["ok", "ok", "error", "error"]
    assert "30000 characters" in runs[-1].error and runs[-1].error.startswith("row 1:")


def test_an_optimisation_loop_runs_a_candidate_in_its_own_thread(services, rows):
    stop = threading.Event()
    stop.set()                                   # the loop was paused before the candidate started
    stopped = experiments.run_inline(services, spec(services, rows), stop=stop)
    assert (stopped.status, stopped.done) == ("paused", 0)
    assert services.jobs.claim("another-worker") is None        # a paused candidate is nobody else's to run
    finished = experiments.run_inline(services, spec(services, rows))
    assert (finished.status, finished.done, finished.id) == ("done", 24, stopped.id)
    again = experiments.run_inline(services, spec(services, rows))
    assert again.id == finished.id and len(runs_of(services, again.id)) == 24    # nothing runs twice


def test_bad_input_is_refused_before_anything_is_created(services, rows, tmp_path):
    with pytest.raises(DatasetError, match="has no variable 'prodct'; did you mean 'product'"):
        experiments.submit(services, spec(services, rows, mapping={"prodct": "product"}))
    with pytest.raises(DatasetError, match="no column 'expcted'; did you mean 'expected'"):
        experiments.submit(services, spec(services, rows, expected="expcted"))
    with pytest.raises(DatasetError, match="sample of dataset 'products' is empty"):
        experiments.submit(services, spec(services, rows, sample={"where": {"kind": "huge"}}))
    with pytest.raises(TemplateError, match="no variant 'short'"):
        experiments.submit(services, spec(services, rows, variants=["short"]))
    with pytest.raises(InvalidInput, match="model"):
        experiments.submit(services, spec(services, rows, models=["no-such/model-here"]))
    with pytest.raises(InvalidInput, match="checks: check 'similarity', argument 'reference' is required"):
        experiments.submit(services, spec(services, rows, checks=[{"type": "similarity"}]))
    with pytest.raises(InvalidInput, match="seeds"):
        spec(services, rows, seeds=[1, 1])
    small = Services.create(services.settings.replace(max_experiment_cells=10), catalog=services.catalog)
    with pytest.raises(InvalidInput, match="24 cells; the limit is 10 .*max_experiment_cells"):
        experiments.submit(small, spec(small, rows))
    assert services.jobs.list() == [] and services.log.list_comparisons() == []


def test_visitors_on_a_public_server_have_caps(tmp_path, settings, catalog):
    public = Services.create(data_dir(tmp_path, settings, public=True, max_experiment_cells_per_visitor=20,
                                      max_jobs_per_visitor=1, max_remote_calls_per_visitor=5), catalog=catalog)
    dataset = public.datasets.add_rows([{"product": p} for p in PRODUCTS], name="p", owner="anon:a")
    with pytest.raises(InvalidInput, match="24 cells; a visitor's experiment may have 20"):
        experiments.submit(public, spec(public, dataset, owner="anon:a"), owner="anon:a")
    first = experiments.submit(public, spec(public, dataset, seeds=[1], owner="anon:a"), owner="anon:a")
    with pytest.raises(InvalidInput, match="you have 1 jobs queued or running"):
        experiments.submit(public, spec(public, dataset, seeds=[2], owner="anon:a"), owner="anon:a")
    with pytest.raises(DatasetError):                           # another visitor's dataset reads as missing
        experiments.submit(public, spec(public, dataset, seeds=[3]), owner="anon:b")
    with pytest.raises(KeyError):
        experiments.status(public, first.id, owner="anon:b")
    public.jobs.cancel(first.job.id)
    (public.settings.data_dir / "endpoints.yaml").write_text(json.dumps(
        {"endpoints": [{"name": "lab", "base_url": "http://127.0.0.1:9/v1", "models": ["m"]}]}))
    from playground.engines.catalog import Catalog

    remote = Services.create(public.settings, catalog=Catalog(public.settings))
    with pytest.raises(InvalidInput, match="12 remote calls would pass your daily budget of 5"):
        experiments.submit(remote, spec(remote, dataset, models=["lab:m"], seeds=[1], owner="anon:a"),
                           owner="anon:a")
    public.log.close()


def test_the_dry_run_counts_calls_and_estimates_from_the_log(services, rows, monkeypatch):
    (services.settings.data_dir / "endpoints.yaml").write_text(json.dumps({"endpoints": [{
        "name": "lab", "base_url": "http://127.0.0.1:9/v1", "models": ["m"], "max_concurrency": 4,
        "price_per_1k_input": 0.5, "price_per_1k_output": 2.0}]}))
    from playground.engines.catalog import Catalog

    monkeypatch.setattr(services.catalog, "_endpoints", Catalog(services.settings).endpoints)
    guess = estimate(services, spec(services, rows, models=["tiny-text", "lab:m"]))
    assert guess.cells == 48 and guess.pending == 48 and [m.calls for m in guess.models] == [24, 24]
    tiny, lab = guess.models
    assert "no runs of this model in the log" in tiny.basis and tiny.seconds is None
    assert tiny.completion_tokens == 24 * 1 and tiny.prompt_tokens > 0          # completions at their cap
    assert lab.cost == pytest.approx(lab.prompt_tokens / 1000 * 0.5 + lab.completion_tokens / 1000 * 2.0)
    piloted = estimate(services, spec(services, rows), pilot=2)
    assert "from 2 logged runs" in piloted.models[0].basis and piloted.seconds > 0
    assert "tiny-text: 24 calls" in piloted.text()


def test_results_come_a_page_at_a_time_filtered_and_sorted(services, rows):
    experiment = experiments.submit(services, spec(services, rows, seeds=[1], expected="expected",
                                                   checks=[{"type": "contains"}]))
    run(services, experiment)
    page = results_page(services.log, experiment.id, limit=4)
    assert page.total_rows == 6 and len(page.rows) == 4 and page.variants == ["plain", "role"]
    assert set(page.checks) == {"contains", "length"}
    row = page.rows[0]
    assert row.dataset_row == 0 and row.reference == "lantern" and set(row.cells) == {"plain", "role"}
    assert row.cells["plain"].scores["length"]["value"] == len(row.cells["plain"].output)
    assert results_page(services.log, experiment.id, offset=4).rows[0].dataset_row == 4
    big = results_page(services.log, experiment.id, where={"kind": "big"}, datasets=services.datasets)
    assert [r.dataset_row for r in big.rows] == [1, 3, 5]
    ranked = results_page(services.log, experiment.id, check="length", sort=("plain", "role"))
    diffs = [r.diff for r in ranked.rows]
    assert diffs == sorted(diffs, reverse=True)
    disagree = results_page(services.log, experiment.id, only="disagree", check="length")
    assert all(r.cells["plain"].scores["length"] != r.cells["role"].scores["length"] for r in disagree.rows)
    assert results_page(services.log, experiment.id, only="failed").total_rows == 0
    with pytest.raises(ValueError, match="no variant 'short'"):
        results_page(services.log, experiment.id, sort=("plain", "short"))
    means = variant_means(services.log, experiment.id)
    assert means["plain"]["cells"] == 6 and "length" in means["plain"]["checks"]
    assert fail_under(means, {"length": 1_000_000}) and not fail_under(means, {"length": 0})


def test_two_experiments_compared_row_by_row_and_rows_rerun(services, rows):
    baseline = experiments.submit(services, spec(services, rows, seeds=[1], variants=["plain"]))
    candidate = experiments.submit(services, spec(services, rows, seeds=[1], variants=["role"]))
    run(services, baseline)
    run(services, candidate)
    result = compare_experiments(services.log, baseline.id, candidate.id, "length")
    assert result.rows == 6 and len(result.improved) + len(result.worsened) + result.unchanged == 6
    changes = [c.change for c in result.improved]
    assert changes == sorted(changes, reverse=True) and result.sentence.startswith(f"candidate #{candidate.id}")
    child = rerun_rows(services, baseline.id, [4, 1], models=["tiny-text"])
    assert child.created and child.spec.parent == baseline.id and child.spec.sample.rows == [1, 4]
    run(services, child)
    assert sorted({r.variables["product"] for r in runs_of(services, child.id)}) == ["a blender", "a kettle"]
    other = services.datasets.add_rows([{"product": "x"}], name="other")
    elsewhere = experiments.submit(services, spec(services, other, seeds=[1]))
    with pytest.raises(InvalidInput, match="different datasets"):
        compare_experiments(services.log, baseline.id, elsewhere.id, "length")


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_results_export_and_import_again_idempotently(services, rows, tmp_path, settings, catalog, fmt):
    experiment = experiments.submit(services, spec(services, rows, seeds=[1]))
    run(services, experiment)
    dest = tmp_path / f"results.{fmt}"
    assert export_results(services, experiment.id, dest) == 12
    if fmt == "csv":
        assert dest.read_text().splitlines()[0].count("cell_key") == 1
        return
    other = Services.create(data_dir(tmp_path / "other", settings), catalog=catalog)
    first, second = import_results(other, dest), import_results(other, dest)
    assert (first.imported, first.errors, second.imported, second.skipped) == (12, [], 0, 12)
    imported = other.log.list_comparisons()[0]
    assert experiments.status(other, imported.id).done == 12          # read, with no job to run
    page = results_page(other.log, imported.id)
    assert page.total_rows == 6 and page.rows[0].cells["plain"].scores["length"]["value"] is not None
    other.log.close()


def test_batch_answers_are_logged_once_and_bad_lines_refused(services, rows, tmp_path):
    experiment = experiments.submit(services, spec(services, rows, seeds=[1]), start=False)
    requests = tmp_path / "requests.jsonl"
    assert export_batch(services, experiment.id, requests) == 12
    lines = [json.loads(line) for line in requests.read_text().splitlines()]
    assert lines[0]["custom_id"] == "r0.v0.s1.m0" and lines[0]["url"] == "/v1/chat/completions"
    assert lines[0]["body"]["messages"][-1]["content"] == "Write a tagline for a lantern."
    answers = [{"id": f"b{n}", "custom_id": line["custom_id"], "error": None, "response": {
        "status_code": 200, "body": {"model": "m", "choices": [{"message": {"content": f"answer {n}"},
                                                                "finish_reason": "stop"}],
                                     "usage": {"prompt_tokens": 5, "completion_tokens": 2}}}}
               for n, line in enumerate(lines[:10])]
    answers.append({"custom_id": lines[10]["custom_id"], "response": {"status_code": 500, "body": {"error": "down"}}})
    answers.append({"custom_id": "r99.v0.s1.m0", "response": {"status_code": 200, "body": {}}})
    answers.append(answers[0])
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(a) + "\n" for a in answers))
    report = import_batch(services, experiment.id, results)
    assert (report.imported, report.failed, report.skipped) == (10, 1, 0)
    assert [line for line, _ in report.errors] == [12, 13]
    assert "names no cell" in report.errors[0][1] and "already answered on line 1" in report.errors[1][1]
    again = import_batch(services, experiment.id, results)
    assert (again.imported, again.skipped) == (0, 10)
    runs = runs_of(services, experiment.id)
    assert len(runs) == 11 and len({r.cell_key for r in runs}) == 11
    assert runs[0].output_text == "answer 0" and runs[0].completion_tokens == 2
    assert runs[0].imported and services.log.find_cached(runs[0]) is None    # never a cache hit for others
    assert export_batch(services, experiment.id, requests) == 2          # only what is still to do


def test_checks_read_the_rows_reference():
    def score(check, text, reference):
        made = make_check(check, has_reference=True)
        return made.score(CellInput("text", "prompt", text=text, reference=reference), None)

    assert score({"type": "equals"}, " Paris ", "paris").passed is True
    assert score({"type": "contains"}, "It is Paris.", "paris").value == 1.0
    assert score({"type": "contains", "value": "rome"}, "Paris", "paris").value == 0.0   # its own value wins
    assert score({"type": "similarity"}, "the cat sat", "the cat sat").value == 1.0
    schema = json.dumps({"type": "object", "required": ["a"]})
    assert score({"type": "json_schema"}, '{"a": 1}', schema).passed is True
    assert score({"type": "json_schema"}, '{"b": 1}', schema).passed is False
    assert "no reference" in score({"type": "equals"}, "x", None).detail["error"]
    with pytest.raises(CheckError, match="'value' is required"):
        make_check({"type": "equals"})
    judge = make_check({"type": "llm_judge", "rubric": "correct"}, has_reference=True)
    seen = []
    context = type("Context", (), {"judge": lambda self, model: (lambda p: seen.append(p) or "SCORE: 7")})()
    assert judge.score(CellInput("text", "q", text="a", reference="the answer"), context).value == 7
    assert re.search(r"\[REFERENCE (\w+)\]\nthe answer\n\[END REFERENCE \1\]", seen[0])


def test_the_summary_of_a_big_experiment_pairs_rows(services, rows):
    experiment = experiments.submit(services, spec(services, rows, seeds=[1]), start=False)
    from playground.store.rows import insert_run
    from playground.store.scores import Score, insert_scores

    with services.log._write() as tx:          # 2,400 cells logged directly: the statistics, not the model
        for row in range(1200):
            for col, variant in enumerate(("plain", "role")):
                record = RunRecord(modality="text", model_id="tiny-text", prompt="p", seed=1, params={}, row=row,
                                   col=col, variant=variant, comparison_id=experiment.id, output_text="x",
                                   cell_key=f"r{row}.v{col}.s1.m0", variables={"product": "same"})
                insert_run(tx, record)
                insert_scores(tx, record.id, [Score("length", float(row % 7 + col), None,
                                                    {"check": "length", "better": "higher"})])
    summary = comparison_summary(services.log, experiment.id)
    pair = summary.metrics[0].pairs[0]
    assert pair.n == 1200 and pair.a == "role" and pair.wins == 1200 and pair.clear
