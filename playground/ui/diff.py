"""The Diff tab: two columns (variants) of a comparison, one row at a time: word-level diffs of the prompts and
text outputs, an image comparison slider, or spectrograms side by side for audio."""

from __future__ import annotations

import io
from dataclasses import dataclass

import gradio as gr

from ..render import Markup, render, rerun_badge
from ..requests import ComparisonRef, check
from ..services import Services
from ..stakeholders.diffs import DEL_STYLE, INS_STYLE, diff_stats, spectrogram_of_file, word_diff_html
from ..stakeholders.report import latest_per_cell, row_label
from .errors import at_boundary


@dataclass
class DiffView:
    comparison: gr.Number
    load: gr.Button
    left: gr.Dropdown
    right: gr.Dropdown
    row: gr.Dropdown
    show: gr.Button
    text: gr.HTML
    slider: gr.ImageSlider
    spectrograms: list[gr.Image]      # left, right
    audio: list[gr.Audio]             # left, right

    def picks(self) -> set:
        return {self.comparison, self.left, self.right, self.row}

    def outputs(self) -> list:
        return [self.text, self.slider, *self.spectrograms, *self.audio]


def lay_out() -> DiffView:
    gr.Markdown("### Diff two variants\nPick a comparison, two columns and a row.")
    with gr.Row(equal_height=True):
        comparison = gr.Number(label="Comparison #", precision=0, minimum=1, elem_id="diff-comparison")
        load = gr.Button("Load", elem_id="diff-load")
    with gr.Row():
        left = gr.Dropdown(label="Left column", choices=[], elem_id="diff-left")
        right = gr.Dropdown(label="Right column", choices=[], elem_id="diff-right")
        row = gr.Dropdown(label="Row", choices=[], elem_id="diff-row")
    show = gr.Button("Show the differences", variant="primary", elem_id="diff-show")
    text = gr.HTML(elem_id="diff-html")
    slider = gr.ImageSlider(label="left ⟷ right", visible=False, type="filepath", elem_id="diff-slider")
    with gr.Row():
        spectrograms = [gr.Image(label=f"{side.title()}: spectrogram", visible=False, interactive=False,
                                 elem_id=f"diff-spec-{side}") for side in ("left", "right")]
    with gr.Row():
        audio = [gr.Audio(label=side.title(), visible=False, interactive=False, elem_id=f"diff-audio-{side}")
                 for side in ("left", "right")]
    return DiffView(comparison, load, left, right, row, show, text, slider, spectrograms, audio)


class DiffHandlers:
    def __init__(self, view: DiffView, services: Services):
        self.view, self.services = view, services

    def _comparison(self, values: dict, request: gr.Request):
        if values[self.view.comparison] is None:
            raise gr.Error("Give a comparison number first: the one shown in History")
        ref = check(ComparisonRef, {"comparison_id": values[self.view.comparison]}, self.services.settings)
        return self.services.log.get_comparison(ref.comparison_id, owner=self.services.visitors.owner(request))

    def load(self, values: dict, request: gr.Request) -> dict:
        """The comparison's columns and rows to pick from."""
        v, comparison = self.view, self._comparison(values, request)
        cells = latest_per_cell(comparison.runs)
        columns = [(name, col) for col, name in sorted({(col, run.variant or f"column {col}")
                                                       for (_, col), run in cells.items()})]
        seeds = self.services.log.row_seeds(comparison.id)
        rows = sorted({row: (row_label(run, seeds.get(row)), row) for (row, _), run in cells.items()}.values(),
                      key=lambda item: item[1])
        if len(columns) < 2:
            raise gr.Error("This comparison has a single column: nothing to diff")
        return {v.left: gr.update(choices=columns, value=columns[0][1]),
                v.right: gr.update(choices=columns, value=columns[1][1]),
                v.row: gr.update(choices=rows, value=rows[0][1])}

    def show(self, values: dict, request: gr.Request) -> dict:
        """HTML diff, slider value, spectrogram images and audio players for one row and two columns."""
        v = self.view
        if None in (values[v.left], values[v.right], values[v.row]):
            raise gr.Error("Load a comparison and pick two columns and a row first")
        comparison = self._comparison(values, request)
        cells = latest_per_cell(comparison.runs)
        left, right = (cells.get((int(values[v.row]), int(values[side]))) for side in (v.left, v.right))
        if left is None or right is None:
            raise gr.Error("That row has no output in one of the two columns")
        paths = [self.services.log.artifact_path(run) for run in (left, right)]
        have_files = all(p is not None and p.is_file() for p in paths)
        updates = {v.text: self._text_diff(comparison.modality, left, right, missing=not have_files),
                   v.slider: gr.update(visible=False, value=None)}
        updates |= {c: gr.update(visible=False, value=None) for c in v.spectrograms + v.audio}
        if comparison.modality == "image" and have_files:
            updates[v.slider] = gr.update(visible=True, value=(str(paths[0]), str(paths[1])))
        elif comparison.modality == "music" and have_files:
            from PIL import Image

            for image, audio, path in zip(v.spectrograms, v.audio, paths):
                updates[image] = gr.update(visible=True, value=Image.open(io.BytesIO(spectrogram_of_file(path))))
                updates[audio] = gr.update(visible=True, value=str(path))
        return updates

    @staticmethod
    def _text_diff(modality: str, left, right, missing: bool) -> str:
        stats = diff_stats(left.prompt, right.prompt)
        blocks = [{"title": f"Prompt · {stats['similarity']:.0%} alike",
                   "diff": Markup(word_diff_html(left.prompt, right.prompt))}]
        if (left.system or right.system) and left.system != right.system:
            blocks.append({"title": "System prompt", "diff": Markup(word_diff_html(left.system or "",
                                                                                   right.system or ""))})
        if modality == "text":
            old, new = left.output_text or "", right.output_text or ""
            stats = diff_stats(old, new)
            blocks.append({"title": f"Output · {stats['similarity']:.0%} alike · {stats['removed']} words removed, "
                                    f"{stats['added']} added", "diff": Markup(word_diff_html(old, new))})
        sides = [{"variant": run.variant or f"column {run.col}", "run_id": run.id, "badge": rerun_badge(run)}
                 for run in (left, right)]
        return render("diff.html.j2", blocks=blocks, del_style=DEL_STYLE, ins_style=INS_STYLE, sides=sides,
                      missing=missing and modality != "text")


def build_diff_tab(services: Services) -> DiffHandlers:
    view = lay_out()
    handlers = DiffHandlers(view, services)
    boundary = at_boundary(services.settings.data_dir)
    picked = [view.left, view.right, view.row]
    view.load.click(boundary(handlers.load), {view.comparison}, picked, api_visibility="private").then(
        boundary(handlers.show), view.picks(), view.outputs(), api_visibility="private")
    view.comparison.submit(boundary(handlers.load), {view.comparison}, picked, api_visibility="private")
    view.show.click(boundary(handlers.show), view.picks(), view.outputs(), api_visibility="private")
    return handlers
