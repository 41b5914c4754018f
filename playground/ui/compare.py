"""The comparison layout shared by the Text, Image and Music tabs.

Template picker -> variables -> variants side by side -> model, parameters, seeds -> Run -> results grid.
Handlers call the runner and the log only; nothing here touches torch.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

import gradio as gr

from ..registry import MODALITIES, InvalidInput
from ..scoring import CheckError, parse_check_args
from ..engines.catalog import preset_params
from ..spec import Cell, ComparisonSpec, build_spec
from ..services import Services
from ..templates import TemplateError, Template, expand, parse_values, with_changes
from . import grid
from .params import param_controls
from .errors import at_boundary, scrub
from .form import (apply_remembered, blank_values, edited_template, form_variables, fresh_name, parse_seeds,
                   remembered_form, template_info, used_variables)
from .streaming import cancel_flag as _cancel_flag, page_key as _page_key, stop_run, stream_grid

CHECK_EXAMPLES = {"text": "length:unit=words\ncontains=lantern", "image": "clip", "music": "clap\nloudness"}
MAX_VARIANTS = 8
MAX_VARIABLES = 6
DEFAULT_TEMPLATE = {"text": "product-tagline", "image": "style-words", "music": "genre-shift"}
MODEL_QUEUE = "models"     # comparisons share one queue; the runner lets one of them generate at a time


@dataclass
class CompareTab:
    modality: str
    template: gr.Dropdown
    refresh: Callable[[], dict]      # new template choices after the library changed
    fill: Callable                   # template name -> updates for fill_outputs
    fill_outputs: list
    grid_html: gr.HTML
    run_state: gr.State
    restore: Callable                # remembered form (or None) -> updates for restore_outputs
    restore_outputs: list
    open_template: Callable          # template name -> updates for fill_outputs, no-ops if another modality

def _template_choices(services: Services, modality: str, owner: str | None = None) -> list[tuple[str, str]]:
    templates = services.library_for(owner).by_modality(modality)
    return [(f"{t.name}{' (mine)' if t.source == 'user' else ''} — {', '.join(t.techniques)}", t.name)
            for t in templates]


def _model_choices(services: Services, modality: str) -> list[tuple[str, str]]:
    return services.catalog.model_choices(modality)


def build_compare_tab(modality: str, services: Services, browser_state: gr.BrowserState) -> CompareTab:
    """Lay out one modality tab: its option controls and extra prompt fields come from the registry."""
    prompt_boxes = MODALITIES[modality].prompt_fields
    templates = {t.name: t for t in services.library.by_modality(modality)}
    first = templates.get(DEFAULT_TEMPLATE[modality]) or next(iter(templates.values()), None)
    cancel_events: dict[str, threading.Event] = {}

    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280, elem_classes="pp-side"):
            template_dd = gr.Dropdown(_template_choices(services, modality), value=first.name if first else None,
                                      label="Template", info="From the library; edit the variants freely",
                                      elem_id=f"{modality}-template")
            # The form starts filled from the default template: nothing to wait for after the page loads.
            start_vars = list(first.variables.values())[:MAX_VARIABLES] if first else []
            start_variants = list(first.variants.items())[:MAX_VARIANTS] if first else []
            template_md = gr.Markdown(template_info(first) if first else "", elem_classes="pp-template-info")
            var_names = gr.State([v.name for v in start_vars])
            var_boxes = [gr.Textbox(start_vars[i].default if i < len(start_vars) else "",
                                    label=start_vars[i].name if i < len(start_vars) else None,
                                    visible=i < len(start_vars), lines=1, max_lines=6, elem_id=f"{modality}-var-{i}",
                                    info=(start_vars[i].description if i < len(start_vars) else "")
                                    or "Several values: one per line") for i in range(MAX_VARIABLES)]
            vars_md = gr.Markdown(elem_classes="pp-var-warning", elem_id=f"{modality}-var-warning")
            models_dd = gr.Dropdown(_model_choices(services, modality),
                                    value=[services.catalog.default_model(modality)], multiselect=True,
                                    allow_custom_value=True, label="Models",
                                    info="A preset, a hub id (owner/name), a local folder, or a remote model "
                                         "(openai:<model>, <endpoint>:<model>, hf:<model id>)",
                                    elem_id=f"{modality}-models")
            with gr.Row():
                seeds_box = gr.Textbox("1", label="Seeds", info="e.g. 1, 2, 3 to see sampling noise",
                                       scale=3, elem_id=f"{modality}-seeds")
                randomize_btn = gr.Button("Random", scale=0, min_width=80, size="sm",
                                          elem_id=f"{modality}-randomize")
            checks_box = gr.Textbox(label="Checks", lines=1, max_lines=6, elem_id=f"{modality}-checks",
                                    placeholder=CHECK_EXAMPLES[modality],
                                    info="One per line; scores every cell, and the summary under the grid says "
                                         "which variant wins and how sure that is")
            with gr.Accordion("Parameters", open=False):
                params = param_controls(modality, services.settings, modality)
                rerun_cb = gr.Checkbox(False, label="Ignore cached results (generate again)")
        with gr.Column(scale=3, min_width=320):
            extra_boxes = {}
            if "system" in prompt_boxes:
                extra_boxes["system"] = gr.Textbox((first.system or "") if first else "", label="System prompt",
                                                   lines=1, max_lines=4,
                                                   elem_id=f"{modality}-system")
            n_variants = gr.State(len(start_variants))
            name_boxes, text_boxes, columns, dup_btns, del_btns = [], [], [], [], []
            with gr.Row(elem_classes="pp-variants"):
                for i in range(MAX_VARIANTS):
                    start = start_variants[i] if i < len(start_variants) else ("", "")
                    with gr.Column(visible=i < len(start_variants), min_width=200,
                                   elem_classes="pp-variant") as column:
                        name_boxes.append(gr.Textbox(start[0], show_label=False, placeholder="variant name",
                                                     max_lines=1,
                                                     elem_id=f"{modality}-variant-name-{i}", container=False))
                        text_boxes.append(gr.Textbox(start[1], show_label=False, lines=4, max_lines=12,
                                                     placeholder="Prompt; use {{ variable }}",
                                                     elem_id=f"{modality}-variant-{i}", container=False))
                        with gr.Row(elem_classes="pp-variant-tools"):
                            dup_btns.append(gr.Button("Duplicate", size="sm", min_width=0,
                                                      elem_id=f"{modality}-dup-{i}"))
                            del_btns.append(gr.Button("Remove", size="sm", min_width=0,
                                                      elem_id=f"{modality}-del-{i}"))
                    columns.append(column)
            if "negative_prompt" in prompt_boxes:
                extra_boxes["negative_prompt"] = gr.Textbox(
                    (first.negative_prompt or "") if first else "",
                    label="Negative prompt", lines=1, max_lines=3, elem_id=f"{modality}-negative",
                    info="What to steer away from (used when guidance > 1)")
            with gr.Accordion("Rendered prompts (first row)", open=False):
                preview_md = gr.Markdown(elem_classes="pp-preview", elem_id=f"{modality}-preview")
            with gr.Row():
                run_btn = gr.Button("Run comparison", variant="primary", scale=3, elem_id=f"{modality}-run")
                stop_btn = gr.Button("Stop", variant="stop", scale=1, elem_id=f"{modality}-stop")
            with gr.Accordion("Save these variants to my templates", open=False):
                with gr.Row():
                    save_name = gr.Textbox(label="Template name", placeholder="my-tagline-test", scale=3,
                                           elem_id=f"{modality}-save-name")
                    save_btn = gr.Button("Save", scale=1, elem_id=f"{modality}-save")
                overwrite_cb = gr.Checkbox(False, label="Replace my template of the same name", visible=False,
                                           elem_id=f"{modality}-save-overwrite")
                save_status = gr.Markdown(elem_id=f"{modality}-save-status")
    grid_html = gr.HTML(grid.render_grid([], modality), js_on_load=grid.GRID_JS,
                        server_functions=grid.server_functions(services.log, services.visitors.owner), elem_id=f"{modality}-grid",
                        elem_classes="pp-results")
    run_state = gr.State(None)     # {"spec": ComparisonSpec, "views": [...], "comparison_id": int}

    param_names = list(params)
    param_components = [params[n] for n in param_names]
    extra_names = list(extra_boxes)
    extra_components = [extra_boxes[n] for n in extra_names]

    # ---- template -> form ---------------------------------------------------------------------------------------
    def load_template(name, models=None, request: gr.Request = None):
        try:
            template = services.library_for(services.visitors.owner(request) if request else None).get(name)
        except TemplateError as error:
            gr.Warning(scrub(str(error), services.settings.data_dir))
            return [gr.update()] * (3 + 3 * MAX_VARIANTS + MAX_VARIABLES + len(extra_components)
                                    + len(param_components))
        names = list(template.variables)[:MAX_VARIABLES]
        var_updates = []
        for i in range(MAX_VARIABLES):
            if i < len(names):
                variable = template.variables[names[i]]
                var_updates.append(gr.update(visible=True, label=names[i], value=variable.default,
                                             info=variable.description or "Several values: one per line",
                                             placeholder=variable.examples[0] if variable.examples else None))
            else:
                var_updates.append(gr.update(visible=False, value=""))
        variants = list(template.variants.items())[:MAX_VARIANTS]
        info = template_info(template)
        extra_updates = [gr.update(value=getattr(template, n) or "") for n in extra_names]
        chosen = {**template.params, **preset_params((models or [""])[0] or "", modality)}
        param_updates = [gr.update(value=chosen[n]) if n in chosen else gr.update() for n in param_names]
        return ([info, names, len(variants)] + var_updates
                + [gr.update(value=variants[i][0] if i < len(variants) else "") for i in range(MAX_VARIANTS)]
                + [gr.update(value=variants[i][1] if i < len(variants) else "") for i in range(MAX_VARIANTS)]
                + [gr.update(visible=i < len(variants)) for i in range(MAX_VARIANTS)]
                + extra_updates + param_updates)

    template_outputs = ([template_md, var_names, n_variants] + var_boxes + name_boxes + text_boxes + columns
                        + extra_components + param_components)
    # .input, not .change: a restored or library-opened template must not re-fill (and reset) the form.
    template_dd.input(load_template, [template_dd, models_dd], template_outputs, api_visibility="private")

    def open_template(name, request: gr.Request):
        """Library "Open in its tab": fill the form if the template is this tab's; otherwise change nothing."""
        template = services.library_for(services.visitors.owner(request)).templates.get(name)
        if template is None or template.modality != modality:
            return [gr.update()] * len(template_outputs)
        return load_template(name, None, request)

    # ---- variant editor -------------------------------------------------------------------------------------------
    def edit_variants(action: str, slot: int):
        def handler(n, *values):
            names, texts = list(values[:MAX_VARIANTS]), list(values[MAX_VARIANTS:])
            names, texts = names[:n], texts[:n]
            if action == "duplicate":
                if n >= MAX_VARIANTS:
                    gr.Warning(f"At most {MAX_VARIANTS} variants side by side")
                else:
                    names.insert(slot + 1, fresh_name(names[slot] or "variant", names))
                    texts.insert(slot + 1, texts[slot])
            elif action == "remove":
                if n <= 1:
                    gr.Warning("Keep at least one variant")
                else:
                    del names[slot], texts[slot]
            n = len(names)
            return ([n] + [gr.update(value=names[i] if i < n else "") for i in range(MAX_VARIANTS)]
                    + [gr.update(value=texts[i] if i < n else "") for i in range(MAX_VARIANTS)]
                    + [gr.update(visible=i < n) for i in range(MAX_VARIANTS)])
        return handler

    editor_io = [n_variants] + name_boxes + text_boxes
    for i in range(MAX_VARIANTS):
        dup_btns[i].click(edit_variants("duplicate", i), editor_io, editor_io + columns, api_visibility="private")
        del_btns[i].click(edit_variants("remove", i), editor_io, editor_io + columns, api_visibility="private")

    # ---- the form -> template and cells ---------------------------------------------------------------------------
    n_form = 3 + MAX_VARIABLES + 1 + 2 * MAX_VARIANTS + len(extra_components)
    form_inputs = ([template_dd, var_names, n_variants] + var_boxes + [models_dd] + name_boxes + text_boxes
                   + extra_components)

    def read_form(values, owner: str | None = None) -> tuple[Template, dict, dict, list[str], list[str]]:
        name, names, n = values[0], values[1], values[2]
        var_values = values[3:3 + MAX_VARIABLES]
        models = values[3 + MAX_VARIABLES]
        rest = values[4 + MAX_VARIABLES:]
        variant_names, variant_texts = rest[:MAX_VARIANTS][:n], rest[MAX_VARIANTS:2 * MAX_VARIANTS][:n]
        extras = dict(zip(extra_names, rest[2 * MAX_VARIANTS:]))
        variants = {}
        for index, (vname, vtext) in enumerate(zip(variant_names, variant_texts)):
            vname = (vname or "").strip() or f"variant-{index + 1}"
            if vname in variants:
                raise InvalidInput("variants", f"two variants are named {vname!r}; give each a different name")
            variants[vname] = vtext or ""
        if not variants:
            raise InvalidInput("variants", "add at least one variant")
        base = services.library_for(owner).get(name) if name else None
        texts = list(variants.values()) + [v for v in extras.values() if v]
        warnings, blanks = blank_values(base, names, var_values, texts)
        blanks += [n for n in used_variables(texts) if n not in names and n not in blanks]   # no box yet
        if blanks:
            raise InvalidInput("variables", f"{', '.join(blanks)} {'is' if len(blanks) == 1 else 'are'} blank and "
                               "a variant uses it with no default; type a value in its box")
        edited = edited_template(base, modality, variants, names, extras)
        values_by_name = {n_: parse_values(v or "") or [""] for n_, v in zip(names, var_values)}
        return edited, values_by_name, variants, [m for m in (models or []) if m], warnings

    def sync_variables(request: gr.Request, template_name, names, *values):
        """Variables typed into a variant get an input box; a blank one a variant needs gets a warning."""
        boxes, texts = list(values[:MAX_VARIABLES]), list(values[MAX_VARIABLES:])
        library = services.library_for(services.visitors.owner(request))
        base = library.templates.get(template_name) if template_name else None
        template_vars = [n for n in names if base is not None and n in base.variables]
        wanted = form_variables(template_vars, texts, MAX_VARIABLES)
        current = dict(zip(names, boxes))
        updates = []
        for i in range(MAX_VARIABLES):
            if i < len(wanted):
                name = wanted[i]
                new = name not in current
                updates.append(gr.update(visible=True, label=name, value=current.get(name, ""),
                                         **({"info": "Used in a variant: type a value (one per line for several)",
                                             "placeholder": f"value for {name}"} if new else {})))
            else:
                updates.append(gr.update(visible=False, value=""))
        values_now = [current.get(n, "") for n in wanted]
        warnings, blanks = blank_values(base, wanted, values_now, texts)
        notes = [f"⚠️ **{b}** is blank: type a value, or the prompt will not render" for b in blanks]
        notes += [f"ℹ️ {w}" for w in warnings]
        return [wanted] + updates + ["\n\n".join(notes)]

    def preview(request: gr.Request, *values):
        try:
            template, values_by_name, variants, _, _ = read_form(list(values), services.visitors.owner(request))
            cells = expand(template, values={k: v[:1] for k, v in values_by_name.items()},
                           max_cells=services.settings.max_cells)
        except (InvalidInput, TemplateError) as error:
            return f"⚠️ {error}"
        lines = []
        for cell in cells:
            lines.append(f"**{cell.variant}**\n```text\n{cell.prompt}\n```")
            if cell.system:
                lines.append(f"system: `{cell.system}`")
            if cell.negative_prompt:
                lines.append(f"negative: `{cell.negative_prompt}`")
        return "\n\n".join(lines)

    for box in var_boxes + text_boxes + name_boxes + extra_components:
        box.blur(preview, form_inputs, preview_md, api_visibility="private", queue=False)
    template_dd.change(preview, form_inputs, preview_md, api_visibility="private", queue=False)
    for box in text_boxes + var_boxes + extra_components:
        box.blur(sync_variables, [template_dd, var_names] + var_boxes + text_boxes + extra_components,
                 [var_names] + var_boxes + [vars_md], api_visibility="private", queue=False)

    # ---- run ------------------------------------------------------------------------------------------------------
    def randomize():
        return ", ".join(str(random.randrange(2**31)) for _ in range(3))

    randomize_btn.click(randomize, None, seeds_box, api_visibility="private", queue=False)

    def model_defaults(models):
        """Switching models applies what the new one needs (e.g. 2 steps and no guidance for turbo models)."""
        needed = preset_params(models[0], modality) if models else {}
        return [gr.update(value=needed[n]) if n in needed else gr.update() for n in param_names]

    models_dd.input(model_defaults, models_dd, param_components, api_visibility="private", queue=False)

    boundary = at_boundary(services.settings.data_dir)

    @boundary
    def run(request: gr.Request, *values):
        started = time.perf_counter()
        key = _page_key(request)
        values = list(values)
        form, seeds_raw, rerun = values[:n_form], values[n_form], values[n_form + 1]
        param_values = dict(zip(param_names, values[n_form + 2:n_form + 2 + len(param_names)]))
        remembered, checks_text = values[-1] or {}, values[-2] or ""
        template, values_by_name, variants, models, warnings = read_form(form, services.visitors.owner(request))
        try:
            checks = parse_check_args([line for line in checks_text.splitlines() if line.strip()], modality)
        except CheckError as error:
            raise InvalidInput("checks", str(error)) from None
        spec = build_spec(template, modality=modality, values=values_by_name, models=models,
                          seeds=parse_seeds(seeds_raw), params=param_values, max_cells=services.settings.max_cells,
                          rerun=bool(rerun), checks=checks)
        services.runner.check(spec)
        for warning in warnings:
            gr.Warning(warning)
        # The browser keeps the form that produced these results, so a reload shows both together.
        n = form[2]
        names = form[1]
        saved = remembered_form(form[0], names, form[3:3 + len(names)], list(zip(
            form[4 + MAX_VARIABLES:4 + MAX_VARIABLES + n], form[4 + MAX_VARIABLES + MAX_VARIANTS:
                                                               4 + MAX_VARIABLES + MAX_VARIANTS + n])),
            form[3 + MAX_VARIABLES], seeds_raw, dict(zip(extra_names, form[4 + MAX_VARIABLES + 2 * MAX_VARIANTS:])))
        remembered = {**remembered, "forms": {**(remembered.get("forms") or {}), modality: saved}}
        with _cancel_flag(cancel_events, key) as cancel:
            yield from stream_grid(services, modality, spec, cancel, remembered, started=started,
                                   owner=services.visitors.owner(request))

    def stop(request: gr.Request):
        stop_run(cancel_events, _page_key(request))

    run_inputs = form_inputs + [seeds_box, rerun_cb] + param_components + [checks_box, browser_state]
    run_outputs = [grid_html, run_state, browser_state]
    run_btn.click(run, run_inputs, run_outputs, api_visibility="private", show_progress="minimal",
                  concurrency_id=MODEL_QUEUE, concurrency_limit=services.settings.comparisons_at_once)
    stop_btn.click(stop, None, None, api_visibility="private", queue=False)

    @boundary
    def rerun_cell(state, remembered, event: gr.EventData, request: gr.Request):
        key = _page_key(request)
        data = getattr(event, "_data", None) or {}
        if not state or "index" not in data:
            raise gr.Error("Run a comparison first")
        spec: ComparisonSpec = state["spec"]
        index = int(data["index"])
        cell: Cell = spec.cells[index]
        new_cell = replace(cell, seed=random.randrange(2**31) if data.get("new_seed") else cell.seed)
        parent = f" of #{state['comparison_id']}" if state.get("comparison_id") else ""
        single = replace(spec, cells=[new_cell], rerun=True, title=f"re-run{parent}: {new_cell.label}")
        views = state["views"]
        # The re-run replaces its cell in place; the row keeps its label and the cell says what changed.
        badge = f"re-run · seed {new_cell.seed}"
        # Logged into its own comparison: History shows one comparison with the re-run cell beside the first.
        with _cancel_flag(cancel_events, key) as cancel:
            for _, inner, _ in stream_grid(services, modality, single, cancel, remembered, remember=False,
                                           owner=services.visitors.owner(request), into=state.get("comparison_id")):
                fresh = inner["views"][0]
                fresh.index, fresh.row, fresh.col = index, cell.row, cell.col
                fresh.row_label, fresh.badge = views[index].row_label, badge
                views[index] = fresh
                yield grid.render_grid(views, modality, comparison_id=state["comparison_id"]), state, remembered
        spec.cells[index] = new_cell       # a later "same seed" re-run of this cell repeats this one

    grid_html.rerun(rerun_cell, [run_state, browser_state], run_outputs, api_visibility="private",
                    concurrency_id=MODEL_QUEUE, show_progress="hidden")

    # ---- save as a user template ----------------------------------------------------------------------------------
    def save(request: gr.Request, name, overwrite, *values):
        owner = services.visitors.owner(request)
        try:
            template, _, _, _, _ = read_form(list(values), owner)
            saved = with_changes(template, name=(name or "").strip(), modality=modality)
            services.libraries.save(saved, owner, overwrite=bool(overwrite))
        except (InvalidInput, TemplateError) as error:
            taken = "already have a template named" in str(error)
            return (f"⚠️ {error}" + (" — tick *Replace my template of the same name* and save again." if taken
                                     else ""), gr.update(), gr.update(visible=True) if taken else gr.update())
        return (f"Saved **{saved.name}** to your templates{' (replaced the old one)' if overwrite else ''}.",
                gr.update(choices=_template_choices(services, modality, owner), value=saved.name),
                gr.update(visible=False, value=False))

    save_btn.click(save, [save_name, overwrite_cb] + form_inputs, [save_status, template_dd, overwrite_cb],
                   api_visibility="private")

    def refresh(owner: str | None = None):
        return gr.update(choices=_template_choices(services, modality, owner))

    # ---- page reload: the form that produced the remembered results ---------------------------------------------
    restore_outputs = [template_dd, models_dd, seeds_box] + template_outputs

    def restore(form: dict | None, owner: str | None = None):
        default_models = [services.catalog.default_model(modality)]
        name = (form or {}).get("template")
        library = services.library_for(owner)
        if not isinstance(form, dict) or name not in library.templates:
            # The form was built filled; only the template's parameters are applied (the controls start generic).
            params_only = load_template(first.name, default_models)[-len(param_components):] if first and \
                param_components else []
            return [refresh(owner)] + [gr.update()] * (len(restore_outputs) - 1 - len(params_only)) + params_only
        models = [m for m in form.get("models") or [] if isinstance(m, str)] or default_models
        updates = load_template(name, models)
        updates = apply_remembered(updates, form, library.templates[name], MAX_VARIABLES, MAX_VARIANTS,
                                   extra_names)
        return [gr.update(choices=_template_choices(services, modality, owner), value=name), models,
                str(form.get("seeds") or "1")] + updates

    # Results come into view as soon as Run is pressed.
    run_btn.click(None, None, None, js=f"() => document.getElementById('{modality}-grid')"
                  "?.scrollIntoView({behavior: 'smooth', block: 'start'})")

    return CompareTab(modality=modality, template=template_dd, refresh=refresh, fill=load_template,
                      fill_outputs=template_outputs, grid_html=grid_html, run_state=run_state, restore=restore,
                      restore_outputs=restore_outputs, open_template=open_template)
