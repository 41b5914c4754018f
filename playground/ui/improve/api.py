"""Improve for API clients (gradio_client, MCP): project a search, start it, follow it, pause, resume or cancel it,
and save its winner. Every argument goes through the request layer (playground.requests.improve); every limit is
enforced by the search's own projection, on the server; a visitor sees only their own searches."""

from __future__ import annotations

import gradio as gr

from ... import improve
from ...requests import ImproveRequest, SaveWinnerRequest, SearchRef, check
from ...services import Services


def spec_for(services: Services, ask: ImproveRequest, owner: str | None) -> improve.ImproveSpec:
    """The search a checked request asks for (raises with a message that says what to change)."""
    from ...scoring import make_checks

    template = services.library_for(owner).get(ask.template)
    checks = [dict(c) for c in ask.checks or []]
    make_checks(checks, template.modality, services.settings, has_reference=bool(ask.expected))
    if template.modality != "text" and (ask.dataset is not None or ask.data is not None):
        raise ValueError(f"{template.name} makes {template.modality}: it is scored on values x seeds, not on a "
                         "dataset; give values instead")
    if ask.dataset is not None and ask.data is not None:
        raise ValueError("give either dataset (one added before) or data (the rows themselves), not both")
    dataset = ask.dataset
    if ask.data is not None:
        dataset = services.datasets.add_rows([dict(row) for row in ask.data], name=f"{template.name}-rows",
                                             owner=owner)
    return improve.build_spec(
        services, template=template, variant=ask.variant, models=list(ask.models or [
            services.catalog.default_model(template.modality)]), proposer=ask.proposer, dataset=dataset,
        values={k: list(v) for k, v in (ask.values or {}).items()} or None, objective=ask.objective,
        checks=checks, expected=ask.expected, rows=ask.rows, test_rows=ask.test_rows,
        seeds=list(ask.seeds) if ask.seeds else None, test_seeds=list(ask.test_seeds) if ask.test_seeds else None,
        rounds=ask.rounds, candidates=ask.candidates, max_calls=ask.max_calls, seed=ask.seed,
        params=dict(ask.params or {}), title=ask.title, owner=owner)


def plan(services: Services, request: dict, owner: str | None) -> tuple[improve.ImproveSpec, improve.Projection]:
    ask = check(ImproveRequest, request, services.settings)
    spec = spec_for(services, ask, owner)
    return spec, improve.project(services, spec, owner)


def status_json(found: improve.SearchStatus) -> dict:
    record = found.record.to_dict()
    return {**found.to_dict(), "line": found.line(), "chart_svg": improve.chart_svg(record)}


class ImproveApi:
    def __init__(self, services: Services):
        self.services = services

    def register(self, boundary) -> None:
        for fn in (self.improve_plan, self.improve_start, self.improve_status, self.improve_searches,
                   self.improve_pause, self.improve_resume, self.improve_cancel, self.improve_save):
            gr.api(boundary(fn), api_name=fn.__name__)

    def _owner(self, request) -> str | None:
        return self.services.visitors.owner(request)

    def improve_plan(self, search: dict, request: gr.Request = None) -> dict:
        """Check a search and project its calls (proposer and generator), without spending any.

        Args:
            search: {"template", "variant", "proposer", "models", "dataset" (text) or "values" (images, music),
                "checks", "objective", "rounds", "candidates", "rows", "test_rows", "max_calls", "seeds", ...}
        """
        _, projection = plan(self.services, search, self._owner(request))
        return projection.to_dict()

    def improve_start(self, search: dict, request: gr.Request = None) -> dict:
        """Start a search as a server-side job (it survives a closed page and a restart); the same search asked for
        again continues the one already made. Returns its status; follow it with improve_status.

        Args:
            search: the same object improve_plan takes
        """
        owner = self._owner(request)
        spec, _ = plan(self.services, search, owner)
        started = improve.submit(self.services, spec, owner=owner)
        return status_json(improve.status(self.services, started.id, owner))

    def improve_status(self, search_id: int, request: gr.Request = None) -> dict:
        """Where a search stands: phase, round, every candidate with its lineage and score, calls spent, the chart
        of score by round (SVG) and, at the end, the held-out verdict.

        Args:
            search_id: the search's number (improve_start returns it as "id")
        """
        ref = check(SearchRef, {"search_id": search_id}, self.services.settings)
        return status_json(improve.status(self.services, ref.search_id, self._owner(request)))

    def improve_searches(self, request: gr.Request = None) -> list[dict]:
        """Your searches, newest first: id, status, title and a one-line summary."""
        return [{"id": s.id, "status": s.status, "title": s.title, "line": s.line()}
                for s in improve.list_searches(self.services, self._owner(request))]

    def _act(self, action, search_id: int, request) -> dict:
        ref = check(SearchRef, {"search_id": search_id}, self.services.settings)
        return status_json(action(self.services, ref.search_id, self._owner(request)))

    def improve_pause(self, search_id: int, request: gr.Request = None) -> dict:
        """Pause a search; improve_resume continues it without spending a call twice.

        Args:
            search_id: the search's number
        """
        return self._act(improve.pause, search_id, request)

    def improve_resume(self, search_id: int, request: gr.Request = None) -> dict:
        """Continue a paused, interrupted or failed search from where it stopped.

        Args:
            search_id: the search's number
        """
        return self._act(improve.resume, search_id, request)

    def improve_cancel(self, search_id: int, request: gr.Request = None) -> dict:
        """Stop a search for good (what it logged stays).

        Args:
            search_id: the search's number
        """
        return self._act(improve.cancel, search_id, request)

    def improve_save(self, search_id: int, name: str | None = None, variant_name: str | None = None,
                     request: gr.Request = None) -> dict:
        """Save a finished search's winner as a new variant of (a copy of) its template, with a note of what
        changed and where it was tested. Returns {"template", "variant", "text"}.

        Args:
            search_id: the search's number
            name: the new template's name (default <template>-improved)
            variant_name: the new variant's name (default <variant>-improved)
        """
        ask = check(SaveWinnerRequest, {"search_id": search_id, "name": name, "variant_name": variant_name},
                    self.services.settings)
        saved = improve.save_winner(self.services, ask.search_id, name=ask.name, variant_name=ask.variant_name,
                                    owner=self._owner(request))
        variant = ask.variant_name or list(saved.variants)[-1]
        return {"template": saved.name, "variant": variant, "text": saved.variants[variant]}
