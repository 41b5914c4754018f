"""The History tab: the run log, filterable and searchable; any past comparison side by side again; export."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gradio as gr

from ..registry import InvalidInput
from ..runner import spec_from_runs
from ..services import Services
from . import grid
from .compare import MODEL_QUEUE, _stream

ALL = "all"
SINCE = {"any time": None, "today": 1, "last 7 days": 7, "last 30 days": 30}
COMPARISON_HEADERS = ["id", "when", "modality", "title", "template", "cells", "status", "winner"]
RUN_HEADERS = ["run", "comparison", "modality", "variant", "model", "seed", "stars", "prompt", "output"]


def comparison_rows(services: Services, modality=None, template=None, limit=200) -> list[list]:
    rows = []
    for c in services.log.list_comparisons(modality=modality, template=template, limit=limit):
        rows.append([c.id, c.created_at, c.modality, c.title, c.template_name or "", c.run_count, c.status,
                     c.winner_run_id or ""])
    return rows


def run_rows(records) -> list[list]:
    return [[r.id, r.comparison_id, r.modality, r.variant or "", r.model_id, r.seed, r.stars or "",
             _clip(r.prompt, 80), _clip(r.output_text or r.error or (Path(r.artifact).name if r.artifact else ""), 80)]
            for r in records]


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def build_history_tab(services: Services, browser_state: gr.BrowserState):
    with gr.Row():
        modality_dd = gr.Dropdown([ALL, "text", "image", "music"], value=ALL, label="Modality", scale=1,
                                  elem_id="history-modality")
        template_dd = gr.Dropdown([ALL] + sorted(services.library.templates), value=ALL, label="Template",
                                  allow_custom_value=True, scale=2, elem_id="history-template")
        model_box = gr.Textbox(label="Model", placeholder="any", scale=2, elem_id="history-model")
        stars_sl = gr.Slider(0, 5, value=0, step=1, label="Min stars", scale=1, elem_id="history-stars")
        since_dd = gr.Dropdown(list(SINCE), value="any time", label="When", scale=1, elem_id="history-since")
        query_box = gr.Textbox(label="Search prompts and outputs", placeholder="e.g. lantern", scale=3,
                               elem_id="history-query")
        search_btn = gr.Button("Search", variant="primary", scale=1, elem_id="history-search")
    comparisons = gr.Dataframe(headers=COMPARISON_HEADERS, interactive=False, label="Comparisons (click to open)",
                               max_height=260, elem_id="history-comparisons")
    runs = gr.Dataframe(headers=RUN_HEADERS, interactive=False, label="Matching runs (click to open)",
                        max_height=260, elem_id="history-runs")
    with gr.Row():
        open_id = gr.Number(label="Comparison #", precision=0, minimum=0, scale=1, elem_id="history-open-id")
        open_btn = gr.Button("Open", scale=1, elem_id="history-open")
        rerun_same = gr.Button("Re-run (same seeds)", scale=1, elem_id="history-rerun-same")
        rerun_new = gr.Button("Re-run (new seeds)", scale=1, elem_id="history-rerun-new")
    history_grid = gr.HTML('<div class="pp-empty">Open a comparison to see it side by side again.</div>',
                           js_on_load=grid.GRID_JS,
                           server_functions=grid.server_functions(services.log), elem_id="history-grid",
                           elem_classes="pp-results")
    with gr.Row():
        with gr.Column(scale=2):
            with gr.Row():
                fmt = gr.Radio(["jsonl", "csv", "zip"], value="jsonl", label="Export format",
                               info="zip holds the media files too", elem_id="history-format")
                scope = gr.Radio(["this comparison", "filtered history"], value="this comparison", label="What",
                                 elem_id="history-scope")
            export_btn = gr.Button("Export", elem_id="history-export")
            export_file = gr.File(label="Export file", interactive=False, visible=False,
                                  elem_id="history-export-file")
            import_file = gr.File(label="Import an export (.jsonl or .zip) into the log", file_types=[".jsonl", ".zip"],
                                  type="filepath", height=90, elem_id="history-import")
            import_md = gr.Markdown(elem_id="history-import-status")
        with gr.Column(scale=3):
            summary_btn = gr.Button("Which variant wins?", elem_id="history-summary-btn")
            summary = gr.Dataframe(headers=["template", "variant", "runs", "rated", "avg stars", "👍", "👎", "wins"],
                                   interactive=False, label="Ratings per variant", elem_id="history-summary")
    opened = gr.State(None)    # the open comparison id

    def filters(modality, template, model, min_stars, since, query):
        days = SINCE.get(since)
        return dict(modality=None if modality == ALL else modality,
                    template=None if template in (ALL, "", None) else template,
                    model=(model or "").strip() or None, min_stars=int(min_stars or 0) or None,
                    since=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - days * 86400)) if days
                    else None,
                    query=(query or "").strip() or None)

    def search(*values):
        f = filters(*values)
        comparison_table = comparison_rows(services, f["modality"], f["template"])
        records = services.log.list_runs(limit=200, **f)
        return comparison_table, run_rows(records)

    filter_inputs = [modality_dd, template_dd, model_box, stars_sl, since_dd, query_box]
    search_btn.click(search, filter_inputs, [comparisons, runs], api_name="history_search")
    query_box.submit(search, filter_inputs, [comparisons, runs], api_visibility="private")

    def open_comparison(comparison_id):
        if comparison_id is None:
            raise gr.Error("Type a comparison number or click one in the table")
        try:
            comparison = services.log.get_comparison(int(comparison_id))
        except (KeyError, LookupError, ValueError) as error:
            raise gr.Error(f"No comparison #{comparison_id}: {error}") from None
        views = grid.views_for_records(comparison.runs, services.log)
        html_ = grid.render_grid(views, comparison.modality, comparison_id=comparison.id,
                                 winner_run_id=comparison.winner_run_id,
                                 message=f"#{comparison.id} · {comparison.title} · {comparison.created_at}",
                                 cell_reruns=False)
        return html_, comparison.id, comparison.id

    open_btn.click(open_comparison, open_id, [history_grid, opened, open_id], api_name="open_comparison")

    def pick_comparison(event: gr.SelectData):
        return open_comparison(event.row_value[0])

    def pick_run(event: gr.SelectData):
        return open_comparison(event.row_value[1])

    comparisons.select(pick_comparison, None, [history_grid, opened, open_id], api_visibility="private")
    runs.select(pick_run, None, [history_grid, opened, open_id], api_visibility="private")

    def rerun(comparison_id, new_seeds: bool, remembered):
        if not comparison_id:
            raise gr.Error("Open a comparison first")
        comparison = services.log.get_comparison(int(comparison_id))
        rows = max((r.row for r in comparison.runs), default=0) + 1
        seeds = [random.randrange(2**31) for _ in range(rows)] if new_seeds else None
        try:
            spec = spec_from_runs(comparison.runs, title=f"re-run of #{comparison.id}", new_seeds=seeds)
            services.runner.check(spec)
        except InvalidInput as error:
            raise gr.Error(str(error)) from None
        new_id = None
        for html_, state, _ in _stream(services, spec.modality, spec, threading.Event(), remembered,
                                       remember=False, cell_reruns=False):
            new_id = state["comparison_id"]
            yield html_, new_id, new_id

    def rerun_same_seeds(comparison_id, remembered):
        yield from rerun(comparison_id, False, remembered)

    def rerun_new_seeds(comparison_id, remembered):
        yield from rerun(comparison_id, True, remembered)

    for button, handler in ((rerun_same, rerun_same_seeds), (rerun_new, rerun_new_seeds)):
        button.click(handler, [opened, browser_state], [history_grid, opened, open_id], api_visibility="private",
                     concurrency_id=MODEL_QUEUE, show_progress="hidden")

    def export(fmt_, scope_, comparison_id, *filter_values):
        if scope_ == "this comparison":
            if not comparison_id:
                raise gr.Error("Open a comparison first, or export the filtered history")
            records = services.log.get_comparison(int(comparison_id)).runs
            stem = f"comparison-{int(comparison_id)}"
        else:
            records = services.log.list_runs(limit=100_000, **filters(*filter_values))
            stem = "history"
        if not records:
            raise gr.Error("Nothing to export: no runs match")
        folder = services.settings.data_dir / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.{fmt_}"
        return gr.update(value=str(services.log.export(dest, fmt_, runs=records)), visible=True)

    export_btn.click(export, [fmt, scope, opened] + filter_inputs, export_file, api_name="export_history")

    def do_import(path):
        if not path:
            return gr.update()
        report = services.log.import_jsonl(Path(path))
        lines = [f"Imported **{report.imported}** runs."]
        lines += [f"- line {n}: {message}" for n, message in report.errors[:20]]
        if len(report.errors) > 20:
            lines.append(f"- … and {len(report.errors) - 20} more bad rows")
        return "\n".join(lines)

    import_file.upload(do_import, import_file, import_md, api_name="import_runs")

    def variant_summary(template):
        rows = services.log.variant_summary(None if template in (ALL, "", None) else template)
        return [[r["template"], r["variant"], r["runs"], r["rated"],
                 round(r["avg_stars"], 2) if r["avg_stars"] is not None else "", r["thumbs_up"], r["thumbs_down"],
                 r["wins"]] for r in rows]

    summary_btn.click(variant_summary, template_dd, summary, api_name="variant_summary")
    return HistoryTab(search=search, filter_inputs=filter_inputs, tables=[comparisons, runs],
                      open_comparison=open_comparison, open_outputs=[history_grid, opened, open_id])


@dataclass
class HistoryTab:
    search: Callable
    filter_inputs: list
    tables: list
    open_comparison: Callable
    open_outputs: list
