"""The run log: migrations, records, artifacts, cache, search, ratings, export/import, a killed writer, threads."""

from __future__ import annotations

import dataclasses
import datetime
import json
import zipfile
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.store import MIGRATIONS, SCHEMA_VERSION, RunLog, RunRecord, cache_key

ROOT = Path(__file__).resolve().parent.parent
REPRO_FIELDS = [f.name for f in dataclasses.fields(RunRecord) if f.name not in {"id", "created_at", "comparison_id",
                                                                                "artifact", "cached_from", "imported"}]


def png(i: int = 0, side: int = 4) -> bytes:
    """A real PNG: imports decode media before keeping it."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (i % 256, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def log(tmp_path):
    run_log = RunLog(tmp_path, orphan_age_s=0)
    yield run_log
    run_log.close()


def record(i: int = 0, **extra) -> RunRecord:
    fields = dict(modality="text", model_id="tiny-text", prompt=f"Write a tagline for lantern {i}", seed=i,
                  params={"max_new_tokens": 8, "temperature": 0.7}, template_name="product-tagline",
                  template_hash="abc", variant="role", variables={"product": f"lantern {i}"}, system="Be brief",
                  model_revision="built:tiny-text-v2", backend="transformers.AutoModelForCausalLM", device="cpu",
                  dtype="float32", versions={"torch": "2.13.0"}, wall_s=0.5, load_s=0.1, tokens_per_s=16.0,
                  prompt_tokens=9, completion_tokens=8, output_text=f"Light that lasts {i}")
    fields.update(extra)
    return RunRecord(**fields)


def test_migrations_apply_once_and_are_recorded(tmp_path):
    RunLog(tmp_path).close()
    RunLog(tmp_path).close()     # reopening runs nothing twice
    db = sqlite3.connect(tmp_path / "runs.db")
    assert [r[0] for r in db.execute("SELECT id FROM _migrations ORDER BY id")] == sorted(n for n, _ in MIGRATIONS)
    db.close()


def test_a_database_at_version_1_upgrades_and_keeps_its_runs(tmp_path):
    db = sqlite3.connect(tmp_path / "runs.db")     # as the first release left it: no full-text index yet
    db.executescript(MIGRATIONS[0][1])
    db.executescript("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);"
                     "INSERT INTO _migrations VALUES (1, '2024-01-01T00:00:00.000Z');")
    db.execute("INSERT INTO runs (status, modality, model_id, prompt, seed, cache_key, created_at, output_text) "
               "VALUES ('ok', 'text', 'old-model', 'an old lighthouse prompt', 7, 'k', '2024-01-01T00:00:00Z', 'beam')")
    db.commit()
    db.close()
    log = RunLog(tmp_path)
    assert log.schema_version() == SCHEMA_VERSION
    assert [r.seed for r in log.list_runs(query="lighthouse")] == [7]       # old rows were indexed
    log.add_run(record(1))
    assert [r.seed for r in log.list_runs(query="lantern")] == [1]
    log.close()


def test_full_text_index_follows_updates(log):
    run_id = log.add_run(record(1, output_text="first draft"))
    log._db().execute("UPDATE runs SET output_text = 'second version' WHERE id = ?", (run_id,))
    assert log.list_runs(query="draft") == [] and [r.id for r in log.list_runs(query="second")] == [run_id]
    assert log.integrity_check() == "ok"


def test_every_field_round_trips(log):
    comparison = log.start_comparison("text", "a test", "product-tagline", {"cells": 1})
    original = record(3, comparison_id=comparison, row=2, col=1, negative_prompt=None, realtime_factor=None)
    run_id = log.add_run(original)
    again = log.get_run(run_id)
    for name in REPRO_FIELDS + ["comparison_id"]:
        assert getattr(again, name) == getattr(original, name), name
    assert again.created_at and again.id == run_id


def test_artifacts_are_written_and_referenced_relatively(log, tmp_path):
    run_id = log.add_run(record(1, modality="image", output_text=None), artifact=b"\x89PNG fake", artifact_ext="png")
    run = log.get_run(run_id)
    assert not Path(run.artifact).is_absolute() and run.artifact.startswith("artifacts/")
    assert log.artifact_path(run).read_bytes() == b"\x89PNG fake"
    assert not list(tmp_path.rglob("*.tmp"))


def test_cache_hits_and_misses(log):
    run_id = log.add_run(record(1))
    assert log.find_cached(record(1)).id == run_id
    assert log.find_cached(record(2)) is None                                  # another seed
    assert log.find_cached(record(1, params={"max_new_tokens": 9, "temperature": 0.7})) is None
    assert log.find_cached(record(1, model_revision="other")) is None
    assert cache_key(record(1)) == cache_key(record(1, variant="other", wall_s=9.0))   # labels don't matter
    log.add_run(record(5, status="error", error="boom", output_text=None))
    assert log.find_cached(record(5)) is None                                  # failures are not reused
    image_id = log.add_run(record(7, modality="image"), artifact=b"png", artifact_ext="png")
    log.artifact_path(log.get_run(image_id)).unlink()
    assert log.find_cached(record(7, modality="image")) is None                # file gone: run again


def test_filters_and_full_text_search(log):
    for i in range(4):
        log.add_run(record(i, modality="text" if i % 2 else "image", model_id=f"model-{i % 2}",
                           output_text=f"answer number {i}"))
    assert len(log.list_runs(modality="image")) == 2
    assert {r.seed for r in log.list_runs(model="model-1")} == {1, 3}
    assert [r.seed for r in log.list_runs(query="number 3")] == [3]
    assert len(log.list_runs(query="lantern")) == 4
    for nasty in ['"', "*", "AND", "(", "a OR", "NEAR(", "'; DROP TABLE runs; --", "ü ✓"]:
        log.list_runs(query=nasty)                                             # no crash, whatever it finds
    assert log.list_runs(since="2000-01-01", until="2999-01-01", limit=2, offset=1)[0].seed == 2


def test_ratings_winner_and_variant_summary(log):
    comparison = log.start_comparison("text", "c", "product-tagline")
    a = log.add_run(record(1, comparison_id=comparison, variant="plain"))
    b = log.add_run(record(2, comparison_id=comparison, variant="role"))
    log.rate(a, stars=2)
    log.rate(b, stars=5, note="crisp")
    log.rate(b, thumbs=1)                       # keeps the stars and the note
    assert (log.get_run(b).stars, log.get_run(b).thumbs, log.get_run(b).note) == (5, 1, "crisp")
    log.set_winner(comparison, b)
    assert log.get_comparison(comparison).winner_run_id == b
    summary = {row["variant"]: row for row in log.variant_summary("product-tagline")}
    assert summary["role"]["wins"] == 1 and summary["role"]["avg_stars"] == 5 and summary["plain"]["wins"] == 0
    assert [r.id for r in log.list_runs(min_stars=4)] == [b]
    for bad in ({"stars": 6}, {"stars": 0}, {"thumbs": 2}, {"stars": True}):
        with pytest.raises(ValueError):
            log.rate(a, **bad)
    other = log.start_comparison("text", "d")
    with pytest.raises(ValueError, match="not part of comparison"):
        log.set_winner(other, a)
    with pytest.raises(KeyError, match="no run #999"):
        log.rate(999, stars=3)


@pytest.mark.parametrize("fmt", ["jsonl", "zip"])
def test_export_then_import_equals_the_original(log, tmp_path, fmt):
    comparison = log.start_comparison("image", "export me")
    ids = [log.add_run(record(i, modality="image", comparison_id=comparison, col=i), artifact=png(i),
                       artifact_ext="png") for i in range(3)]
    log.rate(ids[1], stars=4, note="best")
    originals = log.get_comparison(comparison).runs
    exported = log.export(tmp_path / f"out.{fmt}", fmt, runs=originals)
    fresh = RunLog(tmp_path / "elsewhere")
    report = fresh.import_jsonl(exported)
    assert (report.imported, report.errors) == (3, [])
    imported = fresh.list_runs(newest_first=False)
    for old, new in zip(originals, imported):
        for name in REPRO_FIELDS:
            assert getattr(new, name) == getattr(old, name), name
        if fmt == "zip":
            assert fresh.artifact_path(new).read_bytes() == log.artifact_path(old).read_bytes()
    assert len({r.comparison_id for r in imported}) == 1
    fresh.close()


def test_csv_export_has_a_row_per_run(log, tmp_path):
    for i in range(3):
        log.add_run(record(i, output_text=f'says "hi", then\nleaves {i}'))
    import csv

    rows = list(csv.DictReader((log.export(tmp_path / "runs.csv", "csv", runs=log.list_runs())).open()))
    assert len(rows) == 3 and rows[0]["output_text"].startswith('says "hi"')


def test_import_keeps_good_rows_and_reports_bad_ones(log, tmp_path):
    good = log.export(tmp_path / "good.jsonl", "jsonl", runs=[log.get_run(log.add_run(record(1)))])
    lines = good.read_text().splitlines()
    bad = tmp_path / "mixed.jsonl"
    bad.write_text("\n".join([lines[0], "{not json", '{"modality": "text"}', lines[0].replace('"seed": 1', '"seed": "one"'),
                              "[1, 2]", lines[0]]) + "\n")
    fresh = RunLog(tmp_path / "fresh")
    report = fresh.import_jsonl(bad)
    assert (report.imported, report.skipped) == (1, 1)           # the same run twice: added once
    assert [n for n, _ in report.errors] == [2, 3, 4, 5]
    messages = dict(report.errors)
    assert "not valid JSON" in messages[2] and "field 'model_id' is required" in messages[3]
    assert "field 'seed' must be a whole number" in messages[4] and "JSON object" in messages[5]
    fresh.close()


def test_sweep_removes_orphans_and_temp_files_only(log, tmp_path):
    kept = log.get_run(log.add_run(record(1), artifact=b"kept", artifact_ext="png"))
    folder = log.artifact_path(kept).parent
    (folder / "orphan.png").write_bytes(b"x")
    (folder / ".half-written.png.tmp").write_bytes(b"x")
    assert log.sweep_orphans() == 2
    assert log.artifact_path(kept).exists() and sorted(p.name for p in folder.iterdir()) == [Path(kept.artifact).name]
    young = RunLog(tmp_path, orphan_age_s=3600)          # another process may be mid-write: young files stay
    (folder / "young.png").write_bytes(b"x")
    assert young.sweep_orphans() == 0
    young.close()


CHILD = """
import sys
from pathlib import Path
from playground.store import RunLog, RunRecord
log = RunLog(Path(sys.argv[1]))
comparison = log.start_comparison("image", "killed mid-way")
i = 0
while True:
    run = RunRecord(modality="image", model_id="tiny-image", prompt=f"cell {i}", seed=i, params={},
                    comparison_id=comparison, row=i)
    log.add_run(run, artifact=bytes([i % 256]) * 100_000, artifact_ext="png")
    print(run.id, flush=True)
    i += 1
