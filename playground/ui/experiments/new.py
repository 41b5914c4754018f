"""What the New experiment form does, as plain methods: a dict of values keyed by component in, a dict of updates
keyed by component out. The experiment it reads goes through the request layer (ExperimentRequest) like the API's
/experiment_start; the dry run is shown before Run submits the job, and Run refuses a form that changed since."""

from __future__ import annotations

import json

import gradio as gr

from ... import experiments
from ...datasets import DatasetInfo
from ...requests import InvalidInput, check
from ...requests.experiments import DatasetSource, ExperimentRequest
from ...scoring import CheckError, parse_check_args
from ...services import Services
from ...spec import merged_params
from ...templates import Template
from ..form import parse_seeds
from ..views import message_html, template_info_html
from .form import NO_COLUMN, ROWS, SOURCES, NewForm, _params_text
from .pages import dataset_html, estimate_html

SAMPLE_FIELDS = {ROWS[1]: ("count",), ROWS[2]: ("count", "sample_seed"), ROWS[3]: ("start", "stop"),
                 ROWS[4]: ("where_column", "where_value")}


class NewHandlers:
    def __init__(self, form: NewForm, services: Services):
        self.form, self.services = form, services

    def _owner(self, request) -> str | None:
        return self.services.visitors.owner(request)

    def _template(self, name) -> Template | None:
        return self.services.library.templates.get(name) if isinstance(name, str) else None

    def _dataset(self, version, owner) -> DatasetInfo | None:
        if not version:
            return None
        try:
            return self.services.datasets.get(version, owner=owner)
        except (LookupError, ValueError):
            return None

    # ---- template ---------------------------------------------------------------------------------------------

    def pick_template(self, values: dict, request: gr.Request) -> dict:
        f, template = self.form, self._template(values[self.form.template])
        if template is None:
            return {f.plan: message_html(f"⚠️ No template named {values[f.template]!r}: pick one from the list")}
        names = list(template.variants)
        catalog = self.services.catalog
        model = catalog.default_model(template.modality)
        updates = {f.info: template_info_html(template), f.variants: gr.update(choices=names, value=names),
                   f.models: gr.update(choices=catalog.model_choices(template.modality), value=[model]),
                   f.checks: "", f.params: _params_text(merged_params(template, [model], None)), f.plan: "",
                   f.estimated: None}
        return updates | self.mapping_updates(template, self._dataset(values[f.dataset], self._owner(request)))

    def mapping_updates(self, template: Template | None, info: DatasetInfo | None) -> dict:
        """One dropdown per template variable, set to the column of the same name (or the template's default)."""
        f = self.form
        names = list(template.variables)[:len(f.mapping)] if template else []
        columns = info.column_names if info else []
        updates = {f.var_names: names}
        for i, box in enumerate(f.mapping):
            if i >= len(names):
                updates[box] = gr.update(visible=False, choices=[], value=None)
                continue
            name = names[i]
            choices = ([] if name in columns else [("(the template's default)", "")]) + [(c, c) for c in columns]
            updates[box] = gr.update(visible=True, label=f"{name} ←", choices=choices,
                                     value=name if name in columns else "")
        return updates

    # ---- dataset ----------------------------------------------------------------------------------------------

    def show_source(self, values: dict, request: gr.Request) -> dict:
        f, chosen = self.form, values[self.form.source]
        boxes = dict(zip(SOURCES, (f.upload_box, f.paste_box, f.hub_box, f.previous_box)))
        updates = {box: gr.update(visible=source == chosen) for source, box in boxes.items()}
        if chosen == SOURCES[3]:
            updates[f.previous] = gr.update(choices=self.previous_choices(self._owner(request)))
        return updates

    def previous_choices(self, owner: str | None) -> list[tuple[str, str]]:
        return [(f"{d.name} · {d.rows:,} rows · {d.version[:8]}", d.version)
                for d in self.services.datasets.list(owner=owner)]

    def chose(self, info: DatasetInfo, values: dict, owner: str | None) -> dict:
        """Everything a newly chosen dataset changes: the preview, the column pickers, the list of earlier ones."""
        f = self.form
        columns = [(c, c) for c in info.column_names]
        return {f.dataset: info.version, f.preview: dataset_html(self.services.datasets.preview(info, n=8)),
                f.previous: gr.update(choices=self.previous_choices(owner), value=info.version),
                f.expected: gr.update(choices=[NO_COLUMN] + columns,
                                      value="expected" if "expected" in info.column_names else ""),
                f.where_column: gr.update(choices=columns, value=None), f.plan: "", f.estimated: None
                } | self.mapping_updates(self._template(values[f.template]), info)

    def add_upload(self, values: dict, request: gr.Request) -> dict:
        path = values[self.form.upload]
        if not path:
            return {}
        owner = self._owner(request)
        ask = check(DatasetSource, {"file": path, "name": (values[self.form.dataset_name] or "").strip() or None},
                    self.services.settings)
        return self.chose(ask.add(self.services, owner), values, owner)

    def add_pasted(self, values: dict, request: gr.Request) -> dict:
        owner = self._owner(request)
        name = (values[self.form.dataset_name] or "").strip() or "pasted rows"
        info = self.services.datasets.add_text(values[self.form.pasted] or "", name=name, owner=owner)
        return self.chose(info, values, owner)

    def add_hub(self, values: dict, request: gr.Request) -> dict:
        f, owner = self.form, self._owner(request)
        hub_id = (values[f.hub_id] or "").strip()
        if not hub_id:
            raise InvalidInput("dataset id", "type a Hugging Face dataset id like owner/name")
        typed = {"hub_id": hub_id, "config": values[f.hub_config], "split": values[f.hub_split],
                 "name": values[f.dataset_name]}
        ask = check(DatasetSource, {key: (value or "").strip() or None for key, value in typed.items()},
                    self.services.settings)
        return self.chose(ask.add(self.services, owner), values, owner)

    def pick_previous(self, values: dict, request: gr.Request) -> dict:
        owner = self._owner(request)
        info = self._dataset(values[self.form.previous], owner)
        return self.chose(info, values, owner) if info is not None else {}

    # ---- which rows -------------------------------------------------------------------------------------------

    def show_rows(self, values: dict) -> dict:
        f, wanted = self.form, SAMPLE_FIELDS.get(values[self.form.rows], ())
        return {getattr(f, name): gr.update(visible=name in wanted)
                for name in ("count", "sample_seed", "start", "stop", "where_column", "where_value")}

    def sample(self, values: dict) -> dict:
        f, mode = self.form, values[self.form.rows]
        sample: dict = {}
        for name in SAMPLE_FIELDS.get(mode, ()):
            if values[getattr(f, name)] in (None, ""):
                label = {"count": "N", "sample_seed": "random seed", "start": "from row", "stop": "to row",
                         "where_column": "column", "where_value": "value"}[name]
                raise InvalidInput(label, f"is empty: fill it in for '{mode}'")
        if mode == ROWS[1]:
            sample["first"] = values[f.count]
        elif mode == ROWS[2]:
            sample |= {"random": values[f.count], "seed": values[f.sample_seed]}
        elif mode == ROWS[3]:
            sample |= {"start": values[f.start], "stop": values[f.stop]}
        elif mode == ROWS[4]:
            sample["where"] = {values[f.where_column]: values[f.where_value]}
        split = (values[f.split] or "").strip()
        return sample | ({"split": split} if split else {})

    # ---- the experiment ---------------------------------------------------------------------------------------

    def read(self, values: dict, owner: str | None):
        """The experiment the form asks for, checked by the request layer and then against its template and
        dataset (mapping, sample, models, checks, limits): (spec, plan)."""
        f = self.form
        if not values[f.dataset]:
            raise InvalidInput("dataset", "add a dataset first (upload a file, paste rows, load one from Hugging "
                               "Face, or pick one added before)")
        template = self.services.library.get(values[f.template])
        expected = values[f.expected] or None
        mapping = {name: column for name, column in zip(values[f.var_names] or [], [values[b] for b in f.mapping])
                   if column and column != name}
        ask = check(ExperimentRequest, {
            "template": template.name, "dataset": values[f.dataset], "models": [m for m in values[f.models] or []
                                                                              if m],
            "seeds": parse_seeds(values[f.seeds]) or [1], "variants": list(values[f.variants] or []) or None,
            "mapping": mapping or None, "expected": expected, "sample": self.sample(values) or None,
            "params": parse_params(values[f.params]), "title": (values[f.title] or "").strip() or None,
            "checks": self._checks(values[f.checks], template.modality, bool(expected))}, self.services.settings)
        spec = ask.spec(self.services, owner)
        return spec, experiments.check_experiment(self.services, spec, owner, server_side=False)

    @staticmethod
    def _checks(typed: str | None, modality: str, has_reference: bool) -> list[dict]:
        try:
            return parse_check_args([line for line in (typed or "").splitlines() if line.strip()], modality,
                                    has_reference=has_reference)
        except CheckError as error:
            raise InvalidInput("checks", str(error)) from None

    def estimate(self, values: dict, request: gr.Request) -> dict:
        owner = self._owner(request)
        spec, _ = self.read(values, owner)
        shown = experiments.estimate(self.services, spec, owner=owner)
        return {self.form.plan: estimate_html(shown, ready=True), self.form.estimated: spec.key}

    def run(self, values: dict, request: gr.Request) -> dict:
        """Submit the job, but only for the form whose dry run is on screen: otherwise show the dry run first."""
        f, owner = self.form, self._owner(request)
        spec, _ = self.read(values, owner)
        if values[f.estimated] != spec.key:
            shown = experiments.estimate(self.services, spec, owner=owner)
            note = message_html("The dry run of this form is below: check it and press **Run** again to start.")
            return {f.plan: note + estimate_html(shown, ready=True), f.estimated: spec.key, f.started: None}
        experiment = experiments.submit(self.services, spec, owner=owner)
        said = (f"Started experiment **#{experiment.id}**: it runs on the server, so closing this page does not "
                "stop it." if experiment.created else
                f"This experiment ran before: **#{experiment.id}** ({experiment.job.status}); opened it.")
        return {f.plan: message_html(said), f.estimated: None, f.started: experiment.id}

    def run_here(self, values: dict, request: gr.Request):
        """Run the experiment from this page, chunk by chunk (ZeroGPU lends a GPU only inside a page's request):
        the plan area follows it; closing the page pauses it, and Run on this page continues it."""
        f, owner = self.form, self._owner(request)
        spec, _ = self.read(values, owner)
        if values[f.estimated] != spec.key:
            shown = experiments.estimate(self.services, spec, owner=owner)
            note = message_html("The dry run of this form is below: check it and press **Run on this page** again.")
            yield {f.plan: note + estimate_html(shown, ready=True), f.estimated: spec.key}
            return
        for current in experiments.run_on_page(self.services, spec, owner=owner):
            said = (f"Experiment **#{current.id}** runs on this page: {current.line()}. Keep the page open; "
                    "closing it pauses the experiment, and **Run on this page** continues it.")
            if current.status == "done" or not current.left:
                said = f"Experiment **#{current.id}** is done: {current.line()}. Its table is under Results."
            yield {f.plan: message_html(said), f.estimated: None}


def parse_params(typed: str | None) -> dict | None:
    """`name = value` lines; a value reads as JSON when it is (a number, true/false), else as text."""
    params = {}
    for number, line in enumerate((typed or "").splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise InvalidInput("parameters", f"line {number} ({line.strip()[:40]!r}): write name = value")
        value = value.strip()
        try:
            params[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[name.strip()] = value
    return params or None
