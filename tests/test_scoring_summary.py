"""The summary panel: pure HTML with an inline SVG chart per score, the pairwise table, and the winner badge."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from playground.scoring.stats import summarize
from playground.store import RunRecord
from playground.store.scores import Score
from playground.scoring.panel import chart_svg, summary_html, winners_by_variant


def summary_of(diffs, metric="clip", note=None):
    runs, scores = [], {}
    for seed, d in enumerate(diffs):
        for variant, value in (("plain", 0.2), ("role <b>", 0.2 + d)):
            run = RunRecord(modality="image", model_id="tiny-image", prompt="p", seed=seed, params={},
                            variant=variant, id=len(runs) + 1)
            runs.append(run)
            detail = {"check": metric, "better": "higher", **({"meaningless": True, "note": note} if note else {})}
            scores[run.id] = {metric: Score(metric, value, detail=detail)}
    runs.append(RunRecord(modality="image", model_id="tiny-image", prompt="p", seed=99, params={}, variant="plain",
                          status="error", id=len(runs) + 1))
    return summarize(runs, scores)


def test_panel_has_one_chart_per_score_with_a_dot_per_cell_and_an_interval_per_variant():
    summary = summary_of([0.03, 0.02, 0.04, 0.03, 0.05, 0.02, 0.03, 0.04], note="tiny model: meaningless")
    page = summary_html(summary)
    svgs = re.findall(r"<svg.*?</svg>", page, re.DOTALL)
    assert len(svgs) == 1
    tree = ET.fromstring(svgs[0])                      # well-formed SVG
    ns = "{http://www.w3.org/2000/svg}"
    dots = [c for c in tree.iter(f"{ns}circle") if c.get("class") == "pp-dot"]
    intervals = [line for line in tree.iter(f"{ns}line") if line.get("class") == "pp-interval"]
    assert len(dots) == 16 and len(intervals) == 2
    assert "role &lt;b&gt;" in page
    assert "role <b>" not in page                      # variant names are escaped
    assert "winner: role &lt;b&gt;" in page and "clear" in page and "1 failed" in page
    assert "tiny model: meaningless" in page
    assert "better in 8 of 8 pairs" in page
    assert winners_by_variant(summary) == {"role <b>": ["clip"]}


def test_panel_renders_from_the_json_form_too():
    summary = summary_of([0.01, -0.01, 0.0])
    assert summary_html(json.loads(json.dumps(summary.to_dict()))) == summary_html(summary)
    assert "winner:" not in summary_html(summary)      # no badge without a clear win
    assert "not clear" in summary_html(summary)


def test_empty_and_flat_summaries():
    assert "No comparison yet" in summary_html(None)
    empty = summarize([RunRecord(modality="text", model_id="m", prompt="p", seed=1, params={}, variant="a", id=1)], {})
    assert "No scores or ratings yet" in summary_html(empty)
    flat = summary_of([0.0, 0.0])
    svg = chart_svg(flat.metrics[0], flat.variants)
    assert "nan" not in svg and ET.fromstring(svg) is not None