"""


def test_a_killed_writer_leaves_a_sound_log(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    seen = []
    while len(seen) < 25:
        line = child.stdout.readline()
        assert line, "the child stopped early"
        seen.append(int(line))
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    log = RunLog(tmp_path, orphan_age_s=0)
    assert log.integrity_check() == "ok"
    runs = {r.id: r for r in log.list_runs(limit=100_000)}
    assert set(seen) <= set(runs)                           # every committed cell is there
    for run in runs.values():                               # and every row has its whole file
        path = log.artifact_path(run)
        assert path.exists() and path.stat().st_size == 100_000
    assert not list(tmp_path.rglob("*.tmp"))                # a half-written file was swept
    log.close()


def test_concurrent_writers_lose_nothing(tmp_path):
    first, second = RunLog(tmp_path), RunLog(tmp_path)      # two handles, as two processes would have
    comparison = first.start_comparison("image", "threads")
    threads, per_thread = 8, 25
    errors = []

    def write(t: int) -> None:
        handle = first if t % 2 else second
        try:
            for i in range(per_thread):
                handle.add_run(record(t * 1000 + i, modality="image", comparison_id=comparison),
                               artifact=f"{t}-{i}".encode() * 100, artifact_ext="png")
        except Exception as error:  # collected and reported by the main thread
            errors.append(error)

    started = time.perf_counter()
    workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    assert errors == []
    runs = first.get_comparison(comparison).runs
    assert len(runs) == threads * per_thread and len({r.id for r in runs}) == len(runs)
    for run in runs:
        t, i = divmod(run.seed, 1000)
        assert first.artifact_path(run).read_bytes() == f"{t}-{i}".encode() * 100
    print(f"\nconcurrent writers: {len(runs) / elapsed:.0f} rows/s")
    first.close()
    second.close()


# ---- edge cases ---------------------------------------------------------------------------------------------------

FIXTURE_OK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FIXTURE_OK
@given(st.text(max_size=40))
def test_any_search_text_is_safe(log, text):
    log.list_runs(query=text)


@FIXTURE_OK
@given(st.from_regex(r"[a-z]{3,12}", fullmatch=True))
def test_a_word_from_an_output_is_found(log, word):
    run_id = log.add_run(record(1, output_text=f"before {word} after"))
    assert run_id in [r.id for r in log.list_runs(query=word, limit=10_000)]


TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)


@FIXTURE_OK
@given(prompt=TEXT, output=st.none() | TEXT, params=st.dictionaries(TEXT, st.integers(-2**63 + 1, 2**63 - 1) | TEXT | st.booleans(),
                                                                     max_size=3))
def test_export_import_round_trips_any_text(log, tmp_path, prompt, output, params):
    original = log.get_run(log.add_run(record(1, prompt=prompt, output_text=output, params=params)))
    fresh = RunLog(tmp_path / "again")
    try:
        report = fresh.import_jsonl(log.export(tmp_path / "one.jsonl", "jsonl", runs=[original]))
        assert report.errors == []
        again = fresh.list_runs(limit=1)[0]
        for name in REPRO_FIELDS:
            assert getattr(again, name) == getattr(original, name), name
        assert cache_key(again) == cache_key(original)
    finally:
        fresh.close()


def test_line_separators_inside_text_survive_import(log, tmp_path):
    """U+2028 and U+0085 are not escaped in UTF-8 JSON; they must not split a row."""
    original = log.get_run(log.add_run(record(1, prompt="one\u2028two\x85three", output_text="a\u2029b")))
    fresh = RunLog(tmp_path / "fresh")
    report = fresh.import_jsonl(log.export(tmp_path / "x.jsonl", "jsonl", runs=[original]))
    assert (report.imported, report.errors) == (1, [])
    assert fresh.list_runs()[0].prompt == original.prompt
    fresh.close()


def test_import_restores_comparison_title_status_and_winner(log, tmp_path):
    comparison = log.start_comparison("text", "taglines, round 2", "product-tagline", {"seeds": [1]})
    ids = [log.add_run(record(i, comparison_id=comparison, col=i)) for i in range(3)]
    log.finish_comparison(comparison, "cancelled")
    log.set_winner(comparison, ids[2])
    fresh = RunLog(tmp_path / "fresh")
    fresh.import_jsonl(log.export(tmp_path / "c.jsonl", "jsonl", runs=log.get_comparison(comparison).runs))
    (again,) = fresh.list_comparisons()
    assert (again.title, again.template_name, again.status, again.run_count) == \
        ("taglines, round 2", "product-tagline", "cancelled", 3)
    assert again.spec["seeds"] == [1] and again.spec["imported_from"] == comparison
    assert fresh.get_run(again.winner_run_id).seed == 2
    fresh.close()


def test_zip_export_stores_a_shared_file_once(log, tmp_path):
    first = log.get_run(log.add_run(record(1, modality="image"), artifact=png(1), artifact_ext="png"))
    shared = record(1, modality="image", cached_from=first.id, artifact=first.artifact)    # a cache hit
    log.add_run(shared)
    exported = log.export(tmp_path / "shared.zip", "zip", runs=log.list_runs())
    with zipfile.ZipFile(exported) as archive:
        assert [n for n in archive.namelist() if n.startswith("media/")] == [f"media/{first.artifact}"]
    fresh = RunLog(tmp_path / "fresh", orphan_age_s=0)
    assert fresh.import_jsonl(exported).imported == 2
    artifacts = {r.artifact for r in fresh.list_runs()}
    assert len(artifacts) == 1 and fresh.artifact_path(fresh.list_runs()[0]).read_bytes() == png(1)
    assert len(list((tmp_path / "fresh" / "artifacts").rglob("*.png"))) == 1
    fresh.close()


def test_a_failed_insert_leaves_no_file(log, tmp_path):
    with pytest.raises(sqlite3.IntegrityError):
        log.add_run(record(1, comparison_id=12345), artifact=b"data", artifact_ext="png")   # no such comparison
    assert [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()] == []
    with pytest.raises(ValueError, match="inside the data dir"):
        log.add_run(record(2, artifact="../../etc/passwd"))
    with pytest.raises(ValueError, match="status"):
        log.add_run(record(3, status="fine"))
    assert log.list_runs() == []


def test_import_rejects_bad_ratings_and_types_without_half_rows(log, tmp_path):
    row = json.loads(log.export(tmp_path / "a.jsonl", "jsonl",
                                runs=[log.get_run(log.add_run(record(1)))]).read_text())
    lines = [dict(row, stars=9), dict(row, seed=True), dict(row, wall_s="fast"), dict(row, params=[1]),
             dict(row, wall_s=2, thumbs=-1)]
    path = tmp_path / "b.jsonl"
    path.write_text("\ufeff" + "\n".join(json.dumps(r) for r in lines) + "\n")   # a BOM, as some editors add
    fresh = RunLog(tmp_path / "fresh")
    report = fresh.import_jsonl(path)
    assert report.imported == 1 and [n for n, _ in report.errors] == [1, 2, 3, 4]
    assert "stars" in report.errors[0][1] and "'params' must be an object" in report.errors[3][1]
    (kept,) = fresh.list_runs()
    assert (kept.wall_s, kept.thumbs) == (2, -1)
    assert fresh.import_jsonl(tmp_path / "missing.jsonl").errors[0][0] == 0
    fresh.close()


def test_time_filters_and_literal_model_filter(log):
    log.add_run(record(1, model_id="org/model_a"))
    log.add_run(record(2, model_id="org/modelXa"))
    today = datetime.datetime.now(datetime.timezone.utc).date()
    assert len(log.list_runs(until=today.isoformat())) == 2               # a bare date includes the whole day
    assert len(log.list_runs(since=today)) == 2
    assert log.list_runs(since=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)) == []
    assert [r.seed for r in log.list_runs(model="model_a")] == [1]      # '_' is not a wildcard
    assert log.list_runs(model="%") == []


def test_comparison_bookkeeping(log):
    comparison = log.start_comparison("music", "beats")
    log.add_run(record(1, modality="music", comparison_id=comparison))
    assert log.list_comparisons(modality="music")[0].run_count == 1
    assert log.get_comparison(comparison).status == "running"
    log.finish_comparison(comparison, "done")
    assert log.get_comparison(comparison).status == "done"
    with pytest.raises(ValueError):
        log.finish_comparison(comparison, "great")
    with pytest.raises(KeyError):
        log.finish_comparison(999)
    with pytest.raises(KeyError, match="no comparison #999"):
        log.get_comparison(999)


def test_concurrent_raters_merge_fields(log):
    run_id = log.add_run(record(1))

    def rate(**fields):
        for _ in range(20):
            log.rate(run_id, **fields)

    workers = [threading.Thread(target=rate, kwargs=f) for f in ({"stars": 4}, {"thumbs": 1}, {"note": "ok"})]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    run = log.get_run(run_id)
    assert (run.stars, run.thumbs, run.note) == (4, 1, "ok")


def test_connections_of_finished_threads_are_closed(log):
    for _ in range(10):
        worker = threading.Thread(target=lambda: log.list_runs())
        worker.start()
        worker.join()
    log.list_runs()
    assert len(log._connections) <= 3
