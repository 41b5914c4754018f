"""What the Improve tab does. Handlers are plain methods on the form's values (component -> value) and the request;
the search itself is a server-side job (playground.improve), so the page only projects, starts and follows it: a
closed tab loses nothing, and a page opened later finds the visitor's searches again."""

from __future__ import annotations

import gradio as gr

from ... import improve
from ...registry import InvalidInput
from ...scoring.base import parse_check_arg
from ...services import Services
from ...templates import template_to_text
from .api import plan, status_json
from .layout import ImproveView

LIVE = ("queued", "running")           # a search in these states is followed by the page's timer


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _values(text: str | None) -> dict[str, list[str]] | None:
    found: dict[str, list[str]] = {}
    for line in _lines(text):
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise InvalidInput("values", f"{line!r}: write variable=value, one per line")
        found.setdefault(name.strip(), []).append(value.strip())
    return found or None


def _whole(text: str | None, field: str) -> int | None:
    text = (text or "").strip().replace(",", "")
    if not text:
        return None
    if not text.isdecimal():
        raise InvalidInput(field, f"{text!r}: give a whole number, or leave it empty")
    return int(text)


def _params(text: str | None) -> dict | None:
    from ...experiments.args import _json_or_text

    found = {}
    for line in _lines(text):
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise InvalidInput("params", f"{line!r}: write name=value, one per line (e.g. max_new_tokens=40)")
        found[name.strip()] = _json_or_text(value.strip())
    return found or None


def _table(record: dict) -> list[list]:
    rows = []
    for c in sorted(record.get("candidates") or [], key=lambda c: (c["round"], c["name"])):
        score = "-" if c.get("score") is None else f"{c['score']:.3f}"
        kept = " (best)" if c["name"] == record.get("best") else ""
        rows.append([c["round"], c["name"] + kept, c["status"], score, c.get("parent") or "", c.get("reason") or "",
                     c.get("text") or ""])
    return rows


def result_text(record: dict, search_id: int) -> str:
    """The held-out verdict, or why there is none yet."""
    test = record.get("test")
    if test:
        return (f"**Held-out test** (comparison #{test['experiment']}, {test.get('pairs', 0)} pairs): "
                f"{test['sentence']}")
    if record.get("phase") == "done":
        notes = [n for n in record.get("notes") or [] if "nothing to test" in n]
        return f"**No held-out test**: {notes[0] if notes else 'no candidate beat the original'}."
    return f"Search #{search_id}: the held-out test runs when the search ends."


