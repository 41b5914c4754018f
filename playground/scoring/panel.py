"""The summary panel under a grid and in History: a chart per score (a dot per cell, each variant's mean and 95%
interval) and the pairwise table that says which variant wins and how sure that is.

`summary_html` is a pure function of a Summary (or its `to_dict()`): the app shows it under grids and the static
HTML report embeds it. The HTML comes from render/templates (summary.html.j2, chart.svg.j2). No gradio, no torch.
"""

from __future__ import annotations

import math

from ..render import Markup, render

PALETTE = ("#4f46e5", "#0891b2", "#d97706", "#db2777", "#16a34a", "#7c3aed", "#dc2626", "#475569")
WIDTH, LABEL_W, ROW_H, AXIS_H, PAD = 620, 130, 30, 26, 14

STYLE = Markup("""
<style>
.pp-summary { font-size: 14px; line-height: 1.4; }
.pp-summary h4 { margin: 14px 0 4px; font-size: 15px; }
.pp-summary .pp-note { opacity: 0.75; font-size: 12px; margin: 2px 0 6px; }
.pp-summary .pp-verdict { font-weight: 600; }
.pp-summary .pp-badge { display: inline-block; padding: 0 8px; border-radius: 10px; background: #16a34a;
  color: #fff; font-size: 12px; margin-left: 6px; }
.pp-summary svg { max-width: 100%; height: auto; display: block; }
.pp-summary table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; display: table; width: auto; }
/* Host pages (Gradio's HTML component) may style table parts for other layouts: these are plain tables. */
.pp-summary thead { display: table-header-group; } .pp-summary tbody { display: table-row-group; }
.pp-summary tr { display: table-row; } .pp-summary th, .pp-summary td { display: table-cell; float: none; }
.pp-summary th, .pp-summary td { border-bottom: 1px solid rgba(128,128,128,0.3); padding: 3px 8px; text-align: left;
  vertical-align: top; }
.pp-summary td.pp-num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.pp-summary .pp-clear { color: #16a34a; font-weight: 600; }
/* On a phone each row is a card, each value beside its column's name: nothing scrolls sideways. */
@media (max-width: 720px) {
  .pp-summary table, .pp-summary tbody, .pp-summary tr { display: block; width: auto; min-width: 0; }
  .pp-summary table { border: 0 !important; }
  .pp-summary thead { display: none; }
  .pp-summary tr { border: 1px solid rgba(128,128,128,0.3) !important; border-radius: 8px; margin: 0 0 8px;
    padding: 4px 6px; }
  .pp-summary th, .pp-summary td, .pp-summary td.pp-num { display: grid; grid-template-columns: 7rem 1fr;
    gap: 8px; border: 0 !important; padding: 1px 2px !important; text-align: left; white-space: normal; }
  .pp-summary td[data-label="reading"], .pp-summary td[data-label="reading"]::before { display: block; }
  .pp-summary td::before { content: attr(data-label); opacity: 0.7; font-size: 12px; }
}
</style>
""")


def _get(obj, name, default=None):
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def _num(x) -> str:
    if x is None:
        return "–"
    return f"{x:.3f}" if abs(x) < 1000 else f"{x:.0f}"


def _signed(x) -> str:
    return "–" if x is None else (f"{x:+.3f}" if abs(x) < 1000 else f"{x:+.0f}")


def _scale(metric) -> tuple[float, float]:
    """The x range of a chart: every dot and interval end, with a margin; a flat range is widened."""
    values = []
    for v in _get(metric, "variants", []):
        values += [_get(p, "value") for p in _get(v, "points", [])]
        values += [x for x in (_get(v, "low"), _get(v, "high"), _get(v, "mean")) if x is not None]
    values = [x for x in values if x is not None and math.isfinite(x)]
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if high == low:
        spread = abs(low) * 0.1 or 0.5
        return low - spread, high + spread
    margin = (high - low) * 0.06
    return low - margin, high + margin


def _chart(metric, variants: list[str]) -> dict:
    """The geometry of one score's chart (render/templates/chart.svg.j2 draws it)."""
    rows = _get(metric, "variants", [])
    low, high = _scale(metric)
    plot_w = WIDTH - LABEL_W - PAD
    x = lambda value: f"{LABEL_W + (value - low) / (high - low) * plot_w:.1f}"  # noqa: E731
    winner = _get(metric, "winner")
    laid_out = [_chart_row(row, i, x, variants, winner) for i, row in enumerate(rows)]
    axis_y = len(rows) * ROW_H + 4
    ticks = [{"x": x(low + (high - low) * k / 4), "text": _num(low + (high - low) * k / 4),
              "anchor": "start" if k == 0 else "end" if k == 4 else "middle"} for k in range(5)]
    return {"name": _get(metric, "name"), "width": WIDTH, "height": len(rows) * ROW_H + AXIS_H, "rows": laid_out,
            "left": LABEL_W, "right": WIDTH - PAD, "label_x": LABEL_W - 8, "axis_y": axis_y, "ticks": ticks}


