"""The Library tab: browse and read templates, preview them, open one in its tab, create, import and export."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ..services import Services
from ..templates import TemplateError, expand, template_to_text
from . import exports
from .compare import CompareTab
from .errors import at_boundary, scrub

ALL = "all"
HEADERS = ["name", "modality", "technique", "variants", "source", "description"]

NEW_TEMPLATE = """---
name: my-template
modality: text
description: What this template compares.
technique: [role]
variables:
  topic: {default: "solar lanterns", examples: ["tide pools"]}
params: {max_new_tokens: 60}
variants:
  plain: "Write one sentence about {{ topic }}."
  role: "You are a science teacher. Write one sentence about {{ topic }} for a curious ten-year-old."
---
Notes for whoever reads this template: what to look for when comparing the outputs.
"""


def template_rows(services: Services, modality: str = ALL, technique: str = ALL, query: str = "",
                  owner: str | None = None) -> list[list]:
    query = (query or "").strip().lower()
    rows = []
    for t in services.library_for(owner).templates.values():
        if modality != ALL and t.modality != modality:
            continue
        if technique not in (ALL, None, "") and technique not in t.techniques:
            continue
        haystack = " ".join([t.name, t.description, " ".join(t.techniques), t.notes]).lower()
        if query and query not in haystack:
            continue
        rows.append([t.name, t.modality, ", ".join(t.techniques), len(t.variants), t.source, t.description])
    return sorted(rows, key=lambda r: (r[1], r[0]))


def _techniques(services: Services) -> list[str]:
    return [ALL] + sorted({tech for t in services.library.templates.values() for tech in t.techniques})


def _errors_md(services: Services) -> str:
    errors = services.library.errors
    if not errors:
        return ""
    # File names only: the server's folders are nobody's business on a public deployment.
    lines = [f"- `{Path(e.path).name}`: {scrub(str(e.message), services.settings.data_dir)}" for e in errors]
    return "**Templates that did not load** (fix these files; the rest of the library works):\n" + "\n".join(lines)


def build_library_tab(services: Services, tabs: gr.Tabs, compare_tabs: dict[str, CompareTab]):
    with gr.Row():
        modality_dd = gr.Dropdown([ALL, "text", "image", "music"], value=ALL, label="Modality", scale=1,
                                  elem_id="library-modality")
        technique_dd = gr.Dropdown(_techniques(services), value=ALL, label="Technique", scale=1,
                                   elem_id="library-technique")
        query_box = gr.Textbox(label="Search", placeholder="name, description, notes", scale=2,
                               elem_id="library-query")
    table = gr.Dataframe(template_rows(services), headers=HEADERS, interactive=False, max_height=360, wrap=True,
                         column_widths=["20%", "9%", "15%", "8%", "8%", "40%"],
                         label="Templates (click one to read it)", elem_id="library-table")
    errors_md = gr.Markdown(_errors_md(services), elem_id="library-errors")
    selected = gr.State(None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            empty_md = gr.Markdown("**Click a template in the table** to read its file here, see its prompts "
                                   "rendered, open it in its tab or export it.", elem_classes="pp-empty",
                                   elem_id="library-empty")
            source_code = gr.Code(language="markdown", label="Template file", interactive=False, visible=False,
                                  wrap_lines=True, elem_id="library-source")
        with gr.Column(scale=2):
            preview_md = gr.Markdown(elem_id="library-preview", elem_classes="pp-preview")
            with gr.Row():
                open_btn = gr.Button("Open in its tab", variant="primary", elem_id="library-open")
                export_btn = gr.Button("Export file", elem_id="library-export")
            export_file = gr.File(label="Exported template", interactive=False, visible=False,
                                  elem_id="library-export-file")
    with gr.Accordion("New template or import", open=False):
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                new_code = gr.Code(NEW_TEMPLATE, language="markdown", interactive=True, label="Template text",
                                   elem_id="library-new")
                with gr.Row():
                    overwrite_cb = gr.Checkbox(False, label="Replace my template of the same name",
                                               elem_id="library-overwrite")
                    save_btn = gr.Button("Save to my templates", elem_id="library-save")
            with gr.Column(scale=2):
                upload = gr.File(label="Import a template file (.md)", file_types=[".md"], type="filepath",
                                 elem_id="library-import")
                status_md = gr.Markdown(elem_id="library-status")

    filter_inputs = [modality_dd, technique_dd, query_box]

    def owner(request) -> str | None:
        return services.visitors.owner(request)

    def refresh(modality, technique, query, request: gr.Request):
        return template_rows(services, modality, technique, query, owner(request))

    for control in (modality_dd, technique_dd):
        control.change(refresh, filter_inputs, table, api_visibility="private", queue=False)
    query_box.change(refresh, filter_inputs, table, api_visibility="private", queue=False)

    boundary = at_boundary(services.settings.data_dir)

    @boundary
    def show(name, request: gr.Request):
        template = services.library_for(owner(request)).get(name)
        cells = expand(template, max_cells=services.settings.max_cells)
        rendered = "\n\n".join(f"**{c.variant}**\n```text\n{c.prompt}\n```" for c in cells)
        header = f"### {template.name}\n{template.description}\n\n*{template.modality} · " \
                 f"{', '.join(template.techniques)} · {template.source}*"
        return gr.update(value=template.text, visible=True), f"{header}\n\n{rendered}", name, gr.update(visible=False)

    def select(event: gr.SelectData, request: gr.Request):
        return show(event.row_value[0], request)

    table.select(select, None, [source_code, preview_md, selected, empty_md], api_visibility="private")

    def open_in_tab(name, request: gr.Request):
        if not name:
            raise gr.Error("Select a template first")
        template = services.library_for(owner(request)).get(name)
        updates = [gr.update() for _ in compare_tabs]
        index = list(compare_tabs).index(template.modality)
        updates[index] = gr.update(choices=compare_tabs[template.modality].refresh(owner(request))["choices"],
                                   value=name)
        return [gr.Tabs(selected=template.modality)] + updates

    opened = open_btn.click(open_in_tab, selected, [tabs] + [t.template for t in compare_tabs.values()],
                            api_visibility="private")
    for tab in compare_tabs.values():
        opened.then(tab.open_template, selected, tab.fill_outputs, api_visibility="private", show_progress="hidden")

    @boundary
    def export(name, request: gr.Request):
        if not name:
            raise gr.Error("Select a template first")
        template = services.library_for(owner(request)).get(name)
        return gr.update(value=exports.export_text(template_to_text(template), template.name, "md"), visible=True)

    export_btn.click(export, selected, export_file, api_visibility="private")

    def after_change(message: str, name: str | None, filters, who: str | None):
        choice_updates = [t.refresh(who) for t in compare_tabs.values()]
        return ([message, template_rows(services, *filters, owner=who), _errors_md(services),
                 gr.update(choices=_techniques(services))] + choice_updates)

    change_outputs = [status_md, table, errors_md, technique_dd] + [t.template for t in compare_tabs.values()]

    @boundary
    def save(text, overwrite, modality, technique, query, request: gr.Request):
        try:
            template = services.libraries.import_template(text, owner(request), overwrite=bool(overwrite))
        except TemplateError as error:
            return [f"⚠️ {error}"] + [gr.update()] * (len(change_outputs) - 1)
        return after_change(f"Saved **{template.name}** to your templates.", template.name,
                            (modality, technique, query), owner(request))

    save_btn.click(save, [new_code, overwrite_cb] + filter_inputs, change_outputs, api_visibility="private")

    @boundary
    def do_import(path, modality, technique, query, request: gr.Request):
        if not path:
            return [gr.update()] * len(change_outputs)
        try:
            template = services.libraries.import_template(Path(path), owner(request))
        except TemplateError as error:
            return [f"⚠️ {error}"] + [gr.update()] * (len(change_outputs) - 1)
        return after_change(f"Imported **{template.name}**.", template.name, (modality, technique, query),
                            owner(request))

    upload.upload(do_import, [upload] + filter_inputs, change_outputs, api_visibility="private")
    return table

