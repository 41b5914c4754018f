"""The Vote tab: blind A/B votes on one comparison, then the variants' ranking, and the preference exports.

Blind means the page never learns which variant (or which run) is behind A and B: it holds an opaque token, the
server keeps the pair behind it, and media reach the page as decoded pixels / samples (saved by Gradio under a
content hash), not as the log's file names. The ranking is revealed when the voter is done, not between votes,
so it cannot be used to tell the sides apart. A link `?vote=<comparison id>` opens straight into voting.
"""

from __future__ import annotations

import html
import random
import re
from dataclasses import dataclass
from typing import Callable

import gradio as gr

from ..services import Services
from ..stakeholders.diffs import read_wav
from ..stakeholders.preferences import export_preferences
from ..stakeholders.report import variant_table, write_report
from ..stakeholders.votes import CHOICES, Pair, PairTokens, cast, next_pair, progress
from ..store.votes import DuplicateVote
from . import exports, validate as v

SHARE_UID = re.compile(r"^[0-9a-f]{32}$")   # comparisons.uid: unguessable, so a link with it can be shared

MAX_REASON_UI = 2_000
BUTTONS = {"A": "A is better", "B": "B is better", "tie": "Tie", "both bad": "Both bad"}


def _side(services: Services, run, modality: str) -> dict:
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


def _values_md(run) -> str:
    values = " · ".join(f"**{html.escape(str(k))}**: {html.escape(str(v))}" for k, v in run.variables.items())
    return values or "same inputs"


_CELL = "padding: 4px 6px; vertical-align: top"


