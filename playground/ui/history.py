"""The History tab: the run log, filterable and searchable; any past comparison side by side again; export."""

from __future__ import annotations

import datetime as _dt
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gradio as gr
from pydantic import TypeAdapter

from ..registry import InvalidInput
from ..spec import spec_from_runs
from ..services import Services
from ..store import ImportLimits
from ..requests import HistoryQuery, Id, RequestError, check, check_value
from . import exports, grid
from ..scoring.panel import comparison_panel
from ..stakeholders.report import write_report
from .evidence import evidence
from .queues import MODEL_QUEUE
from .streaming import stream_grid
from .errors import at_boundary

ALL = "all"
_ID = TypeAdapter(Id)
SINCE = {"any time": None, "today": 1, "last 7 days": 7, "last 30 days": 30}
COMPARISON_HEADERS = ["#", "when", "modality", "title", "cells", "status", "winner"]
RUN_HEADERS = ["run", "#", "when", "variant", "model", "seed", "stars", "prompt", "output"]
PAGE_CELLS = 48            # cells drawn per page when a comparison is opened
MAX_EXPORT_RUNS = 100_000


def when(iso: str, now: _dt.datetime | None = None) -> str:
    """'2025-01-31T12:00:00.123Z' -> '2025-01-31 12:00' with how long ago, for people rather than parsers."""
    try:
        moment = _dt.datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    now = now or _dt.datetime.now(_dt.timezone.utc)
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        ago = ""
    elif seconds < 60:
        ago = "just now"
    elif seconds < 3600:
        ago = f"{int(seconds // 60)} min ago"
    elif seconds < 86400:
        ago = f"{int(seconds // 3600)} h ago"
    else:
        ago = f"{int(seconds // 86400)} d ago"
    return moment.strftime("%Y-%m-%d %H:%M") + (f" · {ago}" if ago else "")


def comparison_rows(services: Services, modality=None, template=None, limit=200, owner=None) -> list[list]:
    return [[c.id, when(c.created_at), c.modality, c.title, c.run_count, c.status,
             f"run {c.winner_run_id}" if c.winner_run_id else ""]
            for c in services.log.list_comparisons(modality=modality, template=template, limit=limit, owner=owner)]


def run_rows(records) -> list[list]:
    return [[r.id, r.comparison_id, when(r.created_at), r.variant or "", r.model_id, r.seed,
             "★" * (r.stars or 0), _clip(r.prompt, 80),
             _clip(r.output_text or r.error or (Path(r.artifact).name if r.artifact else ""), 80)]
            for r in records]


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def parse_comparison_id(raw) -> int:
    """What a person types in the '#' box: '12' or '#12' (a number from a table row passes as it is)."""
    if isinstance(raw, str):
        cleaned = raw.strip().lstrip("#").strip()
        if not cleaned:
            raise RequestError([("comparison number", "is empty; type one, or click a row in the tables")])
        if not cleaned.isdigit() or not cleaned.isascii():
            raise RequestError([("comparison number", f"must be a number like 12, got {raw[:40]!r}")])
        raw = int(cleaned)
    return check_value(_ID, raw, {}, root="comparison number")


