"""One self-contained HTML file per comparison: readable offline in any browser, printable, no script.

Everything is inside the file: images as JPEG data URIs at display size, audio as short compressed clips, the
prompts and values, ratings, votes and rankings, the winner, and the reproduction record of every cell. Media
stops being embedded once `max_media_bytes` is reached; the report then says what was left out.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from pathlib import Path

from .. import __version__
from ..render import cells_text, render, rerun_badge, status_text, trusted
from ..store import RunLog, RunRecord
from ..store.votes import list_votes
from .media import Embedded, audio_clip, image_jpeg
from .preferences import comparison_ranking

MAX_MEDIA_BYTES = 20 * 1024 * 1024
N_BOOT = 300


def row_label(run: RunRecord, seed: int | None = None) -> str:
    """The values, seed and model of the run's row; `seed`: the row's own, where the run is a re-run with another."""
    values = ", ".join(f"{k}={v}" for k, v in (run.variables or {}).items())
    return " · ".join(x for x in (values, f"seed {run.seed if seed is None else seed}", run.model_id) if x)


def latest_per_cell(runs: list[RunRecord]) -> dict[tuple[int, int], RunRecord]:
    """The run at each (row, col) of a comparison's live runs (one per cell; the latest, should a cell hold more)."""
    cells: dict[tuple[int, int], RunRecord] = {}
    for run in sorted(runs, key=lambda r: r.id or 0):
        cells[(run.row, run.col)] = run
    return cells


class _Budget:
    def __init__(self, limit: int):
        self.limit, self.used, self.skipped = limit, 0, 0

    def admit(self, size: int) -> bool:
        if self.used + size > self.limit:
            self.skipped += 1
            return False
        self.used += size
        return True


def _media(log: RunLog, run: RunRecord, budget: _Budget) -> tuple[str, Embedded | None, str]:
    """(kind, embedded media or None, note when it is not there)."""
    if run.artifact is None:
        return "", None, ""
    path = log.artifact_path(run)
    kind = "audio" if run.artifact.lower().endswith((".wav", ".mp3", ".ogg", ".flac")) else "image"
    if path is None or not path.is_file():
        return kind, None, f"{kind} file {run.artifact} is missing from the log's data dir"
    try:
        embedded = audio_clip(path) if kind == "audio" else image_jpeg(path)
    except Exception as error:           # a damaged file must not stop the report
        return kind, None, f"{kind} file {run.artifact} could not be read: {error}"
    if not budget.admit(embedded.size):
        return kind, None, f"{kind} left out: the report's media size budget ({budget.limit // 2**20} MB) was reached"
    return kind, embedded, ""


def _variant_stats(runs: list[RunRecord]) -> dict[str, dict]:
    stats: dict[str, dict] = {}
    for run in runs:
        s = stats.setdefault(run.variant or f"column {run.col}",
                             {"cells": 0, "ok": 0, "stars": [], "thumbs_up": 0, "thumbs_down": 0})
        s["cells"] += 1
        s["ok"] += run.status == "ok"
        if run.stars:
            s["stars"].append(run.stars)
        s["thumbs_up"] += run.thumbs == 1
        s["thumbs_down"] += run.thumbs == -1
    for s in stats.values():
        s["rated"] = len(s["stars"])
        s["avg_stars"] = sum(s["stars"]) / len(s["stars"]) if s["stars"] else None
    return stats


def variant_table(log: RunLog, comparison_id: int, n_boot: int = N_BOOT, *, comparison=None,
                  votes: list | None = None) -> list[dict]:
    """Per variant, best first: vote rating with interval and bar positions (0-100), wins/ties/losses, ratings.
    A caller that has the comparison and its votes loaded already passes them."""
    comparison = comparison or log.get_comparison(comparison_id)
    votes = list_votes(log, comparison_id) if votes is None else votes
    stats = _variant_stats(comparison.runs)
    ranking = comparison_ranking(log, comparison.id, comparison=comparison, votes=votes,
                                 n_boot=n_boot if votes else 0)
    lo = min([r.low for r in ranking if r.games] or [0.0])
    hi = max([r.high for r in ranking if r.games] or [1.0])
    span = max(hi - lo, 1e-9)
    rows = []
    for r in ranking:
        s = stats.get(r.variant, {})
        rows.append({**r.__dict__, "games": r.games, "bar_low": round(100 * (r.low - lo) / span, 1),
                     "bar_high": round(100 * (r.high - lo) / span, 1),
                     "bar_mid": round(100 * (r.rating - lo) / span, 1),
                     **{k: s.get(k, 0) for k in ("cells", "ok", "rated", "thumbs_up", "thumbs_down")},
                     "avg_stars": s.get("avg_stars")})
    return rows


def _leader(ranking: list[dict]) -> dict:
    """The variant voters prefer, or the variants sharing the top rating when there is no single one."""
    voted = [r for r in ranking if r["games"]]
    top = [r for r in voted if voted and r["rating"] == voted[0]["rating"]]
    if len(top) == 1:
        return {"vote_leader": top[0], "vote_tied": []}
    return {"vote_leader": None, "vote_tied": [r["variant"] for r in top]}


