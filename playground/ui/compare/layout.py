"""The comparison form laid out: template picker -> variables -> variants side by side -> model, parameters, seeds
-> Run -> results grid. Every component is a named field of CompareForm; handlers read and update them by name."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from ...registry import MODALITIES
from ...services import Services
from ...templates import Template
from .. import grid
from ..params import param_controls
from ..views import template_choices, template_info_html

# Shown greyed and in italics when the box is empty; "e.g." so that it never reads as a check already set.
CHECK_EXAMPLES = {"text": "e.g. length:unit=words or contains=lantern", "image": "e.g. clip",
                  "music": "e.g. clap or loudness"}
DEFAULT_TEMPLATE = {"text": "product-tagline", "image": "style-words", "music": "genre-shift"}
ONE_PER_LINE = "Several values: one per line"


@dataclass
class VariantSlot:
    """One variant card: its name and prompt, and the buttons that copy or remove it."""

    column: gr.Column
    name: gr.Textbox
    text: gr.Textbox
    duplicate: gr.Button
    remove: gr.Button


@dataclass
class CompareForm:
    modality: str
    template: gr.Dropdown
    info: gr.HTML
    var_names: gr.State                       # the names behind the variable boxes, in order
    variables: list[gr.Textbox]
    var_warning: gr.HTML
    models: gr.Dropdown
    seeds: gr.Textbox
    randomize: gr.Button
    checks: gr.Textbox
    params: dict[str, gr.components.Component]
    rerun: gr.Checkbox
    extras: dict[str, gr.Textbox]             # the modality's extra prompt fields: system, negative_prompt
    n_variants: gr.State
    slots: list[VariantSlot]
    preview: gr.HTML
    run: gr.Button
    stop: gr.Button
    save_name: gr.Textbox
    save: gr.Button
    overwrite: gr.Checkbox
    save_status: gr.HTML
    grid: gr.HTML = None
    run_state: gr.State = None                # {"spec": ComparisonSpec, "views": [...], "comparison_id": int}
    default: Template | None = field(default=None, repr=False)

    def prompt_inputs(self) -> set:
        """What the form's template and cells are read from."""
        return ({self.template, self.var_names, self.n_variants, self.models, *self.variables,
                 *self.extras.values()} | {s.name for s in self.slots} | {s.text for s in self.slots})

    def template_outputs(self) -> list:
        """What filling the form from a template changes."""
        return ([self.info, self.var_names, self.n_variants, *self.variables, *self.extras.values(),
                 *self.params.values()] + [c for s in self.slots for c in (s.name, s.text, s.column)])


def lay_out(modality: str, services: Services) -> CompareForm:
    """The tab's components; the form starts filled from the default template (nothing to wait for on load)."""
    templates = {t.name: t for t in services.library.by_modality(modality)}
    first = templates.get(DEFAULT_TEMPLATE[modality]) or next(iter(templates.values()), None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280, elem_classes="pp-side"):
            side = _side(modality, services, first)
        with gr.Column(scale=3, min_width=320):
            main = _main(modality, services, first)
    form = CompareForm(modality=modality, **side, **main, default=first)
    form.grid = gr.HTML(grid.render_grid([], modality), js_on_load=grid.GRID_JS,
                        server_functions=grid.server_functions(services.log, services.visitors),
                        elem_id=f"{modality}-grid", elem_classes="pp-results")
    form.run_state = gr.State(None)
    return form


