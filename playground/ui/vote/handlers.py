"""What the Vote tab does, as plain methods: values keyed by component in, updates keyed by component out.

Blind means the page never learns which variant (or which run) is behind A and B: it holds an opaque token, the
server keeps the pair behind it, and media reach the page as decoded pixels / samples (saved by Gradio under a
content hash), not as the log's file names. The ranking is revealed when the voter is done, not between votes.
"""

from __future__ import annotations

import random
import re
from typing import Callable

import gradio as gr

from ...render import render, rerun_badge
from ...requests import ComparisonRef, RequestError, check
from ...services import Services
from ...stakeholders.diffs import read_wav
from ...stakeholders.preferences import export_preferences
from ...stakeholders.report import variant_table, write_report
from ...stakeholders.votes import PairTokens, cast, next_pair, progress
from ...store.votes import DuplicateVote
from .. import exports
from ..views import message_html
from .layout import KINDS, VoteView

SHARE_UID = re.compile(r"^[0-9a-f]{32}$")   # comparisons.uid: unguessable, so a link with it can be shared


def ranking_html(services: Services, comparison_id: int, scores: dict[str, dict] | None = None) -> str:
    """The variants ranked by votes, with ratings and stars beside them (and automatic scores when given).

    `scores`: variant -> {score name: value}, e.g. automatic scores, shown as extra columns."""
    scores = {variant: {k: str(v) for k, v in values.items()} for variant, values in (scores or {}).items()}
    return render("ranking.html.j2", rows=variant_table(services.log, comparison_id), scores=scores,
                  score_names=sorted({k for s in scores.values() for k in s}))


def side_content(services: Services, run, modality: str) -> dict:
    """What one side shows: text, or decoded image pixels, or audio samples (never the log's file name)."""
    if modality == "text":
        return {"text": run.output_text or ""}
    path = services.log.artifact_path(run)
    if path is None or not path.is_file():
        return {"text": "(this output's file is missing)"}
    if modality == "image":
        from PIL import Image

        with Image.open(path) as image:
            return {"image": image.convert("RGB")}
    import numpy as np

    rate, samples = read_wav(path)
    return {"audio": (rate, (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16))}


