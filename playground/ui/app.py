"""Assembles the tabs into one Gradio app. `build_app(settings)` is all app.py and the tests need."""

from __future__ import annotations

import platform
import sqlite3
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import gradio as gr

from .. import __version__
from ..registry import MODALITIES
from .. import visitors
from ..bodylimit import body_limit_middleware
from ..scoring.panel import comparison_panel
from ..services import Services
from ..settings import Settings
from . import grid
from .api import register_api
from .compare import build_compare_tab
from .history import build_history_tab, parse_comparison_id, when
from .library import build_library_tab, template_rows
from .diff import build_diff_tab
from .evidence import evidence
from .experiments import build_experiments_tab
from .vote import build_vote_tab

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"

OFFLINE_BANNER = (
    "**Offline mode:** the models are tiny ones trained on a toy world (taglines, labels, summaries and JSON; "
    "32x32 coloured shapes; synthesised tones), shipped with the app. They are useful to see that prompts "
    "matter, not real models. Everything else works exactly as with real models: templates, side-by-side runs, "
    "checks, ratings, history and export. Run with internet access (and without `--offline`) to use real models.")


def _about(services: Services) -> str:
    lines = [f"**Prompt Playground** {__version__} · Python {platform.python_version()}"]
    for name in ("gradio", "torch", "transformers", "diffusers", "accelerate"):
        try:
            lines.append(f"- {name} {version(name)}")
        except PackageNotFoundError:
            lines.append(f"- {name}: not installed")
    s = services.settings
    lines += [f"- data dir: `{s.data_dir.name}` (run log `{s.db_path.name}`, media in `artifacts/`, "
              f"your templates in `templates/`; the full path is in the server's start-up log)",
              f"- limits: {s.max_cells} cells per grid, {s.max_new_tokens} new tokens, {s.max_steps} steps, "
              f"{s.max_side} px, {s.max_duration_s:g} s of audio; {s.max_models_loaded} models kept warm",
              f"- models: {'offline tiny models' if services.catalog.offline else 'Hugging Face Hub'}"]
    return "\n".join(lines)


