"""The self-contained HTML report of real comparisons (tiny models): parses, embeds every cell, stays in budget."""

from __future__ import annotations

import base64
import io
import random
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from playground.stakeholders.report import render_report, write_report
from playground.stakeholders.votes import cast, next_pair
from playground.store import RunLog

from test_votes import run_comparison

ROOT = Path(__file__).resolve().parent.parent


class Page(HTMLParser):
    """Collects what a reader of the page would get: tags, sources, ids, scripts, external references."""

    def __init__(self):
        super().__init__()
        self.tags, self.sources, self.ids, self.external, self.text = [], [], set(), [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("src", "href"):
            value = attrs.get(name)
            if value:
                (self.sources if value.startswith("data:") else self.external).append(value)

    def handle_data(self, data):
        self.text.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


@pytest.fixture
def log(tmp_path):
    run_log = RunLog(tmp_path / "data")
    yield run_log
    run_log.close()


def test_text_report_has_every_cell_votes_winner_and_records(catalog, log, settings, tmp_path):
    comparison = run_comparison(catalog, log, settings)
    runs = log.get_comparison(comparison).runs
    log.rate(runs[0].id, stars=4, note="nice & short")
    log.set_winner(comparison, runs[1].id)
    rng = random.Random(2)
    for reason in ("clearer", None, "<script>alert(1)</script>"):
        cast(log, next_pair(log, comparison, "ann", rng), "A", "ann", reason)
    path = write_report(log, comparison, tmp_path / "out" / "report.html",
                       summary_html='<div id="auto-scores">scores go here</div>')
    text = path.read_text(encoding="utf-8")
    page = parse(text)
    assert "script" not in page.tags and page.external == []           # no script, nothing fetched
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    for run in runs:                                                   # every cell, and its record
        assert f"cell-{run.id}" in page.ids and f"record-{run.id}" in page.ids
        assert run.output_text.strip()[:20] in " ".join(page.text)
        assert run.model_revision in text
    assert "auto-scores" in page.ids                                    # the summary fragment is included as HTML
    body = " ".join(page.text)
    assert "Winner:" in body and "Voters prefer:" in body and "nice & short" in body and "★★★★☆" in body
    assert "clearer" in body and "3 blind A/B votes" in " ".join(body.split())
    assert '"max_new_tokens": 4' in body and '"torch"' in body            # params and versions per cell
    assert "@media print" in text


def test_image_report_embeds_small_jpegs_and_notes_what_is_left_out(catalog, log, settings, tmp_path):
    comparison = run_comparison(catalog, log, settings, modality="image", seeds=(1, 2),
                                variants={"a": "a red {{ product }}", "b": "a blue {{ product }}"},
                                params={"num_inference_steps": 2})
    runs = log.get_comparison(comparison).runs
    page = parse(render_report(log, comparison))
    images = [s for s in page.sources if s.startswith("data:image/jpeg;base64,")]
    assert len(images) == len(runs) == 4
    decoded = Image.open(io.BytesIO(base64.b64decode(images[0].split(",", 1)[1])))
    assert decoded.format == "JPEG" and max(decoded.size) <= 384
    assert "left-out" not in page.ids

    one_image = len(base64.b64decode(images[0].split(",", 1)[1]))
    squeezed = parse(render_report(log, comparison, max_media_bytes=one_image))
    assert len([s for s in squeezed.sources if s.startswith("data:image")]) == 1
    assert "left-out" in squeezed.ids and "size budget" in " ".join(squeezed.text)

    log.artifact_path(runs[0]).unlink()                                 # a file gone from disk: said, not fatal
    page = parse(render_report(log, comparison))
    assert len([s for s in page.sources if s.startswith("data:image")]) == 3
    assert "is missing" in " ".join(page.text)


def test_music_report_embeds_compressed_clips(catalog, log, settings):
    comparison = run_comparison(catalog, log, settings, modality="music", seeds=(1,),
                                variants={"a": "calm {{ product }}", "b": "loud {{ product }}"},
                                params={"duration_s": 1.0})
    runs = log.get_comparison(comparison).runs
    page = parse(render_report(log, comparison))
    clips = [s for s in page.sources if s.startswith("data:audio/mpeg;base64,")]
    assert len(clips) == len(runs) == 2 and page.tags.count("audio") == 2
    for clip, run in zip(clips, runs):
        mp3 = base64.b64decode(clip.split(",", 1)[1])
        assert mp3[:2] == b"\xff\xf3" or mp3[:3] == b"ID3"                 # an MPEG audio frame
        assert len(mp3) < log.artifact_path(run).stat().st_size


def test_report_command_writes_the_file(catalog, log, settings, tmp_path):
    comparison = run_comparison(catalog, log, settings, seeds=(3,))
    dest = tmp_path / "cli.html"
    result = subprocess.run([sys.executable, "-m", "playground", "--offline", "--data-dir", str(log.data_dir),
                             "report", str(comparison), "-o", str(dest)], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "written to" in result.stdout and dest.is_file()
    assert len(re.findall(r'id="cell-\d+"', dest.read_text())) == 3
    missing = subprocess.run([sys.executable, "-m", "playground", "--offline", "--data-dir", str(log.data_dir),
                              "report", "999", "-o", str(tmp_path / "x.html")], capture_output=True, text=True,
                             cwd=ROOT, timeout=300)
    assert missing.returncode == 2 and "no comparison #999" in missing.stderr


def test_a_tie_at_the_top_is_reported_as_split():
    from playground.stakeholders.report import _leader

    rows = [{"variant": "a", "rating": 1051.0, "games": 3}, {"variant": "b", "rating": 1051.0, "games": 3},
            {"variant": "c", "rating": 898.0, "games": 2}]
    assert _leader(rows) == {"vote_leader": None, "vote_tied": ["a", "b"]}
    rows[0]["rating"] = 1060.0
    assert _leader(rows)["vote_leader"]["variant"] == "a"
    assert _leader([{"variant": "a", "rating": 1000.0, "games": 0}]) == {"vote_leader": None, "vote_tied": []}
