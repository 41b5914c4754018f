"""The side-by-side results grid: one column per variant, one row per value set / seed / model.

Rendered as one HTML block so a streaming run can redraw it cheaply; per-cell buttons call small server functions
(rate, note, winner) or fire a `rerun` event, wired up in `GRID_JS`.
"""

from __future__ import annotations

import functools
import wave
from dataclasses import dataclass, field
from urllib.parse import quote

import numpy as np
from markupsafe import Markup

from ..render import render, rerun_badge, status_text
from ..render.words import planned_cells

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
    view.badge = rerun_badge(record)
    view.cached = record.cached_from is not None
    view.error = record.error
    view.metrics = {"wall_s": record.wall_s, "load_s": record.load_s, "tokens_per_s": record.tokens_per_s,
                    "completion_tokens": record.completion_tokens, "realtime_factor": record.realtime_factor}
    return view


def views_for_records(records, log) -> list[CellView]:
    """Views of logged runs (live ones: one per cell); a re-run cell keeps its row's label and shows its own seed."""
    show_model = len({r.model_id for r in records}) > 1
    reruns = [r for r in records if r.replaces is not None and r.comparison_id is not None]
    seeds = log.row_seeds(reruns[0].comparison_id) if reruns else {}
    views = []
    for index, record in enumerate(records):
        seed = seeds.get(record.row, record.seed) if record.replaces is not None else record.seed
        view = CellView(index=index, row=record.row, col=record.col, variant=record.variant or "prompt",
                        row_label=row_label(record.variables or {}, seed, record.model_id, show_model))
        views.append(apply_record(view, record, log))
    return views


def logged_progress(comparison, *details: str) -> dict:
    """render_grid's status line for a logged comparison: its live cells out of those it was started with, what
    became of it (done, stopped, interrupted...), then `details`."""
    live = comparison.run_count or 0
    return {"done": live, "total": max(planned_cells(comparison) or live, live), "status": comparison.status,
            "message": " · ".join([status_text(comparison), *[d for d in details if d]])}


def file_url(path: str) -> str:
    return "/gradio_api/file=" + quote(path)


def render_grid(views: list[CellView], modality: str, *, done: int | None = None, total: int | None = None,
                comparison_id: int | None = None, winner_run_id: int | None = None, message: str = "",
                cell_reruns: bool = True, badges: dict[str, list[str]] | None = None, key: str = "",
                status: str | None = None) -> str:
    """`cell_reruns`: show the per-cell re-run buttons (the comparison tabs handle them; History re-runs whole
    comparisons instead). `badges`: variant -> the scores it clearly wins (statistics), shown on its column.
    `key`: the grid key of the visitor it is drawn for (Visitors.grid_key), sent back with its ratings.
    `status`: a logged comparison's status (see logged_progress); one that did not finish is marked."""
    columns = sorted({(v.col, v.variant) for v in views})
    labels: dict[int, str] = {}
    for view in sorted(views, key=lambda v: (v.row, v.col)):
        if view.badge is None:
            labels.setdefault(view.row, view.row_label)
    for view in views:
        labels.setdefault(view.row, view.row_label)
    by_pos = {(v.row, v.col): v for v in views}
    rows = [{"label": label, "cells": [_cell(by_pos.get((row, col)), modality, winner_run_id) for col, _ in columns]}
            for row, label in sorted(labels.items())]
    unfinished = status in ("cancelled", "interrupted")
    return render("grid.html.j2", rows=rows, modality=modality, done=done, total=total, message=message,
                  progress_class="stopped" if unfinished else "done" if total and done == total else "running",
                  comparison_id=comparison_id, cell_reruns=cell_reruns, key=key,
                  columns=[{"name": name, "wins": (badges or {}).get(name)} for _, name in columns])


def _cell(view: CellView | None, modality: str, winner_run_id: int | None) -> dict | None:
    if view is None:
        return None
    media = file_url(view.media) if view.media else None
    return {"view": view, "label": f"{view.variant} · {view.row_label}", "media_url": media,
            "winner": bool(view.run_id and view.run_id == winner_run_id), "metrics": _metrics_text(view),
            "placeholder": STATUS_TEXT.get(view.status, ""),
            "wave": _waveform(view.media) if media and modality == "music" else None}


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


# Drawn once per page (app.py puts it in the header).
ICON_SPRITE = render("icons.html.j2", icons={name: Markup(path) for name, path in _ICON_PATHS.items()})


