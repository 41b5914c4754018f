"""The History tab: the run log, filterable and searchable; any past comparison side by side again; export and
import. layout.py lays it out, handlers.py holds what it does, pages.py draws the log; this module wires them."""

from __future__ import annotations

from dataclasses import dataclass

from ...services import Services
from ..errors import at_boundary
from ..queues import MODEL_QUEUE
from .handlers import HistoryHandlers
from .layout import HistoryView, lay_out
from .pages import PAGE_CELLS, parse_comparison_id, render_page, when

__all__ = ["PAGE_CELLS", "HistoryTab", "build_history_tab", "parse_comparison_id", "render_page", "when"]


@dataclass
class HistoryTab:
    view: HistoryView
    handlers: HistoryHandlers


def build_history_tab(services: Services) -> HistoryTab:
    view = lay_out(services)
    handlers = HistoryHandlers(view, services)
    boundary = at_boundary(services.settings.data_dir)
    view.search.click(boundary(handlers.search), view.filters(), view.tables(), api_visibility="private")
    view.query.submit(boundary(handlers.search), view.filters(), view.tables(), api_visibility="private")
    opened = view.opened_outputs()
    view.open.click(boundary(handlers.open_typed), {view.open_id}, opened, api_visibility="private")
    view.open_id.submit(boundary(handlers.open_typed), {view.open_id}, opened, api_visibility="private")
    view.previous.click(boundary(handlers.previous_page), {view.opened, view.page}, opened, api_visibility="private")
    view.next.click(boundary(handlers.next_page), {view.opened, view.page}, opened, api_visibility="private")
    view.comparisons.select(boundary(handlers.pick_comparison), None, opened, api_visibility="private")
    view.runs.select(boundary(handlers.pick_run), None, opened, api_visibility="private")
    for button, rerun in ((view.rerun_same, handlers.rerun_same_seeds), (view.rerun_new, handlers.rerun_new_seeds)):
        button.click(boundary(rerun), {view.opened}, [view.grid, view.opened, view.open_id, view.page],
                     api_visibility="private", concurrency_id=MODEL_QUEUE, show_progress="hidden")
    view.export.click(boundary(handlers.export), {view.fmt, view.scope, view.opened} | view.filters(),
                      view.export_file, api_visibility="private")
    view.import_button.upload(boundary(handlers.import_runs), view.import_button, view.import_status,
                              api_visibility="private")
    view.summary_button.click(boundary(handlers.variant_summary), view.template, view.summary,
                              api_visibility="private")
    return HistoryTab(view, handlers)
