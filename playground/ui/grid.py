"""The side-by-side results grid: one column per variant, one row per value set / seed / model.

Rendered as one HTML block so a streaming run can redraw it cheaply; per-cell buttons call small server functions
(rate, note, winner) or fire a `rerun` event, wired up in `GRID_JS`.
"""

from __future__ import annotations

import functools
import html
import wave
from dataclasses import dataclass, field
from urllib.parse import quote

import gradio as gr
import numpy as np

STATUS_TEXT = {"pending": "waiting…", "running": "generating…", "cancelled": "stopped"}


@dataclass
class CellView:
    """What the grid shows for one cell, from a spec cell (before it runs) or a logged run (after)."""

    index: int
    row: int
    col: int
    variant: str
    row_label: str
    status: str = "pending"          # pending | running | ok | error | cancelled
    text: str | None = None
    media: str | None = None         # absolute path of the image / audio file
    run_id: int | None = None
    stars: int | None = None
    thumbs: int | None = None
    note: str | None = None
    cached: bool = False
    error: str | None = None
    metrics: dict = field(default_factory=dict)
    badge: str | None = None         # e.g. "re-run · seed 123" when the cell no longer matches its row label


def row_label(values: dict, seed: int, model_id: str, show_model: bool) -> str:
    parts = [f"{k} = {v}" for k, v in values.items()]
    parts.append(f"seed {seed}")
    if show_model:
        parts.append(model_id)
    return " · ".join(parts)


def views_for_cells(cells) -> list[CellView]:
    show_model = len({c.model_id for c in cells}) > 1
    return [CellView(index=i, row=c.row, col=c.col, variant=c.variant or "prompt",
                     row_label=row_label(c.values, c.seed, c.model_id, show_model)) for i, c in enumerate(cells)]


def apply_record(view: CellView, record, log) -> CellView:
    """Fill a view from a logged run (fresh, cached, or read back from history)."""
    view.status = record.status
    view.run_id = record.id
    view.text = record.output_text
    path = log.artifact_path(record) if record.artifact else None
    view.media = str(path) if path else None
    view.stars, view.thumbs, view.note = record.stars, record.thumbs, record.note
    view.cached = record.cached_from is not None
    view.error = record.error
    view.metrics = {"wall_s": record.wall_s, "load_s": record.load_s, "tokens_per_s": record.tokens_per_s,
                    "completion_tokens": record.completion_tokens, "realtime_factor": record.realtime_factor}
    return view


def views_for_records(records, log) -> list[CellView]:
    show_model = len({r.model_id for r in records}) > 1
    views = []
    for index, record in enumerate(records):
        view = CellView(index=index, row=record.row, col=record.col, variant=record.variant or "prompt",
                        row_label=row_label(record.variables or {}, record.seed, record.model_id, show_model))
        views.append(apply_record(view, record, log))
    return views


def file_url(path: str) -> str:
    return "/gradio_api/file=" + quote(path)


def _badge(wins: list[str] | None) -> str:
    if not wins:
        return ""
    return (f' <span class="pp-win-badge" title="clear win across seeds on {html.escape(", ".join(wins))}">'
            f'wins on {html.escape(", ".join(wins))}</span>')


def render_grid(views: list[CellView], modality: str, *, done: int | None = None, total: int | None = None,
                comparison_id: int | None = None, winner_run_id: int | None = None, message: str = "",
                cell_reruns: bool = True, badges: dict[str, list[str]] | None = None) -> str:
    """`cell_reruns`: show the per-cell re-run buttons (the comparison tabs handle them; History re-runs whole
    comparisons instead). `badges`: variant -> the scores it clearly wins (statistics), shown on its column."""
    if not views:
        return ('<div class="pp-empty">Pick a template, edit the variants, and press <b>Run</b>. '
                'Outputs appear here side by side, one column per variant.</div>')
    columns = sorted({(v.col, v.variant) for v in views})
    col_index = {col: i for i, (col, _) in enumerate(columns)}
    labels: dict[int, str] = {}
    for view in sorted(views, key=lambda v: (v.row, v.col)):
        if view.badge is None:
            labels.setdefault(view.row, view.row_label)
    for view in views:
        labels.setdefault(view.row, view.row_label)
    rows = sorted(labels.items())
    header = "".join(f'<div class="pp-colhead">{html.escape(name)}{_badge((badges or {}).get(name))}</div>'
                     for _, name in columns)
    body = []
    by_pos = {(v.row, v.col): v for v in views}
    for row, label in rows:
        body.append(f'<div class="pp-rowhead" style="grid-column: 1 / -1">{html.escape(label)}</div>')
        for col, _ in columns:
            view = by_pos.get((row, col))
            body.append(_cell(view, modality, comparison_id, winner_run_id, cell_reruns) if view else '<div></div>')
    progress = ""
    if total:
        state = "done" if done == total else "running"
        progress = (f'<div class="pp-progress pp-{state}"><progress value="{done}" max="{total}"></progress>'
                    f'<span>{done} / {total} cells{" · " + html.escape(message) if message else ""}</span></div>')
    elif message:
        progress = f'<div class="pp-progress"><span>{html.escape(message)}</span></div>'
    cid = f' data-comparison="{comparison_id}"' if comparison_id else ""
    return (f'<div class="pp-grid-wrap"{cid}>{progress}'
            f'<div class="pp-grid" style="grid-template-columns: repeat({len(col_index)}, minmax(220px, 1fr))">'
            f'{header}{"".join(body)}</div></div>')


