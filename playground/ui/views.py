"""What the tabs show besides grids: template choices, a template's description and notes, rendered prompts, and
messages (all HTML from playground.render: user text escaped, user Markdown sanitised)."""

from __future__ import annotations

from ..render import markdown_html, render
from ..services import Services
from ..templates import Template


def template_choices(services: Services, modality: str, owner: str | None = None) -> list[tuple[str, str]]:
    return [(f"{t.name}{' (mine)' if t.source == 'user' else ''} — {', '.join(t.techniques)}", t.name)
            for t in services.library_for(owner).by_modality(modality)]


def template_info_html(template: Template) -> str:
    return render("template_info.html.j2", template=template)


def prompts_html(cells, heading: dict | None = None) -> str:
    return render("prompts.html.j2", cells=cells, heading=heading)


def message_html(text: str) -> str:
    """A message that may quote user input (names, errors), as sanitised Markdown."""
    return str(markdown_html(text))
