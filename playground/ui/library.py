"""The Library tab: browse and read templates, preview them, open one in its tab, create, import and export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..services import Services
from ..templates import TemplateError, expand, template_to_text
from . import exports
from .compare import CompareTab
from .errors import at_boundary, scrub
from .views import message_html, prompts_html, template_choices

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


def _errors_html(services: Services) -> str:
    errors = services.library.errors
    if not errors:
        return ""
    # File names only: the server's folders are nobody's business on a public deployment.
    lines = [f"- `{Path(e.path).name}`: {scrub(str(e.message), services.settings.data_dir)}" for e in errors]
    return message_html("**Templates that did not load** (fix these files; the rest of the library works):\n"
                        + "\n".join(lines))


@dataclass
class LibraryView:
    modality: gr.Dropdown
    technique: gr.Dropdown
    query: gr.Textbox
    table: gr.Dataframe
    errors: gr.HTML
    selected: gr.State                # the name of the template being read
    empty: gr.Markdown
    source: gr.Code
    preview: gr.HTML
    open: gr.Button
    export: gr.Button
    export_file: gr.File
    new: gr.Code
    overwrite: gr.Checkbox
    save: gr.Button
    upload: gr.File
    status: gr.HTML

    def filters(self) -> set:
        return {self.modality, self.technique, self.query}


def lay_out(services: Services) -> LibraryView:
    with gr.Row():
        modality = gr.Dropdown([ALL, "text", "image", "music"], value=ALL, label="Modality", scale=1,
                               elem_id="library-modality")
        technique = gr.Dropdown(_techniques(services), value=ALL, label="Technique", scale=1,
                                elem_id="library-technique")
        query = gr.Textbox(label="Search", placeholder="name, description, notes", scale=2, elem_id="library-query")
    table = gr.Dataframe(template_rows(services), headers=HEADERS, interactive=False, max_height=360, wrap=True,
                         column_widths=["190px", "100px", "170px", "96px", "90px", "560px"],   # phones scroll it
                         label="Templates (click one to read it)", elem_id="library-table")
    errors = gr.HTML(_errors_html(services), elem_id="library-errors", elem_classes="pp-md")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            empty = gr.Markdown("**Click a template in the table** to read its file here, see its prompts "
                                "rendered, open it in its tab or export it.", elem_classes="pp-empty",
                                elem_id="library-empty")
            source = gr.Code(language="markdown", label="Template file", interactive=False, visible=False,
                             wrap_lines=True, elem_id="library-source")
        with gr.Column(scale=2):
            preview = gr.HTML(elem_id="library-preview", elem_classes=["pp-preview", "pp-md"])
            with gr.Row():
                open_ = gr.Button("Open in its tab", variant="primary", elem_id="library-open")
                export = gr.Button("Export file", elem_id="library-export")
            export_file = gr.File(label="Exported template", interactive=False, visible=False,
                                  elem_id="library-export-file")
    with gr.Accordion("New template or import", open=False):
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                new = gr.Code(NEW_TEMPLATE, language="markdown", interactive=True, label="Template text",
                              elem_id="library-new")
                with gr.Row():
                    overwrite = gr.Checkbox(False, label="Replace my template of the same name",
                                            elem_id="library-overwrite")
                    save = gr.Button("Save to my templates", elem_id="library-save")
            with gr.Column(scale=2):
                upload = gr.File(label="Import a template file (.md)", file_types=[".md"], type="filepath",
                                 elem_id="library-import")
                status = gr.HTML(elem_id="library-status", elem_classes="pp-md")
    return LibraryView(modality, technique, query, table, errors, gr.State(None), empty, source, preview, open_,
                       export, export_file, new, overwrite, save, upload, status)


class LibraryHandlers:
    def __init__(self, view: LibraryView, services: Services, tabs: gr.Tabs, compare_tabs: dict[str, CompareTab]):
        self.view, self.services, self.tabs, self.compare_tabs = view, services, tabs, compare_tabs

    def _library(self, request):
        return self.services.library_for(self.services.visitors.owner(request))

    def rows(self, values: dict, request: gr.Request = None) -> list[list]:
        v = self.view
        return template_rows(self.services, values[v.modality], values[v.technique], values[v.query],
                             self.services.visitors.owner(request))

    def show(self, name: str, request: gr.Request = None) -> dict:
        """A template's file, and the prompts it renders to."""
        v, template = self.view, self._library(request).get(name)
        cells = expand(template, max_cells=self.services.settings.max_cells)
        heading = {"name": template.name, "description": template.description,
                   "details": f"{template.modality} · {', '.join(template.techniques)} · {template.source}"}
        return {v.source: gr.update(value=template.text, visible=True), v.preview: prompts_html(cells, heading),
                v.selected: name, v.empty: gr.update(visible=False)}

    def pick(self, event: gr.SelectData, request: gr.Request = None) -> dict:
        return self.show(event.row_value[0], request)

    def open_in_tab(self, name, request: gr.Request = None) -> dict:
        """The template's own tab, with the template picked there (the tab then fills its form)."""
        if not name:
            raise gr.Error("Select a template first")
        template, owner = self._library(request).get(name), self.services.visitors.owner(request)
        tab = self.compare_tabs[template.modality]
        return {self.tabs: gr.Tabs(selected=template.modality),
                tab.template: gr.update(choices=template_choices(self.services, template.modality, owner), value=name)}

    def export(self, name, request: gr.Request = None) -> dict:
        if not name:
            raise gr.Error("Select a template first")
        template = self._library(request).get(name)
        return {self.view.export_file: gr.update(value=exports.export_text(template_to_text(template),
                                                                           template.name, "md"), visible=True)}

    def changed(self, message: str, values: dict, request) -> dict:
        """After a save or an import: the library again, in the table and in every tab's template list."""
        v, owner = self.view, self.services.visitors.owner(request)
        return {v.status: message_html(message), v.table: self.rows(values, request),
                v.errors: _errors_html(self.services), v.technique: gr.update(choices=_techniques(self.services))} | {
            tab.template: tab.handlers.template_choices(owner) for tab in self.compare_tabs.values()}

    def save(self, values: dict, request: gr.Request = None) -> dict:
        v = self.view
        try:
            template = self.services.libraries.import_template(values[v.new], self.services.visitors.owner(request),
                                                               overwrite=bool(values[v.overwrite]))
        except TemplateError as error:
            return {v.status: message_html(f"⚠️ {error}")}
        return self.changed(f"Saved **{template.name}** to your templates.", values, request)

    def import_file(self, values: dict, request: gr.Request = None) -> dict:
        v = self.view
        if not values[v.upload]:
            return {}
        try:
            template = self.services.libraries.import_template(Path(values[v.upload]),
                                                               self.services.visitors.owner(request))
        except TemplateError as error:
            return {v.status: message_html(f"⚠️ {error}")}
        return self.changed(f"Imported **{template.name}**.", values, request)

    def change_outputs(self) -> list:
        v = self.view
        return [v.status, v.table, v.errors, v.technique] + [t.template for t in self.compare_tabs.values()]