def _chart_row(row, i: int, x, variants: list[str], winner) -> dict:
    variant = _get(row, "variant")
    y = i * ROW_H + ROW_H / 2
    dots = []
    for j, point in enumerate(_get(row, "points", [])):
        value = _get(point, "value")
        if value is not None and math.isfinite(value):
            jitter = ((j * 7) % 9 - 4) * 1.6            # spread equal values apart, the same way every time
            dots.append({"cx": x(value), "cy": f"{y + jitter:.1f}", "label": _get(point, "label"),
                         "value": _num(value)})
    lo, hi, mean = _get(row, "low"), _get(row, "high"), _get(row, "mean")
    return {"variant": variant, "winner": variant == winner, "y": f"{y:.1f}", "text_y": f"{y + 4:.1f}",
            "color": PALETTE[variants.index(variant) % len(PALETTE)] if variant in variants else PALETTE[-1],
            "dots": dots, "n": _get(row, "n"),
            "interval": {"x1": x(lo), "x2": x(hi), "y": f"{y + 10:.1f}", "low": _num(lo), "high": _num(hi)}
            if lo is not None and hi is not None else None,
            "mean": {"x": x(mean), "y1": f"{y - 11:.1f}", "y2": f"{y + 14:.1f}", "value": _num(mean)}
            if mean is not None else None}


def chart_svg(metric, variants: list[str]) -> str:
    """One score as an inline SVG: a row per variant, a dot per cell, a bar for the 95% interval, a tick at the
    mean. Each dot's tooltip names its cell."""
    return render("chart.svg.j2", c=_chart(metric, variants))


def _metric(metric, variants: list[str]) -> dict:
    direction = {"higher": "higher is better", "lower": "lower is better"}.get(_get(metric, "better"),
                                                                             "a measurement")
    rows = [{"variant": _get(v, "variant"), "n": _get(v, "n"), "mean": _num(_get(v, "mean")),
             "low": _num(_get(v, "low")), "high": _num(_get(v, "high")), "failed": _get(v, "failed"),
             "missing": _get(v, "missing")} for v in _get(metric, "variants", [])]
    pairs = [{"a": _get(p, "a"), "b": _get(p, "b"), "n": _get(p, "n"), "mean_diff": _signed(_get(p, "mean_diff")),
              "interval": f"{_signed(_get(p, 'low'))} to {_signed(_get(p, 'high'))}"
              if _get(p, "low") is not None else "–",
              "wins": _get(p, "wins"), "losses": _get(p, "losses"), "ties": _get(p, "ties"),
              "p_value": "–" if _get(p, "p_value") is None else f"{_get(p, 'p_value'):.3g}",
              "clear": _get(p, "clear"), "sentence": _get(p, "sentence")} for p in _get(metric, "pairs", [])]
    return {"name": _get(metric, "name"), "kind": _get(metric, "kind"), "direction": direction,
            "winner": _get(metric, "winner"), "verdict": _get(metric, "verdict"), "note": _get(metric, "note"),
            "chart": _chart(metric, variants), "variants": rows, "pairs": pairs}


def summary_html(summary) -> str:
    """The whole panel as one HTML string (inline SVG, no scripts), from a Summary or its to_dict()."""
    if summary is None:
        return render("summary.html.j2", summary=None, metrics=[], style=STYLE)
    variants = list(_get(summary, "variants", []))
    head = {"cells": _get(summary, "cells", 0), "failed": _get(summary, "failed", 0),
            "resamples": _get(summary, "resamples"), "left_out": list(_get(summary, "left_out", None) or [])}
    return render("summary.html.j2", summary=head, style=STYLE,
                  metrics=[_metric(m, variants) for m in _get(summary, "metrics", [])])


def winners_by_variant(summary) -> dict[str, list[str]]:
    """variant -> the scores it clearly wins, for a badge on its column (no entry: no clear win)."""
    found: dict[str, list[str]] = {}
    for metric in _get(summary, "metrics", []) if summary is not None else []:
        if _get(metric, "winner"):
            found.setdefault(_get(metric, "winner"), []).append(_get(metric, "name"))
    return found


def comparison_panel(log, comparison_id: int) -> str | None:
    """The panel of a logged comparison, or None when it has no scores or ratings to summarise."""
    from .stats import comparison_summary

    summary = comparison_summary(log, comparison_id)
    return summary_html(summary) if summary.metrics else None
