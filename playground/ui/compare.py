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

from ..backends.base import InvalidInput
from ..backends.catalog import preset_params
from ..runner import Cell, ComparisonSpec, build_spec
from ..services import Services
from ..templates import TemplateError, Template, expand, make_template, parse_values, save_user_template
from . import grid

MAX_VARIANTS = 8
MAX_VARIABLES = 6
DEFAULT_TEMPLATE = {"text": "product-tagline", "image": "style-words", "music": "genre-shift"}
MODEL_QUEUE = "models"     # one shared queue for all model work: one CPU/GPU, one generation at a time
_STREAM_EVERY_S = 0.25


@dataclass
class CompareTab:
    modality: str
    template: gr.Dropdown
    refresh: Callable[[], dict]      # new template choices after the library changed
    fill: Callable                   # template name -> updates for fill_outputs
    fill_outputs: list
    grid_html: gr.HTML
    run_state: gr.State


def _template_choices(services: Services, modality: str) -> list[tuple[str, str]]:
    templates = services.library.by_modality(modality)
    return [(f"{t.name}{' (mine)' if t.source == 'user' else ''} — {', '.join(t.techniques)}", t.name)
            for t in templates]


def _model_choices(services: Services, modality: str) -> list[tuple[str, str]]:
    return [(f"{p.label} · {p.id}" if not p.tiny else p.label, p.id) for p in services.catalog.presets(modality)]


def _parse_seeds(raw: str) -> list[int]:
    seeds = []
    for part in str(raw or "").replace(";", ",").replace(" ", ",").split(","):
        if not part.strip():
            continue
        try:
            seed = int(part)
        except ValueError:
            raise InvalidInput("seeds", f"{part!r} is not a whole number; write seeds like 1, 2, 3") from None
        if not 0 <= seed < 2**32:
            raise InvalidInput("seeds", f"{seed} is out of range; seeds go from 0 to {2**32 - 1}")
        seeds.append(seed)
    if not seeds:
        raise InvalidInput("seeds", "give at least one seed, e.g. 1 or 1, 2, 3")
    return seeds


