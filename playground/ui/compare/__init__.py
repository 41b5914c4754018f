"""The comparison layout shared by the Text, Image and Music tabs: layout.py lays out the form, handlers.py holds
what it does, and this module wires the two together by component. Nothing here touches torch."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ...services import Services
from ..errors import at_boundary
from ..queues import MODEL_QUEUE, PREVIEW_QUEUE
from .handlers import CompareHandlers
from .layout import CompareForm, lay_out

__all__ = ["CompareForm", "CompareHandlers", "CompareTab", "build_compare_tab"]


@dataclass
class CompareTab:
    """What the app and the Library need of a comparison tab."""

    form: CompareForm
    handlers: CompareHandlers

    @property
    def modality(self) -> str:
        return self.form.modality

    @property
    def template(self) -> gr.Dropdown:
        return self.form.template

    def preview_after(self, event) -> None:
        """Render the preview once `event` has filled the form (a preview started with the event would read the
        form as it was before)."""
        event.then(self.handlers.preview, self.form.prompt_inputs(), self.form.preview, api_visibility="private",
                   concurrency_id=PREVIEW_QUEUE, concurrency_limit=4, show_progress="hidden")

    def restore_outputs(self) -> list:
        """What a page load may change: the form, and the grid of the last comparison this tab ran."""
        f = self.form
        return [f.template, f.models, f.seeds, f.checks, *f.template_outputs(), f.grid, f.run_state]


def build_compare_tab(modality: str, services: Services, browser_state: gr.BrowserState) -> CompareTab:
    """Lay out one modality tab: its option controls and extra prompt fields come from the registry."""
    form = lay_out(modality, services)
    handlers = CompareHandlers(form, services, browser_state)
    boundary = at_boundary(services.settings.data_dir)
    tab = CompareTab(form, handlers)
    _wire_form(tab, services)
    _wire_run(form, handlers, services, boundary)
    form.save.click(handlers.save, {form.save_name, form.overwrite} | form.prompt_inputs(),
                    [form.save_status, form.template, form.overwrite], api_visibility="private")
    return tab


def _wire_form(tab: CompareTab, services: Services) -> None:
    form, handlers = tab.form, tab.handlers
    # .input, not .change: a restored or library-opened template must not re-fill (and reset) the form.
    tab.preview_after(form.template.input(handlers.pick_template, {form.template, form.models},
                                          form.template_outputs(), api_visibility="private"))
    editor_outputs = [form.n_variants] + [c for s in form.slots for c in (s.name, s.text, s.column)]
    editor_inputs = {form.n_variants} | {s.name for s in form.slots} | {s.text for s in form.slots}
    for index, slot in enumerate(form.slots):
        for action, button in (("duplicate", slot.duplicate), ("remove", slot.remove)):
            button.click(_editor(handlers, action, index), editor_inputs, editor_outputs, api_visibility="private")
    # The preview renders templates (the costly part of the form): queued, a few at a time, one per visitor.
    for box in form.variables + [s.text for s in form.slots] + [s.name for s in form.slots] + list(
            form.extras.values()):
        box.blur(handlers.preview, form.prompt_inputs(), form.preview, api_visibility="private",
                 concurrency_id=PREVIEW_QUEUE, concurrency_limit=4, show_progress="hidden")
    for box in [s.text for s in form.slots] + form.variables + list(form.extras.values()):
        box.blur(handlers.sync_variables, form.prompt_inputs(), [form.var_names, *form.variables, form.var_warning],
                 api_visibility="private", queue=False)
    form.randomize.click(handlers.random_seeds, None, form.seeds, api_visibility="private", queue=False)
    form.models.input(handlers.model_defaults, form.models, list(form.params.values()), api_visibility="private",
                      queue=False)


def _editor(handlers: CompareHandlers, action: str, index: int):
    def edit(values: dict) -> dict:
        return handlers.edit_variants(values, action, index)
    return edit


def _wire_run(form: CompareForm, handlers: CompareHandlers, services: Services, boundary) -> None:
    browser_state = handlers.browser_state
    run_inputs = form.prompt_inputs() | {form.seeds, form.rerun, form.checks, browser_state, form.grid, form.run_state,
                                         *form.params.values()}
    run_outputs = [form.grid, form.run_state, browser_state]
    form.run.click(boundary(handlers.run), run_inputs, run_outputs, api_visibility="private",
                   show_progress="minimal", concurrency_id=MODEL_QUEUE,
                   concurrency_limit=services.settings.concurrency)
    # Results come into view as soon as Run is pressed.
    form.run.click(None, None, None, js=f"() => document.getElementById('{form.modality}-grid')"
                   "?.scrollIntoView({behavior: 'smooth', block: 'start'})")
    form.stop.click(handlers.stop, None, None, api_visibility="private", queue=False)
    form.grid.rerun(boundary(handlers.rerun_cell), {form.run_state, browser_state}, run_outputs,
                    api_visibility="private", concurrency_id=MODEL_QUEUE, show_progress="hidden")