def build_app(settings: Settings, services: Services | None = None) -> gr.Blocks:
    services = services or Services.create(settings)
    services.start_jobs()       # experiments run as server-side jobs; those a stopped server left continue now
    with gr.Blocks(title="Prompt Playground",
                   delete_cache=(settings.cache_max_age_s, settings.cache_max_age_s)) as demo:
        # Before any component: queue() rebuilds the server app from the blocks so far, which is cheap only now
        # (after the last block it is one more full build, ~0.2 s of start-up).
        demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
        register_api(services)      # first, so the API page opens on /compare
        browser_state = gr.BrowserState({}, storage_key="prompt-playground-last")
        # The browser's anonymous visitor id, signed by the server and kept across reloads and restarts. Gradio
        # publishes a BrowserState's `secret` in /config: it gets a derived key, never the signing key.
        visitor = gr.BrowserState("", storage_key="prompt-playground-visitor",
                                  secret=visitors.browser_state_key(services.visitors.secret))
        gr.HTML(grid.ICON_SPRITE, container=False, padding=False, elem_id="pp-icons")
        with gr.Row(elem_classes="pp-header"):
            gr.Markdown("# Prompt Playground\nWrite prompt variants, run them side by side, keep the evidence.")
            if services.visitors.apart and visitors.running_on_space():
                gr.LoginButton(size="sm", scale=0)     # signed in, your comparisons follow you across browsers
        if services.catalog.offline:
            gr.Markdown(OFFLINE_BANNER, elem_classes="pp-banner", elem_id="offline-banner")
        with gr.Tabs() as tabs:
            compare_tabs = {}
            for modality in MODALITIES.values():
                with gr.Tab(modality.label, id=modality.name):
                    compare_tabs[modality.name] = build_compare_tab(modality.name, services, browser_state)
            with gr.Tab("Experiments", id="experiments") as experiments_tab:
                build_experiments_tab(services).show_on(experiments_tab)
            with gr.Tab("Library", id="library"):
                library = build_library_tab(services, tabs, compare_tabs)
            with gr.Tab("History", id="history") as history_tab:
                history = build_history_tab(services)
            with gr.Tab("Vote", id="vote"):
                build_vote_tab(services, demo, tabs, visitor,
                               summary_for=lambda cid: comparison_panel(services.log, cid))
            with gr.Tab("Diff", id="diff"):
                build_diff_tab(services)
            # Runs made in the other tabs show up as soon as History is opened.
            history_tab.select(history.handlers.search, history.view.filters(), history.view.tables(),
                               api_visibility="private")
        with gr.Accordion("About", open=False, elem_id="about"):
            gr.Markdown(_about(services))

        def restore(values: dict, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
            """On page load: who this is (public deployments keep visitors apart), then each tab shows the form and
            the last comparison it ran (first page), from the log."""
            signed = services.visitors.identify(request, profile, values[visitor])
            owner = services.visitors.owner(request, profile)
            remembered = values[browser_state] if isinstance(values[browser_state], dict) else {}
            forms = remembered.get("forms") if isinstance(remembered.get("forms"), dict) else {}
            updates = {visitor: signed, library.view.table: template_rows(services, owner=owner)}
            for modality, tab in compare_tabs.items():
                updates |= tab.handlers.restore(forms.get(modality), owner)
                html_, state = _last_grid(services, modality, remembered.get(modality), owner)
                updates |= {tab.form.grid: html_, tab.form.run_state: state}
            return updates | history.handlers.first_search(request)

        outputs = [visitor, library.view.table, *history.view.tables()] + [c for tab in compare_tabs.values()
                                                       for c in tab.restore_outputs()]
        loaded = demo.load(restore, {browser_state, visitor}, outputs, api_visibility="private")
        for tab in compare_tabs.values():
            tab.preview_after(loaded)
    demo.services = services
    return demo


def _last_grid(services: Services, modality: str, comparison_id, owner: str | None = None) -> list:
    """The grid, evidence panel and run state of the comparison a tab ran last (its first page), or the empty grid.
    The run state carries the comparison's checks: a cell re-run after the reload is scored like the others."""
    from ..spec import spec_from_runs

    try:
        header = services.log.get_comparison_header(parse_comparison_id(comparison_id), owner=owner)
        runs = services.log.list_runs(comparison_id=header.id, limit=services.settings.max_cells,
                                      newest_first=False, live_only=True)
        views = grid.views_for_records(runs, services.log)
    except (KeyError, LookupError, ValueError, OSError, sqlite3.Error):
        return [grid.render_grid([], modality), None]
    checks = header.spec.get("checks") if isinstance(header.spec, dict) else None
    try:
        state = {"spec": spec_from_runs(runs, checks=checks if isinstance(checks, list) else None), "views": views,
                 "comparison_id": header.id}
    except ValueError:
        state = None
    panel, badges = evidence(services.log, header.id, owner)
    html_ = grid.render_grid(views, modality, comparison_id=header.id, winner_run_id=header.winner_run_id,
                             key=services.visitors.grid_key(owner), badges=badges,
                             **grid.logged_progress(header, f"last run #{header.id}", when(header.created_at)))
    return [html_ + panel, state]


def launch_kwargs(settings: Settings) -> dict:
    """What launch() needs beyond the Blocks: look, and the folders whose files the page may show."""
    return {
        "theme": gr.themes.Soft(primary_hue="indigo", secondary_hue="slate",
                                font=["Inter", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
                                font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"]),
        "css_paths": [ASSETS / "style.css", ASSETS / "experiments.css"],
        # Only the generated media and the datasets' reference media; exports reach their client through Gradio's
        # per-request file cache.
        "allowed_paths": [str(settings.artifacts_dir), str(settings.references_dir)],
        "favicon_path": str(ASSETS / "logo.svg"),
        # Uploads past an import's size are refused while they arrive; any other body past its cap before parsing.
        "max_file_size": settings.max_import_bytes,
        "app_kwargs": {"middleware": [body_limit_middleware(settings)]},
    }
