"""The side-by-side results grid: one column per variant, one row per value set / seed / model.

Rendered as one HTML block so a streaming run can redraw it cheaply; per-cell buttons call small server functions
(rate, note, winner) or fire a `rerun` event, wired up in `GRID_JS`.
"""

from __future__ import annotations

import html
import wave
from dataclasses import dataclass, field
from urllib.parse import quote

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


def render_grid(views: list[CellView], modality: str, *, done: int | None = None, total: int | None = None,
                comparison_id: int | None = None, winner_run_id: int | None = None, message: str = "",
                cell_reruns: bool = True) -> str:
    """`cell_reruns`: show the per-cell re-run buttons (the comparison tabs handle them; History re-runs whole
    comparisons instead)."""
    if not views:
        return ('<div class="pp-empty">Pick a template, edit the variants, and press <b>Run</b>. '
                'Outputs appear here side by side, one column per variant.</div>')
    columns = sorted({(v.col, v.variant) for v in views})
    col_index = {col: i for i, (col, _) in enumerate(columns)}
    rows = sorted({(v.row, v.row_label) for v in views})
    header = "".join(f'<div class="pp-colhead">{html.escape(name)}</div>' for _, name in columns)
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
        bits.append(f"{m['realtime_factor']:.2f}× real time")
    if view.cached:
        bits.append("cached")
    elif m.get("wall_s") is not None:
        bits.append(f"{m['wall_s']:.2f} s batch")
    if m.get("load_s"):
        bits.append(f"+{m['load_s']:.1f} s load")
    return " · ".join(bits)


def _actions(view: CellView, comparison_id: int | None, cell_reruns: bool) -> str:
    run = view.run_id
    stars = "".join(
        f'<button class="pp-star{" on" if view.stars and s <= view.stars else ""}" data-action="rate" '
        f'data-run="{run}" data-stars="{s}" title="{s} star{"s" if s > 1 else ""}">★</button>' for s in range(1, 6))
    thumbs = (f'<button class="pp-thumb{" on" if view.thumbs == 1 else ""}" data-action="thumb" data-run="{run}" '
              f'data-value="1" title="Good">👍</button>'
              f'<button class="pp-thumb{" on" if view.thumbs == -1 else ""}" data-action="thumb" data-run="{run}" '
              f'data-value="-1" title="Bad">👎</button>')
    tools = [f'<button data-action="note" data-run="{run}" title="Add a note">✎</button>']
    if view.text is not None:
        tools.append(f'<button data-action="copy" data-run="{run}" title="Copy the text">📋</button>')
    if view.media:
        tools.append(f'<a class="pp-download" href="{file_url(view.media)}" download title="Download">⤓</a>')
    if cell_reruns:
        tools.append(f'<button data-action="rerun" data-index="{view.index}" '
                     f'title="Re-run this cell (same seed)">↻</button>')
        tools.append(f'<button data-action="reseed" data-index="{view.index}" title="Re-run with a new seed">🎲</button>')
    if comparison_id:
        tools.append(f'<button data-action="winner" data-run="{run}" data-comparison="{comparison_id}" '
                     f'title="Pick as the winner of this comparison">🏆</button>')
    return f'<div class="pp-actions"><span class="pp-stars">{stars}</span>{thumbs}{"".join(tools)}</div>'


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


# Delegated listener: survives every redraw of the grid's inner HTML.
GRID_JS = """
const cellOf = (el) => el.closest('.pp-cell');
element.addEventListener('click', async (event) => {
  const button = event.target.closest('[data-action]');
  if (!button) return;
  const action = button.dataset.action;
  const run = Number(button.dataset.run);
  const cell = cellOf(button);
  if (action === 'rate') {
    const stars = Number(button.dataset.stars);
    await server.rate_cell({run: run, stars: stars});
    cell.querySelectorAll('.pp-star').forEach((s) => s.classList.toggle('on', Number(s.dataset.stars) <= stars));
  } else if (action === 'thumb') {
    const value = Number(button.dataset.value);
    await server.rate_cell({run: run, thumbs: value});
    cell.querySelectorAll('.pp-thumb').forEach((t) => t.classList.toggle('on', t === button));
  } else if (action === 'note') {
    const current = cell.querySelector('.pp-note');
    const note = window.prompt('Note for this output', current ? current.innerText : '');
    if (note === null) return;
    await server.rate_cell({run: run, note: note});
    let box = current;
    if (!box) { box = document.createElement('div'); box.className = 'pp-note'; cell.appendChild(box); }
    box.innerText = note;
  } else if (action === 'copy') {
    const text = cell.querySelector('.pp-text');
    if (text && navigator.clipboard) { await navigator.clipboard.writeText(text.innerText); }
    button.innerText = '✓';
    setTimeout(() => { button.innerText = '📋'; }, 1200);
  } else if (action === 'winner') {
    await server.pick_winner({comparison: Number(button.dataset.comparison), run: run});
    element.querySelectorAll('.pp-cell').forEach((c) => c.classList.toggle('pp-winner', c === cell));
  } else if (action === 'rerun' || action === 'reseed') {
    trigger('rerun', {index: Number(button.dataset.index), new_seed: action === 'reseed'});
  }
});
"""


def server_functions(log):
    """The functions GRID_JS calls; each takes one payload dict from the page."""

    def rate_cell(payload: dict) -> dict:
        log.rate(int(payload["run"]), stars=payload.get("stars"), thumbs=payload.get("thumbs"),
                 note=payload.get("note"))
        return {"ok": True}

    def pick_winner(payload: dict) -> dict:
        log.set_winner(int(payload["comparison"]), int(payload["run"]))
        return {"ok": True}

    return [rate_cell, pick_winner]

