"""What the History tab does, as plain methods: a dict of values keyed by component in, updates keyed by component
out. Filters go through the request layer (HistoryQuery) like the API's /history."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import gradio as gr

from ...requests import HistoryQuery, InvalidInput, check
from ...scoring.panel import comparison_panel
from ...services import Services
from ...spec import spec_from_runs
from ...stakeholders.report import write_report
from ...store import ImportLimits
from .. import exports
from ..streaming import stream_grid
from ..views import message_html
from .layout import ALL, SINCE, HistoryView
from .pages import comparison_rows, page_count, parse_comparison_id, render_page, run_rows

MAX_EXPORT_RUNS = 100_000
MAX_IMPORT_LINES_SHOWN = 20


class HistoryHandlers:
    def __init__(self, view: HistoryView, services: Services):
        self.view, self.services = view, services

    def _owner(self, request) -> str | None:
        return self.services.visitors.owner(request)

    def filters(self, values: dict) -> dict:
        """The filters as the run log takes them (each checked, like the API's /history)."""
        v, days = self.view, SINCE.get(values[self.view.since])
        ask = check(HistoryQuery, {"modality": "" if values[v.modality] == ALL else values[v.modality],
                                   "template": "" if values[v.template] in (ALL, None) else values[v.template],
                                   "model": (values[v.model] or "").strip(), "min_stars": values[v.min_stars] or 0,
                                   "query": (values[v.query] or "").strip()}, self.services.settings)
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - days * 86400)) if days else None
        return dict(modality=ask.modality or None, template=ask.template or None, model=ask.model or None,
                    min_stars=ask.min_stars or None, query=ask.query or None, since=since)

    def search(self, values: dict, request: gr.Request) -> dict:
        """Both tables narrowed by the filters: the comparisons that hold a matching run, and those runs."""
        found, owner = self.filters(values), self._owner(request)
        by_run = {k: v for k, v in found.items() if k not in ("modality", "template") and v is not None}
        return {self.view.comparisons: comparison_rows(self.services, found["modality"], found["template"],
                                                       owner=owner, runs_matching=by_run or None),
                self.view.runs: run_rows(self.services.log.list_runs(limit=200, owner=owner, live_only=True,
                                                                     **found))}

    def first_search(self, request: gr.Request) -> dict:
        """The tables as a page load shows them: no filter."""
        return self.search({c: c.value for c in self.view.filters()}, request)

    # ---- one comparison -------------------------------------------------------------------------------------------

    def open_comparison(self, comparison_id, page: int, request: gr.Request) -> dict:
        v, owner = self.view, self._owner(request)
        html_, shown_id, typed, page = render_page(self.services, comparison_id, page, owner)
        pages = page_count(self.services.log.get_comparison_header(shown_id, owner=owner).run_count)
        return {v.grid: html_, v.opened: shown_id, v.open_id: typed, v.page: page,
                v.pager: gr.update(visible=pages > 1), v.page_label: f"page {page + 1} of {pages:,}" if pages > 1
                else ""}

    def open_typed(self, values: dict, request: gr.Request) -> dict:
        return self.open_comparison(values[self.view.open_id], 0, request)

    def previous_page(self, values: dict, request: gr.Request) -> dict:
        return self.open_comparison(values[self.view.opened], values[self.view.page] - 1, request)

    def next_page(self, values: dict, request: gr.Request) -> dict:
        return self.open_comparison(values[self.view.opened], values[self.view.page] + 1, request)

    def pick_comparison(self, event: gr.SelectData, request: gr.Request) -> dict:
        return self.open_comparison(event.row_value[0], 0, request)

    def pick_run(self, event: gr.SelectData, request: gr.Request) -> dict:
        return self.open_comparison(event.row_value[1], 0, request)

    def rerun(self, values: dict, new_seeds: bool, request: gr.Request):
        """The open comparison again (same seeds, or one new seed per row), streamed into the grid."""
        v = self.view
        if not values[v.opened]:
            raise gr.Error("Open a comparison first")
        owner = self._owner(request)
        header = self.services.log.get_comparison_header(parse_comparison_id(values[v.opened]), owner=owner)
        limit = self.services.settings.max_cells
        if (header.run_count or 0) > limit:
            raise InvalidInput("comparison", f"#{header.id} has {header.run_count:,} cells; a re-run may have at "
                               f"most {limit}")
        comparison = self.services.log.get_comparison(header.id)
        seeds = None
        if new_seeds:
            last_row = max(r.row for r in comparison.runs)
            if last_row >= 4 * limit:   # imported rows numbered far apart
                raise InvalidInput("comparison", f"#{header.id} has row numbers up to {last_row:,}; "
                                   "it cannot be re-run with new seeds")
            seeds = [random.randrange(2**31) for _ in range(last_row + 1)]   # one per row, by row number
        spec = spec_from_runs(comparison.runs, title=f"re-run of #{comparison.id}", new_seeds=seeds,
                              checks=comparison.spec.get("checks") if isinstance(comparison.spec, dict) else None)
        self.services.runner.check(spec)
        for html_, state, _ in stream_grid(self.services, spec.modality, spec, threading.Event(), {},
                                           remember=False, cell_reruns=False, owner=owner):
            new_id = state["comparison_id"]
            yield {v.grid: html_, v.opened: new_id, v.open_id: str(new_id) if new_id else gr.update(), v.page: 0}

    def rerun_same_seeds(self, values: dict, request: gr.Request):
        yield from self.rerun(values, False, request)

    def rerun_new_seeds(self, values: dict, request: gr.Request):
        yield from self.rerun(values, True, request)

    # ---- export, import, summary ----------------------------------------------------------------------------------

    def export(self, values: dict, request: gr.Request) -> dict:
        v, owner, fmt = self.view, self._owner(request), values[self.view.fmt]
        if values[v.scope] == "this comparison":
            if not values[v.opened]:
                raise gr.Error("Open a comparison first, or export the filtered history")
            comparison_id = parse_comparison_id(values[v.opened])
            records = self.services.log.get_comparison(comparison_id, owner=owner, live_only=False).runs
            stem = f"comparison-{comparison_id}"
            if fmt == "report":        # one self-contained HTML file: grid, media, scores, votes, records
                path = write_report(self.services.log, comparison_id, exports.export_path(stem, "html"),
                                    summary_html=comparison_panel(self.services.log, comparison_id))
                return {v.export_file: gr.update(value=str(path), visible=True)}
        elif fmt == "report":
            raise gr.Error("A report is of one comparison: open one first and export 'this comparison'")
        else:
            records = self.services.log.list_runs(limit=MAX_EXPORT_RUNS, owner=owner, **self.filters(values))
            stem = "history"
        if not records:
            raise gr.Error("Nothing to export: no runs match")
        return {v.export_file: gr.update(value=exports.export_runs(self.services.log, records, stem, fmt),
                                         visible=True)}

    def import_runs(self, path, request: gr.Request) -> str:
        if not path:
            return gr.update()
        report = self.services.log.import_jsonl(Path(path), ImportLimits.from_settings(self.services.settings),
                                                owner=self._owner(request))
        lines = [f"Imported **{report.imported}** runs; {report.skipped} were already in the log."]
        lines += [f"- line {n}: {message}" for n, message in report.errors[:MAX_IMPORT_LINES_SHOWN]]
        if len(report.errors) > MAX_IMPORT_LINES_SHOWN:
            lines.append(f"- … and {len(report.errors) - MAX_IMPORT_LINES_SHOWN} more bad rows")
        return message_html("\n".join(lines))

    def variant_summary(self, template, request: gr.Request) -> list[list]:
        rows = self.services.log.variant_summary(None if template in (ALL, "", None) else template,
                                                 owner=self._owner(request))
        return [[r["template"], r["variant"], r["runs"], r["rated"],
                 round(r["avg_stars"], 2) if r["avg_stars"] is not None else "", r["thumbs_up"], r["thumbs_down"],
                 r["wins"]] for r in rows]