def _side(modality: str, services: Services, first: Template | None) -> dict:
    settings = services.settings
    template = gr.Dropdown(template_choices(services, modality), value=first.name if first else None,
                           label="Template", info="From the library; edit the variants freely",
                           elem_id=f"{modality}-template")
    start = list(first.variables.values())[:settings.max_variables] if first else []
    info = gr.HTML(template_info_html(first) if first else "", elem_classes=["pp-template-info", "pp-md"])
    var_names = gr.State([v.name for v in start])
    variables = [gr.Textbox(start[i].default if i < len(start) else "", label=start[i].name if i < len(start) else None,
                            visible=i < len(start), lines=1, max_lines=6, elem_id=f"{modality}-var-{i}",
                            info=(start[i].description if i < len(start) else "") or ONE_PER_LINE)
                 for i in range(settings.max_variables)]
    var_warning = gr.HTML(elem_classes=["pp-var-warning", "pp-md"], elem_id=f"{modality}-var-warning")
    models = gr.Dropdown(services.catalog.model_choices(modality), value=[services.catalog.default_model(modality)],
                         multiselect=True, allow_custom_value=True, label="Models", elem_id=f"{modality}-models",
                         info="A preset, a hub id (owner/name), a local folder, or a remote model "
                              "(openai:<model>, <endpoint>:<model>, hf:<model id>)")
    with gr.Row():
        seeds = gr.Textbox("1", label="Seeds", info="e.g. 1, 2, 3 to see sampling noise", scale=3,
                           elem_id=f"{modality}-seeds")
        randomize = gr.Button("Random", scale=0, min_width=80, size="sm", elem_id=f"{modality}-randomize")
    checks = gr.Textbox(label="Checks", lines=1, max_lines=6, elem_id=f"{modality}-checks",
                        elem_classes="pp-checks",
                        placeholder=CHECK_EXAMPLES[modality],
                        info="One per line; scores every cell, and the summary under the grid says which variant "
                             "wins and how sure that is")
    with gr.Accordion("Parameters", open=False):
        params = param_controls(modality, settings, modality)
        rerun = gr.Checkbox(False, label="Ignore cached results (generate again)")
    return dict(template=template, info=info, var_names=var_names, variables=variables, var_warning=var_warning,
                models=models, seeds=seeds, randomize=randomize, checks=checks, params=params, rerun=rerun)


def _main(modality: str, services: Services, first: Template | None) -> dict:
    fields = MODALITIES[modality].prompt_fields
    extras = {}
    if "system" in fields:
        extras["system"] = gr.Textbox((first.system or "") if first else "", label="System prompt", lines=1,
                                      max_lines=4, elem_id=f"{modality}-system")
    start = list(first.variants.items())[:services.settings.max_variants] if first else []
    n_variants = gr.State(len(start))
    with gr.Row(elem_classes="pp-variants"):
        slots = [_variant_slot(modality, i, start[i] if i < len(start) else ("", ""), i < len(start))
                 for i in range(services.settings.max_variants)]
    if "negative_prompt" in fields:
        extras["negative_prompt"] = gr.Textbox(
            (first.negative_prompt or "") if first else "", label="Negative prompt", lines=1, max_lines=3,
            elem_id=f"{modality}-negative", info="What to steer away from (used when guidance > 1)")
    with gr.Accordion("Rendered prompts (first row)", open=False):
        preview = gr.HTML(elem_classes=["pp-preview", "pp-md"], elem_id=f"{modality}-preview")
    with gr.Row():
        run = gr.Button("Run comparison", variant="primary", scale=3, elem_id=f"{modality}-run")
        stop = gr.Button("Stop", variant="stop", scale=1, elem_id=f"{modality}-stop")
    with gr.Accordion("Save these variants to my templates", open=False):
        with gr.Row():
            save_name = gr.Textbox(label="Template name", placeholder="my-tagline-test", scale=3,
                                   elem_id=f"{modality}-save-name")
            save = gr.Button("Save", scale=1, elem_id=f"{modality}-save")
        overwrite = gr.Checkbox(False, label="Replace my template of the same name", visible=False,
                                elem_id=f"{modality}-save-overwrite")
        save_status = gr.HTML(elem_classes="pp-md", elem_id=f"{modality}-save-status")
    return dict(extras=extras, n_variants=n_variants, slots=slots, preview=preview, run=run, stop=stop,
                save_name=save_name, save=save, overwrite=overwrite, save_status=save_status)


def _variant_slot(modality: str, i: int, start: tuple[str, str], visible: bool) -> VariantSlot:
    with gr.Column(visible=visible, min_width=200, elem_classes="pp-variant") as column:
        name = gr.Textbox(start[0], show_label=False, placeholder="variant name", max_lines=1,
                          elem_id=f"{modality}-variant-name-{i}", container=False)
        text = gr.Textbox(start[1], show_label=False, lines=4, max_lines=12, placeholder="Prompt; use {{ variable }}",
                          elem_id=f"{modality}-variant-{i}", container=False)
        with gr.Row(elem_classes="pp-variant-tools"):
            duplicate = gr.Button("Duplicate", size="sm", min_width=0, elem_id=f"{modality}-dup-{i}")
            remove = gr.Button("Remove", size="sm", min_width=0, elem_id=f"{modality}-del-{i}")
    return VariantSlot(column, name, text, duplicate, remove)
