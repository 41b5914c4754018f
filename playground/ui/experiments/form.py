"""The New experiment form laid out: template and its variants -> dataset (a file, pasted rows, a Hugging Face id, or
one added before) and its preview -> columns mapped to variables, the reference column -> which rows -> models,
seeds, checks, parameters -> the dry run -> Run. Every component is a named field of NewForm."""

from __future__ import annotations

import os
from dataclasses import dataclass

import gradio as gr

from ...services import Services
from ...spec import merged_params
from ..views import template_info_html

SOURCES = ("Upload a file", "Paste rows", "Hugging Face dataset", "Added before")
ROWS = ("all rows", "first N", "random N", "a range", "where a column holds a value")
FILE_TYPES = [".csv", ".tsv", ".jsonl", ".json", ".parquet"]
NO_COLUMN = ("(none)", "")
ZERO_GPU_NOTE = ("**On this Space, local models run on ZeroGPU**, which lends a GPU only while a page asks for it: "
                 "an experiment with a local model runs with **Run on this page**, in chunks while this page stays "
                 "open (closing it pauses the experiment; the same button continues it). Pick a remote model "
                 "(`openai:...`, `hf:...`) to run it on the server with **Run**.")


@dataclass
class NewForm:
    template: gr.Dropdown
    info: gr.HTML
    variants: gr.CheckboxGroup
    source: gr.Radio
    upload_box: gr.Column
    upload: gr.File
    paste_box: gr.Column
    pasted: gr.Textbox
    paste_add: gr.Button
    hub_box: gr.Column
    hub_id: gr.Textbox
    hub_config: gr.Textbox
    hub_split: gr.Textbox
    hub_add: gr.Button
    previous_box: gr.Column
    previous: gr.Dropdown
    dataset_name: gr.Textbox
    preview: gr.HTML
    dataset: gr.State                    # the chosen dataset's version
    var_names: gr.State                  # the variables behind the mapping dropdowns, in order
    mapping: list[gr.Dropdown]
    expected: gr.Dropdown
    rows: gr.Radio
    count: gr.Number
    sample_seed: gr.Number
    start: gr.Number
    stop: gr.Number
    where_column: gr.Dropdown
    where_value: gr.Textbox
    split: gr.Textbox
    models: gr.Dropdown
    seeds: gr.Textbox
    checks: gr.Textbox
    params: gr.Textbox
    title: gr.Textbox
    estimate: gr.Button
    run: gr.Button
    run_here: gr.Button                  # ZeroGPU: the experiment runs from this page's request, chunk by chunk
    plan: gr.HTML                        # the dry run, or what to change
    estimated: gr.State                  # the key of the spec whose dry run was shown last
    started: gr.State                    # the experiment Run started (or found) last

    def spec_inputs(self) -> set:
        """What an experiment is read from."""
        return {self.template, self.variants, self.dataset, self.var_names, *self.mapping, self.expected, self.rows,
                self.count, self.sample_seed, self.start, self.stop, self.where_column, self.where_value,
                self.split, self.models, self.seeds, self.checks, self.params, self.title}

    def dataset_outputs(self) -> list:
        """What choosing a dataset changes."""
        return [self.dataset, self.preview, self.previous, *self.mapping, self.expected, self.where_column,
                self.plan, self.estimated]

    def template_outputs(self) -> list:
        return [self.info, self.variants, self.var_names, *self.mapping, self.models, self.checks, self.params,
                self.plan, self.estimated]


def template_choices(services: Services) -> list[tuple[str, str]]:
    return [(f"{t.name} · {t.modality}{' (mine)' if t.source == 'user' else ''}", t.name)
            for t in sorted(services.library.templates.values(), key=lambda t: (t.modality, t.name))]


def lay_out_new(services: Services) -> NewForm:
    settings = services.settings
    library = services.library.templates
    first = library.get("product-tagline") or next(iter(library.values()), None)
    fields: dict = {}
    if os.environ.get("SPACES_ZERO_GPU"):
        gr.Markdown(ZERO_GPU_NOTE, elem_classes="pp-banner", elem_id="exp-zerogpu")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280):
            gr.Markdown("#### 1 · Template")
            fields["template"] = gr.Dropdown(template_choices(services), value=first.name if first else None,
                                             label="Template", elem_id="exp-template")
            fields["info"] = gr.HTML(template_info_html(first) if first else "",
                                     elem_classes=["pp-template-info", "pp-md"])
            names = list(first.variants) if first else []
            fields["variants"] = gr.CheckboxGroup(names, value=names, label="Variants to include",
                                                  elem_id="exp-variants")
        with gr.Column(scale=2, min_width=300):
            gr.Markdown("#### 2 · Dataset")
            fields |= _dataset(services)
    gr.Markdown("#### 3 · Columns and rows")
    fields |= _columns(settings.max_variables)
    gr.Markdown("#### 4 · Models, seeds and checks")
    fields |= _run_options(services, first)
    return NewForm(**fields)


