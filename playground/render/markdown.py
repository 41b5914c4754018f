"""The one Markdown sanitiser: Markdown of user origin becomes HTML that loads nothing from anywhere.

CommonMark without raw HTML (tags show as text) and without images (`![alt](url)` is left as a plain link); links
only to http(s) addresses, opened as plain links that send no referrer. Code stays code, escaped.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup

_SCHEMES = ("http://", "https://")


def _plain_links_only(url: str) -> bool:
    return url.strip().lower().startswith(_SCHEMES)


def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.disable("image")
    parser.validateLink = _plain_links_only

    def link_open(renderer, tokens, index, options, env):
        tokens[index].attrSet("rel", "nofollow noopener noreferrer")
        tokens[index].attrSet("target", "_blank")
        return renderer.renderToken(tokens, index, options, env)

    parser.add_render_rule("link_open", link_open)
    return parser


_PARSER = _parser()


def markdown_html(text: str | None) -> Markup:
    """Sanitised HTML for a piece of user Markdown (empty for None)."""
    return Markup(_PARSER.render(str(text or "")))