def page_count(run_count: int) -> int:
    return max(1, -(-int(run_count or 0) // PAGE_CELLS))


MAX_SUMMARY_RUNS = 2000


def render_page(services: Services, comparison_id, page: int = 0, owner: str | None = None
                ) -> tuple[str, int, str, int]:
    """One page of a logged comparison as the grid (a comparison with thousands of runs stays a small page)."""
    comparison_id = parse_comparison_id(comparison_id)
    header = services.log.get_comparison_header(comparison_id, owner=owner)
    pages = page_count(header.run_count)
    page = min(max(0, int(page or 0)), pages - 1)
    records = services.log.list_runs(comparison_id=header.id, limit=PAGE_CELLS, offset=page * PAGE_CELLS,
                                     newest_first=False)
    views = grid.views_for_records(records, services.log)
    shown = (f" · cells {page * PAGE_CELLS + 1}–{page * PAGE_CELLS + len(records)} of {header.run_count:,}"
             if pages > 1 else "")
    # Statistics read every run: past a size the panel is left to `python -m playground stats`.
    panel, badges = evidence(services.log, header.id, owner) if header.run_count <= MAX_SUMMARY_RUNS else ("", {})
    html_ = grid.render_grid(views, header.modality, comparison_id=header.id, winner_run_id=header.winner_run_id,
                             key=services.visitors.grid_key(owner),
                             message=f"#{header.id} · {header.title} · {when(header.created_at)}{shown}",
                             cell_reruns=False, badges=badges)
    return html_ + panel, header.id, str(header.id), page


def build_history_tab(services: Services, browser_state: gr.BrowserState):
    boundary = at_boundary(services.settings.data_dir)
    with gr.Row(elem_classes="pp-filters", equal_height=True):
        modality_dd = gr.Dropdown([ALL, "text", "image", "music"], value=ALL, label="Modality", min_width=120,
                                  elem_id="history-modality")
        template_dd = gr.Dropdown([ALL] + sorted(services.library.templates), value=ALL, label="Template",
                                  allow_custom_value=True, min_width=160, elem_id="history-template")
        model_box = gr.Textbox(label="Model", placeholder="any", min_width=140, elem_id="history-model")
        stars_sl = gr.Slider(0, 5, value=0, step=1, label="Min stars", min_width=140, elem_id="history-stars")
        since_dd = gr.Dropdown(list(SINCE), value="any time", label="When", min_width=120, elem_id="history-since")
    with gr.Row(elem_classes="pp-searchbar", equal_height=True):
        query_box = gr.Textbox(label="Search prompts and outputs", placeholder="e.g. lant (word beginnings match)",
                               scale=4, min_width=200, elem_id="history-query")
        search_btn = gr.Button("Search", variant="primary", scale=0, min_width=100, elem_id="history-search")
    comparisons = gr.Dataframe(headers=COMPARISON_HEADERS, interactive=False, wrap=True,
                               label="Comparisons (click one to open it)", max_height=300,
                               column_widths=["7%", "18%", "10%", "35%", "8%", "10%", "12%"],
                               elem_id="history-comparisons")
    runs = gr.Dataframe(headers=RUN_HEADERS, interactive=False, wrap=True, label="Matching runs (click one to open it)",
                        max_height=300, column_widths=["6%", "5%", "15%", "12%", "11%", "7%", "7%", "19%", "18%"],
                        elem_id="history-runs")
    with gr.Row(elem_classes="pp-open-bar", equal_height=True):
        open_id = gr.Textbox(label="Comparison #", placeholder="e.g. 12", min_width=120, max_lines=1,
                             elem_id="history-open-id")
        open_btn = gr.Button("Open", min_width=90, elem_id="history-open")
        rerun_same = gr.Button("Re-run (same seeds)", min_width=150, elem_id="history-rerun-same")
        rerun_new = gr.Button("Re-run (new seeds)", min_width=150, elem_id="history-rerun-new")
    history_grid = gr.HTML('<div class="pp-empty">Open a comparison to see it side by side again.</div>',
                           js_on_load=grid.GRID_JS,
                           server_functions=grid.server_functions(services.log, services.visitors.owner), elem_id="history-grid",
                           elem_classes="pp-results")
    with gr.Row(elem_classes="pp-pager", visible=False) as pager:
        prev_btn = gr.Button("← Previous cells", size="sm", elem_id="history-prev")
        page_md = gr.Markdown(elem_id="history-page")
        next_btn = gr.Button("Next cells →", size="sm", elem_id="history-next")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=280):
            with gr.Row():
                fmt = gr.Radio(["jsonl", "csv", "zip", "report"], value="jsonl", label="Export format",
                               info="zip holds the media files too; report is one HTML page to send anyone",
                               elem_id="history-format")
                scope = gr.Radio(["this comparison", "filtered history"], value="this comparison", label="What",
                                 elem_id="history-scope")
            export_btn = gr.Button("Export", elem_id="history-export")
            export_file = gr.File(label="Export file", interactive=False, visible=False,
                                  elem_id="history-export-file")
            import_btn = gr.UploadButton("Import an export (.jsonl or .zip)…", file_types=[".jsonl", ".zip"],
                                         type="filepath", elem_id="history-import")
            import_md = gr.Markdown(elem_id="history-import-status")
        with gr.Column(scale=3, min_width=280):
            summary_btn = gr.Button("Which variant wins?", elem_id="history-summary-btn")
            summary = gr.Dataframe(headers=["template", "variant", "runs", "rated", "avg stars", "good", "bad", "wins"],
                                   interactive=False, wrap=True, label="Ratings per variant", elem_id="history-summary")
    opened = gr.State(None)    # the open comparison id
    page_state = gr.State(0)

    def filters(modality, template, model, min_stars, since, query):
        days = SINCE.get(since)
        ask = check(HistoryQuery, {"modality": "" if modality == ALL else modality,
                                   "template": "" if template in (ALL, None) else template,
                                   "model": (model or "").strip(), "min_stars": min_stars or 0,
                                   "query": (query or "").strip()}, services.settings)
        return dict(modality=ask.modality or None, template=ask.template or None, model=ask.model or None,
                    min_stars=ask.min_stars or None, query=ask.query or None,
                    since=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - days * 86400)) if days
                    else None)

    @boundary
    def search(request: gr.Request, *values):
        f = filters(*values)
        owner = services.visitors.owner(request)
        comparison_table = comparison_rows(services, f["modality"], f["template"], owner=owner)
        records = services.log.list_runs(limit=200, owner=owner, **f)
        return comparison_table, run_rows(records)

    filter_inputs = [modality_dd, template_dd, model_box, stars_sl, since_dd, query_box]
    search_btn.click(search, filter_inputs, [comparisons, runs], api_visibility="private")
    query_box.submit(search, filter_inputs, [comparisons, runs], api_visibility="private")

    open_outputs = [history_grid, opened, open_id, page_state, pager, page_md]

    @boundary
    def open_comparison(comparison_id, page=0, request: gr.Request = None):
        owner = services.visitors.owner(request)
        html_, cid, shown, page = render_page(services, comparison_id, page, owner)
        pages = page_count(services.log.get_comparison_header(cid, owner=owner).run_count)
        return (html_, cid, shown, page, gr.update(visible=pages > 1),
                f"page {page + 1} of {pages:,}" if pages > 1 else "")

    open_btn.click(open_comparison, open_id, open_outputs, api_visibility="private")
    open_id.submit(open_comparison, open_id, open_outputs, api_visibility="private")
    def previous_page(cid, page, request: gr.Request):
        return open_comparison(cid, page - 1, request)

    def next_page(cid, page, request: gr.Request):
        return open_comparison(cid, page + 1, request)

    prev_btn.click(previous_page, [opened, page_state], open_outputs, api_visibility="private")
    next_btn.click(next_page, [opened, page_state], open_outputs, api_visibility="private")

    def pick_comparison(event: gr.SelectData, request: gr.Request):
        return open_comparison(event.row_value[0], 0, request)

    def pick_run(event: gr.SelectData, request: gr.Request):
        return open_comparison(event.row_value[1], 0, request)

    comparisons.select(pick_comparison, None, open_outputs, api_visibility="private")
    runs.select(pick_run, None, open_outputs, api_visibility="private")

    def rerun(comparison_id, new_seeds: bool, remembered, request):
        if not comparison_id:
            raise gr.Error("Open a comparison first")
        owner = services.visitors.owner(request)
        header = services.log.get_comparison_header(parse_comparison_id(comparison_id), owner=owner)
        if (header.run_count or 0) > services.settings.max_cells:
            raise InvalidInput("comparison", f"#{header.id} has {header.run_count:,} cells; a re-run may have at "
                               f"most {services.settings.max_cells}")
        comparison = services.log.get_comparison(header.id)
        seeds = None
        if new_seeds:
            last_row = max(r.row for r in comparison.runs)
            if last_row >= 4 * services.settings.max_cells:   # imported rows numbered far apart
                raise InvalidInput("comparison", f"#{header.id} has row numbers up to {last_row:,}; "
                                   "it cannot be re-run with new seeds")
            seeds = [random.randrange(2**31) for _ in range(last_row + 1)]   # one per row, by row number
        spec = spec_from_runs(comparison.runs, title=f"re-run of #{comparison.id}", new_seeds=seeds,
                              checks=comparison.spec.get("checks") if isinstance(comparison.spec, dict) else None)
        services.runner.check(spec)
        for html_, state, _ in stream_grid(services, spec.modality, spec, threading.Event(), remembered,
                                           remember=False, cell_reruns=False, owner=owner):
            new_id = state["comparison_id"]
            yield html_, new_id, str(new_id) if new_id else gr.update(), 0

    @boundary
    def rerun_same_seeds(comparison_id, remembered, request: gr.Request):
        yield from rerun(comparison_id, False, remembered, request)

    @boundary
    def rerun_new_seeds(comparison_id, remembered, request: gr.Request):
        yield from rerun(comparison_id, True, remembered, request)

    for button, handler in ((rerun_same, rerun_same_seeds), (rerun_new, rerun_new_seeds)):
        button.click(handler, [opened, browser_state], [history_grid, opened, open_id, page_state],
                     api_visibility="private", concurrency_id=MODEL_QUEUE, show_progress="hidden")

    @boundary
    def export(request: gr.Request, fmt_, scope_, comparison_id, *filter_values):
        owner = services.visitors.owner(request)
        if scope_ == "this comparison":
            if not comparison_id:
                raise gr.Error("Open a comparison first, or export the filtered history")
            comparison_id = parse_comparison_id(comparison_id)
            records = services.log.get_comparison(comparison_id, owner=owner).runs
            stem = f"comparison-{comparison_id}"
            if fmt_ == "report":        # one self-contained HTML file: grid, media, scores, votes, records
                path = write_report(services.log, comparison_id, exports.export_path(stem, "html"),
                                    summary_html=comparison_panel(services.log, comparison_id))
                return gr.update(value=str(path), visible=True)
        elif fmt_ == "report":
            raise gr.Error("A report is of one comparison: open one first and export 'this comparison'")
        else:
            records = services.log.list_runs(limit=MAX_EXPORT_RUNS, owner=owner, **filters(*filter_values))
            stem = "history"
        if not records:
            raise gr.Error("Nothing to export: no runs match")
        return gr.update(value=exports.export_runs(services.log, records, stem, fmt_), visible=True)

    export_btn.click(export, [fmt, scope, opened] + filter_inputs, export_file, api_visibility="private")

    @boundary
    def do_import(path, request: gr.Request):
        if not path:
            return gr.update()
        report = services.log.import_jsonl(Path(path), ImportLimits.from_settings(services.settings),
                                           owner=services.visitors.owner(request))
        lines = [f"Imported **{report.imported}** runs; {report.skipped} were already in the log."]
        lines += [f"- line {n}: {message}" for n, message in report.errors[:20]]
        if len(report.errors) > 20:
            lines.append(f"- … and {len(report.errors) - 20} more bad rows")
        return "\n".join(lines)

    import_btn.upload(do_import, import_btn, import_md, api_visibility="private")

    @boundary
    def variant_summary(template, request: gr.Request):
        rows = services.log.variant_summary(None if template in (ALL, "", None) else template,
                                            owner=services.visitors.owner(request))
        return [[r["template"], r["variant"], r["runs"], r["rated"],
                 round(r["avg_stars"], 2) if r["avg_stars"] is not None else "", r["thumbs_up"], r["thumbs_down"],
                 r["wins"]] for r in rows]

    summary_btn.click(variant_summary, template_dd, summary, api_visibility="private")
    return HistoryTab(search=search, filter_inputs=filter_inputs, tables=[comparisons, runs],
                      open_comparison=open_comparison, open_outputs=open_outputs)


@dataclass
class HistoryTab:
    search: Callable
    filter_inputs: list
    tables: list
    open_comparison: Callable
    open_outputs: list