@functools.lru_cache(maxsize=256)       # a clip's file never changes, and the grid is redrawn several times a second
def _waveform(path: str, bars: int = 96) -> dict | None:
    """A small peak-envelope picture of the clip, drawn server-side so the page needs no audio decoding."""
    try:
        with wave.open(path) as clip:
            frames = np.frombuffer(clip.readframes(clip.getnframes()), dtype="<i2").astype(np.float32) / 32768
            frames = frames.reshape(-1, clip.getnchannels()).mean(axis=1)
    except (OSError, wave.Error, ValueError):
        return None
    if frames.size == 0:
        return None
    chunks = np.array_split(np.abs(frames), bars)
    peaks = np.array([c.max() if c.size else 0.0 for c in chunks])
    peaks = peaks / max(peaks.max(), 1e-6)
    return {"width": bars * 3, "bars": [{"x": i * 3, "y": f"{20 - p * 19:.1f}", "height": f"{max(p * 38, 1):.1f}"}
                                        for i, p in enumerate(peaks)]}


# Delegated listener: survives every redraw of the grid's inner HTML. Server answers are {ok, error}.
GRID_JS = """
const cellOf = (el) => el.closest('.pp-cell');
const key = () => element.querySelector('.pp-grid-wrap')?.dataset.key || '';
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
    if (!ok(cell, await server.rate_cell({run_id: run, stars: stars, key: key()}))) return;
    cell.querySelectorAll('.pp-star').forEach((s) => s.classList.toggle('on', Number(s.dataset.stars) <= stars));
  } else if (action === 'thumb') {
    const value = Number(button.dataset.value);
    if (!ok(cell, await server.rate_cell({run_id: run, thumbs: value, key: key()}))) return;
    cell.querySelectorAll('.pp-thumb').forEach((t) => t.classList.toggle('on', t === button));
  } else if (action === 'note') {
    const current = cell.querySelector('.pp-note');
    const note = window.prompt('Note for this output', current ? current.innerText : '');
    if (note === null) return;
    if (!ok(cell, await server.rate_cell({run_id: run, note: note, key: key()}))) return;
    let box = current;
    if (!box) { box = document.createElement('div'); box.className = 'pp-note'; cell.appendChild(box); }
    box.innerText = note;
  } else if (action === 'copy') {
    const text = cell.querySelector('.pp-text');
    if (text && navigator.clipboard) { await navigator.clipboard.writeText(text.innerText); }
    const label = button.querySelector('.pp-btn-text');
    if (label) { label.innerText = 'Copied'; setTimeout(() => { label.innerText = 'Copy'; }, 1200); }
  } else if (action === 'winner') {
    if (!ok(cell, await server.pick_winner({comparison_id: Number(button.dataset.comparison), run_id: run, key: key()}))) return;
    element.querySelectorAll('.pp-cell').forEach((c) => c.classList.toggle('pp-winner', c === cell));
  } else if (action === 'rerun' || action === 'reseed') {
    trigger('rerun', {index: Number(button.dataset.index), new_seed: action === 'reseed'});
  }
});
"""


def server_functions(log, visitors):
    """The functions GRID_JS calls; each takes one payload dict from the page and answers {ok, error}: a bad
    payload (any JSON a client can send) gets a readable refusal, never a server error. The payload's `key` is the
    grid's (Visitors.grid_key): it says whose page asks, where visitors are kept apart."""
    from ..requests import Rating, Winner, check
    from .errors import user_error

    def answer(model, payload, act) -> dict:
        try:
            fields = dict(payload) if isinstance(payload, dict) else payload
            owner = visitors.owner_of_grid_key(fields.pop("key", "") if isinstance(fields, dict) else "")
            act(check(model, fields, visitors.settings, root="payload"), owner)
        except Exception as error:          # the boundary of the page's own calls: always answer in words
            return {"ok": False, "error": user_error(error, log.data_dir).message}
        return {"ok": True}

    def rate_cell(payload: dict) -> dict:
        return answer(Rating, payload, lambda r, owner: log.rate(r.run_id, stars=r.stars, thumbs=r.thumbs,
                                                                 note=r.note, owner=owner))

    def pick_winner(payload: dict) -> dict:
        return answer(Winner, payload, lambda w, owner: log.set_winner(w.comparison_id, w.run_id, owner=owner))

    return [rate_cell, pick_winner]
