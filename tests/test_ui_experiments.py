"""The Experiments tab's handlers called as plain functions, without a browser: a dataset added and previewed,
columns mapped by name, the dry run shown before Run submits a job, progress polled, the table paged, filtered and
sorted, a cell's record, two experiments compared and rows re-run, export and import, and bad input refused in
words. Values in and updates out, keyed by component."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from playground import experiments
from playground.jobs import JobWorker
from playground.ui.experiments.layout import IDLE_POLL_S, POLL_S

ROWS = "product,expected,kind\n" + "\n".join(f"a {name},{name},{'big' if i % 2 else 'small'}" for i, name in
                                           enumerate(["lantern", "kettle", "bicycle", "tent", "blender", "lamp"]))


def bench():
    """benchmarks/bench_experiments_tab.py, which builds a big experiment straight into the log."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_experiments_tab.py"
    spec = importlib.util.spec_from_file_location("bench_experiments_tab", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def visitor(session: str = "page-a"):
    return SimpleNamespace(session_hash=session, username=None)


def data_dir(tmp_path, settings, **changes):
    folder = tmp_path / "data"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models").symlink_to(settings.models_dir, target_is_directory=True)
    return settings.replace(data_dir=folder, **changes)


@pytest.fixture
def services(tmp_path, settings, catalog, text_model):
    from playground.services import Services

    made = Services.create(data_dir(tmp_path, settings), catalog=catalog)
    yield made
    made.stop_jobs()
    made.log.close()


def build(services):
    from playground.ui.experiments import build_experiments_tab

    with gr.Blocks():
        return build_experiments_tab(services)


@pytest.fixture
def tab(services):
    return build(services)


def values_of(components) -> dict:
    return {component: component.value for component in components}


def form_values(tab, **changes) -> dict:
    f = tab.form
    values = values_of(f.spec_inputs() | {f.estimated, f.pasted, f.dataset_name, f.source})
    values[f.var_names] = []
    return values | {getattr(f, name): value for name, value in changes.items()}


def apply(values: dict, updates: dict) -> dict:
    """The page after an update: each changed component's new value."""
    merged = dict(values)
    for component, update in updates.items():
        if isinstance(update, dict) and "__type__" in update:
            if "value" in update:
                merged[component] = update["value"]
        elif not isinstance(update, (gr.Timer, gr.Tabs)):
            merged[component] = update
    return merged


def add_rows(tab, values, text=ROWS, name="products"):
    f = tab.form
    updates = tab.new.add_pasted(values | {f.pasted: text, f.dataset_name: name}, visitor())
    return apply(values, updates), updates


def started_experiment(tab, values) -> int:
    f = tab.form
    first = tab.new.run(values, visitor())                      # shows the dry run, starts nothing
    assert first[f.started] is None and first[f.estimated]
    second = tab.new.run(values | {f.estimated: first[f.estimated]}, visitor())
    return second[f.started]


def ready_form(tab, **changes):
    f = tab.form
    values, _ = add_rows(tab, form_values(tab))
    return values | {f.variants: ["plain", "role"], f.params: "max_new_tokens = 2", f.checks: "contains",
                     f.rows: "first N", f.count: 4} | {getattr(f, k): v for k, v in changes.items()}


def run_job(services, experiment_id):
    job = experiments.get(services, experiment_id).job
    return JobWorker(services, services.jobs).run_one(job.id)


def test_a_pasted_dataset_is_previewed_and_its_columns_mapped_by_name(tab):
    f = tab.form
    values, updates = add_rows(tab, form_values(tab))
    preview = updates[f.preview]
    assert "<strong>products</strong> · 6 rows · 3 columns" in preview and ">text</div>" in preview
    assert "a bicycle" in preview and values[f.dataset] == updates[f.previous]["value"]
    assert values[f.var_names] == ["product"] and updates[f.mapping[0]]["value"] == "product"
    assert updates[f.mapping[1]]["visible"] is False
    assert updates[f.expected]["value"] == "expected"
    assert ("kind", "kind") in updates[f.where_column]["choices"]
    hostile, _ = add_rows(tab, values, "product\n<img src=x onerror=alert(1)>", name="<b>x</b>")
    shown = tab.new.pick_previous(hostile | {f.previous: hostile[f.dataset]}, visitor())[f.preview]
    assert "&lt;img src=x" in shown and "<img" not in shown and "&lt;b&gt;x&lt;/b&gt;" in shown


def test_run_shows_the_dry_run_first_then_starts_a_job_the_page_can_follow(tab, services):
    f, v = tab.form, tab.view
    values = ready_form(tab)
    first = tab.new.run(values, visitor())
    assert "4 rows x 2 variants x 1 seed x 1 model = 8 cells" in first[f.plan]
    assert "Press <b>Run</b>" in first[f.plan] and services.jobs.list() == []
    experiment_id = started_experiment(tab, values)
    assert services.jobs.list()[0].comparison_id == experiment_id
    refreshed = tab.results.refresh(values_of(tab.refresh_inputs()), visitor())
    assert f'data-experiment="{experiment_id}"' in refreshed[v.listing] and "queued" in refreshed[v.listing]
    assert refreshed[v.timer].value == POLL_S                   # polls often while a job is queued
    run_job(services, experiment_id)
    opened = tab.results.open(experiment_id, visitor())
    assert "done" in opened[v.status] and "8/8 cells" in opened[v.status]
    assert opened[v.table].count('<tr data-row="') == 4 and "a lantern" in opened[v.table]
    assert opened[v.check]["choices"] == ["contains", "length"]
    assert "rows 1–4 of 4" in opened[v.page_label] and "Computing" in opened[v.evidence]
    assert "pp-summary" in tab.results.statistics({v.opened: experiment_id}, visitor())[v.evidence]
    assert opened[v.timer].value == IDLE_POLL_S and opened[v.timer].active   # then now and then
    again = tab.new.run(values | {f.estimated: tab.new.run(values, visitor())[f.estimated]}, visitor())
    assert again[f.started] == experiment_id and "ran before" in again[f.plan]
    # One submitted elsewhere (the command line, a script) shows up at the page's next poll.
    spec = experiments.build_spec(services, template="product-tagline", dataset="products", models=["tiny-text"],
                                  variants=["plain"], title="from a script")
    elsewhere = experiments.submit(services, spec).id
    listing = tab.results.refresh(values_of(tab.refresh_inputs()) | {v.opened: experiment_id}, visitor())[v.listing]
    assert f'data-experiment="{elsewhere}"' in listing and "from a script" in listing


def test_the_table_filters_sorts_and_opens_a_cells_record(tab, services):
    v = tab.view
    experiment_id = started_experiment(tab, ready_form(tab, rows="all rows"))
    run_job(services, experiment_id)
    opened = tab.results.open(experiment_id, visitor())
    values = values_of(v.filters()) | {v.opened: experiment_id, v.page: 0, v.check: "contains", v.only: "all",
                                      v.column: "", v.value: "", v.sort_a: "", v.sort_b: ""}
    big = tab.results.show(values | {v.column: "kind", v.value: "big"}, visitor())
    assert big[v.table].count('<tr data-row="') == 3 and "a kettle" in big[v.table] and "a bicycle" not in big[v.table]
    ordered = tab.results.show(values | {v.sort_a: "plain", v.sort_b: "role"}, visitor())
    assert "plain − role" in ordered[v.table]
    assert tab.results.show(values | {v.only: "failed"}, visitor())[v.table].count("<tr data-row") == 0
    missed = tab.results.show(values | {v.only: "check_failed"}, visitor())[v.table]      # by a check's outcome
    every_row = tab.results.show(values, visitor())[v.table].split('<tr data-row="')[1:]
    failing = [row for row in every_row if "pp-score pp-fail" in row]
    assert missed.split('<tr data-row="')[1:] == failing
    assert tab.results.show(values | {v.only: "check_failed", v.check: "length"},          # a measurement: no fails
                            visitor())[v.table].count("<tr data-row") == 0
    with pytest.raises(ValueError, match="pick two different variants"):
        tab.results.show(values | {v.sort_a: "plain", v.sort_b: "plain"}, visitor())
    run_id = int(re.search(r'data-run="(\d+)"', opened[v.table]).group(1))
    record = tab.results.record(SimpleNamespace(run=run_id), visitor())[v.record]
    assert f"Run #{run_id}" in record and "tiny-text" in record and "max_new_tokens" in record
    assert "contains" in record and "reference" in record


def test_pause_resume_cancel_and_retry_from_the_panel(tab, services):
    v = tab.view
    experiment_id = started_experiment(tab, ready_form(tab))
    values = values_of(tab.refresh_inputs()) | {v.opened: experiment_id}
    paused = tab.results.control(values, "pause", visitor())
    assert "paused" in paused[v.status] and paused[v.timer].value == IDLE_POLL_S
    resumed = tab.results.control(values, "resume", visitor())
    assert "queued" in resumed[v.status] and resumed[v.timer].value == POLL_S
    cancelled = tab.results.control(values, "cancel", visitor())
    assert "cancelled" in cancelled[v.status]
    with pytest.raises(ValueError, match="was cancelled; submit it again"):
        tab.results.control(values, "resume", visitor())
    with pytest.raises(gr.Error, match="Open an experiment first"):
        tab.results.control(values | {v.opened: None}, "pause", visitor())


def test_two_experiments_compared_and_the_worse_rows_run_again(tab, services):
    c, f = tab.compare_view, tab.form
    base = ready_form(tab, rows="all rows", variants=["plain"], checks="")
    baseline = started_experiment(tab, base)
    candidate = started_experiment(tab, base | {f.variants: ["role"]})
    for experiment_id in (baseline, candidate):
        run_job(services, experiment_id)
    picks = {c.baseline: baseline, c.candidate: candidate, c.check: None, c.baseline_variant: None,
             c.candidate_variant: None}
    fitted = tab.compare.fit(picks, visitor())
    assert fitted[c.baseline_variant]["value"] == "plain" and fitted[c.candidate_variant]["value"] == "role"
    picks = apply(picks, fitted)
    assert picks[c.check] == "length"
    shown = tab.compare.compare(picks, visitor())[c.result]
    assert f"candidate #{candidate} (role)" in shown and "rows in both" in shown
    changed = re.findall(r'data-label="values" class="pp-values">([^<]*)<', shown)
    assert changed and all(v.startswith("product=a ") for v in changed)       # each row says what it filled in
    worse = tab.compare.pick_worse(picks, visitor())
    chosen = [int(r) for r in worse[c.rows].split()]
    assert worse[c.result].count(" checked") == len(chosen)
    assert tab.compare.choose(SimpleNamespace(rows=[4, 1])) == {c.rows: "4 1"}
    made = tab.compare.rerun({c.candidate: candidate, c.rows: "1 4"}, visitor())
    child = made[c.started]
    assert child not in (baseline, candidate) and "linked to" in made[c.rerun_status]
    assert experiments.experiment_spec(services.log, child).parent == candidate
    assert experiments.experiment_spec(services.log, child).sample.rows == [1, 4]
    with pytest.raises(ValueError, match=r"rows\[1\]: must be a whole number, got \"x\""):
        tab.compare.rerun({c.candidate: candidate, c.rows: "1 x"}, visitor())


def test_results_export_in_every_format_and_import_again(tab, services, tmp_path, settings, catalog):
    import pyarrow.parquet as pq

    from playground.services import Services

    v = tab.view
    experiment_id = started_experiment(tab, ready_form(tab))
    run_job(services, experiment_id)
    files = {}
    for fmt in ("jsonl", "csv", "parquet", "report"):
        files[fmt] = tab.results.export({v.opened: experiment_id, v.fmt: fmt}, visitor())[v.export_file]["value"]
    assert len(open(files["jsonl"]).read().splitlines()) == 8
    assert pq.read_table(files["parquet"]).num_rows == 8
    assert "Reproduction record" in open(files["report"]).read()
    other = Services.create(data_dir(tmp_path / "other", settings), catalog=catalog)
    imported = build(other)
    for expected in ("Imported **8** runs; 0 were", "Imported **0** runs; 8 were"):
        said = imported.results.import_results(files["jsonl"], visitor())[imported.view.import_status]
        assert expected.replace("**", "") in re.sub(r"</?strong>", "", said)
    table = imported.results.open(experiment_id, visitor())[imported.view.table]
    assert table.count("<tr data-row") == 4
    listing = imported.results.refresh(values_of(imported.refresh_inputs()), visitor())[imported.view.listing]
    assert f'data-experiment="{experiment_id}"' in listing              # listed though it has no job
    other.log.close()


def test_bad_input_is_refused_in_words_and_nothing_is_started(tab, services, monkeypatch):
    f = tab.form
    with pytest.raises(ValueError, match="add a dataset first"):
        tab.new.estimate(form_values(tab), visitor())
    with pytest.raises(ValueError, match="no rows pasted"):
        add_rows(tab, form_values(tab), text="   ")
    values = ready_form(tab)
    with pytest.raises(ValueError, match="sample of dataset 'products' is empty"):
        tab.new.estimate(values | {f.rows: "where a column holds a value", f.where_column: "kind",
                                   f.where_value: "huge"}, visitor())
    with pytest.raises(ValueError, match="N: is empty"):
        tab.new.estimate(values | {f.count: None}, visitor())
    with pytest.raises(ValueError, match="seeds"):
        tab.new.estimate(values | {f.seeds: "1, one"}, visitor())
    with pytest.raises(ValueError, match="parameters: line 1"):
        tab.new.estimate(values | {f.params: "max_new_tokens 2"}, visitor())
    with pytest.raises(ValueError, match="similarity"):
        tab.new.estimate(values | {f.expected: "", f.checks: "similarity"}, visitor())
    monkeypatch.setenv("SPACES_ZERO_GPU", "1")          # a local model cannot run as the server's job there
    estimated = tab.new.estimate(values, visitor())[f.estimated]
    with pytest.raises(ValueError, match="ZeroGPU.*Run on this page"):
        tab.new.run(values | {f.estimated: estimated}, visitor())
    assert services.jobs.list() == []


def test_on_zerogpu_a_page_runs_its_experiment_in_chunks_and_pauses_when_it_goes(tmp_path, settings, catalog,
                                                                                   text_model, monkeypatch):
    from playground.services import Services

    services = Services.create(data_dir(tmp_path, settings, experiment_chunk_cells=4), catalog=catalog)
    tab = build(services)
    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    monkeypatch.setattr(experiments.api, "PAGE_CHUNK_S", 0.05)     # page chunks far shorter than the experiment
    f = tab.form
    values = ready_form(tab, count=6, seeds="1, 2, 3, 4, 5, 6")      # 72 cells
    first = list(tab.new.run_here(values, visitor()))
    assert len(first) == 1 and "Run on this page</strong> again" in first[0][f.plan] and services.jobs.list() == []
    page = tab.new.run_here(values | {f.estimated: first[0][f.estimated]}, visitor())
    said = [next(page)[f.plan]]
    while "runs on this page: 0/72" in said[-1]:                 # until a chunk has logged cells
        said.append(next(page)[f.plan])
    page.close()                                             # the page goes: its request ends
    job = services.jobs.list()[0]
    logged = len(services.log.list_runs(comparison_id=job.comparison_id, limit=100))
    assert "runs on this page: 0/72 cells" in said[0] and "Keep the page open" in said[-1]
    assert job.status == "paused" and job.worker is None and 0 < logged < 72
    with pytest.raises(ValueError, match="ZeroGPU"):               # not the server's job, even resumed
        tab.results.control(values_of(tab.refresh_inputs()) | {tab.view.opened: job.comparison_id}, "resume",
                            visitor())
    monkeypatch.setattr(experiments.api, "PAGE_CHUNK_S", 60.0)
    again = list(tab.new.run_here(values | {f.estimated: first[0][f.estimated]}, visitor()))
    runs = services.log.list_runs(comparison_id=job.comparison_id, limit=100)
    assert "is done: 72/72 cells" in again[-1][f.plan]
    assert len(runs) == 72 and len({r.cell_key for r in runs}) == 72
    services.log.close()


def test_a_visitor_sees_their_own_experiments_and_the_caps_in_words(tmp_path, settings, catalog, text_model):
    from playground.services import Services

    public = Services.create(data_dir(tmp_path, settings, public=True, max_experiment_cells_per_visitor=6,
                                      max_jobs_per_visitor=1), catalog=catalog)
    tab = build(public)
    f, v = tab.form, tab.view
    public.visitors.register(visitor("page-a"), browser_id="anon:a")
    public.visitors.register(visitor("page-b"), browser_id="anon:b")
    values = ready_form(tab)
    with pytest.raises(ValueError, match="8 cells; a visitor's experiment may have 6"):
        tab.new.estimate(values, visitor("page-a"))
    values = values | {f.count: 3}
    experiment_id = started_experiment(tab, values)
    with pytest.raises(ValueError, match="you have 1 jobs queued or running"):
        tab.new.estimate(values | {f.variants: ["plain"]}, visitor("page-a"))
    listing = tab.results.refresh(values_of(tab.refresh_inputs()), visitor("page-b"))[v.listing]
    assert "No experiments yet" in listing
    with pytest.raises(KeyError):
        tab.results.open(experiment_id, visitor("page-b"))
    run_job(public, experiment_id)
    run_id = public.log.list_runs(limit=1)[0].id
    assert f"Run #{run_id}" in tab.results.record(SimpleNamespace(run=run_id), visitor("page-a"))[v.record]
    with pytest.raises(KeyError):
        tab.results.record(SimpleNamespace(run=run_id), visitor("page-b"))
    with pytest.raises(KeyError):
        tab.results.export({v.opened: experiment_id, v.fmt: "jsonl"}, visitor("page-b"))
    public.stop_jobs()
    public.log.close()


def test_a_page_of_a_20000_row_experiment_draws_only_that_page(tmp_path, settings):
    """The table reads and draws one page, whatever the experiment's size (benchmarks/bench_experiments_tab.py
    prints the time)."""
    services, experiment_id = bench().big_experiment(tmp_path, settings, rows=20_000)
    tab = build(services)
    v = tab.view
    opened = tab.results.open(experiment_id, visitor())
    assert opened[v.table].count("<tr data-row") == 25 and "of 20,000" in opened[v.page_label]
    values = values_of(v.filters()) | {v.opened: experiment_id, v.page: 799, v.check: "length", v.only: "disagree",
                                      v.column: "", v.value: "", v.sort_a: "plain", v.sort_b: "role"}
    last = tab.results.next_page(values, visitor())
    assert last[v.table].count("<tr data-row") <= 25 and last[v.page] < 800
    assert len(opened[v.table]) < 200_000
    services.log.close()


def test_the_api_checks_its_arguments_and_keeps_visitors_apart(tmp_path, settings, catalog, text_model):
    """The named endpoints (dataset_rows, experiment_start, _status, _list, _control, _results, _export) as remote
    callers reach them: arguments through the request models, every read and action scoped to the caller."""
    from playground.services import Services
    from playground.ui.experiments.api import ExperimentApi

    public = Services.create(data_dir(tmp_path, settings, public=True, max_experiment_cells_per_visitor=8),
                             catalog=catalog)
    api, a, b = ExperimentApi(public), visitor("api-a"), visitor("api-b")
    rows = [{"product": f"a {name}", "expected": name} for name in ("lantern", "kettle", "tent")]
    added = api.dataset_rows(rows, "gadgets", request=a)
    assert added["rows"] == 3 and added["first_rows"][0]["product"] == "a lantern"
    ask = dict(template="product-tagline", dataset=added["version"], models=["tiny-text"], variants=["plain", "role"],
               params={"max_new_tokens": 2}, checks=[{"type": "contains"}], expected="expected")
    with pytest.raises(ValueError, match="no dataset"):
        api.experiment_start(**ask, dry_run=True, request=b)            # another visitor's dataset reads as missing
    assert "3 rows x 2 variants" in api.experiment_start(**ask, dry_run=True, request=a)["estimate"]["text"]
    with pytest.raises(ValueError, match="12 cells; a visitor's experiment may have 8"):
        api.experiment_start(**ask | {"seeds": [1, 2]}, request=a)
    with pytest.raises(ValueError, match=r"seeds\[0\]: must be a whole number"):
        api.experiment_start(**ask | {"seeds": ["1"]}, request=a)
    started = api.experiment_start(**ask, request=a)
    experiment_id = started["experiment_id"]
    assert started["created"] and started["status"]["total"] == 6 and public.jobs.list() != []
    assert [e["id"] for e in api.experiment_list(request=a)] == [experiment_id]
    assert api.experiment_list(request=b) == []
    for call in (lambda: api.experiment_status(experiment_id, request=b),
                 lambda: api.experiment_control(experiment_id, "pause", request=b),
                 lambda: api.experiment_results(experiment_id, request=b),
                 lambda: api.experiment_export(experiment_id, "jsonl", request=b)):
        with pytest.raises(LookupError):
            call()
    assert api.experiment_status(experiment_id, request=a)["status"] == "queued"
    with pytest.raises(ValueError, match="action: must be one of"):
        api.experiment_control(experiment_id, "explode", request=a)
    with pytest.raises(ValueError, match="limit: must be"):
        api.experiment_results(experiment_id, limit=5000, request=a)
    with pytest.raises(ValueError, match="experiment_id: must be a whole number"):
        api.experiment_status("1", request=a)
    run_job(public, experiment_id)
    page = api.experiment_results(experiment_id, limit=2, sort=["plain", "role"], request=a)
    assert page["total_rows"] == 3 and len(page["rows"]) == 2 and page["variants"] == ["plain", "role"]
    assert set(page["rows"][0]["cells"]) == {"plain", "role"}
    exported = api.experiment_export(experiment_id, "csv", request=a)
    assert Path(exported).read_text().count("\n") >= 6
    public.stop_jobs()
    public.log.close()


@pytest.mark.parametrize("typed", ["/etc/passwd", "../data/runs.sqlite", "https://example.com/x.csv", "a/b/c"])
def test_a_hub_dataset_id_is_never_a_path_or_a_url(tab, typed):
    f = tab.form
    values = form_values(tab) | {f.hub_id: typed, f.hub_config: "", f.hub_split: "", f.dataset_name: ""}
    with pytest.raises(ValueError, match="must be a Hugging Face dataset id like owner/name"):
        tab.new.add_hub(values, visitor())


def test_a_public_server_reads_no_local_folder_for_a_hub_id(tmp_path, settings, catalog, monkeypatch):
    from playground.services import Services
    from playground.ui.experiments.api import ExperimentApi

    public = Services.create(data_dir(tmp_path, settings, public=True), catalog=catalog)
    (tmp_path / "owner" / "rows").mkdir(parents=True)
    (tmp_path / "owner" / "rows" / "data.csv").write_text("product\na secret\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="'owner/rows' is not a Hugging Face dataset id here"):
        ExperimentApi(public).dataset_add(hub_id="owner/rows", request=visitor())
    assert public.datasets.list() == []
    public.log.close()


def test_a_row_whose_variants_are_not_all_run_yet_shows_the_gap(services):
    """The table of a running experiment: a row may hold some of its variants' cells and not yet the others."""
    from playground.experiments import ResultCell, ResultRow, ResultsPage
    from playground.ui.experiments.pages import table_html

    row = ResultRow(0, 0, 1, "tiny-text", {"product": "a kettle"}, None,
                    cells={"plain": ResultCell(7, "ok", "A kettle.", None, None)})
    shown = table_html(services.log, ResultsPage(1, ["plain", "role"], [], 1, 0, 25, [row]), "text")
    assert "A kettle." in shown and 'data-run="7"' in shown
    assert '<td data-label="role" class="pp-xcell pp-missing"><span class="pp-placeholder">not run yet' in shown
