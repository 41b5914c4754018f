"""The Improve tab: a model proposes better versions of a variant, scored on the visitor's data (playground.improve).
`build_improve_tab(services)` lays its controls out inside the current Blocks context (the caller's
`gr.Tab("Improve")`) and publishes the improve_* API endpoints. layout.py lays it out, handlers.py holds what it
does, api.py the same for API clients; this module wires them by component."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ... import improve
from ...services import Services
from ..errors import at_boundary
from .api import ImproveApi, plan, spec_for, status_json
from .handlers import ImproveHandlers, result_text
from .layout import ImproveView, lay_out

__all__ = ["ImproveApi", "ImproveTab", "build_improve_tab", "plan", "result_text", "spec_for", "status_json"]


@dataclass
class ImproveTab:
    view: ImproveView
    handlers: ImproveHandlers

    def opened_by(self, trigger: gr.Tab) -> None:
        """Opening the tab lists the visitor's templates and searches again (saved or started elsewhere)."""
        boundary = at_boundary(self.handlers.services.settings.data_dir)
        view = self.view
        trigger.select(boundary(self.handlers.opened), {view.search}, [view.template, *view.shown()],
                       api_visibility="private")


def build_improve_tab(services: Services) -> ImproveTab:
    templates = sorted(services.library.templates)
    view = lay_out(templates, services.catalog.default_model("text"), services.settings)
    handlers = ImproveHandlers(view, services)
    boundary = at_boundary(services.settings.data_dir)
    private = {"api_visibility": "private"}
    view.template.change(boundary(handlers.pick_template), {view.template},
                         [view.variant, view.dataset, view.upload, view.expected, view.values], **private)
    view.upload.upload(boundary(handlers.add_rows), view.upload, view.dataset, **private)
    view.project.click(boundary(handlers.project), view.form(), [view.projection, view.request, view.start],
                       **private)
    view.start.click(boundary(handlers.start), {view.request}, [view.start, *view.shown()], **private)
    for trigger in (view.refresh.click, view.timer.tick):
        trigger(boundary(handlers.refresh), {view.search}, view.shown(), show_progress="hidden", **private)
    view.searches.select(boundary(handlers.open_search), {view.searches}, view.shown(), **private)
    for button, action in ((view.pause, improve.pause), (view.resume, improve.resume),
                           (view.cancel, improve.cancel)):
        button.click(boundary(handlers.act(action)), {view.search}, view.shown(), **private)
    view.save.click(boundary(handlers.save), {view.search, view.save_name}, [view.saved, view.winner_text],
                    **private)
    ImproveApi(services).register(boundary)
    return ImproveTab(view, handlers)
