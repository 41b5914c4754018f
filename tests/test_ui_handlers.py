"""The tabs' handlers called as plain functions, without a browser: values in and updates out, keyed by component."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest

from playground.store import RunRecord


@pytest.fixture(scope="module")
def services(settings, catalog, tmp_path_factory):
    from playground.services import Services

    data = tmp_path_factory.mktemp("handlers")
    (data / "models").symlink_to(settings.models_dir, target_is_directory=True)
    return Services.create(settings.replace(data_dir=data), catalog=catalog)


@pytest.fixture(scope="module")
def tab(services):
    from playground.ui.compare import build_compare_tab

    with gr.Blocks():
        remembered = gr.BrowserState({})
        built = build_compare_tab("text", services, remembered)
    return built


@pytest.fixture(scope="module")
def history(services):
    from playground.ui.history import build_history_tab

    with gr.Blocks():
        built = build_history_tab(services)
    return built


def form_values(tab) -> dict:
    """What the page would send: every input's current value, keyed by its component."""
    f = tab.form
    inputs = f.prompt_inputs() | {f.seeds, f.rerun, f.checks, tab.handlers.browser_state, *f.params.values()}
    return {component: component.value for component in inputs}


def visitor(session: str):
    return SimpleNamespace(session_hash=session, username=None)


def test_the_form_is_read_by_component_not_by_position(tab):
    values = form_values(tab)
    f = tab.form
    values[f.slots[1].name] = "second"
    values[f.slots[1].text] = "Say {{ product }} twice."
    filled = tab.handlers.read_form(values)
    assert list(filled.variants)[1] == "second" and filled.variants["second"] == "Say {{ product }} twice."
    assert filled.values == {"product": ["a solar-powered lantern"]}
    values[f.slots[0].name] = "second"
    with pytest.raises(ValueError, match="two variants are named 'second'"):
        tab.handlers.read_form(values)


def test_duplicate_and_remove_update_the_cards_by_name(tab):
    values = form_values(tab)
    f = tab.form
    count = values[f.n_variants]
    grown = tab.handlers.edit_variants(values, "duplicate", 0)
    assert grown[f.n_variants] == count + 1
    assert grown[f.slots[1].name]["value"] == f"{values[f.slots[0].name]}-2"
    assert grown[f.slots[count].column]["visible"] is True
    shrunk = tab.handlers.edit_variants(values, "remove", 0)
    assert shrunk[f.n_variants] == count - 1 and shrunk[f.slots[0].name]["value"] == values[f.slots[1].name]


def test_a_remembered_form_is_laid_over_its_template(tab):
    f = tab.form
    saved = {"template": "product-tagline", "variables": [["product", "a kettle"]], "models": ["tiny-text"],
             "variants": [["one", "Hi {{ product }}"], ["two", "Bye {{ product }}"]], "seeds": "4, 5",
             "extras": {"system": "Be brief."}}
    updates = tab.handlers.restore(saved)
    assert updates[f.template]["value"] == "product-tagline" and updates[f.seeds] == "4, 5"
    assert updates[f.variables[0]]["value"] == "a kettle" and updates[f.n_variants] == 2
    assert updates[f.slots[1].text]["value"] == "Bye {{ product }}" and updates[f.slots[2].column]["visible"] is False
    assert updates[f.extras["system"]]["value"] == "Be brief."
    assert tab.handlers.restore({"template": ["not", "a", "name"]}).keys() <= set(f.params.values()) | {f.template}


def test_a_variable_typed_into_a_variant_gets_a_box_and_a_warning(tab):
    values = form_values(tab)
    f = tab.form
    values[f.slots[0].text] = "For {{ audience }}: {{ product }}"
    updates = tab.handlers.sync_variables(values)
    assert updates[f.var_names] == ["product", "audience"]
    assert updates[f.variables[1]]["label"] == "audience"
    assert "<strong>audience</strong> is blank" in updates[f.var_warning]


def test_the_preview_escapes_prompts_and_renders_one_at_a_time_per_visitor(tab):
    values = form_values(tab)
    f = tab.form
    values[f.slots[0].text] = "<img src=x onerror=alert(1)> ![t](http://tracker.example/p.png) {{ product }}"
    shown = tab.handlers.preview(values, visitor("page-a"))[f.preview]
    assert "&lt;img src=x" in shown and "<img" not in shown and "a solar-powered lantern" in shown
    with tab.handlers.previews.enter("page-a") as admitted:
        assert admitted
        busy = tab.handlers.preview(values, visitor("page-a"))[f.preview]
        other = tab.handlers.preview(values, visitor("page-b"))[f.preview]
    assert "being rendered for you already" in busy and "a solar-powered lantern" in other