def build_context(log: RunLog, comparison_id: int, *, summary_html: str | None = None,
                  max_media_bytes: int = MAX_MEDIA_BYTES) -> dict:
    comparison = log.get_comparison(comparison_id)
    cells = latest_per_cell(comparison.runs)
    row_seeds = log.row_seeds(comparison.id)
    columns = sorted({(col, run.variant or f"column {col}") for (_, col), run in cells.items()})
    col_index = {col: k for k, (col, _) in enumerate(columns)}
    budget = _Budget(max_media_bytes)
    rows, left_out = [], []
    for row in sorted({r for r, _ in cells}):
        runs_in_row = [cells[(row, col)] for col, _ in columns if (row, col) in cells]
        first = runs_in_row[0]
        row_cells: list[dict | None] = [None] * len(columns)
        for run in runs_in_row:
            kind, embedded, missing = _media(log, run, budget)
            if missing:
                left_out.append(f"run #{run.id} ({run.variant}): {missing}")
            row_cells[col_index[run.col]] = {
                "run_id": run.id, "variant": run.variant, "status": run.status, "error": run.error,
                "text": run.output_text, "image": embedded if kind == "image" else None,
                "audio": embedded if kind == "audio" else None, "missing": missing, "stars": run.stars,
                "thumbs": run.thumbs, "note": run.note, "wall_s": run.wall_s, "cached": run.cached_from is not None,
                "is_winner": run.id == comparison.winner_run_id, "rerun": rerun_badge(run)}
        rows.append({"values": first.variables or {}, "seed": row_seeds.get(row, first.seed), "model": first.model_id,
                     "cells": row_cells})
    if budget.skipped:
        left_out.insert(0, f"{budget.skipped} media file(s) beyond the {max_media_bytes // 2**20} MB budget; "
                           f"export the comparison as a zip for every file at full quality")

    prompts, seen = [], set()
    for (row, col), run in sorted(cells.items(), key=lambda item: (item[0][1], item[0][0])):
        key = (run.variant, run.prompt, run.system, run.negative_prompt)
        if key not in seen:
            seen.add(key)
            prompts.append({"variant": run.variant, "values": run.variables or {}, "prompt": run.prompt,
                            "system": run.system, "negative_prompt": run.negative_prompt})

    votes = list_votes(log, comparison.id)
    variant_of = {r.id: r.variant for r in comparison.runs}
    reasons = []
    for vote in votes:
        if vote.reason:
            verdict = {"tie": "tie", "both_bad": "both bad"}.get(vote.outcome) or \
                f"{variant_of.get(vote.winner_run_id)} over {variant_of.get(vote.loser_run_id)}"
            reasons.append({"verdict": verdict, "reason": vote.reason, "voter": vote.voter})
    ranking = variant_table(log, comparison.id, comparison=comparison, votes=votes)
    winner_run = next((r for r in comparison.runs if r.id == comparison.winner_run_id), None)
    records = []
    for run in sorted(comparison.runs, key=lambda r: (r.row, r.col, r.id)):
        records.append({**run.__dict__, "params_json": json.dumps(run.params, indent=1, sort_keys=True, default=str),
                        "versions_json": json.dumps(run.versions, indent=1, sort_keys=True, default=str),
                        "variables_json": json.dumps(run.variables, ensure_ascii=False, default=str)})
    return {
        "title": comparison.title or f"Comparison #{comparison.id}", "comparison": comparison,
        "version": __version__, "generated_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cell_count": len(comparison.runs), "cells_text": cells_text(comparison),
        "status_text": status_text(comparison), "columns": [name for _, name in columns], "rows": rows,
        "prompts": prompts, "ranking": ranking, "vote_count": len(votes), "reasons": reasons, "n_boot": N_BOOT,
        **_leader(ranking if votes else []),
        "winner": {"variant": winner_run.variant, "run_id": winner_run.id, "row_label": row_label(winner_run)}
        if winner_run else None,
        "records": records, "left_out": left_out,
        "summary_html": trusted(summary_html),     # the panel, rendered by our own templates
    }


def render_report(log: RunLog, comparison_id: int, *, summary_html: str | None = None,
                  max_media_bytes: int = MAX_MEDIA_BYTES) -> str:
    context = build_context(log, comparison_id, summary_html=summary_html, max_media_bytes=max_media_bytes)
    return render("report.html.j2", **context)


def write_report(log: RunLog, comparison_id: int, path: Path, summary_html: str | None = None, *,
                 max_media_bytes: int = MAX_MEDIA_BYTES) -> Path:
    """Write the report of one comparison to `path` (complete or not at all); returns the path.

    `summary_html`: an optional pre-rendered HTML fragment (automatic scores, stats) placed above the grid."""
    text = render_report(log, comparison_id, summary_html=summary_html, max_media_bytes=max_media_bytes)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
