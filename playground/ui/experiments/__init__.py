"""The Experiments tab: a template's variants over a whole dataset, run as a job the server owns. Sub-tabs: New (the
form and its dry run), Results (every experiment's progress, polled by a timer so that a job started on a closed
page or from the command line shows here; its table, statistics, export), Compare two (a baseline and a candidate),
Improve (playground/ui/improve: a model proposes better versions of a variant).
form.py and layout.py lay them out, new.py, results.py and compare.py hold what they do, api.py the same for API
clients; this module wires them by component. More sub-tabs join `ExperimentsTab.tabs`."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ...services import Services
from ..errors import at_boundary
from ..improve import build_improve_tab
from .api import ExperimentApi
from .compare import CompareHandlers
from .form import NewForm, lay_out_new
from .layout import CompareView, ResultsView, lay_out_compare, lay_out_results
from .new import NewHandlers
from .results import ResultsHandlers

__all__ = ["ExperimentsTab", "build_experiments_tab"]
PRIVATE = {"api_visibility": "private"}


@dataclass
class ExperimentsTab:
    tabs: gr.Tabs
    form: NewForm
    new: NewHandlers
    view: ResultsView
    results: ResultsHandlers
    compare_view: CompareView
    compare: CompareHandlers

    def refresh_outputs(self) -> list:
        v = self.view
        return [v.listing, v.timer, v.status, v.evidence, *v.table_outputs()]

    def refresh_inputs(self) -> set:
        return self.view.filters() | {self.view.seen}

    def show_on(self, tab: gr.Tab) -> None:
        """Opening `tab` (the app's Experiments tab) shows every experiment's progress and starts polling."""
        tab.select(at_boundary(self.results.services.settings.data_dir)(self.results.refresh), self.refresh_inputs(),
                   self.refresh_outputs(), show_progress="hidden", **PRIVATE)

    def then_statistics(self, event, boundary) -> None:
        """After an experiment is opened and its first page shown: its paired statistics."""
        v = self.view
        event.success(boundary(self.results.statistics), {v.opened}, v.evidence, show_progress="hidden", **PRIVATE)

    def open_started(self, state: gr.State):
        """After Run (or a re-run of rows): the experiment it started, opened in Results."""
        def open_(values: dict, request: gr.Request) -> dict:
            started = values[state]
            if not started:
                return {}
            return self.results.open(started, request) | {self.tabs: gr.Tabs(selected="exp-results")}
        return open_


def build_experiments_tab(services: Services) -> ExperimentsTab:
    boundary = at_boundary(services.settings.data_dir)
    ExperimentApi(services).register(boundary)      # before Improve's, which its page registers
    with gr.Tabs(elem_id="exp-tabs") as tabs:
        with gr.Tab("New", id="exp-new"):
            form = lay_out_new(services)
        with gr.Tab("Results", id="exp-results") as results_tab:
            view = lay_out_results()
        with gr.Tab("Compare two", id="exp-compare") as compare_tab:
            compare_view = lay_out_compare()
        with gr.Tab("Improve", id="exp-improve") as improve_tab:
            build_improve_tab(services).opened_by(improve_tab)
    tab = ExperimentsTab(tabs, form, NewHandlers(form, services), view, ResultsHandlers(view, services),
                         compare_view, CompareHandlers(compare_view, services))
    _wire_new(tab, boundary)
    _wire_results(tab, boundary)
    tab.show_on(results_tab)
    _wire_compare(tab, compare_tab, boundary)
    return tab


def _wire_new(tab: ExperimentsTab, boundary) -> None:
    f, new = tab.form, tab.new
    f.template.input(boundary(new.pick_template), {f.template, f.dataset}, f.template_outputs(), **PRIVATE)
    f.source.change(boundary(new.show_source), {f.source},
                    [f.upload_box, f.paste_box, f.hub_box, f.previous_box, f.previous], **PRIVATE)
    chosen = f.dataset_outputs() + [f.var_names]
    f.upload.upload(boundary(new.add_upload), {f.upload, f.dataset_name, f.template}, chosen, **PRIVATE)
    f.paste_add.click(boundary(new.add_pasted), {f.pasted, f.dataset_name, f.template}, chosen, **PRIVATE)
    f.hub_add.click(boundary(new.add_hub), {f.hub_id, f.hub_config, f.hub_split, f.dataset_name, f.template},
                    chosen, **PRIVATE)
    f.previous.input(boundary(new.pick_previous), {f.previous, f.template}, chosen, **PRIVATE)
    f.rows.change(new.show_rows, {f.rows}, [f.count, f.sample_seed, f.start, f.stop, f.where_column, f.where_value],
                  queue=False, **PRIVATE)
    f.estimate.click(boundary(new.estimate), f.spec_inputs(), [f.plan, f.estimated], **PRIVATE)
    started = tab.refresh_outputs() + tab.view.opened_outputs() + [tab.tabs]
    opened = f.run.click(boundary(new.run), f.spec_inputs() | {f.estimated}, [f.plan, f.estimated, f.started],
                         **PRIVATE).success(boundary(tab.open_started(f.started)), {f.started},
                                            list(dict.fromkeys(started)), **PRIVATE)
    tab.then_statistics(opened, boundary)
    f.run_here.click(boundary(new.run_here), f.spec_inputs() | {f.estimated}, [f.plan, f.estimated], **PRIVATE)


def _wire_results(tab: ExperimentsTab, boundary) -> None:
    v, results = tab.view, tab.results
    opened = list(dict.fromkeys(v.opened_outputs()))
    for event in (v.listing.pick(boundary(results.pick), None, opened, **PRIVATE),
                  v.open.click(boundary(results.open_typed), {v.open_id}, opened, **PRIVATE),
                  v.open_id.submit(boundary(results.open_typed), {v.open_id}, opened, **PRIVATE)):
        tab.then_statistics(event, boundary)
    v.timer.tick(boundary(results.refresh), tab.refresh_inputs(), tab.refresh_outputs(), show_progress="hidden",
                 **PRIVATE)
    for action, button in (("pause", v.pause), ("resume", v.resume), ("cancel", v.cancel), ("retry_failed", v.retry)):
        button.click(boundary(_control(results, action)), tab.refresh_inputs(), tab.refresh_outputs(), **PRIVATE)
    for trigger in (v.apply.click, v.only.input):
        trigger(boundary(results.show), v.filters(), v.table_outputs(), **PRIVATE)
    v.previous.click(boundary(results.previous_page), v.filters(), v.table_outputs(), **PRIVATE)
    v.next.click(boundary(results.next_page), v.filters(), v.table_outputs(), **PRIVATE)
    v.table.record(boundary(results.record), None, v.record, **PRIVATE).then(
        None, None, None, js="() => document.getElementById('exp-record')?.scrollIntoView({behavior: 'smooth'})")
    v.evidence_button.click(boundary(results.statistics), {v.opened}, v.evidence, **PRIVATE)
    v.export.click(boundary(results.export), {v.opened, v.fmt}, v.export_file, **PRIVATE)
    v.import_button.upload(boundary(results.import_results), v.import_button, v.import_status, **PRIVATE)


def _control(results: ResultsHandlers, action: str):
    def control(values: dict, request: gr.Request) -> dict:
        return results.control(values, action, request)
    return control


def _wire_compare(tab: ExperimentsTab, compare_tab: gr.Tab, boundary) -> None:
    c, handlers = tab.compare_view, tab.compare
    compare_tab.select(boundary(handlers.choices), None, [c.baseline, c.candidate], **PRIVATE)
    for side in (c.baseline, c.candidate):
        side.input(boundary(handlers.fit), c.picks(), [c.check, c.baseline_variant, c.candidate_variant], **PRIVATE)
    c.compare.click(boundary(handlers.compare), c.picks(), [c.result, c.rows, c.rerun_status], **PRIVATE)
    c.result.choose(handlers.choose, None, c.rows, queue=False, **PRIVATE)
    c.pick_worse.click(boundary(handlers.pick_worse), c.picks(), [c.result, c.rows], **PRIVATE)
    started = tab.refresh_outputs() + tab.view.opened_outputs() + [tab.tabs]
    rerun = c.rerun.click(boundary(handlers.rerun), {c.candidate, c.rows}, [c.rerun_status, c.started],
                          **PRIVATE).success(boundary(tab.open_started(c.started)), {c.started},
                                             list(dict.fromkeys(started)), **PRIVATE)
    tab.then_statistics(rerun, boundary)