def test_history_searches_opens_and_refuses_by_component(history, services):
    from playground.store import RunRecord

    comparison_id = services.log.start_comparison("text", "handlers")
    services.log.add_run(RunRecord(modality="text", model_id="tiny-text", prompt="a lantern", seed=1, params={},
                                   comparison_id=comparison_id, variant="plain", output_text="light"))
    v = history.view
    values = {component: component.value for component in v.filters()}
    tables = history.handlers.search(values | {v.query: "lant"}, visitor("page-a"))
    assert [row[0] for row in tables[v.comparisons]] == [comparison_id] and tables[v.runs][0][7] == "a lantern"
    opened = history.handlers.open_typed({v.open_id: f"#{comparison_id}"}, visitor("page-a"))
    assert opened[v.opened] == comparison_id and 'class="pp-cell pp-ok"' in opened[v.grid]
    with pytest.raises(ValueError, match="min_stars: must be a whole number between 0 and 5"):
        history.handlers.search(values | {v.min_stars: 9}, visitor("page-a"))
    with pytest.raises(ValueError, match="comparison number: must be a number like 12"):
        history.handlers.open_typed({v.open_id: "12; DROP TABLE runs"}, visitor("page-a"))


def test_a_blind_vote_is_dealt_and_cast_by_component(services):
    from playground.store import RunRecord
    from playground.ui.vote import build_vote_tab

    with gr.Blocks() as demo:
        voter = gr.BrowserState("")
        with gr.Tabs() as tabs:
            vote = build_vote_tab(services, demo, tabs, voter)
    comparison_id = services.log.start_comparison("text", "vote by component")
    for col, (variant, text) in enumerate((("secret-left", "<b>one</b>"), ("secret-right", "two"))):
        services.log.add_run(RunRecord(modality="text", model_id="tiny-text", prompt="p", seed=1, params={},
                                       comparison_id=comparison_id, col=col, variant=variant, output_text=text,
                                       variables={"product": "<i>lamp</i>"}))
    v = vote.view
    values = {v.comparison: float(comparison_id), v.voter: "", v.granted: None}
    dealt = vote.handlers.start(values, visitor("page-a"))
    assert "Pair 1 of 1" in dealt[v.context] and "&lt;i&gt;lamp&lt;/i&gt;" in dealt[v.context]
    assert "secret" not in str(dealt[v.context]) and dealt[v.token]
    shown = {dealt[side["text"]]["value"] for side in v.sides}
    assert shown == {"<b>one</b>", "two"}
    assert v.voter not in dealt                      # the server decides who votes; the page's storage is left alone
    after = vote.handlers.vote(values | {v.token: dealt[v.token], v.reason: ""}, "A", visitor("page-a"))
    assert "secret-left" in after[v.ranking] and after[v.results]["visible"] is True
    with pytest.raises(ValueError, match="comparison_id: must be a whole number, got 1.5"):
        vote.handlers.start(values | {v.comparison: 1.5}, visitor("page-a"))


def test_the_diff_of_two_columns_by_component(services):
    from playground.store import RunRecord
    from playground.ui.diff import build_diff_tab

    with gr.Blocks():
        diff = build_diff_tab(services)
    comparison_id = services.log.start_comparison("text", "diff by component")
    for col, (prompt, text) in enumerate((("Write <b>a</b> line.", "old words"), ("Write one line.", "new words"))):
        services.log.add_run(RunRecord(modality="text", model_id="tiny-text", prompt=prompt, seed=1, params={},
                                       comparison_id=comparison_id, col=col, variant=f"v{col}", output_text=text))
    v = diff.view
    loaded = diff.load({v.comparison: comparison_id}, visitor("page-a"))
    assert loaded[v.left]["value"] == 0 and loaded[v.right]["value"] == 1 and loaded[v.row]["value"] == 0
    shown = diff.show({v.comparison: comparison_id, v.left: 0, v.right: 1, v.row: 0}, visitor("page-a"))[v.text]
    assert "<del" in shown and "&lt;b&gt;a&lt;/b&gt;" in shown and "<b>a</b>" not in shown
    assert "Output · " in shown and "1 words removed, 1 added" in shown


def test_the_preview_waits_in_the_queue_like_other_work(settings, catalog, tmp_path):
    """An unqueued event runs at once for anyone who posts it; the preview renders templates, so it is queued."""
    from playground.services import Services
    from playground.ui.app import build_app
    from playground.ui.queues import PREVIEW_QUEUE

    own = settings.replace(data_dir=tmp_path)
    (tmp_path / "models").symlink_to(settings.models_dir, target_is_directory=True)
    demo = build_app(own, Services.create(own, catalog=catalog))
    previews = [fn for fn in demo.fns.values() if getattr(fn, "name", "") == "preview"]
    assert len(previews) >= 3 * 2
    assert all(fn.queue and fn.concurrency_id == PREVIEW_QUEUE for fn in previews)


