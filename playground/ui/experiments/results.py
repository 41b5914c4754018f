"""What the Results panel does, as plain methods (values keyed by component in, updates keyed by component out):
the list of experiments and the opened one's progress (what the timer polls), pause / resume / cancel / retry,
one page of the table with its filters and sort, a cell's record, the paired statistics, export and import.

Only the page on screen is read and drawn: a 20,000-row experiment costs what a 50-row one does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import gradio as gr

from ... import experiments
from ...experiments.results import check_names, experiment_spec, results_page, variants_of
from ...experiments.transfer import FORMATS as RESULT_FORMATS
from ...requests import RequestError, check
from ...requests.experiments import ExperimentAction, ResultsQuery
from ...scoring.panel import comparison_panel
from ...services import Services
from ...stakeholders.report import write_report
from .. import exports
from ..evidence import evidence
from ..history import parse_comparison_id
from ..views import message_html
from .layout import IDLE_POLL_S, POLL_S, ResultsView
from .pages import listing_html, record_html, status_html, table_html

PAGE_ROWS = 25
LISTED = 50
MAX_REPORT_CELLS = 5_000       # a report holds every cell's record: past this, export the results instead
ACTIVE = ("queued", "running", "interrupted")     # statuses a worker will move on: keep polling


class ResultsHandlers:
    def __init__(self, view: ResultsView, services: Services):
        self.view, self.services = view, services

    def _owner(self, request) -> str | None:
        return self.services.visitors.owner(request)

    # ---- the list and the opened experiment's progress ----------------------------------------------------------

    def refresh(self, values: dict, request: gr.Request) -> dict:
        """What the timer polls: every experiment's progress, the opened one's status, and its table when cells
        were logged since it was drawn (the statistics once it has finished)."""
        v, owner = self.view, self._owner(request)
        statuses = experiments.list_experiments(self.services, owner=owner, limit=LISTED)
        opened = values[v.opened]
        updates = {v.listing: listing_html(statuses, opened), v.timer: poll(statuses)}
        current = next((s for s in statuses if s.id == opened), None)
        if current is None:
            return updates
        updates[v.status] = status_html(current, experiment_spec(self.services.log, current.id).parent)
        seen = values[v.seen]
        now = [current.status, current.done + current.failed]
        if seen != now:
            try:
                updates |= self.table(values, owner, values[v.page] or 0)
            except (ValueError, LookupError, RequestError):
                updates[v.seen] = now         # filters that no longer apply wait for the person to change them
            if seen and seen[0] in ACTIVE and current.status not in ACTIVE:
                updates[v.evidence] = evidence(self.services.log, current.id, owner)[0] or _NO_SCORES
        return updates

    def open(self, experiment_id, request: gr.Request) -> dict:
        """An experiment opened: its status, filters fitted to its checks, columns and variants, and the first page
        of its table. Its statistics follow (`statistics`): over 20,000 rows they take a second or two, the page
        a tenth of that."""
        v, owner = self.view, self._owner(request)
        experiment_id = parse_comparison_id(experiment_id)
        status = experiments.status(self.services, experiment_id, owner)
        spec = experiment_spec(self.services.log, experiment_id, owner)
        variants, checks = variants_of(spec), check_names(self.services.log, experiment_id)
        columns = self._columns(spec, owner)
        choices = [(name, name) for name in variants]
        values = {v.opened: experiment_id, v.only: "all", v.check: checks[0] if checks else None, v.column: "",
                  v.value: "", v.sort_a: "", v.sort_b: ""}
        statuses = experiments.list_experiments(self.services, owner=owner, limit=LISTED)
        return {v.opened: experiment_id, v.open_id: str(experiment_id),
                v.status: status_html(status, spec.parent), v.listing: listing_html(statuses, experiment_id),
                v.only: "all", v.value: "",
                v.check: gr.update(choices=checks, value=values[v.check]),
                v.column: gr.update(choices=[("(any)", "")] + [(c, c) for c in columns], value=""),
                v.sort_a: gr.update(choices=[("(dataset order)", "")] + choices, value=""),
                v.sort_b: gr.update(choices=[("", "")] + choices, value=""), v.record: "",
                v.evidence: _COMPUTING,
                v.timer: poll(statuses)} | self.table(values, owner, 0)

    def _columns(self, spec, owner) -> list[str]:
        try:
            return self.services.datasets.get(spec.dataset, owner=owner).column_names
        except (LookupError, ValueError, sqlite3.Error):
            return []          # imported without its dataset: the column filter has nothing to offer

    def open_typed(self, values: dict, request: gr.Request) -> dict:
        return self.open(values[self.view.open_id], request)

    def pick(self, event: gr.EventData, request: gr.Request) -> dict:
        return self.open(getattr(event, "experiment", None), request)

    def control(self, values: dict, action: str, request: gr.Request) -> dict:
        """Pause, resume, cancel, or run the failed cells again; what is logged stays."""
        v, owner = self.view, self._owner(request)
        if not values[v.opened]:
            raise gr.Error("Open an experiment first (click one in the list)")
        ask = check(ExperimentAction, {"experiment_id": values[v.opened], "action": action}, self.services.settings)
        apply_action(self.services, ask, owner)
        return self.refresh(values | {v.seen: None}, request)

    # ---- the table --------------------------------------------------------------------------------------------

    def table(self, values: dict, owner: str | None, page: int) -> dict:
        v = self.view
        experiment_id = values[v.opened]
        sort = (values[v.sort_a], values[v.sort_b]) if values[v.sort_a] and values[v.sort_b] else None
        if sort and sort[0] == sort[1]:
            raise RequestError([("sort", "pick two different variants to sort by their difference")])
        column, wanted = values[v.column], (values[v.value] or "").strip()
        ask = check(ResultsQuery, {"experiment_id": experiment_id, "offset": max(0, int(page)) * PAGE_ROWS,
                                   "limit": PAGE_ROWS, "only": values[v.only] or "all", "check": values[v.check] or None,
                                   "where": {column: wanted} if column and wanted else None,
                                   "sort": list(sort) if sort else None}, self.services.settings)
        shown = page_of(self.services, ask, owner)
        if shown.total_rows and ask.offset >= shown.total_rows:       # past the end (rows were filtered away)
            return self.table(values, owner, (shown.total_rows - 1) // PAGE_ROWS)
        header = self.services.log.get_comparison_header(experiment_id)
        status = experiments.status(self.services, experiment_id, owner)
        empty = ("No rows match these filters." if ask.only != "all" or ask.where else
                 "No cells are logged yet: the table fills in as the job runs.")
        html_ = table_html(self.services.log, shown, header.modality, empty=empty,
                           sorted_by=f"{sort[0]} − {sort[1]}" if sort else "")
        pages = max(1, -(-shown.total_rows // PAGE_ROWS))
        first = ask.offset + 1 if shown.rows else 0
        label = (f"rows {first:,}–{ask.offset + len(shown.rows):,} of {shown.total_rows:,} · page "
                 f"{ask.offset // PAGE_ROWS + 1:,} of {pages:,}" if shown.rows else "no rows")
        updates = {v.table: html_, v.page: ask.offset // PAGE_ROWS, v.page_label: label,
                   v.seen: [status.status, status.done + status.failed]}
        if not values[v.check] and shown.checks:       # opened before its first scores were logged
            updates[v.check] = gr.update(choices=shown.checks, value=shown.checks[0])
        return updates

    def show(self, values: dict, request: gr.Request) -> dict:
        if not values[self.view.opened]:
            raise gr.Error("Open an experiment first (click one in the list)")
        return self.table(values, self._owner(request), 0)

    def previous_page(self, values: dict, request: gr.Request) -> dict:
        return self.table(values, self._owner(request), max(0, (values[self.view.page] or 0) - 1))

    def next_page(self, values: dict, request: gr.Request) -> dict:
        return self.table(values, self._owner(request), (values[self.view.page] or 0) + 1)

    def record(self, event: gr.EventData, request: gr.Request) -> dict:
        run = self.services.log.get_run(getattr(event, "run", None), owner=self._owner(request))
        return {self.view.record: record_html(self.services.log, run)}

    def statistics(self, values: dict, request: gr.Request) -> dict:
        opened = values[self.view.opened]
        if not opened:
            raise gr.Error("Open an experiment first (click one in the list)")
        return {self.view.evidence: evidence(self.services.log, opened, self._owner(request))[0] or _NO_SCORES}

    # ---- export and import ------------------------------------------------------------------------------------

    def export(self, values: dict, request: gr.Request) -> dict:
        v, owner, fmt = self.view, self._owner(request), values[self.view.fmt]
        if not values[v.opened]:
            raise gr.Error("Open an experiment first (click one in the list)")
        experiment_id = int(values[v.opened])
        return {v.export_file: gr.update(value=export_file(self.services, experiment_id, fmt, owner), visible=True)}

    def import_results(self, path, request: gr.Request) -> dict:
        if not path:
            return {}
        report = experiments.import_results(self.services, Path(path), owner=self._owner(request))
        lines = [f"Imported **{report.imported:,}** runs; {report.skipped:,} were already in the log."]
        lines += [f"- line {n}: {message}" for n, message in report.errors[:20]]
        return {self.view.import_status: message_html("\n".join(lines))}


def poll(statuses) -> gr.Timer:
    """Often while a job is queued or running; otherwise now and then, so that an experiment started elsewhere (the
    command line, another page) shows up without a reload."""
    busy = any(s.status in ACTIVE for s in statuses)
    return gr.Timer(POLL_S if busy else IDLE_POLL_S, active=True)


_COMPUTING = '<div class="pp-empty">Computing the paired statistics…</div>'
_NO_SCORES = ('<div class="pp-empty">No scores yet: add checks to the experiment (or rate cells) to see which variant '
              'wins, paired over rows.</div>')


def page_of(services: Services, ask: ResultsQuery, owner: str | None):
    return results_page(services.log, ask.experiment_id, offset=ask.offset, limit=ask.limit,
                        only=None if ask.only == "all" else ask.only, check=ask.check, where=ask.where,
                        sort=tuple(ask.sort) if ask.sort else None, datasets=services.datasets, owner=owner,
                        text_chars=400)


def apply_action(services: Services, ask: ExperimentAction, owner: str | None):
    if ask.action == "pause":
        return experiments.pause(services, ask.experiment_id, owner)
    if ask.action == "cancel":
        return experiments.cancel(services, ask.experiment_id, owner)
    return experiments.resume(services, ask.experiment_id, owner, retry_errors=ask.action == "retry_failed")


def export_file(services: Services, experiment_id: int, fmt: str, owner: str | None) -> str:
    """An experiment's results (jsonl, csv, parquet) or its report, as a file for one client."""
    header = services.log.get_comparison_header(experiment_id, owner=owner)
    experiments.get(services, header.id, owner)                  # an experiment, not any comparison
    stem = f"experiment-{header.id}"
    if fmt == "report":
        if header.run_count > MAX_REPORT_CELLS:
            raise RequestError([("format", f"a report holds every cell's record; #{header.id} has "
                                           f"{header.run_count:,} cells (at most {MAX_REPORT_CELLS:,}): export "
                                           "jsonl, csv or parquet instead")])
        path = write_report(services.log, header.id, exports.export_path(stem, "html"),
                            summary_html=comparison_panel(services.log, header.id))
        return str(path)
    if fmt not in RESULT_FORMATS:
        raise RequestError([("format", f"must be one of jsonl, csv, parquet, report, got {fmt!r:.40}")])
    path = exports.export_path(stem, fmt)
    experiments.export_results(services, header.id, path, owner=owner)
    return str(path)