def ranking_html(services: Services, comparison_id: int, scores: dict[str, dict] | None = None) -> str:
    """The variants ranked by votes, with ratings and stars beside them (and automatic scores when given).

    `scores`: variant -> {score name: value}, e.g. automatic scores, shown as extra columns."""
    rows = variant_table(services.log, comparison_id)
    score_names = sorted({k for s in (scores or {}).values() for k in s})
    head = "".join(f'<th style="{_CELL}">{html.escape(h)}</th>' for h in
                   ["#", "variant", "rating (95%)", "won–tied–lost", "★ avg", *score_names])
    body = []
    for k, r in enumerate(rows, 1):
        cells = [str(k), html.escape(r["variant"]),
                 f'{r["rating"]:.0f}<br><small style="white-space: nowrap">{r["low"]:.0f}–{r["high"]:.0f}</small>'
                 if r["games"] else "no votes",
                 f'{r["wins"]}–{r["ties"]}–{r["losses"]}',
                 f'{r["avg_stars"]:.1f}' if r["avg_stars"] is not None else "—"]
        cells += [html.escape(str((scores or {}).get(r["variant"], {}).get(n, "—"))) for n in score_names]
        body.append("<tr>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in cells) + "</tr>")
    return (f'<div class="pp-ranking" style="overflow-x: auto; max-width: 100%">'
            f'<table style="font-size: 0.9em; overflow-wrap: anywhere">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            f'<p class="pp-note">Bradley-Terry fit of every voter\'s votes on an Elo-like scale (1000 = average; '
            f'+100 = preferred about 64% of the time); ties and "both bad" count half.</p></div>')


@dataclass
class VoteView:
    comparison: gr.Number
    voter: gr.BrowserState
    deal_outputs: list


def build_vote_tab(services: Services, demo: gr.Blocks, tabs: gr.Tabs, voter: gr.BrowserState, *,
                   scores_for: Callable[[int], dict[str, dict]] | None = None,
                   summary_for: Callable[[int], str | None] | None = None) -> VoteView:
    """`voter` must sit outside the tabs (a component in a tab not yet opened is not read from the browser).

    `scores_for(comparison_id)` -> {variant: {score name: value}}: automatic scores shown beside the ranking;
    `summary_for(comparison_id)` -> an HTML fragment (scores, stats) placed in the exported report."""
    tokens = PairTokens()
    rng = random.Random()
    voter_name = services.visitors.voter      # the server decides who votes; the page's value is only a signed id
    gr.Markdown("### Blind vote\nTwo outputs for the same inputs, from two different prompt variants. Names are "
                "hidden and sides shuffled: pick the better one. The ranking shows when you are done.")
    token = gr.State(None)        # server-side session state: the page itself never holds the pair
    with gr.Row(equal_height=True):
        comparison = gr.Number(label="Comparison #", precision=0, minimum=1, scale=2, elem_id="vote-comparison")
        start = gr.Button("Start voting", variant="primary", scale=1, elem_id="vote-start")
    with gr.Column(elem_id="vote-view"):
        context = gr.Markdown(elem_id="vote-context")
        sides = []
        with gr.Row(equal_height=False):
            for label in ("A", "B"):
                with gr.Column(min_width=300, elem_id=f"vote-side-{label.lower()}"):
                    sides.append([
                        gr.Textbox(label=label, lines=6, max_lines=24, interactive=False, visible=False,
                                   elem_id=f"vote-{label.lower()}-text"),
                        gr.Image(label=label, type="pil", interactive=False, visible=False, format="png",
                                 buttons=["fullscreen"], elem_id=f"vote-{label.lower()}-image"),
                        gr.Audio(label=label, type="numpy", interactive=False, visible=False, buttons=[],
                                 elem_id=f"vote-{label.lower()}-audio")])
        with gr.Row(visible=False) as buttons_row:
            buttons = {c: gr.Button(BUTTONS[c], variant="primary" if c in "AB" else "secondary", min_width=80,
                                    elem_id=f"vote-{c.replace(' ', '-').lower()}") for c in CHOICES}
        reason = gr.Textbox(label="Why? (optional)", max_lines=3, max_length=MAX_REASON_UI, visible=False,
                            elem_id="vote-reason")
        status = gr.Markdown(elem_id="vote-status")
    finish = gr.Button("Done: show the ranking", visible=False, elem_id="vote-finish")
    with gr.Column(visible=False) as results:
        ranking = gr.HTML(elem_id="vote-ranking")
        with gr.Row():
            jsonl_btn = gr.Button("Preferences (JSONL, DPO)", elem_id="vote-export-jsonl")
            csv_btn = gr.Button("Votes (CSV)", elem_id="vote-export-csv")
            report_btn = gr.Button("Report (HTML)", elem_id="vote-export-report")
        export_file = gr.File(label="Download", interactive=False, visible=False, elem_id="vote-export-file")

    side_components = [c for side in sides for c in side]
    deal_outputs = [context, *side_components, buttons_row, reason, status, finish, results, ranking, token, voter]

    def _hidden_pair() -> list:
        return [gr.update(visible=False, value=None) for _ in side_components] + [gr.update(visible=False),
                                                                                   gr.update(visible=False)]

    def _reveal(comparison_id: int, who: str, message: str) -> list:
        done, total = progress(services.log, comparison_id, who)
        return [f"You voted on **{done} of {total}** pairs of comparison #{comparison_id}.", *_hidden_pair(),
                message, gr.update(visible=False), gr.update(visible=True),
                ranking_html(services, comparison_id, scores_for(comparison_id) if scores_for else None), None,
                gr.update()]

    def deal(comparison_id, who: str, message: str = "", owner: str | None = None) -> list:
        try:
            comparison_id = int(comparison_id)
            header = services.log.get_comparison_header(comparison_id, owner=owner)
        except (TypeError, ValueError, KeyError):
            raise gr.Error(f"No comparison #{comparison_id} in the log: give the number shown in History") from None
        pair = next_pair(services.log, comparison_id, who, rng)
        if pair is None:
            return _reveal(comparison_id, who, message + " No pairs left to vote on: here is the ranking.")
        done, total = progress(services.log, comparison_id, who)
        shown = [_side(services, run, header.modality) for run in (pair.left, pair.right)]
        updates = []
        for content in shown:
            for kind in ("text", "image", "audio"):
                updates.append(gr.update(visible=kind in content, value=content.get(kind)))
        share = f" · share this vote: `?vote={header.uid}`" if header.uid and owner is not None else ""
        return [f"Pair {done + 1} of {total} · {_values_md(pair.left)}{share}", *updates, gr.update(visible=True),
                gr.update(visible=True, value=""), message, gr.update(visible=True), gr.update(visible=False),
                gr.update(), tokens.issue(pair, who), gr.update()]

    def owner_for(comparison_id, granted, request) -> str | None:
        """A comparison opened through its share link (an unguessable uid) is open to any voter; any other
        number must belong to the visitor where visitors are kept apart."""
        try:
            if granted is not None and int(comparison_id) == int(granted):
                return None
        except (TypeError, ValueError):
            pass
        return services.visitors.owner(request)

    def on_start(comparison_id, stored, granted, request: gr.Request):
        return deal(comparison_id, voter_name(request, stored), owner=owner_for(comparison_id, granted, request))

    def on_vote(choice: str):
        def handler(comparison_id, pair_token, why, stored, granted, request: gr.Request):
            who = voter_name(request, stored)
            try:
                pair: Pair = tokens.take(pair_token, who)
                cast(services.log, pair, choice, who, (why or "")[:MAX_REASON_UI])
                message = "Vote saved."
            except DuplicateVote:
                message = "You had already voted on that pair."
            except (LookupError, ValueError) as error:
                message = str(error)
            return deal(comparison_id, who, message, owner=owner_for(comparison_id, granted, request))
        return handler

    def on_finish(comparison_id, stored, granted, request: gr.Request):
        who = voter_name(request, stored)
        if not comparison_id:
            raise gr.Error("Give a comparison number first")
        try:
            services.log.get_comparison_header(int(comparison_id), owner=owner_for(comparison_id, granted, request))
        except (TypeError, ValueError, KeyError):
            raise gr.Error(f"No comparison #{comparison_id} in the log") from None
        return _reveal(int(comparison_id), who, "Thanks for voting.")

    def on_load(stored, request: gr.Request, profile: gr.OAuthProfile | None):
        """Knows the visitor; `?vote=<id>` opens the Vote tab on that comparison's first pair."""
        services.visitors.identify(request, profile, stored)      # the page load may reach here first
        who = voter_name(request, stored)
        wanted = ((request.query_params.get("vote") if request is not None else None) or "").strip()
        shared = services.log.comparison_id_for_uid(wanted) if SHARE_UID.match(wanted) else None
        if shared is not None:           # a share link: open to whoever holds it
            return deal(shared, who) + [shared, gr.Tabs(selected="vote"), shared]
        if not wanted.isdigit():
            return [gr.update()] * len(deal_outputs) + [gr.update(), gr.update(), None]
        return deal(int(wanted), who, owner=services.visitors.owner(request)) + [int(wanted), gr.Tabs(selected="vote"),
                                                                               None]

    granted = gr.State(None)      # the comparison this page opened through its share link
    start.click(on_start, [comparison, voter, granted], deal_outputs, api_visibility="private")
    comparison.submit(on_start, [comparison, voter, granted], deal_outputs, api_visibility="private")
    for choice, button in buttons.items():
        button.click(on_vote(choice), [comparison, token, reason, voter, granted], deal_outputs,
                     api_visibility="private", concurrency_limit=None)
    finish.click(on_finish, [comparison, voter, granted], deal_outputs, api_visibility="private")
    demo.load(on_load, voter, deal_outputs + [comparison, tabs, granted], api_visibility="private")

    def export(kind: str):
        def handler(comparison_id, granted, request: gr.Request):
            if not comparison_id:
                raise gr.Error("Give a comparison number first")
            cid = int(comparison_id)
            try:
                services.log.get_comparison_header(cid, owner=owner_for(cid, granted, request))
            except KeyError:
                raise gr.Error(f"No comparison #{cid} in the log") from None
            if kind == "report":
                path = write_report(services.log, cid, exports.export_path(f"comparison-{cid}", "html"),
                                    summary_html=summary_for(cid) if summary_for else None)
            else:
                path = export_preferences(services.log, exports.export_path(f"votes-{cid}", kind), kind,
                                          comparison_id=cid)
            return gr.update(visible=True, value=str(path))
        return handler

    for kind, button in (("jsonl", jsonl_btn), ("csv", csv_btn), ("report", report_btn)):
        button.click(export(kind), [comparison, granted], export_file, api_visibility="private")
    _register_api(services, tokens, rng)
    return VoteView(comparison, voter, deal_outputs)


def _register_api(services: Services, tokens: PairTokens, rng: random.Random) -> None:
    """The same blind voting for API clients: text outputs only; pairs are opaque tokens here too."""

    def vote_pair(comparison_id: int, voter: str = "", request: gr.Request = None) -> dict:
        """Deal a blind pair of a text comparison: {"token", "values", "a", "b", "voted", "total"}, or {"done"}.

        Args:
            comparison_id: the comparison to vote on
            voter: ignored: the server knows the voter (your sign-in, else this client's session)
        """
        who = services.visitors.voter(request)
        try:
            header = services.log.get_comparison_header(v.record_id(comparison_id, "comparison_id"),
                                                        owner=services.visitors.owner(request))
        except (KeyError, TypeError, ValueError) as error:
            raise gr.Error(str(error)) from None
        if header.modality != "text":
            raise gr.Error("API voting shows text outputs; vote on images and music in the Vote tab")
        pair = next_pair(services.log, header.id, who, rng)
        done, total = progress(services.log, header.id, who)
        if pair is None:
            return {"done": True, "voted": done, "total": total}
        return {"token": tokens.issue(pair, who), "values": pair.left.variables, "a": pair.left.output_text,
                "b": pair.right.output_text, "voted": done, "total": total}

    def vote_cast(token: str, choice: str, voter: str = "", reason: str = "", request: gr.Request = None) -> dict:
        """Vote on a dealt pair: choice is "A", "B", "tie" or "both bad". Returns {"saved": true}.

        Args:
            token: the token vote_pair returned
            choice: A, B, tie or both bad
            voter: ignored, as in vote_pair
            reason: optional, why
        """
        who = services.visitors.voter(request)
        try:
            cast(services.log, tokens.take(token, who), choice, who, reason)
        except (LookupError, ValueError) as error:
            raise gr.Error(str(error)) from None
        return {"saved": True}

    gr.api(vote_pair, api_name="vote_pair")
    gr.api(vote_cast, api_name="vote_cast")