def run_values(tab) -> dict:
    """form_values plus what a Run click also sends: the grid and run state the page shows."""
    f = tab.form
    return form_values(tab) | {f.grid: f.grid.value, f.run_state: None}


def test_a_rerun_after_a_reload_is_scored_and_keeps_the_status_line_and_panel(tab, services):
    from playground.store.scores import scores_for_runs
    from playground.ui.app import _last_grid

    f = tab.form
    values = run_values(tab) | {f.seeds: "1, 2", f.checks: "contains=a"}
    frames = list(tab.handlers.run(values, visitor("page-a")))
    remembered = frames[-1][tab.handlers.browser_state]
    assert remembered["forms"]["text"]["checks"] == "contains=a"
    assert tab.handlers.restore(remembered["forms"]["text"])[f.checks] == "contains=a"     # back in the box

    html_, state = _last_grid(services, "text", remembered["text"])            # the page reloaded
    assert "pp-summary" in html_ and f"{len(state['views'])} / {len(state['views'])} cells · done" in html_
    shown = state["views"][1].run_id
    updates = list(tab.handlers.rerun_cell({f.run_state: state, tab.handlers.browser_state: remembered},
                                           SimpleNamespace(index=1, new_seed=True), visitor("page-a")))
    final = updates[-1][f.grid]
    fresh = services.log.get_run(state["views"][1].run_id)
    assert fresh.replaces == shown and "contains=a" in scores_for_runs(services.log, [fresh.id])[fresh.id]
    assert "pp-summary" in final and f"{len(state['views'])} / {len(state['views'])} cells · done" in final
    assert f"re-run · seed {fresh.seed}" in final


def test_the_grid_says_what_a_first_run_waits_for_before_the_runner_starts(settings, tmp_path):
    """A fresh process: the tiny model is not loaded; the first frames come before anything is loaded or logged."""
    from playground.services import Services
    from playground.ui.compare import build_compare_tab

    fresh = Services.create(settings.replace(data_dir=tmp_path))
    with gr.Blocks():
        first = build_compare_tab("text", fresh, gr.BrowserState({}))
    assert fresh.catalog.preparing("text", "tiny-text") == "load"
    frames = first.handlers.run(run_values(first), visitor("page-a"))
    assert "rendering the prompts" in next(frames)[first.form.grid]
    assert "loading tiny-text" in next(frames)[first.form.grid]
    frames.close()
    assert fresh.log.list_comparisons() == [] and fresh.catalog.loads == 0


def test_preparing_a_model_says_load_until_it_is_loaded(settings, catalog, text_model):
    from playground.engines.catalog import Catalog

    assert catalog.preparing("text", "tiny-text") is None               # loaded in this process
    assert Catalog(settings).preparing("text", "tiny-text") == "load"     # another process: shipped, only loaded


def test_a_stopped_comparison_says_so_in_history(history, services):
    from playground.ui.history.pages import comparison_rows, render_page

    cells = [{"row": 0, "col": col} for col in range(3)] * 2
    comparison_id = services.log.start_comparison("text", "stopped early", spec={"cells": cells})
    for col in range(2):
        services.log.add_run(RunRecord(modality="text", model_id="tiny-text", prompt="p", seed=1, params={},
                                       comparison_id=comparison_id, col=col, variant=f"v{col}", output_text="o"))
    services.log.finish_comparison(comparison_id, "cancelled")
    row = next(r for r in comparison_rows(services) if r[0] == comparison_id)
    assert row[4:6] == ["2 of 6", "stopped"]
    html_ = render_page(services, comparison_id)[0]
    assert "2 / 6 cells · stopped" in html_ and "pp-progress pp-stopped" in html_


def test_history_search_narrows_the_comparisons_too(history, services):
    ids = []
    for word in ("zebracrossing", "otterpond"):
        ids.append(services.log.start_comparison("text", f"about {word}"))
        services.log.add_run(RunRecord(modality="text", model_id="tiny-text", prompt="p", seed=1, params={},
                                       comparison_id=ids[-1], variant="v", output_text=f"a {word} here"))
    v = history.view
    values = {component: component.value for component in v.filters()}
    tables = history.handlers.search(values | {v.query: "zebra"}, visitor("page-a"))
    assert [row[0] for row in tables[v.comparisons]] == [ids[0]]
    assert {row[1] for row in tables[v.runs]} == {ids[0]}
