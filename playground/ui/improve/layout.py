"""The Improve tab's components, each a named field: what to improve and on what data, the objective, the proposer
and the budget; the projection with its Start button; the search as it runs (progress, chart of score by round,
candidates with their lineage), its held-out verdict, and saving the winner."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

INTRO = ("### Improve a variant\nA text model (the proposer) writes new versions of one variant, each is scored on "
         "your data by the checks you pick, and the best is kept, round after round (OPRO). At the end the winner "
         "and the original run on held-out rows (or new seeds) that the search never saw, and the paired statistics "
         "say whether the gain is real. You see the projected calls first; nothing runs until you start.")
COLUMNS = ["round", "candidate", "status", "score", "parent", "note", "prompt"]


@dataclass
class ImproveView:
    template: gr.Dropdown
    variant: gr.Dropdown
    proposer: gr.Textbox
    models: gr.Textbox
    dataset: gr.Dropdown
    upload: gr.File
    expected: gr.Textbox
    values: gr.Textbox
    checks: gr.Textbox
    objective: gr.Textbox
    params: gr.Textbox
    rounds: gr.Number
    candidates: gr.Number
    rows: gr.Number
    test_rows: gr.Number
    max_calls: gr.Textbox
    project: gr.Button
    projection: gr.Markdown
    start: gr.Button
    searches: gr.Dropdown
    refresh: gr.Button
    pause: gr.Button
    resume: gr.Button
    cancel: gr.Button
    progress: gr.Markdown
    chart: gr.HTML
    table: gr.Dataframe
    result: gr.Markdown
    save_name: gr.Textbox
    save: gr.Button
    saved: gr.Markdown
    winner_text: gr.Code
    timer: gr.Timer
    request: gr.State                 # the request last projected: Start sends exactly that
    search: gr.State                  # the search this page follows

    def form(self) -> set:
        return {self.template, self.variant, self.proposer, self.models, self.dataset, self.expected, self.values,
                self.checks, self.objective, self.params, self.rounds, self.candidates, self.rows, self.test_rows,
                self.max_calls}

    def shown(self) -> list:
        """What a refresh of the followed search updates."""
        return [self.search, self.progress, self.chart, self.table, self.result, self.timer, self.searches]


def lay_out(templates: list[str], proposer: str, settings) -> ImproveView:
    gr.Markdown(INTRO)
    with gr.Row():
        template = gr.Dropdown(templates, label="Template", value=None, elem_id="improve-template")
        variant = gr.Dropdown([], label="Start from variant", elem_id="improve-variant")
        proposer_box = gr.Textbox(proposer, label="Proposer (any text model)", elem_id="improve-proposer")
        models = gr.Textbox(label="Models (space-separated; empty: the default)", elem_id="improve-models")
    with gr.Row():
        dataset = gr.Dropdown([], label="Dataset (text): a 'split' column with dev and test rows, or a hash split",
                              allow_custom_value=True, elem_id="improve-dataset")
        upload = gr.File(label="or add rows (CSV, JSONL, Parquet)", file_types=[".csv", ".tsv", ".jsonl", ".json",
                                                                             ".parquet"], elem_id="improve-upload")
        expected = gr.Textbox(label="Expected-answer column (optional)", elem_id="improve-expected")
        values = gr.Textbox(label="Values (images, music): variable=value, one per line", lines=2,
                            elem_id="improve-values")
    with gr.Row():
        checks = gr.Textbox(label="Checks, one per line (e.g. length, contains=lantern, clip, hue=red)", lines=2,
                            elem_id="improve-checks")
        objective = gr.Textbox(label="Objective (empty: the one check, else the template's first)",
                               placeholder="length*1 + contains=lantern*0.5", elem_id="improve-objective")
        params = gr.Textbox(label="Generation parameters: name=value, one per line (empty: the template's)",
                            lines=2, elem_id="improve-params")
    with gr.Row():
        rounds = gr.Number(3, label=f"Rounds (at most {settings.max_improve_rounds})", precision=0, minimum=1,
                           elem_id="improve-rounds")
        candidates = gr.Number(4, label="Candidates per round", precision=0, minimum=1, elem_id="improve-candidates")
        rows = gr.Number(20, label="Rows per candidate", precision=0, minimum=1, elem_id="improve-rows")
        test_rows = gr.Number(100, label="Held-out rows", precision=0, minimum=1, elem_id="improve-test-rows")
        max_calls = gr.Textbox(label="Call cap (empty: none)", elem_id="improve-max-calls")
    project = gr.Button("Project the calls", elem_id="improve-project")
    projection = gr.Markdown(elem_id="improve-projection")
    start = gr.Button("Start the search", variant="primary", visible=False, elem_id="improve-start")
    with gr.Row(equal_height=True):
        searches = gr.Dropdown([], label="Your searches", scale=3, elem_id="improve-searches")
        refresh = gr.Button("Refresh", scale=0, min_width=80, elem_id="improve-refresh")
        pause = gr.Button("Pause", scale=0, min_width=80, elem_id="improve-pause")
        resume = gr.Button("Resume", scale=0, min_width=80, elem_id="improve-resume")
        cancel = gr.Button("Cancel", scale=0, min_width=80, variant="stop", elem_id="improve-cancel")
    progress = gr.Markdown(elem_id="improve-progress")
    chart = gr.HTML(elem_id="improve-chart")
    table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True, elem_id="improve-candidates-table")
    result = gr.Markdown(elem_id="improve-result")
    with gr.Row(equal_height=True):
        save_name = gr.Textbox(label="New template name (empty: <template>-improved)", scale=3,
                               elem_id="improve-save-name")
        save = gr.Button("Save winner as a new variant", scale=1, elem_id="improve-save")
    saved = gr.Markdown(elem_id="improve-saved")
    winner_text = gr.Code(label="The template with the winner", language="markdown", visible=False,
                          interactive=False, elem_id="improve-winner-text")
    return ImproveView(template, variant, proposer_box, models, dataset, upload, expected, values, checks, objective,
                       params, rounds, candidates, rows, test_rows, max_calls, project, projection, start, searches,
                       refresh, pause, resume, cancel, progress, chart, table, result, save_name, save, saved,
                       winner_text,
                       timer=gr.Timer(2.0, active=False), request=gr.State(None), search=gr.State(None))