def _dataset(services: Services) -> dict:
    source = gr.Radio(list(SOURCES), value=SOURCES[0], label="Rows from", elem_id="exp-source")
    with gr.Column(visible=True) as upload_box:
        upload = gr.File(label="A .csv, .tsv, .jsonl, .json or .parquet file", file_types=FILE_TYPES,
                         type="filepath", elem_id="exp-upload")
    with gr.Column(visible=False) as paste_box:
        pasted = gr.Textbox(label="Rows", lines=6, max_lines=20, elem_id="exp-pasted",
                            placeholder="product,expected\na solar lantern,lantern\na kettle,kettle",
                            info="CSV with a header line, tab-separated, JSON lines or a JSON list of objects")
        paste_add = gr.Button("Add these rows", elem_id="exp-paste-add")
    with gr.Column(visible=False) as hub_box:
        with gr.Row():
            hub_id = gr.Textbox(label="Dataset id", placeholder="owner/name", min_width=160, elem_id="exp-hub-id")
            hub_config = gr.Textbox(label="Config", placeholder="(default)", min_width=100, elem_id="exp-hub-config")
            hub_split = gr.Textbox(label="Split", placeholder="train", min_width=100, elem_id="exp-hub-split")
        hub_add = gr.Button("Load", elem_id="exp-hub-add")
    with gr.Column(visible=False) as previous_box:
        previous = gr.Dropdown([], label="A dataset added before", elem_id="exp-previous")
    dataset_name = gr.Textbox(label="Name (optional)", placeholder="e.g. support-tickets", max_lines=1,
                              elem_id="exp-dataset-name")
    preview = gr.HTML('<div class="pp-empty">Add a dataset to see its columns and first rows.</div>',
                      elem_id="exp-preview", elem_classes="pp-results")
    return dict(source=source, upload_box=upload_box, upload=upload, paste_box=paste_box, pasted=pasted,
                paste_add=paste_add, hub_box=hub_box, hub_id=hub_id, hub_config=hub_config, hub_split=hub_split,
                hub_add=hub_add, previous_box=previous_box, previous=previous, dataset_name=dataset_name,
                preview=preview, dataset=gr.State(None))


def _columns(max_variables: int) -> dict:
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=260):
            mapping = [gr.Dropdown([], label=f"variable {i}", visible=False, elem_id=f"exp-map-{i}",
                                   info="the column that fills it") for i in range(max_variables)]
            expected = gr.Dropdown([NO_COLUMN], value="", label="Expected answer (reference) column",
                                   elem_id="exp-expected",
                                   info="checks such as equals, contains and similarity compare against it")
        with gr.Column(scale=1, min_width=260):
            rows = gr.Radio(list(ROWS), value=ROWS[0], label="Rows", elem_id="exp-rows")
            # One row of sample fields; only those the chosen kind of sample needs are shown (CSS hides it empty).
            with gr.Row(elem_classes="pp-sample-fields"):
                count = gr.Number(20, label="N", precision=0, minimum=1, visible=False, min_width=90,
                                  elem_id="exp-count")
                sample_seed = gr.Number(0, label="Random seed", precision=0, minimum=0, visible=False,
                                        min_width=90, elem_id="exp-sample-seed")
                start = gr.Number(0, label="From row", precision=0, minimum=0, visible=False, min_width=90,
                                  elem_id="exp-start")
                stop = gr.Number(100, label="To row (excluded)", precision=0, minimum=1, visible=False,
                                 min_width=90, elem_id="exp-stop")
                where_column = gr.Dropdown([], label="Column", visible=False, min_width=120,
                                           elem_id="exp-where-column")
                where_value = gr.Textbox(label="holds", visible=False, min_width=120, elem_id="exp-where-value")
            split = gr.Textbox(label="Split (optional)", placeholder="e.g. dev", max_lines=1, elem_id="exp-split",
                               info="rows whose split column holds it; without one, half dev and half test by hash")
    return dict(var_names=gr.State([]), mapping=mapping, expected=expected, rows=rows, count=count,
                sample_seed=sample_seed, start=start, stop=stop, where_column=where_column,
                where_value=where_value, split=split)


def _run_options(services: Services, first) -> dict:
    modality = first.modality if first else "text"
    with gr.Row(equal_height=False):
        models = gr.Dropdown(services.catalog.model_choices(modality), value=[services.catalog.default_model(modality)],
                             multiselect=True, allow_custom_value=True, label="Models", min_width=220,
                             elem_id="exp-models", info="a preset, a hub id, or a remote model (openai:<model>, ...)")
        seeds = gr.Textbox("1", label="Seeds", min_width=120, elem_id="exp-seeds",
                           info="each a repeat of every cell, e.g. 1, 2")
        checks = gr.Textbox(label="Checks", lines=2, max_lines=8, min_width=220, elem_id="exp-checks",
                            placeholder="contains\nlength:unit=words",
                            info="one per line; with an expected column, equals / contains / similarity read it; "
                                 "image_match / audio_match compare with an image or audio column")
    with gr.Row(equal_height=False):
        start = merged_params(first, [services.catalog.default_model(modality)], None) if first else {}
        params = gr.Textbox(_params_text(start), label="Parameters", lines=2, max_lines=8,
                            min_width=220, elem_id="exp-params", info="name = value, one per line")
        title = gr.Textbox(label="Title (optional)", max_lines=1, min_width=220, elem_id="exp-title")
    with gr.Row():
        estimate = gr.Button("Estimate (dry run)", elem_id="exp-estimate")
        run = gr.Button("Run", variant="primary", elem_id="exp-run")
        run_here = gr.Button("Run on this page", visible=bool(os.environ.get("SPACES_ZERO_GPU")),
                             elem_id="exp-run-here")
    plan = gr.HTML(elem_id="exp-plan", elem_classes="pp-md")
    return dict(models=models, seeds=seeds, checks=checks, params=params, title=title, estimate=estimate, run=run,
                run_here=run_here, plan=plan, estimated=gr.State(None), started=gr.State(None))


def _params_text(params: dict) -> str:
    return "\n".join(f"{name} = {value}" for name, value in params.items())
