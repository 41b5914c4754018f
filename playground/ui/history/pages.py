"""The run log as the History tab shows it: times for people, table rows, and a logged comparison one page of
cells at a time (a comparison with thousands of runs stays a small page)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from pydantic import TypeAdapter

from ...render import cells_text, status_text
from ...requests import Id, RequestError, check_value
from ...services import Services
from .. import grid
from ..evidence import evidence

COMPARISON_HEADERS = ["#", "when", "modality", "title", "cells", "status", "winner"]
RUN_HEADERS = ["run", "#", "when", "variant", "model", "seed", "stars", "prompt", "output"]
PAGE_CELLS = 48            # cells drawn per page when a comparison is opened
MAX_SUMMARY_RUNS = 2000    # statistics read every run: past this the panel is left to `python -m playground stats`
_ID = TypeAdapter(Id)


def when(iso: str, now: _dt.datetime | None = None) -> str:
    """'2025-01-31T12:00:00.123Z' -> '2025-01-31 12:00' with how long ago, for people rather than parsers."""
    try:
        moment = _dt.datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    now = now or _dt.datetime.now(_dt.timezone.utc)
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        ago = ""
    elif seconds < 60:
        ago = "just now"
    elif seconds < 3600:
        ago = f"{int(seconds // 60)} min ago"
    elif seconds < 86400:
        ago = f"{int(seconds // 3600)} h ago"
    else:
        ago = f"{int(seconds // 86400)} d ago"
    return moment.strftime("%Y-%m-%d %H:%M") + (f" · {ago}" if ago else "")


def comparison_rows(services: Services, modality=None, template=None, limit=200, owner=None,
                    runs_matching: dict | None = None) -> list[list]:
    """The Comparisons table; `runs_matching` (run filters) keeps those with a live run that matches."""
    found = services.log.list_comparisons(modality=modality, template=template, limit=limit, owner=owner,
                                          runs_matching=runs_matching)
    return [[c.id, when(c.created_at), c.modality, c.title, cells_text(c), status_text(c),
             f"run {c.winner_run_id}" if c.winner_run_id else ""] for c in found]


def run_rows(records) -> list[list]:
    return [[r.id, r.comparison_id, when(r.created_at), r.variant or "", r.model_id, r.seed,
             "★" * (r.stars or 0), _clip(r.prompt, 80),
             _clip(r.output_text or r.error or (Path(r.artifact).name if r.artifact else ""), 80)]
            for r in records]


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def parse_comparison_id(raw) -> int:
    """What a person types in the '#' box: '12' or '#12' (a number from a table row passes as it is)."""
    if isinstance(raw, str):
        cleaned = raw.strip().lstrip("#").strip()
        if not cleaned:
            raise RequestError([("comparison number", "is empty; type one, or click a row in the tables")])
        if not cleaned.isdigit() or not cleaned.isascii():
            raise RequestError([("comparison number", f"must be a number like 12, got {raw[:40]!r}")])
        raw = int(cleaned)
    return check_value(_ID, raw, {}, root="comparison number")


def page_count(run_count: int) -> int:
    return max(1, -(-int(run_count or 0) // PAGE_CELLS))


def render_page(services: Services, comparison_id, page: int = 0, owner: str | None = None
                ) -> tuple[str, int, str, int]:
    """(grid and panel HTML, comparison id, the id as typed, page shown) for one page of a logged comparison."""
    comparison_id = parse_comparison_id(comparison_id)
    header = services.log.get_comparison_header(comparison_id, owner=owner)
    pages = page_count(header.run_count)
    page = min(max(0, int(page or 0)), pages - 1)
    records = services.log.list_runs(comparison_id=header.id, limit=PAGE_CELLS, offset=page * PAGE_CELLS,
                                     newest_first=False, live_only=True)
    views = grid.views_for_records(records, services.log)
    shown = (f" · cells {page * PAGE_CELLS + 1}–{page * PAGE_CELLS + len(records)} of {header.run_count:,}"
             if pages > 1 else "")
    panel, badges = evidence(services.log, header.id, owner) if header.run_count <= MAX_SUMMARY_RUNS else ("", {})
    html_ = grid.render_grid(views, header.modality, comparison_id=header.id, winner_run_id=header.winner_run_id,
                             cell_reruns=False, badges=badges, key=services.visitors.grid_key(owner),
                             **grid.logged_progress(header, f"#{header.id} {header.title}", when(header.created_at)
                                                    + shown))
    return html_ + panel, header.id, str(header.id), page