def build_compare_tab(modality: str, services: Services, make_params: Callable[[], dict[str, gr.Component]],
                      browser_state: gr.BrowserState, prompt_boxes: tuple[str, ...] = ()) -> CompareTab:
    """Lay out one modality tab. `make_params` builds the parameter controls (name -> component) in place;
    `prompt_boxes` names the extra prompt fields this modality has ("system" for text, "negative_prompt" for image)."""
    templates = {t.name: t for t in services.library.by_modality(modality)}
    first = templates.get(DEFAULT_TEMPLATE[modality]) or next(iter(templates.values()), None)
    cancel_events: dict[str, threading.Event] = {}

    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280, elem_classes="pp-side"):
            template_dd = gr.Dropdown(_template_choices(services, modality), value=first.name if first else None,
                                      label="Template", info="From the library; edit the variants freely",
                                      elem_id=f"{modality}-template")
            template_md = gr.Markdown(elem_classes="pp-template-info")
            var_names = gr.State([])
            var_boxes = [gr.Textbox(visible=False, lines=1, max_lines=6, elem_id=f"{modality}-var-{i}",
                                    info="Several values: one per line") for i in range(MAX_VARIABLES)]
            models_dd = gr.Dropdown(_model_choices(services, modality),
                                    value=[services.catalog.default_model(modality)], multiselect=True,
                                    allow_custom_value=True, label="Models",
                                    info="A preset, or type a hub id (owner/name) or a local folder",
                                    elem_id=f"{modality}-models")
            with gr.Row():
                seeds_box = gr.Textbox("1", label="Seeds", info="e.g. 1, 2, 3 to see sampling noise",
                                       scale=3, elem_id=f"{modality}-seeds")
                randomize_btn = gr.Button("Random", scale=0, min_width=80, size="sm",
                                          elem_id=f"{modality}-randomize")
            with gr.Accordion("Parameters", open=False):
                params = make_params()
                rerun_cb = gr.Checkbox(False, label="Ignore cached results (generate again)")
        with gr.Column(scale=3, min_width=320):
            extra_boxes = {}
            if "system" in prompt_boxes:
                extra_boxes["system"] = gr.Textbox(label="System prompt", lines=1, max_lines=4,
                                                   elem_id=f"{modality}-system")
            n_variants = gr.State(0)
            name_boxes, text_boxes, columns, dup_btns, del_btns = [], [], [], [], []
            with gr.Row(elem_classes="pp-variants"):
                for i in range(MAX_VARIANTS):
                    with gr.Column(visible=False, min_width=200, elem_classes="pp-variant") as column:
                        name_boxes.append(gr.Textbox(show_label=False, placeholder="variant name", max_lines=1,
                                                     elem_id=f"{modality}-variant-name-{i}", container=False))
                        text_boxes.append(gr.Textbox(show_label=False, lines=4, max_lines=12,
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
                save_status = gr.Markdown()
    grid_html = gr.HTML(grid.render_grid([], modality), js_on_load=grid.GRID_JS,
                        server_functions=grid.server_functions(services.log), elem_id=f"{modality}-grid",
                        elem_classes="pp-results")
    run_state = gr.State(None)     # {"spec": ComparisonSpec, "views": [...], "comparison_id": int}

    param_names = list(params)
    param_components = [params[n] for n in param_names]
    extra_names = list(extra_boxes)
    extra_components = [extra_boxes[n] for n in extra_names]

    # ---- template -> form ---------------------------------------------------------------------------------------
    def load_template(name, models=None):
        try:
            template = services.library.get(name)
        except TemplateError as error:
            gr.Warning(str(error))
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
        info = (f"**{template.description}**\n\nTechnique: {', '.join(template.techniques) or '—'}"
                + (f"\n\n<details><summary>What to look for</summary>\n\n{template.notes}\n</details>"
                   if template.notes.strip() else ""))
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
    template_dd.change(load_template, [template_dd, models_dd], template_outputs, api_visibility="private")

    # ---- variant editor -------------------------------------------------------------------------------------------
    def edit_variants(action: str, slot: int):
        def handler(n, *values):
            names, texts = list(values[:MAX_VARIANTS]), list(values[MAX_VARIANTS:])
            names, texts = names[:n], texts[:n]
            if action == "duplicate":
                if n >= MAX_VARIANTS:
                    gr.Warning(f"At most {MAX_VARIANTS} variants side by side")
                else:
                    names.insert(slot + 1, _fresh_name(names[slot] or "variant", names))
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

    def read_form(values) -> tuple[Template, dict, dict, list[str]]:
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
        base = services.library.get(name) if name else None
        edited = _edited_template(base, modality, variants, names, extras)
        values_by_name = {n_: parse_values(v or "") or [""] for n_, v in zip(names, var_values)}
        return edited, values_by_name, variants, [m for m in (models or []) if m]

    def preview(*values):
        try:
            template, values_by_name, variants, _ = read_form(list(values))
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

    # ---- run ------------------------------------------------------------------------------------------------------
    def randomize():
        return ", ".join(str(random.randrange(2**31)) for _ in range(3))

    randomize_btn.click(randomize, None, seeds_box, api_visibility="private", queue=False)

    def model_defaults(models):
        """Switching models applies what the new one needs (e.g. 2 steps and no guidance for turbo models)."""
        needed = preset_params(models[0], modality) if models else {}
        return [gr.update(value=needed[n]) if n in needed else gr.update() for n in param_names]

    models_dd.input(model_defaults, models_dd, param_components, api_visibility="private", queue=False)

    def run(*values, request: gr.Request):
        key = _page_key(request)
        values = list(values)
        form, seeds_raw, rerun = values[:n_form], values[n_form], values[n_form + 1]
        param_values = dict(zip(param_names, values[n_form + 2:n_form + 2 + len(param_names)]))
        remembered = values[-1] or {}
        try:
            template, values_by_name, variants, models = read_form(form)
            spec = build_spec(template, modality=modality, values=values_by_name, models=models,
                              seeds=_parse_seeds(seeds_raw), params=param_values,
                              max_cells=services.settings.max_cells, rerun=bool(rerun))
            services.runner.check(spec)
        except (InvalidInput, TemplateError) as error:
            raise gr.Error(str(error), title="Fix the input") from None
        yield from _stream(services, modality, spec, _cancel_flag(cancel_events, key), remembered)

    def stop(request: gr.Request):
        _cancel_flag(cancel_events, _page_key(request), fresh=False).set()

    run_inputs = form_inputs + [seeds_box, rerun_cb] + param_components + [browser_state]
    run_outputs = [grid_html, run_state, browser_state]
    run_btn.click(run, run_inputs, run_outputs, api_visibility="private", show_progress="minimal",
                  concurrency_id=MODEL_QUEUE, concurrency_limit=services.settings.concurrency)
    stop_btn.click(stop, None, None, api_visibility="private", queue=False)

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
        for _, inner, _ in _stream(services, modality, single, _cancel_flag(cancel_events, key), remembered,
                                   remember=False):
            fresh = inner["views"][0]
            fresh.index, fresh.row, fresh.col = index, cell.row, cell.col
            fresh.row_label, fresh.badge = views[index].row_label, badge
            views[index] = fresh
            yield grid.render_grid(views, modality, comparison_id=state["comparison_id"]), state, remembered
        spec.cells[index] = new_cell       # a later "same seed" re-run of this cell repeats this one

    grid_html.rerun(rerun_cell, [run_state, browser_state], run_outputs, api_visibility="private",
                    concurrency_id=MODEL_QUEUE, show_progress="hidden")

    # ---- save as a user template ----------------------------------------------------------------------------------
    def save(name, *values):
        try:
            template, _, _, _ = read_form(list(values))
            saved = replace(make_template(name=(name or "").strip(), modality=modality,
                                          variants=template.variants,
                                          variables={k: v.default for k, v in template.variables.items()},
                                          params=template.params, system=template.system,
                                          negative_prompt=template.negative_prompt,
                                          description=template.description, techniques=template.techniques))
            path = save_user_template(saved, services.settings.user_templates_dir, services.library)
        except (InvalidInput, TemplateError) as error:
            return f"⚠️ {error}", gr.update()
        services.reload_library()
        return (f"Saved **{saved.name}** to `{path}`",
                gr.update(choices=_template_choices(services, modality), value=saved.name))

    save_btn.click(save, [save_name] + form_inputs, [save_status, template_dd], api_visibility="private")

    def refresh():
        return gr.update(choices=_template_choices(services, modality))

    return CompareTab(modality=modality, template=template_dd, refresh=refresh, fill=load_template,
                      fill_outputs=template_outputs, grid_html=grid_html, run_state=run_state)


def _fresh_name(base: str, taken: list[str]) -> str:
    for n in range(2, 100):
        candidate = f"{base}-{n}"
        if candidate not in taken:
            return candidate
    return f"{base}-{len(taken) + 1}"


def _edited_template(base: Template | None, modality: str, variants: dict, names: list[str], extras: dict) -> Template:
    """The template exactly as run: the library one when untouched, else an edited copy with its own hash."""
    changes = {"variants": variants, **{k: (v or None) for k, v in extras.items()}}
    if base is not None and all(getattr(base, k) == v for k, v in changes.items()):
        return base
    variables = {n: base.variables[n] for n in names} if base else {}
    return make_template(name=base.name if base else "ad-hoc", modality=modality, variants=variants,
                         variables=variables, params=base.params if base else {},
                         system=changes.get("system", base.system if base else None),
                         negative_prompt=changes.get("negative_prompt", base.negative_prompt if base else None),
                         description=base.description if base else "", techniques=base.techniques if base else ())


def _page_key(request: gr.Request | None) -> str:
    """One key per open page (Gradio's session hash): Stop cancels that page's run only."""
    return getattr(request, "session_hash", None) or "api"


def _cancel_flag(flags: dict, key: str | None, fresh: bool = True) -> threading.Event:
    """The cancel flag of one page: a run starts a fresh one, Stop sets the current one."""
    key = key or "api"
    if fresh or key not in flags:
        flags[key] = threading.Event()
    return flags[key]


def _stream(services: Services, modality: str, spec: ComparisonSpec, cancel: threading.Event, remembered: dict,
            remember: bool = True, cell_reruns: bool = True):
    """Run the spec, yielding (grid html, run state, browser state) as cells finish and text streams in."""
    views = grid.views_for_cells(spec.cells)
    state = {"spec": spec, "views": views, "comparison_id": None}
    last = 0.0
    comparison_id = None
    done = 0
    started = time.perf_counter()
    for progress in services.runner.run(spec, cancel=cancel):
        comparison_id = state["comparison_id"] = progress.comparison_id
        if progress.result is not None:
            done = progress.done
            grid.apply_record(views[progress.result.index], progress.result.record, services.log)
        for index, text in progress.partial.items():
            views[index].status, views[index].text = "running", text
        if progress.step:
            for view in views:
                if view.status == "pending" and view.run_id is None and progress.step[0] < progress.step[1]:
                    view.status = "running"
        now = time.perf_counter()
        if progress.result is None and now - last < _STREAM_EVERY_S:
            continue
        last = now
        message = f"{now - started:.1f} s"
        yield (grid.render_grid(views, modality, done=done, total=len(views), comparison_id=comparison_id,
                                message=message, cell_reruns=cell_reruns), state, remembered)
    for view in views:
        if view.status in ("pending", "running") and view.run_id is None:
            view.status = "cancelled"
            view.text = None
    if remember and comparison_id:
        remembered = {**(remembered or {}), modality: comparison_id}
    stopped = cancel.is_set()
    message = (f"stopped after {time.perf_counter() - started:.1f} s" if stopped
               else f"done in {time.perf_counter() - started:.1f} s")
    yield (grid.render_grid(views, modality, done=done, total=len(views), comparison_id=comparison_id,
                            message=message, cell_reruns=cell_reruns), state, remembered)