def build_library_tab(services: Services, tabs: gr.Tabs, compare_tabs: dict[str, CompareTab]) -> LibraryHandlers:
    view = lay_out(services)
    handlers = LibraryHandlers(view, services, tabs, compare_tabs)
    boundary = at_boundary(services.settings.data_dir)
    for control in (view.modality, view.technique, view.query):
        control.change(handlers.rows, view.filters(), view.table, api_visibility="private", queue=False)
    view.table.select(boundary(handlers.pick), None, [view.source, view.preview, view.selected, view.empty],
                      api_visibility="private")
    opened = view.open.click(boundary(handlers.open_in_tab), view.selected,
                             [tabs] + [t.template for t in compare_tabs.values()], api_visibility="private")
    for tab in compare_tabs.values():
        tab.preview_after(opened.then(tab.handlers.open_template, view.selected, tab.form.template_outputs(),
                                      api_visibility="private", show_progress="hidden"))
    view.export.click(boundary(handlers.export), view.selected, view.export_file, api_visibility="private")
    view.save.click(boundary(handlers.save), {view.new, view.overwrite} | view.filters(), handlers.change_outputs(),
                    api_visibility="private")
    view.upload.upload(boundary(handlers.import_file), {view.upload} | view.filters(), handlers.change_outputs(),
                       api_visibility="private")
    return handlers
