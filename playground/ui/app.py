"""Assembles the tabs into one Gradio app. `build_app(settings)` is all app.py and the tests need."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import gradio as gr

from .. import __version__
from ..services import Services
from ..settings import Settings
from . import grid
from .api import register_api
from .diff import build_diff_tab
from .history import build_history_tab
from .image import build_image_tab
from .library import build_library_tab
from .music import build_music_tab
from .text import build_text_tab
from .vote import build_vote_tab

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"

OFFLINE_BANNER = (
    "**Offline mode:** the models are tiny stand-ins with random weights, built on this machine, so outputs "
    "are noise. Everything else works exactly as with real models: templates, side-by-side runs, ratings, "
    "history and export. Run with internet access (and without `--offline`) to use real models.")


def _about(services: Services) -> str:
    lines = [f"**Prompt Playground** {__version__} · Python {platform.python_version()}"]
    for name in ("gradio", "torch", "transformers", "diffusers", "accelerate"):
        try:
            lines.append(f"- {name} {version(name)}")
        except PackageNotFoundError:
            lines.append(f"- {name}: not installed")
    s = services.settings
    lines += [f"- data dir: `{s.data_dir}` (run log `{s.db_path.name}`, media in `artifacts/`, "
              f"your templates in `templates/`)",
              f"- limits: {s.max_cells} cells per grid, {s.max_new_tokens} new tokens, {s.max_steps} steps, "
              f"{s.max_side} px, {s.max_duration_s:g} s of audio; {s.max_models_loaded} models kept warm",
              f"- models: {'offline tiny models' if services.catalog.offline else 'Hugging Face Hub'}"]
    return "\n".join(lines)


def build_app(settings: Settings, services: Services | None = None) -> gr.Blocks:
    services = services or Services.create(settings)
    with gr.Blocks(title="Prompt Playground") as demo:
        browser_state = gr.BrowserState({}, storage_key="prompt-playground-last")
        voter_state = gr.BrowserState("", storage_key="prompt-playground-voter")     # anonymous voter id
        with gr.Row(elem_classes="pp-header"):
            gr.Markdown("# Prompt Playground\nWrite prompt variants, run them side by side, keep the evidence.")
        if services.catalog.offline:
            gr.Markdown(OFFLINE_BANNER, elem_classes="pp-banner", elem_id="offline-banner")
        with gr.Tabs() as tabs:
            with gr.Tab("Text", id="text"):
                text = build_text_tab(services, browser_state)
            with gr.Tab("Image", id="image"):
                image = build_image_tab(services, browser_state)
            with gr.Tab("Music", id="music"):
                music = build_music_tab(services, browser_state)
            compare_tabs = {"text": text, "image": image, "music": music}
            with gr.Tab("Library", id="library"):
                build_library_tab(services, tabs, compare_tabs)
            with gr.Tab("History", id="history") as history_tab:
                history = build_history_tab(services, browser_state)
            with gr.Tab("Vote", id="vote"):
                build_vote_tab(services, demo, tabs, voter_state)
            with gr.Tab("Diff", id="diff"):
                build_diff_tab(services)
            # Runs made in the other tabs show up as soon as History is opened.
            history_tab.select(history.search, history.filter_inputs, history.tables, api_visibility="private")
        with gr.Accordion("About", open=False, elem_id="about"):
            gr.Markdown(_about(services))
        register_api(services)

        def restore(remembered):
            """On page load: each tab shows its template and the last comparison it ran, from the log."""
            updates = []
            for modality, tab in compare_tabs.items():
                updates += tab.fill(tab.template.value, [services.catalog.default_model(modality)])
                comparison_id = (remembered or {}).get(modality)
                html_, state = grid.render_grid([], modality), None
                if comparison_id:
                    try:
                        comparison = services.log.get_comparison(int(comparison_id))
                        views = grid.views_for_records(comparison.runs, services.log)
                        from ..runner import spec_from_runs

                        state = {"spec": spec_from_runs(comparison.runs), "views": views,
                                 "comparison_id": comparison.id}
                        html_ = grid.render_grid(views, modality, comparison_id=comparison.id,
                                                 winner_run_id=comparison.winner_run_id,
                                                 message=f"last run: #{comparison.id} · {comparison.created_at}")
                    except (KeyError, LookupError, ValueError):
                        pass
                updates += [html_, state]
            updates += list(history.search("all", "all", "", 0, "any time", ""))
            return updates

        outputs = []
        for tab in compare_tabs.values():
            outputs += tab.fill_outputs + [tab.grid_html, tab.run_state]
        demo.load(restore, browser_state, outputs + history.tables, api_visibility="private")
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    demo.services = services
    return demo


def launch_kwargs(settings: Settings) -> dict:
    """What launch() needs beyond the Blocks: look, and the folders whose files the page may show."""
    return {
        "theme": gr.themes.Soft(primary_hue="indigo", secondary_hue="slate",
                                font=["Inter", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
                                font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"]),
        "css_paths": [ASSETS / "style.css"],
        "allowed_paths": [str(settings.artifacts_dir), str(settings.data_dir / "exports")],
        "favicon_path": str(ASSETS / "logo.svg"),
    }
