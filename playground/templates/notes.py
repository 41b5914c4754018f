"""A template's Markdown notes, made safe to show: no remote images load just because someone opened a template.

A remote image in shared notes is a tracking pixel (it tells a third party who looked, and when). Images become
plain links the reader may follow; raw HTML is shown as text.
"""

from __future__ import annotations

import re

# ![alt](url "title") and ![alt][ref] / ![alt][] / ![alt]
_INLINE_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)\n]*[\"')])?\s*\)")
_REFERENCE_IMAGE = re.compile(r"!\[([^\]\n]*)\](\[[^\]\n]*\])?")
_HTML_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


def _label(alt: str) -> str:
    alt = alt.replace("[", "").replace("]", "").strip()
    return f"image: {alt}" if alt else "image"


def _safe_text(text: str) -> str:
    text = _HTML_TAG.sub("&lt;", text)
    text = _INLINE_IMAGE.sub(lambda m: f"[{_label(m.group(1))}]({m.group(2)})" if m.group(2) else
                             f"[{_label(m.group(1))}]", text)
    return _REFERENCE_IMAGE.sub(lambda m: f"[{_label(m.group(1))}]{m.group(2) or ''}", text)


def _outside_code_spans(line: str) -> str:
    out, last = [], 0
    for match in _CODE_SPAN.finditer(line):
        out.append(_safe_text(line[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_safe_text(line[last:]))
    return "".join(out)


def safe_notes(markdown: str) -> str:
    """Markdown that shows no image and runs no HTML: `![alt](url)` becomes a link `[image: alt](url)`, and
    `<img ...>` or any other tag is shown as text. Code blocks and code spans are left as they are."""
    if not markdown:
        return ""
    lines, in_fence, block = [], False, []
    for line in str(markdown).split("\n"):
        if _FENCE.match(line):
            if not in_fence and block:
                lines.append(_outside_code_spans("\n".join(block)))
                block = []
            in_fence = not in_fence
            lines.append(line)
        elif in_fence:
            lines.append(line)
        else:
            block.append(line)
    if block:
        lines.append(_outside_code_spans("\n".join(block)))
    return "\n".join(lines)

