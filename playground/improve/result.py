"""The honest end of a search: the winner against the original on the held-out part, read with the same paired
statistics as every comparison (pairs share a dataset row, seed and model; a bootstrap interval of the mean
difference and a sign test; clear only when both agree), and the chart of score by round."""

from __future__ import annotations

import math

from ..render import render
from ..scoring import comparison_summary
from .search import IMPROVED, ORIGINAL
from .spec import OBJECTIVE, ImproveSpec

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 620, 240, 56, 16, 14, 34
COLORS = {"scored": "#4f46e5", "original": "#475569", "unscored": "#d97706"}


def held_out_result(log, experiment_id: int, spec: ImproveSpec, best: str) -> dict:
    """What the held-out test says: the paired difference of `improved` minus `original` on the objective, its
    interval, wins and losses, the sign test, whether it is clear, and the sentence that says it."""
    summary = comparison_summary(log, experiment_id)
    metric = next((m for m in summary.metrics if m.name == OBJECTIVE), None)
    result = {"experiment": experiment_id, "candidate": best, "objective": spec.objective_text(),
              "cells": summary.cells, "failed": summary.failed}
    if metric is None:
        return {**result, "clear": False, "improved": False,
                "sentence": "no cell of the held-out test could be scored: nothing can be said"}
    means = {v.variant: v.mean for v in metric.variants}
    result.update(original_mean=means.get(ORIGINAL), improved_mean=means.get(IMPROVED))
    pair = next((p for p in metric.pairs if {p.a, p.b} == {ORIGINAL, IMPROVED}), None)
    if pair is None or pair.mean_diff is None:
        return {**result, "clear": False, "improved": False,
                "sentence": "no pairs of cells to compare on the held-out part"}
    sign = 1.0 if pair.a == IMPROVED else -1.0           # improved - original, whichever is ahead
    low, high = (pair.low, pair.high) if sign > 0 else (_neg(pair.high), _neg(pair.low))
    wins, losses = (pair.wins, pair.losses) if sign > 0 else (pair.losses, pair.wins)
    label = spec.objective_text() if len(spec.objective) > 1 else spec.objective[0].name
    sentence = pair.sentence.replace(f" on {OBJECTIVE} ", f" on {label} ").replace(f" on {OBJECTIVE}:",
                                                                                  f" on {label}:")
    if pair.clear and pair.a == ORIGINAL:
        sentence += " The original is better: keep it."
    elif not pair.clear:
        sentence += " The gain is not shown to be real: keep the original, or search with more rows."
    return {**result, "mean_diff": sign * pair.mean_diff, "low": low, "high": high, "pairs": pair.n,
            "wins": wins, "losses": losses, "ties": pair.ties, "p_value": pair.p_value, "clear": pair.clear,
            "improved": bool(pair.clear and pair.a == IMPROVED), "sentence": sentence}


def _neg(x):
    return None if x is None else -x


def chart_svg(record: dict) -> str:
    """Score by round as an inline SVG: a dot per scored candidate at its round, the best so far as a step line."""
    candidates = [c for c in record.get("candidates") or [] if c.get("score") is not None]
    by_round = sorted(record.get("by_round") or [], key=lambda r: r["round"])
    values = [c["score"] for c in candidates] + [r["score"] for r in by_round if r.get("score") is not None]
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return ""
    rounds = max([int(record.get("rounds") or 0)] + [c["round"] for c in candidates] + [r["round"] for r in by_round])
    low, high = min(values), max(values)
    if high == low:
        low, high = low - (abs(low) * 0.1 or 0.5), high + (abs(high) * 0.1 or 0.5)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x = lambda r: LEFT + (r / max(rounds, 1)) * plot_w              # noqa: E731
    y = lambda v: TOP + (1 - (v - low) / (high - low)) * plot_h      # noqa: E731
    dots = [{"cx": f"{x(c['round']) + ((i * 7) % 9 - 4) * 1.5:.1f}", "cy": f"{y(c['score']):.1f}",
             "color": COLORS.get(c["status"], COLORS["scored"]), "kept": c.get("kept"),
             "label": f"{c['name']}: {c['score']:.3f}"} for i, c in enumerate(candidates)]
    steps, previous = [], None
    for entry in by_round:
        point = (x(entry["round"]), y(entry["score"]))
        if previous is not None:
            steps.append(f"{point[0]:.1f},{previous[1]:.1f}")
        steps.append(f"{point[0]:.1f},{point[1]:.1f}")
        previous = point
    ticks_y = [{"y": f"{y(low + (high - low) * k / 4):.1f}", "text": _num(low + (high - low) * k / 4)}
               for k in range(5)]
    ticks_x = [{"x": f"{x(r):.1f}", "text": str(r)} for r in range(rounds + 1)]
    return render("improve_chart.svg.j2", c={
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "top": TOP,
        "bottom": HEIGHT - BOTTOM, "dots": dots, "line": " ".join(steps), "ticks_x": ticks_x, "ticks_y": ticks_y,
        "label_y": HEIGHT - 4, "best": record.get("best")})


def _num(x: float) -> str:
    return f"{x:.3f}" if abs(x) < 1000 else f"{x:.0f}"
