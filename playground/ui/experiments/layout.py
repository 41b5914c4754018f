"""The Results and Compare two panels laid out. Results: the experiments with their progress (polled by a timer, so a
job started on another page, or from the command line, shows here), the opened one's controls, its rows x variants
table a page at a time with filters and a sort, a cell's full record, the paired statistics, export and import.
Compare two: a baseline and a candidate, rows that got better and worse, and a re-run of chosen rows."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

ONLY = (("every row", "all"), ("rows with a failed cell", "failed"), ("rows where variants disagree", "disagree"),
        ("rows where a cell fails the check", "check_failed"))
EXPORT_FORMATS = ("jsonl", "csv", "parquet", "report")
POLL_S = 2.0                 # seconds between polls while an experiment is queued or running
IDLE_POLL_S = 10.0

# The tables' clicks become the tab's events: a list row opens its experiment, a cell opens its record, a box picks
# a row for a re-run. Delegated, so they survive every redraw of the HTML.
LIST_JS = """
const pick = (row) => row && trigger('pick', {experiment: Number(row.dataset.experiment)});
element.addEventListener('click', (event) => pick(event.target.closest('[data-experiment]')));
element.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); pick(event.target.closest('[data-experiment]')); }
});
"""
TABLE_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('.pp-open-record');
  if (button) trigger('record', {run: Number(button.dataset.run)});
});
"""
CHOOSE_JS = """
element.addEventListener('change', (event) => {
  if (!event.target.classList.contains('pp-pick')) return;
  const rows = [...element.querySelectorAll('.pp-pick:checked')].map((box) => Number(box.value));
  trigger('choose', {rows: rows});
});
"""


@dataclass
class ResultsView:
    timer: gr.Timer
    listing: gr.HTML
    open_id: gr.Textbox
    open: gr.Button
    status: gr.HTML
    pause: gr.Button
    resume: gr.Button
    cancel: gr.Button
    retry: gr.Button
    only: gr.Radio
    check: gr.Dropdown
    column: gr.Dropdown
    value: gr.Textbox
    sort_a: gr.Dropdown
    sort_b: gr.Dropdown
    apply: gr.Button
    table: gr.HTML
    previous: gr.Button
    page_label: gr.Markdown
    next: gr.Button
    record: gr.HTML
    evidence: gr.HTML
    evidence_button: gr.Button
    fmt: gr.Radio
    export: gr.Button
    export_file: gr.File
    import_button: gr.UploadButton
    import_status: gr.HTML
    opened: gr.State                 # the open experiment's id
    page: gr.State
    seen: gr.State                   # (status, cells logged) when the table was drawn last

    def filters(self) -> set:
        return {self.opened, self.page, self.only, self.check, self.column, self.value, self.sort_a, self.sort_b}

    def table_outputs(self) -> list:
        return [self.table, self.page, self.page_label, self.seen, self.check]

    def opened_outputs(self) -> list:
        """What opening an experiment changes."""
        return [self.opened, self.open_id, self.status, self.listing, self.only, self.check, self.column,
                self.value, self.sort_a, self.sort_b, self.record, self.evidence, self.timer, *self.table_outputs()]


@dataclass
class CompareView:
    baseline: gr.Dropdown
    candidate: gr.Dropdown
    check: gr.Dropdown
    baseline_variant: gr.Dropdown
    candidate_variant: gr.Dropdown
    compare: gr.Button
    result: gr.HTML
    rows: gr.Textbox
    pick_worse: gr.Button
    rerun: gr.Button
    rerun_status: gr.HTML
    started: gr.State                # the experiment the re-run started

    def picks(self) -> set:
        return {self.baseline, self.candidate, self.check, self.baseline_variant, self.candidate_variant}


