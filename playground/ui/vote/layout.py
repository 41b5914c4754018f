"""The Vote tab's components, each a named field: the comparison to vote on, the two hidden sides, the choice
buttons, and the ranking with its exports."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ...requests import CHOICES

BUTTONS = {"A": "A is better", "B": "B is better", "tie": "Tie", "both bad": "Both bad"}
KINDS = ("text", "image", "audio")


@dataclass
class VoteView:
    comparison: gr.Number
    start: gr.Button
    context: gr.HTML
    sides: list[dict]                 # per side (A, B): kind -> the component that shows it
    buttons_row: gr.Row
    buttons: dict[str, gr.Button]     # choice -> its button
    reason: gr.Textbox
    status: gr.HTML
    finish: gr.Button
    results: gr.Column
    ranking: gr.HTML
    exports: dict[str, gr.Button]     # jsonl, csv, report
    export_file: gr.File
    token: gr.State                   # server-side session state: the page itself never holds the pair
    granted: gr.State                 # the comparison this page opened through its share link
    voter: gr.BrowserState

    def side_components(self) -> list:
        return [side[kind] for side in self.sides for kind in KINDS]

    def deal_outputs(self) -> list:
        return [self.context, *self.side_components(), self.buttons_row, self.reason, self.status, self.finish,
                self.results, self.ranking, self.token, self.voter]


def lay_out(voter: gr.BrowserState, max_reason_chars: int) -> VoteView:
    gr.Markdown("### Blind vote\nTwo outputs for the same inputs, from two different prompt variants. Names are "
                "hidden and sides shuffled: pick the better one. The ranking shows when you are done.")
    with gr.Row(equal_height=True):
        comparison = gr.Number(label="Comparison #", precision=0, minimum=1, scale=2, elem_id="vote-comparison")
        start = gr.Button("Start voting", variant="primary", scale=1, elem_id="vote-start")
    with gr.Column(elem_id="vote-view"):
        context = gr.HTML(elem_id="vote-context", elem_classes="pp-md")
        with gr.Row(equal_height=False):
            sides = [_side(label) for label in ("A", "B")]
        with gr.Row(visible=False) as buttons_row:
            buttons = {c: gr.Button(BUTTONS[c], variant="primary" if c in "AB" else "secondary", min_width=80,
                                    elem_id=f"vote-{c.replace(' ', '-').lower()}") for c in CHOICES}
        reason = gr.Textbox(label="Why? (optional)", max_lines=3, max_length=max_reason_chars, visible=False,
                            elem_id="vote-reason")
        status = gr.HTML(elem_id="vote-status", elem_classes="pp-md")
    finish = gr.Button("Done: show the ranking", visible=False, elem_id="vote-finish")
    with gr.Column(visible=False) as results:
        ranking = gr.HTML(elem_id="vote-ranking")
        with gr.Row():
            exports = {"jsonl": gr.Button("Preferences (JSONL, DPO)", elem_id="vote-export-jsonl"),
                       "csv": gr.Button("Votes (CSV)", elem_id="vote-export-csv"),
                       "report": gr.Button("Report (HTML)", elem_id="vote-export-report")}
        export_file = gr.File(label="Download", interactive=False, visible=False, elem_id="vote-export-file")
    return VoteView(comparison, start, context, sides, buttons_row, buttons, reason, status, finish, results, ranking,
                    exports, export_file, token=gr.State(None), granted=gr.State(None), voter=voter)


def _side(label: str) -> dict:
    with gr.Column(min_width=300, elem_id=f"vote-side-{label.lower()}"):
        return {"text": gr.Textbox(label=label, lines=6, max_lines=24, interactive=False, visible=False,
                                   elem_id=f"vote-{label.lower()}-text"),
                "image": gr.Image(label=label, type="pil", interactive=False, visible=False, format="png",
                                  buttons=["fullscreen"], elem_id=f"vote-{label.lower()}-image"),
                "audio": gr.Audio(label=label, type="numpy", interactive=False, visible=False, buttons=[],
                                  elem_id=f"vote-{label.lower()}-audio")}