def _cell(view: CellView, modality: str, comparison_id: int | None, winner_run_id: int | None,
          cell_reruns: bool) -> str:
    classes = f"pp-cell pp-{view.status}" + (" pp-winner" if view.run_id and view.run_id == winner_run_id else "")
    label = html.escape(f"{view.variant} · {view.row_label}")
    parts = [f'<div class="{classes}" data-index="{view.index}" data-run="{view.run_id or ""}" '
             f'aria-label="{label}"><div class="pp-label">{label}</div>']
    if view.badge:
        parts.append(f'<div class="pp-badge">{html.escape(view.badge)}</div>')
    if view.status == "error":
        parts.append(f'<div class="pp-error">{html.escape(view.error or "failed")}</div>')
    elif view.text is not None:
        parts.append(f'<div class="pp-text">{html.escape(view.text.strip()) or "<i>(empty output)</i>"}</div>')
    elif view.media and modality == "image":
        parts.append(f'<img class="pp-image" src="{file_url(view.media)}" alt="{label}">')
    elif view.media and modality == "music":
        parts.append(_waveform_svg(view.media))
        parts.append(f'<audio class="pp-audio" controls preload="metadata" src="{file_url(view.media)}"></audio>')
    else:
        parts.append(f'<div class="pp-placeholder">{STATUS_TEXT.get(view.status, "")}</div>')
    if view.status == "ok" and view.run_id:
        parts.append(f'<div class="pp-meta">{html.escape(_metrics_text(view))}</div>')
        parts.append(_actions(view, comparison_id, cell_reruns))
        if view.note:
            parts.append(f'<div class="pp-note">{html.escape(view.note)}</div>')
    parts.append("</div>")
    return "".join(parts)


def _metrics_text(view: CellView) -> str:
    m = view.metrics
    bits = [f"run #{view.run_id}"]
    if m.get("completion_tokens") is not None:
        bits.append(f"{m['completion_tokens']} tok")
    if m.get("tokens_per_s"):
        bits.append(f"{m['tokens_per_s']:.0f} tok/s")
    if m.get("realtime_factor"):
        bits.append(realtime_text(m["realtime_factor"]))
    if view.cached:
        bits.append("cached")
    elif m.get("wall_s") is not None:
        bits.append(f"{m['wall_s']:.2f} s batch")
    if (m.get("load_s") or 0) >= 0.05:
        bits.append(f"+{m['load_s']:.1f} s load")
    return " · ".join(bits)


def realtime_text(factor: float) -> str:
    """Audio seconds per wall-clock second, said plainly: above 1 the clip was made faster than it plays."""
    if factor >= 1:
        return f"{factor:.1f}× faster than real time"
    return f"{1 / factor:.1f}× slower than real time"


