"""What the Compare two panel does, as plain methods: a baseline and a candidate experiment on one dataset version,
compared row by row on a check; chosen rows (ticked, typed, or the ones that got worse) run again as a new
experiment linked to the candidate."""

from __future__ import annotations

import re

import gradio as gr

from ... import experiments
from ...experiments.results import check_names, experiment_spec, variants_of
from ...requests import RequestError, check
from ...requests.experiments import ExperimentPair, RerunRows
from ...services import Services
from ..views import message_html
from .layout import CompareView
from .pages import comparison_html


class CompareHandlers:
    def __init__(self, view: CompareView, services: Services):
        self.view, self.services = view, services

    def _owner(self, request) -> str | None:
        return self.services.visitors.owner(request)

    def choices(self, request: gr.Request) -> dict:
        """The visitor's experiments as baseline and candidate choices (newest first)."""
        listed = experiments.list_experiments(self.services, owner=self._owner(request), limit=100)
        shown = [(f"#{s.id} · {s.title}", s.id) for s in listed]
        return {self.view.baseline: gr.update(choices=shown), self.view.candidate: gr.update(choices=shown)}

    def fit(self, values: dict, request: gr.Request) -> dict:
        """The checks both experiments scored, and each one's variants (one shared variant is picked for both)."""
        v, owner = self.view, self._owner(request)
        picked = {side: values[getattr(v, side)] for side in ("baseline", "candidate")}
        updates, checks = {}, None
        variants = {}
        for side, experiment_id in picked.items():
            if not experiment_id:
                continue
            spec = experiment_spec(self.services.log, int(experiment_id), owner)
            variants[side] = variants_of(spec)
            scored = check_names(self.services.log, int(experiment_id))
            checks = scored if checks is None else [c for c in checks if c in scored]
        shared = [name for name in variants.get("baseline", []) if name in variants.get("candidate", [])]
        for side, names in variants.items():
            value = names[0] if len(names) == 1 else shared[0] if len(shared) == 1 else None
            updates[getattr(v, f"{side}_variant")] = gr.update(choices=names, value=value)
        if checks is not None:
            current = values[v.check]
            updates[v.check] = gr.update(choices=checks, value=current if current in checks else
                                         (checks[0] if checks else None))
        return updates

    def _compare(self, values: dict, owner: str | None):
        v = self.view
        ask = check(ExperimentPair, {"baseline": values[v.baseline], "candidate": values[v.candidate],
                                     "check": values[v.check], "baseline_variant": values[v.baseline_variant] or None,
                                     "candidate_variant": values[v.candidate_variant] or None},
                    self.services.settings)
        return experiments.compare_experiments(self.services.log, ask.baseline, ask.candidate, ask.check,
                                               baseline_variant=ask.baseline_variant,
                                               candidate_variant=ask.candidate_variant, owner=owner)

    def compare(self, values: dict, request: gr.Request) -> dict:
        result = self._compare(values, self._owner(request))
        return {self.view.result: comparison_html(result), self.view.rows: "", self.view.rerun_status: ""}

    def choose(self, event: gr.EventData) -> dict:
        rows = getattr(event, "rows", None) or []
        return {self.view.rows: " ".join(str(int(r)) for r in rows if isinstance(r, (int, float)))}

    def pick_worse(self, values: dict, request: gr.Request) -> dict:
        result = self._compare(values, self._owner(request))
        rows = [change.dataset_row for change in result.worsened]
        return {self.view.result: comparison_html(result, set(rows)), self.view.rows: " ".join(map(str, rows))}

    def rerun(self, values: dict, request: gr.Request) -> dict:
        """The chosen rows of the candidate, as a new experiment linked to it (started at once)."""
        v, owner = self.view, self._owner(request)
        typed = [part for part in re.split(r"[\s,;]+", values[v.rows] or "") if part]
        rows = [int(part) if part.isdecimal() else part for part in typed]
        if not values[v.candidate]:
            raise RequestError([("candidate", "pick the experiment whose rows to run again")])
        ask = check(RerunRows, {"experiment_id": values[v.candidate], "rows": rows}, self.services.settings)
        made = experiments.rerun_rows(self.services, ask.experiment_id, ask.rows, owner=owner)
        said = (f"Started experiment **#{made.id}**: {len(set(ask.rows))} rows of #{ask.experiment_id}, linked to "
                "it. It runs on the server; its results open in **Results**.")
        return {v.rerun_status: message_html(said), v.started: made.id}
