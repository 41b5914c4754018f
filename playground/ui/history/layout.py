"""The History tab's components, each a named field: filters, the two tables, the opened comparison, export,
import and the per-variant summary."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ...services import Services
from .. import grid
from .pages import COMPARISON_HEADERS, RUN_HEADERS

ALL = "all"
SINCE = {"any time": None, "today": 1, "last 7 days": 7, "last 30 days": 30}
SUMMARY_HEADERS = ["template", "variant", "runs", "rated", "avg stars", "good", "bad", "wins"]
# Columns in pixels, not shares of the page: on a phone a table keeps readable columns and scrolls sideways inside
# its own box (shares of a 390 px screen squeezed "text" to one letter a line).
COMPARISON_WIDTHS = ["56px", "170px", "96px", "440px", "80px", "170px", "100px"]
RUN_WIDTHS = ["64px", "56px", "170px", "130px", "130px", "120px", "76px", "230px", "230px"]
SUMMARY_WIDTHS = ["150px", "130px", "60px", "64px", "84px", "60px", "56px", "60px"]


@dataclass
class HistoryView:
    modality: gr.Dropdown
    template: gr.Dropdown
    model: gr.Textbox
    min_stars: gr.Slider
    since: gr.Dropdown
    query: gr.Textbox
    search: gr.Button
    comparisons: gr.Dataframe
    runs: gr.Dataframe
    open_id: gr.Textbox
    open: gr.Button
    rerun_same: gr.Button
    rerun_new: gr.Button
    grid: gr.HTML
    pager: gr.Row
    previous: gr.Button
    page_label: gr.Markdown
    next: gr.Button
    fmt: gr.Radio
    scope: gr.Radio
    export: gr.Button
    export_file: gr.File
    import_button: gr.UploadButton
    import_status: gr.HTML
    summary_button: gr.Button
    summary: gr.Dataframe
    opened: gr.State            # the open comparison's id
    page: gr.State

    def filters(self) -> set:
        return {self.modality, self.template, self.model, self.min_stars, self.since, self.query}

    def tables(self) -> list:
        return [self.comparisons, self.runs]

    def opened_outputs(self) -> list:
        return [self.grid, self.opened, self.open_id, self.page, self.pager, self.page_label]


def lay_out(services: Services) -> HistoryView:
    fields = _filters(services)
    fields["comparisons"] = gr.Dataframe(headers=COMPARISON_HEADERS, interactive=False, wrap=True,
                                         label="Comparisons (click one to open it)", max_height=300,
                                         column_widths=COMPARISON_WIDTHS,
                                         elem_id="history-comparisons")
    fields["runs"] = gr.Dataframe(headers=RUN_HEADERS, interactive=False, wrap=True, max_height=300,
                                  label="Matching runs (click one to open it)", elem_id="history-runs",
                                  column_widths=RUN_WIDTHS)
    fields |= _opened(services)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=280):
            fields |= _transfer()
        with gr.Column(scale=3, min_width=280):
            fields["summary_button"] = gr.Button("Which variant wins?", elem_id="history-summary-btn")
            fields["summary"] = gr.Dataframe(headers=SUMMARY_HEADERS, interactive=False, wrap=True,
                                             column_widths=SUMMARY_WIDTHS,
                                             label="Ratings per variant", elem_id="history-summary")
    return HistoryView(**fields, opened=gr.State(None), page=gr.State(0))


def _filters(services: Services) -> dict:
    with gr.Row(elem_classes="pp-filters", equal_height=True):
        modality = gr.Dropdown([ALL, "text", "image", "music"], value=ALL, label="Modality", min_width=120,
                               elem_id="history-modality")
        template = gr.Dropdown([ALL] + sorted(services.library.templates), value=ALL, label="Template",
                               allow_custom_value=True, min_width=160, elem_id="history-template")
        model = gr.Textbox(label="Model", placeholder="any", min_width=140, elem_id="history-model")
        min_stars = gr.Slider(0, 5, value=0, step=1, label="Min stars", min_width=140, elem_id="history-stars")
        since = gr.Dropdown(list(SINCE), value="any time", label="When", min_width=120, elem_id="history-since")
    with gr.Row(elem_classes="pp-searchbar", equal_height=True):
        query = gr.Textbox(label="Search prompts and outputs", placeholder="e.g. lant (word beginnings match)",
                           scale=4, min_width=200, elem_id="history-query")
        search = gr.Button("Search", variant="primary", scale=0, min_width=100, elem_id="history-search")
    return dict(modality=modality, template=template, model=model, min_stars=min_stars, since=since, query=query,
                search=search)


def _opened(services: Services) -> dict:
    with gr.Row(elem_classes="pp-open-bar", equal_height=True):
        open_id = gr.Textbox(label="Comparison #", placeholder="e.g. 12", min_width=120, max_lines=1,
                             elem_id="history-open-id")
        open_ = gr.Button("Open", min_width=90, elem_id="history-open")
        rerun_same = gr.Button("Re-run (same seeds)", min_width=150, elem_id="history-rerun-same")
        rerun_new = gr.Button("Re-run (new seeds)", min_width=150, elem_id="history-rerun-new")
    shown = gr.HTML('<div class="pp-empty">Open a comparison to see it side by side again.</div>',
                    js_on_load=grid.GRID_JS, server_functions=grid.server_functions(services.log, services.visitors),
                    elem_id="history-grid", elem_classes="pp-results")
    with gr.Row(elem_classes="pp-pager", visible=False) as pager:
        previous = gr.Button("← Previous cells", size="sm", elem_id="history-prev")
        page_label = gr.Markdown(elem_id="history-page")
        next_ = gr.Button("Next cells →", size="sm", elem_id="history-next")
    return dict(open_id=open_id, open=open_, rerun_same=rerun_same, rerun_new=rerun_new, grid=shown, pager=pager,
                previous=previous, page_label=page_label, next=next_)


def _transfer() -> dict:
    with gr.Row():
        fmt = gr.Radio(["jsonl", "csv", "zip", "report"], value="jsonl", label="Export format",
                       info="zip holds the media files too; report is one HTML page to send anyone",
                       elem_id="history-format")
        scope = gr.Radio(["this comparison", "filtered history"], value="this comparison", label="What",
                         elem_id="history-scope")
    export = gr.Button("Export", elem_id="history-export")
    export_file = gr.File(label="Export file", interactive=False, visible=False, elem_id="history-export-file")
    import_button = gr.UploadButton("Import an export (.jsonl or .zip)…", file_types=[".jsonl", ".zip"],
                                    type="filepath", elem_id="history-import")
    import_status = gr.HTML(elem_id="history-import-status", elem_classes="pp-md")
    return dict(fmt=fmt, scope=scope, export=export, export_file=export_file, import_button=import_button,
                import_status=import_status)
