"""The Vote tab: blind A/B votes on one comparison, then the variants' ranking, and the preference exports. A link
`?vote=<comparison id>` opens straight into voting. layout.py lays it out, handlers.py holds what it does, api.py the
same voting for API clients; this module wires them by component."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import gradio as gr

from ...services import Services
from ...stakeholders.votes import PairTokens
from ..errors import at_boundary
from .api import VoteApi
from .handlers import VoteHandlers, ranking_html
from .layout import VoteView, lay_out

__all__ = ["VoteTab", "build_vote_tab", "ranking_html"]


@dataclass
class VoteTab:
    view: VoteView
    handlers: VoteHandlers


def build_vote_tab(services: Services, demo: gr.Blocks, tabs: gr.Tabs, voter: gr.BrowserState, *,
                   scores_for: Callable[[int], dict[str, dict]] | None = None,
                   summary_for: Callable[[int], str | None] | None = None) -> VoteTab:
    """`voter` must sit outside the tabs (a component in a tab not yet opened is not read from the browser).

    `scores_for(comparison_id)` -> {variant: {score name: value}}: automatic scores shown beside the ranking;
    `summary_for(comparison_id)` -> an HTML fragment (scores, stats) placed in the exported report."""
    tokens, rng = PairTokens(), random.Random()
    view = lay_out(voter, services.settings.max_reason_chars)
    handlers = VoteHandlers(view, services, tabs, tokens, rng, scores_for=scores_for, summary_for=summary_for)
    boundary = at_boundary(services.settings.data_dir)
    asked = {view.comparison, view.voter, view.granted}
    dealt = view.deal_outputs()
    view.start.click(boundary(handlers.start), asked, dealt, api_visibility="private")
    view.comparison.submit(boundary(handlers.start), asked, dealt, api_visibility="private")
    for choice, button in view.buttons.items():
        button.click(boundary(_choose(handlers, choice)), asked | {view.token, view.reason}, dealt,
                     api_visibility="private", concurrency_limit=None)
    view.finish.click(boundary(handlers.finish), asked, dealt, api_visibility="private")
    demo.load(boundary(handlers.open_link), view.voter, dealt + [view.comparison, tabs, view.granted],
              api_visibility="private")
    for kind, button in view.exports.items():
        button.click(boundary(_export(handlers, kind)), {view.comparison, view.granted}, view.export_file,
                     api_visibility="private")
    VoteApi(services, tokens, rng).register(boundary)
    return VoteTab(view, handlers)


def _choose(handlers: VoteHandlers, choice: str):
    def vote(values: dict, request: gr.Request) -> dict:
        return handlers.vote(values, choice, request)
    return vote


def _export(handlers: VoteHandlers, kind: str):
    def export(values: dict, request: gr.Request) -> dict:
        return handlers.export(values, kind, request)
    return export