# Icons drawn inline (24x24, stroke = currentColor): they ship with the page, so no emoji font is needed.
_ICON_PATHS = {
    "star": '<path d="M12 3.5l2.6 5.3 5.9.9-4.3 4.1 1 5.8L12 16.9l-5.2 2.7 1-5.8-4.3-4.1 5.9-.9z"/>',
    "up": '<path d="M7 11v9H4v-9zM7 11l4-7c1.7 0 2.5 1 2.2 2.6L12.7 10H19a2 2 0 0 1 2 2.3l-1.2 6A2 2 0 0 1 17.8 20H7"/>',
    "down": '<path d="M7 13V4H4v9zM7 13l4 7c1.7 0 2.5-1 2.2-2.6l-.5-3.4H19a2 2 0 0 0 2-2.3l-1.2-6A2 2 0 0 0 17.8 4H7"/>',
    "note": '<path d="M4 20h4L19 9l-4-4L4 16zM13.5 6.5l4 4"/>',
    "copy": '<rect x="8" y="8" width="12" height="12" rx="2"/><path d="M16 8V6a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h2"/>',
    "check": '<path d="M5 12l5 5 9-10"/>',
    "download": '<path d="M12 4v11M7 10l5 5 5-5M5 20h14"/>',
    "rerun": '<path d="M20 12a8 8 0 1 1-2.3-5.7M20 4v5h-5"/>',
    "dice": '<rect x="4" y="4" width="16" height="16" rx="3"/><circle cx="9" cy="9" r="1.2"/>'
            '<circle cx="15" cy="15" r="1.2"/><circle cx="15" cy="9" r="1.2"/><circle cx="9" cy="15" r="1.2"/>',
    "trophy": '<path d="M8 4h8v5a4 4 0 0 1-8 0zM8 6H4v1a3 3 0 0 0 4 3M16 6h4v1a3 3 0 0 1-4 3M12 13v4M8 20h8"/>',
}


# Drawn once per page (app.py puts it in the header); each button refers to its symbol, which keeps a big grid's
# HTML small.
ICON_SPRITE = ('<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0" style="position:absolute" '
               'aria-hidden="true">' + "".join(
                   f'<symbol id="pp-i-{name}" viewBox="0 0 24 24">{path}</symbol>' for name, path in _ICON_PATHS.items())
               + '</svg>')


def icon(name: str) -> str:
    return (f'<svg class="pp-icon" width="16" height="16" fill="none" stroke="currentColor" stroke-width="1.8" '
            f'stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><use href="#pp-i-{name}"/></svg>')


def _button(action: str, icon_name: str, title: str, attrs: str, text: str = "", classes: str = "") -> str:
    label = f'<span class="pp-btn-text">{html.escape(text)}</span>' if text else ""
    return (f'<button type="button" class="pp-act {classes}" data-action="{action}" {attrs} '
            f'title="{html.escape(title)}" aria-label="{html.escape(title)}">{icon(icon_name)}{label}</button>')


def _actions(view: CellView, comparison_id: int | None, cell_reruns: bool) -> str:
    run = view.run_id
    stars = "".join(_button("rate", "star", f"{s} star{'s' if s > 1 else ''}", f'data-run="{run}" data-stars="{s}"',
                            classes="pp-star" + (" on" if view.stars and s <= view.stars else ""))
                    for s in range(1, 6))
    thumbs = (_button("thumb", "up", "Good output", f'data-run="{run}" data-value="1"',
                      classes="pp-thumb" + (" on" if view.thumbs == 1 else ""))
              + _button("thumb", "down", "Bad output", f'data-run="{run}" data-value="-1"',
                        classes="pp-thumb" + (" on" if view.thumbs == -1 else "")))
    tools = [_button("note", "note", "Add a note", f'data-run="{run}"', "Note")]
    if view.text is not None:
        tools.append(_button("copy", "copy", "Copy the text", f'data-run="{run}"', "Copy"))
    if view.media:
        tools.append(f'<a class="pp-act pp-download" href="{file_url(view.media)}" download title="Download the file" '
                     f'aria-label="Download the file">{icon("download")}<span class="pp-btn-text">Save</span></a>')
    if cell_reruns:
        tools.append(_button("rerun", "rerun", "Re-run this cell with the same seed", f'data-index="{view.index}"',
                             "Re-run"))
        tools.append(_button("reseed", "dice", "Re-run this cell with a new random seed",
                             f'data-index="{view.index}"', "New seed"))
    if comparison_id:
        tools.append(_button("winner", "trophy", "Pick as the winner of this comparison",
                             f'data-run="{run}" data-comparison="{comparison_id}"', "Winner"))
    return (f'<div class="pp-actions"><span class="pp-stars" role="group" aria-label="Stars">{stars}</span>'
            f'<span class="pp-thumbs">{thumbs}</span><span class="pp-tools">{"".join(tools)}</span></div>')