class ImproveHandlers:
    def __init__(self, view: ImproveView, services: Services):
        self.view, self.services = view, services

    def _owner(self, request) -> str | None:
        return self.services.visitors.owner(request)

    # ---- the form --------------------------------------------------------------------------------------------

    def pick_template(self, values: dict, request: gr.Request) -> dict:
        v, name = self.view, values[self.view.template]
        if not name:
            return {v.variant: gr.update(choices=[], value=None)}
        template = self.services.library_for(self._owner(request)).get(name)
        text = template.modality == "text"
        first = next(iter(template.variants))
        return {v.variant: gr.update(choices=list(template.variants), value=first),
                v.dataset: gr.update(visible=text, choices=self._datasets(request)), v.upload: gr.update(visible=text),
                v.expected: gr.update(visible=text), v.values: gr.update(visible=not text)}

    def _datasets(self, request) -> list[tuple[str, str]]:
        return [(f"{d.name} · {d.rows:,} rows (#{d.id})", str(d.id))
                for d in self.services.datasets.list(owner=self._owner(request))]

    def add_rows(self, path: str | None, request: gr.Request) -> dict:
        if not path:
            return {}
        info = self.services.datasets.add(path, owner=self._owner(request))
        return {self.view.dataset: gr.update(choices=self._datasets(request), value=str(info.id))}

    def request_of(self, values: dict) -> dict:
        """The form as an improve request (playground.requests.ImproveRequest checks it)."""
        v = self.view
        if not values[v.template]:
            raise InvalidInput("template", "pick a template to improve")
        checks = [parse_check_arg(line) for line in _lines(values[v.checks])]
        numbers = {"rounds": values[v.rounds], "candidates": values[v.candidates], "rows": values[v.rows],
                   "test_rows": values[v.test_rows], "max_calls": _whole(values[v.max_calls], "max_calls")}
        return {"template": values[v.template], "variant": values[v.variant] or "",
                "proposer": (values[v.proposer] or "").strip(), "models": (values[v.models] or "").split() or None,
                "dataset": values[v.dataset] or None, "expected": (values[v.expected] or "").strip() or None,
                "values": _values(values[v.values]), "checks": checks or None,
                "objective": (values[v.objective] or "").strip() or None, "params": _params(values[v.params]),
                **{k: int(n) for k, n in numbers.items() if n is not None}}

    def project(self, values: dict, request: gr.Request) -> dict:
        """Check the search and show its projected calls; Start appears, naming what it will spend."""
        asked = self.request_of(values)
        _, projection = plan(self.services, asked, self._owner(request))
        v = self.view
        return {v.projection: "```\n" + projection.text() + "\n```", v.request: asked,
                v.start: gr.update(visible=True, value=f"Start: spend up to {projection.calls.total:,} calls")}

    # ---- the search ------------------------------------------------------------------------------------------

    def start(self, values: dict, request: gr.Request) -> dict:
        """Start the search last projected (checked and projected again on the server)."""
        v, asked, owner = self.view, values[self.view.request], self._owner(request)
        if not asked:
            raise InvalidInput("search", "project the calls first, then start")
        spec, _ = plan(self.services, asked, owner)
        search = improve.submit(self.services, spec, owner=owner)
        return {v.start: gr.update(visible=False), **self.show(search.id, request)}

    def show(self, search_id: int | None, request) -> dict:
        """Everything the page shows of one search; the timer runs while it does."""
        v, owner = self.view, self._owner(request)
        choices = [(f"#{s.id} {s.status}: {s.title}", s.id) for s in improve.list_searches(self.services, owner)]
        if search_id is None:
            return {v.searches: gr.update(choices=choices), v.timer: gr.Timer(active=False)}
        found = status_json(improve.status(self.services, int(search_id), owner))
        record = found["record"]
        line = f"**#{found['id']}** {found['line']}" + (f"  \n{record['stopped']}" if record.get("stopped") else "")
        if found.get("error"):
            line += f"  \n**Error:** {found['error']}"
        return {v.search: found["id"], v.progress: line, v.chart: found["chart_svg"], v.table: _table(record),
                v.result: result_text(record, found["id"]), v.timer: gr.Timer(active=found["status"] in LIVE),
                v.searches: gr.update(choices=choices, value=found["id"])}

    def refresh(self, values: dict, request: gr.Request) -> dict:
        return self.show(values[self.view.search], request)

    def open_search(self, values: dict, request: gr.Request) -> dict:
        return self.show(values[self.view.searches], request)

    def act(self, action):
        def handler(values: dict, request: gr.Request) -> dict:
            search_id = values[self.view.search]
            if search_id is None:
                raise InvalidInput("search", "start or pick a search first")
            action(self.services, int(search_id), self._owner(request))
            return self.show(search_id, request)
        return handler

    def save(self, values: dict, request: gr.Request) -> dict:
        """Save the winner as a new variant of a copy of the template, among the visitor's own templates."""
        v, search_id, owner = self.view, values[self.view.search], self._owner(request)
        if search_id is None:
            raise InvalidInput("search", "pick a finished search first")
        name = (values[v.save_name] or "").strip() or None
        saved = improve.save_winner(self.services, int(search_id), name=name, owner=owner)
        return {v.saved: f"Saved **{saved.name}** with variant `{list(saved.variants)[-1]}` to your templates "
                         "(Library tab).", v.winner_text: gr.update(visible=True, value=template_to_text(saved))}

    def opened(self, values: dict, request: gr.Request) -> dict:
        """The tab opened: the visitor's templates (their own included) and searches, listed again."""
        names = sorted(self.services.library_for(self._owner(request)).templates)
        return {self.view.template: gr.update(choices=names), **self.refresh(values, request)}
