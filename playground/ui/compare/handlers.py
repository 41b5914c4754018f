"""What the comparison tabs do, as plain methods on the form's values: each takes one dict keyed by component (what
Gradio hands a listener whose inputs are a set) and returns a dict of updates keyed by component. A test builds the
form and calls them directly."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, replace

import gradio as gr

from ...engines.catalog import preset_params
from ...requests import ComparisonRequest, InvalidInput, check
from ...scoring import CheckError, parse_check_args
from ...services import Services
from ...spec import Cell, ComparisonSpec
from ...templates import Template, TemplateError, expand, parse_values, with_changes
from .. import grid
from ..errors import scrub, toast_text
from ..evidence import evidence
from ..form import (blank_values, edited_template, form_variables, fresh_name, named_variants, parse_seeds,
                    remembered_form, used_variables)
from ..queues import VisitorGate
from ..streaming import cancel_flag, page_key, stop_run, stream_grid
from ..views import message_html, prompts_html, template_choices, template_info_html
from .layout import ONE_PER_LINE, CompareForm


@dataclass
class Filled:
    """The form read: the template exactly as run, the values per variable, and what to warn about."""

    template: Template
    values: dict[str, list[str]]
    variants: dict[str, str]
    warnings: list[str]


class CompareHandlers:
    def __init__(self, form: CompareForm, services: Services, browser_state: gr.BrowserState):
        self.form, self.services, self.browser_state = form, services, browser_state
        self.cancel_events: dict[str, threading.Event] = {}
        self.previews = VisitorGate(limit=1)

    # ---- template -> form ---------------------------------------------------------------------------------------

    def fill(self, template: Template, models: list[str] | None = None) -> dict:
        """Every field the template sets: info, variables, variants, extra prompts, parameters."""
        f = self.form
        names = list(template.variables)[:len(f.variables)]
        updates = {f.info: template_info_html(template), f.var_names: names}
        for i, box in enumerate(f.variables):
            variable = template.variables[names[i]] if i < len(names) else None
            updates[box] = gr.update(visible=False, value="") if variable is None else gr.update(
                visible=True, label=names[i], value=variable.default, info=variable.description or ONE_PER_LINE,
                placeholder=variable.examples[0] if variable.examples else None)
        updates |= self.variant_updates(list(template.variants.items()))
        updates |= {box: gr.update(value=getattr(template, name) or "") for name, box in f.extras.items()}
        chosen = {**template.params, **preset_params((models or [""])[0] or "", f.modality)}
        return updates | {box: gr.update(value=chosen[name]) for name, box in f.params.items() if name in chosen}

    def variant_updates(self, variants: list[tuple[str, str]]) -> dict:
        f = self.form
        count = min(len(variants), len(f.slots))
        updates = {f.n_variants: count}
        for i, slot in enumerate(f.slots):
            name, text = variants[i] if i < count else ("", "")
            updates |= {slot.name: gr.update(value=name), slot.text: gr.update(value=text),
                        slot.column: gr.update(visible=i < count)}
        return updates

    def _owner(self, request) -> str | None:
        return self.services.visitors.owner(request) if request is not None else None

    def pick_template(self, values: dict, request: gr.Request = None) -> dict:
        try:
            template = self.services.library_for(self._owner(request)).get(values[self.form.template])
        except TemplateError as error:
            gr.Warning(toast_text(scrub(str(error), self.services.settings.data_dir)))
            return {self.form.info: gr.update()}
        return self.fill(template, values[self.form.models])

    def open_template(self, name, request: gr.Request = None) -> dict:
        """Library "Open in its tab": fill the form if the template is this tab's; otherwise change nothing."""
        library = self.services.library_for(self._owner(request))
        template = library.templates.get(name) if isinstance(name, str) else None
        if template is None or template.modality != self.form.modality:
            return {self.form.info: gr.update()}       # an empty dict would read as one value, not as no updates
        return self.fill(template)

    def template_choices(self, owner: str | None = None) -> dict:
        return gr.update(choices=template_choices(self.services, self.form.modality, owner))

    # ---- the variant editor ---------------------------------------------------------------------------------------

    def edit_variants(self, values: dict, action: str, index: int) -> dict:
        f = self.form
        count = values[f.n_variants]
        pairs = [(values[s.name], values[s.text]) for s in f.slots][:count]
        if action == "duplicate" and count >= len(f.slots):
            gr.Warning(f"At most {len(f.slots)} variants side by side")
        elif action == "duplicate":
            name, text = pairs[index]
            pairs.insert(index + 1, (fresh_name(name or "variant", [n for n, _ in pairs]), text))
        elif count <= 1:
            gr.Warning("Keep at least one variant")
        else:
            del pairs[index]
        return self.variant_updates(pairs)

    # ---- the form -> template and cells ---------------------------------------------------------------------------

    def read_form(self, values: dict, owner: str | None = None) -> Filled:
        f = self.form
        names = list(values[f.var_names] or [])
        raw = [values[box] for box in f.variables][:len(names)]
        variants = named_variants([(values[s.name], values[s.text]) for s in f.slots][:values[f.n_variants]])
        extras = {name: values[box] for name, box in f.extras.items()}
        base = self.services.library_for(owner).get(values[f.template]) if values[f.template] else None
        texts = list(variants.values()) + [v for v in extras.values() if v]
        warnings, blanks = blank_values(base, names, raw, texts)
        blanks += [n for n in used_variables(texts) if n not in names and n not in blanks]   # no box yet
        if blanks:
            raise InvalidInput("variables", f"{', '.join(blanks)} {'is' if len(blanks) == 1 else 'are'} blank and "
                               "a variant uses it with no default; type a value in its box")
        return Filled(edited_template(base, f.modality, variants, names, extras),
                      {n: parse_values(v or "") or [""] for n, v in zip(names, raw)}, variants, warnings)

    def sync_variables(self, values: dict, request: gr.Request = None) -> dict:
        """Variables typed into a variant get an input box; a blank one a variant needs gets a warning."""
        f = self.form
        names, texts = list(values[f.var_names] or []), [values[s.text] for s in f.slots]
        texts += [values[box] for box in f.extras.values()]
        library = self.services.library_for(self._owner(request))
        base = library.templates.get(values[f.template]) if values[f.template] else None
        current = {name: values[box] for name, box in zip(names, f.variables)}
        wanted = form_variables([n for n in names if base is not None and n in base.variables], texts,
                                len(f.variables))
        updates = {f.var_names: wanted}
        for i, box in enumerate(f.variables):
            if i >= len(wanted):
                updates[box] = gr.update(visible=False, value="")
                continue
            name = wanted[i]
            hint = {} if name in current else {"info": "Used in a variant: type a value (one per line for several)",
                                               "placeholder": f"value for {name}"}
            updates[box] = gr.update(visible=True, label=name, value=current.get(name, ""), **hint)
        warnings, blanks = blank_values(base, wanted, [current.get(n, "") for n in wanted], texts)
        notes = [f"⚠️ **{b}** is blank: type a value, or the prompt will not render" for b in blanks]
        return updates | {f.var_warning: message_html("\n\n".join(notes + [f"ℹ️ {w}" for w in warnings]))}

    def preview(self, values: dict, request: gr.Request) -> dict:
        """The prompts of the first row, rendered; one render at a time per visitor."""
        visitor = self.services.visitors.owner(request) or page_key(request)
        with self.previews.enter(visitor) as admitted:
            if not admitted:
                return {self.form.preview: message_html("⚠️ A preview is being rendered for you already; it "
                                                        "shows when done.")}
            try:
                filled = self.read_form(values, self._owner(request))
                cells = expand(filled.template, values={k: v[:1] for k, v in filled.values.items()},
                               max_cells=self.services.settings.max_cells)
            except (InvalidInput, TemplateError) as error:
                return {self.form.preview: message_html(f"⚠️ {error}")}
        return {self.form.preview: prompts_html(cells)}

    # ---- run, re-run one cell, stop -------------------------------------------------------------------------------

    def run(self, values: dict, request: gr.Request):
        """The comparison the form asks for, streamed into the grid; the browser keeps the form with the results.
        The grid says what is happening from the start (rendering the prompts, building or loading the model...);
        input that is refused leaves it as it was."""
        started, f = time.perf_counter(), self.form
        before = (values[f.grid], values[f.run_state])
        yield {f.grid: grid.render_grid([], f.modality, message="rendering the prompts…")}
        try:
            spec, warnings = self._spec(values, self._owner(request))
        except Exception:
            yield {f.grid: before[0]}
            raise
        for warning in warnings:
            gr.Warning(toast_text(warning))
        remembered = self._remember(values)
        owner = self.services.visitors.owner(request)
        # The runner checks the models (which may build one first) while the grid already says what it waits for.
        with cancel_flag(self.cancel_events, page_key(request)) as cancel:
            for html_, state, remembered in stream_grid(self.services, f.modality, spec, cancel, remembered,
                                                        started=started, owner=owner, before=before):
                yield {f.grid: html_, f.run_state: state, self.browser_state: remembered}

    def _spec(self, values: dict, owner: str | None) -> tuple[ComparisonSpec, list[str]]:
        """The form's comparison, checked by the request layer, and what to warn about."""
        f = self.form
        filled = self.read_form(values, owner)
        ask = check(ComparisonRequest, {
            "modality": f.modality, "variants": filled.variants, "values": filled.values,
            "models": [m for m in values[f.models] or [] if m], "seeds": parse_seeds(values[f.seeds]),
            "params": {name: values[box] for name, box in f.params.items()}, "rerun": bool(values[f.rerun]),
            "checks": self._checks(values[f.checks])}, self.services.settings)
        return ask.spec(filled.template, self.services.settings, self.services.catalog.default_model(f.modality),
                        variants=False), filled.warnings

    def _checks(self, typed: str | None) -> list[dict]:
        try:
            return parse_check_args([line for line in (typed or "").splitlines() if line.strip()], self.form.modality)
        except CheckError as error:
            raise InvalidInput("checks", str(error)) from None

    def _remember(self, values: dict) -> dict:
        """The browser's memory with this tab's form in it, so a reload shows the form beside its results."""
        f = self.form
        names = list(values[f.var_names] or [])
        saved = remembered_form(values[f.template], names, [values[b] for b in f.variables][:len(names)],
                                [(values[s.name], values[s.text]) for s in f.slots][:values[f.n_variants]],
                                values[f.models], values[f.seeds], {n: values[b] for n, b in f.extras.items()},
                                values[f.checks])
        remembered = values[self.browser_state] if isinstance(values[self.browser_state], dict) else {}
        return {**remembered, "forms": {**(remembered.get("forms") or {}), f.modality: saved}}

    def stop(self, request: gr.Request) -> None:
        stop_run(self.cancel_events, page_key(request))

    def rerun_cell(self, values: dict, event: gr.EventData, request: gr.Request):
        """A cell's re-run (same seed, or a new one): logged into the same comparison as the run that replaces the
        one shown, scored with the comparison's checks; the grid keeps its status line and evidence panel."""
        f, state = self.form, values[self.form.run_state]
        index, new_seed = getattr(event, "index", None), bool(getattr(event, "new_seed", False))
        if not state or not isinstance(index, int) or not 0 <= index < len(state["spec"].cells):
            raise gr.Error("Run a comparison first")
        spec: ComparisonSpec = state["spec"]
        views, owner, comparison_id = state["views"], self.services.visitors.owner(request), state.get("comparison_id")
        cell: Cell = spec.cells[index]
        fresh_cell = replace(cell, seed=random.randrange(2**31) if new_seed else cell.seed,
                             replaces=views[index].run_id)
        parent = f" of #{comparison_id}" if comparison_id else ""
        single = replace(spec, cells=[fresh_cell], rerun=True, title=f"re-run{parent}: {fresh_cell.label}")
        what = f"{fresh_cell.variant or 'cell'} · seed {fresh_cell.seed}"
        with cancel_flag(self.cancel_events, page_key(request)) as cancel:
            for _, inner, _ in stream_grid(self.services, f.modality, single, cancel, values[self.browser_state],
                                           remember=False, owner=owner, into=comparison_id):
                fresh = inner["views"][0]
                fresh.index, fresh.row, fresh.col = index, cell.row, cell.col
                # The row keeps its label; the cell says what changed.
                fresh.row_label, fresh.badge = views[index].row_label, f"re-run · seed {fresh_cell.seed}"
                views[index] = fresh
                comparison_id = state["comparison_id"] = comparison_id or inner["comparison_id"]
                yield {f.grid: self._regrid(views, comparison_id, owner, f"re-running {what} · {inner['status']}"),
                       f.run_state: state}
        spec.cells[index] = replace(fresh_cell, replaces=None)   # a later "same seed" re-run repeats this one
        yield {f.grid: self._regrid(views, comparison_id, owner, f"re-ran {what}", final=True), f.run_state: state}

    def _regrid(self, views: list, comparison_id: int | None, owner: str | None, doing: str,
                final: bool = False) -> str:
        """The tab's grid around a re-run cell: the comparison's status line, and (once done) its evidence panel."""
        key = self.services.visitors.grid_key(owner)
        done = sum(1 for v in views if v.run_id is not None)
        try:
            header = self.services.log.get_comparison_header(comparison_id, owner=owner) if comparison_id else None
        except (KeyError, ValueError):
            header = None
        progress = grid.logged_progress(header, doing) if header is not None and final else {
            "done": done, "total": len(views), "message": doing}
        panel, badges = evidence(self.services.log, comparison_id, owner) if final else ("", None)
        return grid.render_grid(views, self.form.modality, comparison_id=comparison_id, key=key, badges=badges,
                                winner_run_id=header.winner_run_id if header else None, **progress) + panel

    # ---- save as a user template, page reload ---------------------------------------------------------------------

    def save(self, values: dict, request: gr.Request = None) -> dict:
        f, overwrite, owner = self.form, bool(values[self.form.overwrite]), self._owner(request)
        try:
            template = self.read_form(values, owner).template
            saved = with_changes(template, name=(values[f.save_name] or "").strip(), modality=f.modality)
            self.services.libraries.save(saved, owner, overwrite=overwrite)
        except (InvalidInput, TemplateError) as error:
            taken = "already have a template named" in str(error)
            hint = " — tick *Replace my template of the same name* and save again." if taken else ""
            return {f.save_status: message_html(f"⚠️ {error}{hint}")} | ({f.overwrite: gr.update(visible=True)}
                                                                       if taken else {})
        return {f.save_status: message_html(f"Saved **{saved.name}** to your templates"
                                            f"{' (replaced the old one)' if overwrite else ''}."),
                f.template: gr.update(choices=template_choices(self.services, f.modality, owner), value=saved.name),
                f.overwrite: gr.update(visible=False, value=False)}

    def restore(self, saved, owner: str | None = None) -> dict:
        """Page load: the form that produced the remembered results (or the default template's parameters), with
        the templates this visitor may pick."""
        f = self.form
        default_models = [self.services.catalog.default_model(f.modality)]
        name = saved.get("template") if isinstance(saved, dict) else None
        library = self.services.library_for(owner)
        if not isinstance(name, str) or name not in library.templates:
            if f.default is None:
                return {f.template: self.template_choices(owner)}
            # The form was built filled; only the template's parameters are applied (the controls start generic).
            return {box: update for box, update in self.fill(f.default, default_models).items()
                    if box in f.params.values()} | {f.template: self.template_choices(owner)}
        models = [m for m in saved.get("models") or [] if isinstance(m, str)] or default_models
        template = library.templates[name]
        updates = self._overlay(self.fill(template, models), saved, template)
        return updates | {f.template: gr.update(choices=template_choices(self.services, f.modality, owner), value=name),
                          f.models: models, f.seeds: str(saved.get("seeds") or "1"),
                          f.checks: str(saved.get("checks") or "")}

    def _overlay(self, updates: dict, saved: dict, template: Template) -> dict:
        """A remembered form on top of the updates that fill the form from its template."""
        f = self.form
        variables = [(str(n), str(v)) for n, v in (saved.get("variables") or [])][:len(f.variables)]
        variants = [(str(n), str(t)) for n, t in (saved.get("variants") or [])][:len(f.slots)]
        extras = saved.get("extras") if isinstance(saved.get("extras"), dict) else {}
        if variables:
            updates[f.var_names] = [n for n, _ in variables]
            for i, box in enumerate(f.variables):
                known = template.variables.get(variables[i][0]) if i < len(variables) else None
                updates[box] = gr.update(visible=False, value="") if i >= len(variables) else gr.update(
                    visible=True, label=variables[i][0], value=variables[i][1],
                    info=known.description if known and known.description else ONE_PER_LINE)
        if variants:
            updates |= self.variant_updates(variants)
        return updates | {box: gr.update(value=str(extras[name])) for name, box in f.extras.items() if name in extras}

    def model_defaults(self, models) -> dict:
        """Switching models applies what the new one needs (e.g. 2 steps and no guidance for turbo models)."""
        needed = preset_params(models[0], self.form.modality) if models else {}
        return {box: gr.update(value=needed[name]) for name, box in self.form.params.items() if name in needed}

    @staticmethod
    def random_seeds() -> str:
        return ", ".join(str(random.randrange(2**31)) for _ in range(3))
