"""What the Experiments tab shows, drawn from the Jinja templates in playground/render: a dataset's preview, the dry
run, the list of experiments with their progress, one page of the results table (media as small lazily loaded
thumbnails and players), a cell's full record, and two experiments compared row by row. Plain functions of what
playground.experiments returns; no gradio here."""

from __future__ import annotations

import json

from ...experiments import ExperimentComparison, ExperimentStatus, ResultsPage
from ...experiments.api import clock
from ...render import render
from ...store.scores import scores_for_runs
from ..grid import file_url

PREVIEW_ROWS = 8
VALUE_CHARS = 160           # a template value or reference in a table row
CHANGE_ROWS = 100           # rows listed per group (better, worse) when two experiments are compared


def _clip(text, limit: int = VALUE_CHARS) -> str:
    text = " ".join(str(text if text is not None else "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def dataset_html(preview) -> str:
    info = preview.dataset
    source = info.source or {}
    described = {"hub": f"Hugging Face {source.get('id', '')}", "file": f"file {source.get('name', '')}"}.get(
        source.get("kind"), "")
    return render("dataset_preview.html.j2", info=info, rows=preview.rows[:PREVIEW_ROWS], source=described)


def estimate_html(estimate, ready: bool) -> str:
    models = [{"model": m.model, "basis": m.basis, "cells": m.cells, "calls": m.calls,
               "prompt_tokens": m.prompt_tokens, "completion_tokens": m.completion_tokens,
               "time": clock(m.seconds) if m.seconds is not None else "unknown",
               "cost": f"{m.cost:.4f}" if m.cost is not None else "–"} for m in estimate.models]
    return render("experiment_estimate.html.j2", e=estimate, models=models, ready=ready,
                  time=clock(estimate.seconds) if estimate.seconds is not None else "unknown (no timings yet)",
                  cost=f"{estimate.cost:.4f}" if estimate.cost is not None else "")


def listing_html(statuses: list[ExperimentStatus], opened: int | None) -> str:
    shown = [{"id": s.id, "title": s.title, "status": s.status, "total": s.total, "finished": s.done + s.failed,
              "failed": s.failed, "tokens": s.tokens, "speed": f"{s.cells_per_s:.1f}" if s.cells_per_s else "–",
              "elapsed": clock(s.elapsed_s), "left": clock(s.remaining_s) if s.remaining_s is not None and s.left
              else "–"} for s in statuses]
    return render("experiment_list.html.j2", experiments=shown, opened=opened)


def status_html(status: ExperimentStatus, parent: int | None = None) -> str:
    summary = status.summary or {}
    described = " · ".join(bit for bit in (
        f"template {summary['template']}" if summary.get("template") else "",
        f"dataset {summary['dataset']}" if summary.get("dataset") else "",
        summary.get("sample") or "",
        f"models {', '.join(summary['models'])}" if summary.get("models") else "",
        f"seeds {', '.join(str(s) for s in summary['seeds'])}" if summary.get("seeds") else "") if bit)
    return render("experiment_status.html.j2", s=status, line=status.line(), summary=described, parent=parent)


def _media(log, relative: str | None) -> str | None:
    """The page's URL of a file the log keeps (an output, or a row's reference image or clip)."""
    path = log.inside(relative)
    return file_url(str(path)) if path is not None and path.is_file() else None


def _cell(log, variant: str, cell, modality: str) -> dict:
    if cell is None:                   # not run yet: the job is still on its way to this cell
        return {"variant": variant, "missing": True, "status": "missing"}
    media = _media(log, cell.artifact)
    scores = [{"name": name, "value": _number(s["value"]), "passed": s["passed"]}
              for name, s in sorted(cell.scores.items())]
    return {"variant": variant, "missing": False, "status": cell.status, "run_id": cell.run_id,
            "error": _clip(cell.error, 300) if cell.status != "ok" else None, "text": cell.output,
            "image": media if modality == "image" else None, "audio": media if modality == "music" else None,
            "scores": scores}


def table_html(log, page: ResultsPage, modality: str, *, sorted_by: str = "", empty: str = "") -> str:
    """One page of the table; only this page's cells are drawn."""
    show_extra = len({(r.seed, r.model) for r in page.rows}) > 1
    rows = [{"dataset_row": r.dataset_row, "diff": _number(r.diff),
             "extra": f"seed {r.seed} · {r.model}" if show_extra else "",
             "filled": [(name, _clip(value)) for name, value in r.values.items()],
             "reference": _clip(r.reference) if r.reference is not None else "",
             "reference_media": _media(log, r.reference_file),
             "cells": [_cell(log, v, r.cells.get(v), modality) for v in page.variants]} for r in page.rows]
    return render("experiment_table.html.j2", rows=rows, variants=page.variants, sorted=sorted_by,
                  show_reference=any(r.reference is not None or r.reference_file for r in page.rows),
                  media_kind="audio" if modality == "music" else "image", experiment_id=page.experiment_id,
                  empty=empty or "No rows match.")


RECORD_FIELDS = ("comparison_id", "cell_key", "template_name", "template_hash", "variant", "model_id",
                 "model_revision", "backend", "endpoint", "device", "dtype", "seed", "row", "col", "prompt",
                 "system", "negative_prompt", "formatted_prompt", "reference", "wall_s", "load_s", "ttft_s",
                 "tokens_per_s", "prompt_tokens", "completion_tokens", "realtime_factor", "cached_from",
                 "artifact", "created_at", "stars", "thumbs", "note")


def record_html(log, record) -> str:
    """Everything the log holds about one cell: what reproduces it (model, revision, seed, params, the exact
    prompt), its whole output, and its scores with their detail."""
    fields = [("values", json.dumps(record.variables, ensure_ascii=False, default=str))]
    fields += [(name, _plain(getattr(record, name))) for name in RECORD_FIELDS
               if getattr(record, name) not in (None, "", {})]
    fields += [(name, json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1, default=str))
               for name, value in (("params", record.params), ("versions", record.versions),
                                   ("metrics", record.metrics)) if value]
    scores = [{"name": s.name, "value": _number(s.value), "passed": s.passed,
               "detail": json.dumps(s.detail, ensure_ascii=False, sort_keys=True, indent=1, default=str)}
              for s in scores_for_runs(log, [record.id]).get(record.id, {}).values()]
    return render("run_record.html.j2", r=record, fields=fields, scores=scores,
                  media_url=_media(log, record.artifact))


def _plain(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def comparison_html(result: ExperimentComparison, chosen: set[int] | None = None) -> str:
    def rows(changes):
        return [{"row": c.dataset_row, "filled": _clip(", ".join(f"{k}={v}" for k, v in c.values.items())),
                 "baseline": _number(c.baseline), "candidate": _number(c.candidate),
                 "change": f"{c.change:+.3g}"} for c in changes[:CHANGE_ROWS]]
    groups = [{"title": "Got worse", "total": len(result.worsened), "rows": rows(result.worsened)},
              {"title": "Got better", "total": len(result.improved), "rows": rows(result.improved)}]
    direction = {"higher": "higher is better", "lower": "lower is better"}.get(result.better, "a measurement")
    return render("experiment_compare.html.j2", c=result, groups=groups, chosen=chosen or set(),
                  direction=direction)