class VoteHandlers:
    def __init__(self, view: VoteView, services: Services, tabs: gr.Tabs, tokens: PairTokens, rng: random.Random,
                 *, scores_for: Callable[[int], dict[str, dict]] | None = None,
                 summary_for: Callable[[int], str | None] | None = None):
        self.view, self.services, self.tabs, self.tokens, self.rng = view, services, tabs, tokens, rng
        self.scores_for, self.summary_for = scores_for, summary_for

    def _hidden_pair(self) -> dict:
        v = self.view
        return {c: gr.update(visible=False, value=None) for c in v.side_components()} | {
            v.buttons_row: gr.update(visible=False), v.reason: gr.update(visible=False)}

    def reveal(self, comparison_id: int, who: str, message: str) -> dict:
        v = self.view
        scores = self.scores_for(comparison_id) if self.scores_for else None
        return self._hidden_pair() | {
            v.context: render("vote_context.html.j2", comparison_id=comparison_id,
                              done_total=progress(self.services.log, comparison_id, who)),
            v.status: message_html(message), v.finish: gr.update(visible=False), v.results: gr.update(visible=True),
            v.ranking: ranking_html(self.services, comparison_id, scores), v.token: None}

    def deal(self, comparison_id: int, who: str, message: str = "", owner: str | None = None) -> dict:
        """The next blind pair for this voter, or the ranking when none is left."""
        v = self.view
        header = self.services.log.get_comparison_header(comparison_id, owner=owner)
        pair = next_pair(self.services.log, header.id, who, self.rng)
        if pair is None:
            return self.reveal(header.id, who, message + " No pairs left to vote on: here is the ranking.")
        done, total = progress(self.services.log, header.id, who)
        updates = {v.context: render("vote_context.html.j2", done_total=None, number=done + 1, total=total,
                                     values=pair.left.variables or {}, seed=pair.left.seed,
                                     reruns={side: rerun_badge(run) for side, run in (("A", pair.left),
                                                                                     ("B", pair.right))},
                                     share=header.uid if header.uid and owner is not None else None)}
        for side, run in zip(v.sides, (pair.left, pair.right)):
            content = side_content(self.services, run, header.modality)
            updates |= {side[kind]: gr.update(visible=kind in content, value=content.get(kind)) for kind in KINDS}
        return updates | {v.buttons_row: gr.update(visible=True), v.reason: gr.update(visible=True, value=""),
                          v.status: message_html(message), v.finish: gr.update(visible=True),
                          v.results: gr.update(visible=False), v.token: self.tokens.issue(pair, who)}

    def comparison_of(self, values: dict, request: gr.Request) -> tuple[int, str | None]:
        """(the comparison asked for, the owner to read it as). One opened through its share link (an unguessable
        uid) is open to any voter; any other must belong to the visitor where visitors are kept apart."""
        typed = values[self.view.comparison]
        if typed is None:
            raise gr.Error("Give a comparison number first")
        comparison_id = check(ComparisonRef, {"comparison_id": typed}, self.services.settings).comparison_id
        shared = values[self.view.granted] is not None and values[self.view.granted] == comparison_id
        return comparison_id, None if shared else self.services.visitors.owner(request)

    def voter(self, values: dict, request: gr.Request) -> str:
        """Who votes: the server's choice (see Visitors.voter); the page's stored value counts only as an id this
        server signed."""
        return self.services.visitors.voter(request, values[self.view.voter])

    def start(self, values: dict, request: gr.Request) -> dict:
        comparison_id, owner = self.comparison_of(values, request)
        return self.deal(comparison_id, self.voter(values, request), owner=owner)

    def vote(self, values: dict, choice: str, request: gr.Request) -> dict:
        who = self.voter(values, request)
        try:
            pair = self.tokens.take(values[self.view.token], who)
            cast(self.services.log, pair, choice, who, values[self.view.reason] or "")
            message = "Vote saved."
        except DuplicateVote:
            message = "You had already voted on that pair."
        except (LookupError, ValueError) as error:
            message = str(error)
        comparison_id, owner = self.comparison_of(values, request)
        return self.deal(comparison_id, who, message, owner=owner)

    def finish(self, values: dict, request: gr.Request) -> dict:
        comparison_id, owner = self.comparison_of(values, request)
        self.services.log.get_comparison_header(comparison_id, owner=owner)
        return self.reveal(comparison_id, self.voter(values, request), "Thanks for voting.")

    def open_link(self, stored, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        """Page load: knows the visitor (this load may come before the app's own); `?vote=<uid or number>` opens
        this tab on the first pair."""
        self.services.visitors.identify(request, profile, stored)
        v, who = self.view, self.services.visitors.voter(request, stored)
        wanted = ((request.query_params.get("vote") if request is not None else None) or "").strip()
        shared = self.services.log.comparison_id_for_uid(wanted) if SHARE_UID.match(wanted) else None
        if shared is not None:           # a share link: open to whoever holds it
            return self.deal(shared, who) | {v.comparison: shared, v.granted: shared,
                                             self.tabs: gr.Tabs(selected="vote")}
        try:
            comparison_id = check(ComparisonRef, {"comparison_id": int(wanted)}).comparison_id
        except (ValueError, RequestError):
            return {v.granted: None}
        return self.deal(comparison_id, who, owner=self.services.visitors.owner(request)) | {
            v.comparison: comparison_id, v.granted: None, self.tabs: gr.Tabs(selected="vote")}

    def export(self, values: dict, kind: str, request: gr.Request) -> dict:
        comparison_id, owner = self.comparison_of(values, request)
        self.services.log.get_comparison_header(comparison_id, owner=owner)
        if kind == "report":
            path = write_report(self.services.log, comparison_id,
                                exports.export_path(f"comparison-{comparison_id}", "html"),
                                summary_html=self.summary_for(comparison_id) if self.summary_for else None)
        else:
            path = export_preferences(self.services.log, exports.export_path(f"votes-{comparison_id}", kind), kind,
                                      comparison_id=comparison_id)
        return {self.view.export_file: gr.update(visible=True, value=str(path))}
