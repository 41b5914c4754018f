"""The Diff tab: two columns (variants) of a comparison, one row at a time: word-level diffs of the prompts and
text outputs, an image comparison slider, or spectrograms side by side for audio."""

from __future__ import annotations

import io

import gradio as gr

from ..services import Services
from ..stakeholders.diffs import DEL_STYLE, INS_STYLE, diff_stats, spectrogram_of_file, word_diff_html
from ..stakeholders.report import latest_per_cell, row_label


def _variants_and_rows(services: Services, comparison_id, owner: str | None = None) -> tuple[list, list, str]:
    try:
        comparison = services.log.get_comparison(int(comparison_id), owner=owner)
    except (TypeError, ValueError, KeyError):
        raise gr.Error(f"No comparison #{comparison_id} in the log: give the number shown in History") from None
    cells = latest_per_cell(comparison.runs)
    variants = sorted({(col, run.variant or f"column {col}") for (_, col), run in cells.items()})
    rows = sorted({(row_label(run), row) for (row, _), run in cells.items()}, key=lambda item: item[1])
    return [(name, col) for col, name in variants], rows, comparison.modality


def _block(title: str, body: str) -> str:
    return f'<div class="pp-diff-block"><h4>{title}</h4>{body}</div>'


def diff_view(services: Services, comparison_id, left_col, right_col, row, owner: str | None = None) -> list:
    """HTML diff, slider value, spectrogram images and audio players for one row and two columns."""
    comparison = services.log.get_comparison(int(comparison_id), owner=owner)
    cells = latest_per_cell(comparison.runs)
    left, right = cells.get((int(row), int(left_col))), cells.get((int(row), int(right_col)))
    if left is None or right is None:
        raise gr.Error("That row has no output in one of the two columns")
    legend = (f'<p class="pp-note"><del{DEL_STYLE}>removed</del> from the left column, <ins{INS_STYLE}>added</ins> '
              f'in the right one</p>')
    stats = diff_stats(left.prompt, right.prompt)
    parts = [legend, _block(f"Prompt · {stats['similarity']:.0%} alike", word_diff_html(left.prompt, right.prompt))]
    if (left.system or right.system) and left.system != right.system:
        parts.append(_block("System prompt", word_diff_html(left.system or "", right.system or "")))
    if comparison.modality == "text":
        stats = diff_stats(left.output_text or "", right.output_text or "")
        parts.append(_block(f"Output · {stats['similarity']:.0%} alike · {stats['removed']} words removed, "
                            f"{stats['added']} added",
                            word_diff_html(left.output_text or "", right.output_text or "")))
    paths = [services.log.artifact_path(run) for run in (left, right)]
    have_files = all(p is not None and p.is_file() for p in paths)
    slider = gr.update(visible=False, value=None)
    spectrograms = [gr.update(visible=False, value=None) for _ in range(4)]
    if comparison.modality == "image" and have_files:
        slider = gr.update(visible=True, value=(str(paths[0]), str(paths[1])))
    elif comparison.modality == "music" and have_files:
        from PIL import Image

        spectrograms = [gr.update(visible=True, value=Image.open(io.BytesIO(spectrogram_of_file(p)))) for p in paths]
        spectrograms += [gr.update(visible=True, value=str(p)) for p in paths]
    elif comparison.modality != "text":
        parts.append('<p class="pp-note">An output file is missing from the data dir.</p>')
    return ["".join(parts), slider, *spectrograms]


def build_diff_tab(services: Services) -> None:
    gr.Markdown("### Diff two variants\nPick a comparison, two columns and a row.")
    with gr.Row(equal_height=True):
        comparison = gr.Number(label="Comparison #", precision=0, minimum=1, elem_id="diff-comparison")
        load = gr.Button("Load", elem_id="diff-load")
    with gr.Row():
        left = gr.Dropdown(label="Left column", choices=[], elem_id="diff-left")
        right = gr.Dropdown(label="Right column", choices=[], elem_id="diff-right")
        row = gr.Dropdown(label="Row", choices=[], elem_id="diff-row")
    show = gr.Button("Show the differences", variant="primary", elem_id="diff-show")
    text_diff = gr.HTML(elem_id="diff-html")
    slider = gr.ImageSlider(label="left ⟷ right", visible=False, type="filepath", elem_id="diff-slider")
    with gr.Row():
        spec_left = gr.Image(label="Left: spectrogram", visible=False, interactive=False, elem_id="diff-spec-left")
        spec_right = gr.Image(label="Right: spectrogram", visible=False, interactive=False,
                              elem_id="diff-spec-right")
    with gr.Row():
        audio_left = gr.Audio(label="Left", visible=False, interactive=False, elem_id="diff-audio-left")
        audio_right = gr.Audio(label="Right", visible=False, interactive=False, elem_id="diff-audio-right")

    def on_load(comparison_id, request: gr.Request):
        variants, rows, _ = _variants_and_rows(services, comparison_id, services.visitors.owner(request))
        if len(variants) < 2:
            raise gr.Error("This comparison has a single column: nothing to diff")
        return (gr.update(choices=variants, value=variants[0][1]), gr.update(choices=variants, value=variants[1][1]),
                gr.update(choices=rows, value=rows[0][1]))

    def on_show(comparison_id, left_col, right_col, row_index, request: gr.Request):
        if None in (comparison_id, left_col, right_col, row_index):
            raise gr.Error("Load a comparison and pick two columns and a row first")
        try:
            return diff_view(services, comparison_id, left_col, right_col, row_index,
                             services.visitors.owner(request))
        except KeyError:
            raise gr.Error(f"No comparison #{comparison_id} in the log: give the number shown in History") from None

    outputs = [text_diff, slider, spec_left, spec_right, audio_left, audio_right]
    load.click(on_load, comparison, [left, right, row], api_visibility="private").then(
        on_show, [comparison, left, right, row], outputs, api_visibility="private")
    comparison.submit(on_load, comparison, [left, right, row], api_visibility="private")
    show.click(on_show, [comparison, left, right, row], outputs, api_visibility="private")
