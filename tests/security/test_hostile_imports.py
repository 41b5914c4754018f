"""An imported file is untrusted: caps, media types verified by decoding, every field bounded, per-line reports."""

from __future__ import annotations

import io
import json
import struct
import time
import wave
import zipfile
from pathlib import Path

import pytest

from playground.settings import Settings
from playground.store import ImportLimits, RunLog


def png(side: int = 4) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def wav(frames: int = 800) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(8000)
        clip.writeframes(struct.pack(f"<{frames}h", *([1000] * frames)))
    return buffer.getvalue()


def row(i: int = 0, **extra) -> dict:
    data = dict(modality="text", model_id="tiny-text", prompt=f"prompt {i}", seed=i, params={"max_new_tokens": 8},
                output_text=f"out {i}", uid=f"run-{i:08d}")
    data.update(extra)
    return data


def write_zip(path: Path, rows: list[dict], media: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("runs.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        for name, data in (media or {}).items():
            archive.writestr(f"media/{name}", data)
    return path


@pytest.fixture
def log(tmp_path):
    run_log = RunLog(tmp_path / "data", orphan_age_s=0)
    yield run_log
    run_log.close()


def files_in(log: RunLog) -> list[Path]:
    return [p for p in log.artifacts_dir.rglob("*") if p.is_file()]


def test_a_zip_bomb_is_refused_early_without_filling_memory_or_disk(log, tmp_path):
    """1 MB of zip expanding to 1 GB was accepted, written out whole and read into memory whole."""
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("runs.jsonl", json.dumps(row(1, modality="image", artifact="a/x.png")) + "\n")
        with archive.open("media/a/x.png", "w", force_zip64=True) as member:
            chunk = b"\0" * 2**20
            for _ in range(64):
                member.write(chunk)
    limits = ImportLimits(max_member_bytes=8 * 2**20, max_expanded_bytes=16 * 2**20)
    start = time.perf_counter()
    report = log.import_jsonl(bomb, limits)
    assert time.perf_counter() - start < 2
    assert report.imported == 0 and report.errors[0][0] == 0
    assert "expands to" in report.errors[0][1] and "max_import_expanded_bytes" in report.errors[0][1]
    assert files_in(log) == []
    per_member = log.import_jsonl(bomb, ImportLimits(max_member_bytes=8 * 2**20))
    assert per_member.errors[0][0] == 1 and "max_import_member_bytes" in per_member.errors[0][1]
    assert files_in(log) == []


def test_upload_size_member_count_and_rows_are_capped(log, tmp_path):
    path = write_zip(tmp_path / "many.zip", [row(i) for i in range(30)], {f"{i}.png": b"x" for i in range(20)})
    assert "max_import_bytes" in log.import_jsonl(path, ImportLimits(max_bytes=100)).errors[0][1]
    assert "max_import_members" in log.import_jsonl(path, ImportLimits(max_members=10)).errors[0][1]
    report = log.import_jsonl(path, ImportLimits(max_rows=25))
    assert report.imported == 25 and report.errors == [(26, report.errors[0][1])]
    assert "max_import_rows" in report.errors[0][1]
    lines = tmp_path / "long.jsonl"
    lines.write_text(json.dumps(row(100)) + "\n" + json.dumps(row(101, output_text="y" * 300_000)) + "\n"
                     + json.dumps(row(102)) + "\n")
    report = log.import_jsonl(lines, ImportLimits(max_output_chars=1000))
    assert report.imported == 2 and report.errors[0][0] == 2


def test_settings_carry_the_caps():
    settings = Settings(max_import_rows=7, max_import_bytes=9, max_cells=12)
    limits = ImportLimits.from_settings(settings)
    assert (limits.max_rows, limits.max_bytes, limits.max_cells) == (7, 9, 12)


@pytest.mark.parametrize("name, data, message", [
    ("a/page.html", b"<script>alert(1)</script>", "carries a .png file, not .html"),
    ("a/logo.svg", b"<svg onload=alert(1)></svg>", "carries a .png file, not .svg"),
    ("a/fake.png", b"<html><script>alert(1)</script></html>", "not a readable PNG"),
    ("a/cut.png", png(64)[:-40], "not a readable PNG"),
    ("a/big.png", png(2000), "at most 1536 a side"),
])
def test_image_media_must_be_a_png_that_decodes(log, tmp_path, name, data, message):
    path = write_zip(tmp_path / "m.zip", [row(1, modality="image", artifact=name), row(2)], {name: data})
    report = log.import_jsonl(path)
    assert report.imported == 1 and report.errors[0][0] == 1 and message in report.errors[0][1]
    assert files_in(log) == []
    assert str(tmp_path) not in report.errors[0][1]                    # no server path in the message


def test_good_media_is_stored_under_a_server_chosen_name(log, tmp_path):
    path = write_zip(tmp_path / "ok.zip", [row(1, modality="image", artifact="../../evil name.png"),
                                           row(2, modality="music", artifact="x/clip.wav")],
                     {"../../evil name.png": png(), "x/clip.wav": wav()})
    report = log.import_jsonl(path)
    assert (report.imported, report.errors) == (2, [])
    for run in log.list_runs():
        stored = log.artifact_path(run)
        assert stored.is_file() and log.artifacts_dir in stored.parents
        assert stored.suffix == {"image": ".png", "music": ".wav"}[run.modality]
        assert "evil" not in stored.name and "clip" not in stored.name


def test_a_truncated_wav_is_refused_with_its_line(log, tmp_path):
    """A truncated WAV made its comparison impossible to open (EOFError)."""
    path = write_zip(tmp_path / "w.zip", [row(1, modality="music", artifact="c.wav", comparison_id=5),
                                          row(2, modality="music", artifact="d.wav", comparison_id=5)],
                     {"c.wav": wav()[:-300], "d.wav": wav()})
    report = log.import_jsonl(path)
    assert report.imported == 1 and report.errors[0][0] == 1 and "truncated" in report.errors[0][1]
    (comparison,) = log.list_comparisons()
    assert [r.seed for r in log.get_comparison(comparison.id).runs] == [2]


@pytest.mark.parametrize("field, value, message", [
    ("seed", 2**70, "'seed'"),
    ("seed", -1, "'seed'"),
    ("row", 10**8, "'row'"),
    ("col", 64, "'col'"),
    ("comparison_id", 10**20, "'comparison_id'"),
    ("prompt", "p" * 8001, "'prompt' is 8001 characters"),
    ("prompt", "\ud800 lone surrogate", "not valid Unicode"),
    ("wall_s", float("nan"), "'wall_s'"),
    ("params", {"a": {"nested": 1}}, "plain value"),
    ("params", {"x": "y" * 30_000}, "'params'"),
    ("modality", "video", "'modality'"),
    ("model_id", "m" * 10_000, "'model_id'"),
    ("uid", "../x", "'uid'"),
    ("seed", True, "'seed' must be a whole number"),
    ("metrics", {"deep": {"er": [1, 2]}}, "plain value"),
    ("metrics", {f"k{i}": i for i in range(100)}, "'metrics' has 100 keys"),
    ("ttft_s", -1.0, "'ttft_s'"),
    ("endpoint", "h" * 1000, "'endpoint'"),
    ("formatted_prompt", "f" * 100_000, "'formatted_prompt'"),
])
def test_every_field_is_held_to_the_limits_of_a_new_comparison(log, tmp_path, field, value, message):
    path = tmp_path / "rows.jsonl"
    bad = json.dumps(row(2, **{field: value}))
    path.write_text("\n".join([json.dumps(row(1)), bad, json.dumps(row(3))]) + "\n")
    report = log.import_jsonl(path)
    assert report.imported == 2, report.errors
    assert [n for n, _ in report.errors] == [2] and message in report.errors[0][1]


def test_a_comparison_holds_no_more_cells_than_a_new_one(log, tmp_path):
    """One imported comparison of 100k runs took 341 s to open."""
    rows = [row(i, comparison_id=1, col=i % 8, row=i // 8) for i in range(70)]
    rows += [row(100 + i, comparison_id=2) for i in range(16 * 64 + 3)]          # re-runs of one cell
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = log.import_jsonl(path)
    assert report.imported == 64 + 16 * 64
    assert [n for n, _ in report.errors] == list(range(65, 71)) + list(range(71 + 16 * 64, 74 + 16 * 64))
    assert "more than 64 cells" in report.errors[0][1] and "more than 1024 runs" in report.errors[-1][1]


def test_hostile_json_lines_are_reported_not_raised(log, tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"[" * 100_000 + b"\n" + json.dumps(row(1)).encode() + b"\n" + b"\xff\xfe\n")
    report = log.import_jsonl(path)
    assert report.imported == 1 and [n for n, _ in report.errors] == [1, 3]
    assert "UTF-8" in report.errors[1][1]