@functools.lru_cache(maxsize=256)       # a clip's file never changes, and the grid is redrawn several times a second
def _waveform_svg(path: str, bars: int = 96) -> str:
    """A small peak-envelope picture of the clip, drawn server-side so the page needs no audio decoding."""
    try:
        with wave.open(path) as clip:
            frames = np.frombuffer(clip.readframes(clip.getnframes()), dtype="<i2").astype(np.float32) / 32768
            frames = frames.reshape(-1, clip.getnchannels()).mean(axis=1)
    except (OSError, wave.Error, ValueError):
        return ""
    if frames.size == 0:
        return ""
    chunks = np.array_split(np.abs(frames), bars)
    peaks = np.array([c.max() if c.size else 0.0 for c in chunks])
    peaks = peaks / max(peaks.max(), 1e-6)
    rects = "".join(f'<rect x="{i * 3}" y="{20 - p * 19:.1f}" width="2" height="{max(p * 38, 1):.1f}" rx="1"/>'
                    for i, p in enumerate(peaks))
    return f'<svg class="pp-wave" viewBox="0 0 {bars * 3} 40" preserveAspectRatio="none">{rects}</svg>'


# Delegated listener: survives every redraw of the grid's inner HTML. Server answers are {ok, error}.
GRID_JS = """
const cellOf = (el) => el.closest('.pp-cell');
const say = (cell, message) => {
  let box = cell.querySelector('.pp-cell-msg');
  if (!box) { box = document.createElement('div'); box.className = 'pp-cell-msg'; cell.appendChild(box); }
  box.innerText = message;
};
const ok = (cell, answer) => {
  if (answer && answer.ok) return true;
  say(cell, (answer && answer.error) || 'Could not save this; try again.');
  return false;
};
element.addEventListener('click', async (event) => {
  const button = event.target.closest('[data-action]');
  if (!button) return;
  const action = button.dataset.action;
  const run = Number(button.dataset.run);
  const cell = cellOf(button);
  if (action === 'rate') {
    const stars = Number(button.dataset.stars);
    if (!ok(cell, await server.rate_cell({run_id: run, stars: stars}))) return;
    cell.querySelectorAll('.pp-star').forEach((s) => s.classList.toggle('on', Number(s.dataset.stars) <= stars));
  } else if (action === 'thumb') {
    const value = Number(button.dataset.value);
    if (!ok(cell, await server.rate_cell({run_id: run, thumbs: value}))) return;
    cell.querySelectorAll('.pp-thumb').forEach((t) => t.classList.toggle('on', t === button));
  } else if (action === 'note') {
    const current = cell.querySelector('.pp-note');
    const note = window.prompt('Note for this output', current ? current.innerText : '');
    if (note === null) return;
    if (!ok(cell, await server.rate_cell({run_id: run, note: note}))) return;
    let box = current;
    if (!box) { box = document.createElement('div'); box.className = 'pp-note'; cell.appendChild(box); }
    box.innerText = note;
  } else if (action === 'copy') {
    const text = cell.querySelector('.pp-text');
    if (text && navigator.clipboard) { await navigator.clipboard.writeText(text.innerText); }
    const label = button.querySelector('.pp-btn-text');
    if (label) { label.innerText = 'Copied'; setTimeout(() => { label.innerText = 'Copy'; }, 1200); }
  } else if (action === 'winner') {
    if (!ok(cell, await server.pick_winner({comparison_id: Number(button.dataset.comparison), run_id: run}))) return;
    element.querySelectorAll('.pp-cell').forEach((c) => c.classList.toggle('pp-winner', c === cell));
  } else if (action === 'rerun' || action === 'reseed') {
    trigger('rerun', {index: Number(button.dataset.index), new_seed: action === 'reseed'});
  }
});
"""


def server_functions(log, owner_of=lambda request: None):
    """The functions GRID_JS calls; each takes one payload dict from the page and answers {ok, error}: a bad
    payload (any JSON a client can send) gets a readable refusal, never a server error."""
    from ..requests import Rating, Winner, check
    from .errors import user_error

    def answer(work) -> dict:
        try:
            work()
        except Exception as error:          # the boundary of the page's own calls: always answer in words
            return {"ok": False, "error": user_error(error, log.data_dir).message}
        return {"ok": True}

    def rate_cell(payload: dict, request: gr.Request) -> dict:
        def work():
            rating = check(Rating, payload, root="payload")
            log.rate(rating.run_id, stars=rating.stars, thumbs=rating.thumbs, note=rating.note,
                     owner=owner_of(request))
        return answer(work)

    def pick_winner(payload: dict, request: gr.Request) -> dict:
        def work():
            winner = check(Winner, payload, root="payload")
            log.set_winner(winner.comparison_id, winner.run_id, owner=owner_of(request))
        return answer(work)

    return [rate_cell, pick_winner]
