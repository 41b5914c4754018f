"""All HTML the app makes, from one Jinja environment with autoescape on: the results grid, the evidence panel,
the vote ranking, the diff and the stakeholder report. Whatever a user or a model wrote is escaped wherever it is
put; Markdown of user origin (template notes and descriptions, messages that quote user input) goes through the one
sanitiser in markdown.py. No gradio, no torch: the CLI's report and the scoring panel use it too."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from .markdown import markdown_html
from .words import cells_text, rerun_badge, status_text

TEMPLATES = Path(__file__).resolve().parent / "templates"

ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                  lstrip_blocks=True)
ENV.filters["markdown"] = markdown_html


def render(name: str, **context) -> str:
    """The template `name` (in render/templates) filled in; every value is escaped unless it is Markup."""
    return ENV.get_template(name).render(**context)


def trusted(fragment: str | None) -> Markup | None:
    """HTML this package rendered earlier (a panel inside a report): placed as it is."""
    return Markup(fragment) if fragment else None


__all__ = ["ENV", "Markup", "cells_text", "markdown_html", "render", "rerun_badge", "status_text", "trusted"]