def lay_out_results() -> ResultsView:
    fields: dict = {"timer": gr.Timer(POLL_S, active=False)}
    fields["listing"] = gr.HTML(js_on_load=LIST_JS, elem_id="exp-list", elem_classes="pp-results")
    with gr.Row(elem_classes="pp-open-bar", equal_height=True):
        fields["open_id"] = gr.Textbox(label="Experiment #", placeholder="e.g. 12", max_lines=1, min_width=110,
                                       elem_id="exp-open-id")
        fields["open"] = gr.Button("Open", min_width=80, size="sm", variant="primary", elem_id="exp-open")
        for name, label in (("pause", "Pause"), ("resume", "Resume"), ("cancel", "Cancel"),
                            ("retry", "Retry failed")):
            fields[name] = gr.Button(label, min_width=80, size="sm", elem_id=f"exp-{name}")
    fields["status"] = gr.HTML(elem_id="exp-status", elem_classes="pp-md")
    fields |= _filters()
    fields["table"] = gr.HTML('<div class="pp-empty">Open an experiment to see its rows.</div>', js_on_load=TABLE_JS,
                              elem_id="exp-table", elem_classes="pp-results")
    with gr.Row(elem_classes="pp-pager"):
        fields["previous"] = gr.Button("← Previous rows", size="sm", elem_id="exp-prev")
        fields["page_label"] = gr.Markdown(elem_id="exp-page")
        fields["next"] = gr.Button("Next rows →", size="sm", elem_id="exp-next")
    fields["record"] = gr.HTML(elem_id="exp-record", elem_classes="pp-md")
    with gr.Accordion("Which variant wins: paired statistics over rows", open=True):
        fields["evidence_button"] = gr.Button("Recompute", size="sm", elem_id="exp-evidence-btn")
        fields["evidence"] = gr.HTML(elem_id="exp-evidence", elem_classes="pp-md")
    with gr.Accordion("Export and import", open=False):
        with gr.Row(elem_classes="pp-open-bar"):
            fields["fmt"] = gr.Radio(list(EXPORT_FORMATS), value="jsonl", label="Format", elem_id="exp-format",
                                     info="report: one HTML page with the table, statistics and every record")
            fields["export"] = gr.Button("Export", scale=0, min_width=140, elem_id="exp-export")
        fields["export_file"] = gr.File(label="Export file", interactive=False, visible=False,
                                        elem_id="exp-export-file")
        fields["import_button"] = gr.UploadButton("Import results (.jsonl, .zip or .parquet)…",
                                                  file_types=[".jsonl", ".zip", ".parquet"], type="filepath",
                                                  elem_id="exp-import")
        fields["import_status"] = gr.HTML(elem_id="exp-import-status", elem_classes="pp-md")
    return ResultsView(**fields, opened=gr.State(None), page=gr.State(0), seen=gr.State(None))


def _filters() -> dict:
    with gr.Row(elem_classes="pp-filters", equal_height=True):
        only = gr.Radio(list(ONLY), value="all", label="Show", min_width=200, elem_id="exp-only")
        check = gr.Dropdown([], label="Check", min_width=140, elem_id="exp-check",
                            info="what 'disagree', 'fails' and the sort read")
        column = gr.Dropdown([("(any)", "")], value="", label="Column", min_width=120, elem_id="exp-column")
        value = gr.Textbox(label="holds", min_width=120, max_lines=1, elem_id="exp-value")
    with gr.Row(elem_classes="pp-filters", equal_height=True):
        sort_a = gr.Dropdown([("(dataset order)", "")], value="", label="Sort by variant", min_width=140,
                             elem_id="exp-sort-a")
        sort_b = gr.Dropdown([("", "")], value="", label="minus variant", min_width=140, elem_id="exp-sort-b")
        apply = gr.Button("Show rows", variant="primary", min_width=100, elem_id="exp-apply")
    return dict(only=only, check=check, column=column, value=value, sort_a=sort_a, sort_b=sort_b, apply=apply)


def lay_out_compare() -> CompareView:
    gr.Markdown("Two experiments on the same dataset version: a **baseline** and a **candidate** (an edited prompt, "
                "another model). Rows that got better and worse, sorted by the change, with a paired test over rows.")
    with gr.Row(elem_classes="pp-filters", equal_height=True):
        baseline = gr.Dropdown([], label="Baseline", min_width=180, elem_id="exp-baseline")
        candidate = gr.Dropdown([], label="Candidate", min_width=180, elem_id="exp-candidate")
        check = gr.Dropdown([], label="Check", min_width=140, elem_id="exp-compare-check")
    with gr.Row(elem_classes="pp-filters", equal_height=True):
        baseline_variant = gr.Dropdown([], label="Baseline variant", min_width=140, elem_id="exp-baseline-variant")
        candidate_variant = gr.Dropdown([], label="Candidate variant", min_width=140,
                                        elem_id="exp-candidate-variant")
        compare = gr.Button("Compare", variant="primary", min_width=100, elem_id="exp-compare")
    result = gr.HTML(js_on_load=CHOOSE_JS, elem_id="exp-compare-result", elem_classes="pp-results")
    with gr.Row(elem_classes="pp-open-bar", equal_height=True):
        rows = gr.Textbox(label="Rows to re-run", placeholder="tick rows above, or e.g. 4 17 23", min_width=200,
                          elem_id="exp-rerun-rows")
        pick_worse = gr.Button("Pick the rows that got worse", min_width=150, elem_id="exp-pick-worse")
        rerun = gr.Button("Re-run these rows as a new experiment", min_width=200, elem_id="exp-rerun")
    rerun_status = gr.HTML(elem_id="exp-rerun-status", elem_classes="pp-md")
    return CompareView(baseline, candidate, check, baseline_variant, candidate_variant, compare, result, rows,
                       pick_worse, rerun, rerun_status, gr.State(None))
