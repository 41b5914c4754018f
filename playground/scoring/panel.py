"""The summary panel under a grid and in History: a chart per score (a dot per cell, each variant's mean and 95%
interval) and the pairwise table that says which variant wins and how sure that is.

`summary_html` is a pure function of a Summary (or its `to_dict()`): the app shows it under grids and the static
HTML report embeds it. No gradio, no torch.
"""

from __future__ import annotations

import html
import math

PALETTE = ("#4f46e5", "#0891b2", "#d97706", "#db2777", "#16a34a", "#7c3aed", "#dc2626", "#475569")
WIDTH, LABEL_W, ROW_H, AXIS_H, PAD = 620, 130, 30, 26, 14

STYLE = """
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
</style>
"""


def _get(obj, name, default=None):
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def _e(value) -> str:
    return html.escape(str(value), quote=True)


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


def chart_svg(metric, variants: list[str]) -> str:
    """One score as an inline SVG: a row per variant, a dot per cell, a bar for the 95% interval, a tick at the
    mean. Each dot's tooltip names its cell."""
    rows = _get(metric, "variants", [])
    low, high = _scale(metric)
    plot_w = WIDTH - LABEL_W - PAD
    x = lambda value: LABEL_W + (value - low) / (high - low) * plot_w  # noqa: E731
    height = len(rows) * ROW_H + AXIS_H
    name = _get(metric, "name")
    parts = [f'<svg role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg" aria-label="{_e(name)} by variant">']
    winner = _get(metric, "winner")
    for i, row in enumerate(rows):
        variant = _get(row, "variant")
        color = PALETTE[variants.index(variant) % len(PALETTE)] if variant in variants else PALETTE[-1]
        y = i * ROW_H + ROW_H / 2
        weight = ' font-weight="700"' if variant == winner else ""
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + 4:.1f}" text-anchor="end" fill="currentColor" '
                     f'font-size="13"{weight}>{_e(variant)}{" ★" if variant == winner else ""}</text>')
        parts.append(f'<line x1="{LABEL_W}" x2="{WIDTH - PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="currentColor" '
                     f'stroke-opacity="0.12"/>')
        for j, point in enumerate(_get(row, "points", [])):
            value = _get(point, "value")
            if value is None or not math.isfinite(value):
                continue
            jitter = ((j * 7) % 9 - 4) * 1.6            # spread equal values apart, the same way every time
            parts.append(f'<circle class="pp-dot" cx="{x(value):.1f}" cy="{y + jitter:.1f}" r="4" fill="{color}" '
                         f'fill-opacity="0.5"><title>{_e(_get(point, "label"))}: {_e(_num(value))}</title></circle>')
        lo, hi, mean = _get(row, "low"), _get(row, "high"), _get(row, "mean")
        if lo is not None and hi is not None:
            parts.append(f'<line class="pp-interval" x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{y + 10:.1f}" '
                         f'y2="{y + 10:.1f}" stroke="{color}" stroke-width="3" stroke-linecap="round">'
                         f'<title>95% interval {_e(_num(lo))} to {_e(_num(hi))}</title></line>')
        if mean is not None:
            parts.append(f'<line class="pp-mean" x1="{x(mean):.1f}" x2="{x(mean):.1f}" y1="{y - 11:.1f}" '
                         f'y2="{y + 14:.1f}" stroke="{color}" stroke-width="2.5"><title>mean {_e(_num(mean))} '
                         f'over {_e(_get(row, "n"))} cells</title></line>')
    axis_y = len(rows) * ROW_H + 4
    parts.append(f'<line x1="{LABEL_W}" x2="{WIDTH - PAD}" y1="{axis_y}" y2="{axis_y}" stroke="currentColor" '
                 f'stroke-opacity="0.5"/>')
    for k in range(5):
        value = low + (high - low) * k / 4
        anchor = "start" if k == 0 else "end" if k == 4 else "middle"
        parts.append(f'<text x="{x(value):.1f}" y="{axis_y + 16}" text-anchor="{anchor}" font-size="11" '
                     f'fill="currentColor" fill-opacity="0.7">{_e(_num(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _variant_table(metric) -> str:
    rows = "".join(
        f'<tr><td>{_e(_get(v, "variant"))}</td><td class="pp-num">{_e(_get(v, "n"))}</td>'
        f'<td class="pp-num">{_num(_get(v, "mean"))}</td>'
        f'<td class="pp-num">{_num(_get(v, "low"))} to {_num(_get(v, "high"))}</td>'
        f'<td class="pp-num">{_e(_get(v, "failed"))}</td><td class="pp-num">{_e(_get(v, "missing"))}</td></tr>'
        for v in _get(metric, "variants", []))
    return ('<table class="pp-variant-stats"><thead><tr><th>variant</th><th>cells</th><th>mean</th><th>95% interval</th>'
            f'<th>failed</th><th>missing</th></tr></thead><tbody>{rows}</tbody></table>')


def _pair_table(metric) -> str:
    pairs = _get(metric, "pairs", [])
    if not pairs:
        return ""
    rows = []
    for p in pairs:
        interval = f"{_signed(_get(p, 'low'))} to {_signed(_get(p, 'high'))}" if _get(p, "low") is not None else "–"
        p_value = _get(p, "p_value")
        clear = ('<span class="pp-clear">clear</span>' if _get(p, "clear") else "not clear")
        rows.append(f'<tr><td>{_e(_get(p, "a"))} − {_e(_get(p, "b"))}</td><td class="pp-num">{_e(_get(p, "n"))}</td>'
                    f'<td class="pp-num">{_signed(_get(p, "mean_diff"))}</td><td class="pp-num">{interval}</td>'
                    f'<td class="pp-num">{_e(_get(p, "wins"))} / {_e(_get(p, "losses"))} / {_e(_get(p, "ties"))}'
                    f'</td><td class="pp-num">{"–" if p_value is None else f"{p_value:.3g}"}</td><td>{clear}</td>'
                    f'<td>{_e(_get(p, "sentence"))}</td></tr>')
    return ('<table class="pp-pairs"><thead><tr><th>pair</th><th>pairs</th><th>mean diff</th><th>95% interval</th>'
            '<th>win / loss / tie</th><th>sign test p</th><th>verdict</th><th>reading</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def summary_html(summary) -> str:
    """The whole panel as one HTML string (inline SVG, no scripts), from a Summary or its to_dict()."""
    if summary is None:
        return '<div class="pp-summary"><p>No comparison yet.</p></div>'
    variants = list(_get(summary, "variants", []))
    metrics = _get(summary, "metrics", [])
    head = (f'<p class="pp-note">{_e(_get(summary, "cells", 0))} cells, {_e(_get(summary, "failed", 0))} failed '
            f'(left out of every statistic). Means with 95% bootstrap intervals '
            f'({_e(_get(summary, "resamples"))} resamples, fixed seed); pairs compare cells with the same values, '
            f'seed and model.</p>')
    left_out = _get(summary, "left_out", None) or []
    if left_out:
        head += (f'<p class="pp-note">{len(left_out)} more score names are not summarized (a summary keeps the '
                 f'names most cells carry): {_e(", ".join(left_out[:5]))}{"…" if len(left_out) > 5 else ""}</p>')
    if not metrics:
        return (f'<div class="pp-summary">{STYLE}{head}<p>No scores or ratings yet: add checks to the template, '
                'or rate some cells.</p></div>')
    blocks = [STYLE, head]
    for metric in metrics:
        better = _get(metric, "better")
        direction = {"higher": "higher is better", "lower": "lower is better"}.get(better, "a measurement")
        badge = (f'<span class="pp-badge">winner: {_e(_get(metric, "winner"))}</span>'
                 if _get(metric, "winner") else "")
        note = _get(metric, "note")
        blocks.append(f'<section class="pp-metric" data-metric="{_e(_get(metric, "name"))}">'
                      f'<h4>{_e(_get(metric, "name"))} <small>({_e(_get(metric, "kind"))}, {direction})</small>'
                      f'{badge}</h4><p class="pp-verdict">{_e(_get(metric, "verdict"))}</p>'
                      + (f'<p class="pp-note">{_e(note)}</p>' if note else "")
                      + chart_svg(metric, variants) + _variant_table(metric) + _pair_table(metric) + "</section>")
    return f'<div class="pp-summary">{"".join(blocks)}</div>'


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
