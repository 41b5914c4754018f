"""The run log's boundary: atomic idempotent imports, no imported cache hits, safe CSV cells, validated ids."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from playground.store import MIGRATIONS, InvalidId, NotFound, RunLog, RunRecord, StoreInputError
from playground.store.transfer import _CSV_COLUMNS

ROOT = Path(__file__).resolve().parents[2]


def record(i: int = 0, **extra) -> RunRecord:
    fields = dict(modality="text", model_id="tiny-text", prompt=f"Write a tagline for lantern {i}", seed=i,
                  params={"max_new_tokens": 8}, output_text=f"Light {i}", model_revision="built:v2")
    fields.update(extra)
    return RunRecord(**fields)


@pytest.fixture
def log(tmp_path):
    run_log = RunLog(tmp_path / "data", orphan_age_s=0)
    yield run_log
    run_log.close()


def counts(db_path: Path) -> tuple[int, int, int]:
    db = sqlite3.connect(db_path)
    try:
        runs, uids = db.execute("SELECT count(*), count(DISTINCT uid) FROM runs").fetchone()
        comparisons = db.execute("SELECT count(*) FROM comparisons").fetchone()[0]
        return runs, uids, comparisons
    finally:
        db.close()


def test_importing_the_same_zip_twice_adds_nothing_the_second_time(log, tmp_path):
    comparison = log.start_comparison("text", "twice")
    ids = [log.add_run(record(i, comparison_id=comparison, col=i)) for i in range(4)]
    log.rate(ids[1], stars=5)
    log.set_winner(comparison, ids[1])
    exported = log.export(tmp_path / "c.zip", "zip", runs=log.get_comparison(comparison).runs)
    fresh = RunLog(tmp_path / "fresh")
    first, second = fresh.import_jsonl(exported), fresh.import_jsonl(exported)
    assert (first.imported, first.skipped, second.imported, second.skipped) == (4, 0, 0, 4)
    assert counts(fresh.path) == (4, 4, 1)
    (again,) = fresh.list_comparisons()
    assert fresh.get_run(again.winner_run_id).stars == 5
    assert fresh._db().execute("SELECT count(*) FROM ratings").fetchone()[0] == 1
    assert fresh.integrity_check() == "ok"
    back = log.import_jsonl(exported)                      # into the log it came from: all already there
    assert (back.imported, back.skipped) == (0, 4) and counts(log.path) == (4, 4, 1)
    fresh.close()


IMPORTER = """
import sys
sys.path.insert(0, {root!r})
from playground.store import RunLog
RunLog(sys.argv[1]).import_jsonl(sys.argv[2])
"""


def test_a_killed_import_leaves_no_half_comparison_and_a_second_import_completes_it(tmp_path):
    source = RunLog(tmp_path / "source")
    for c in range(120):
        comparison = source.start_comparison("text", f"comparison {c}")
        for i in range(16):
            source.add_run(record(c * 100 + i, comparison_id=comparison, row=i // 4, col=i % 4))
    exported = source.export(tmp_path / "all.jsonl", "jsonl", runs=source.list_runs(limit=10**6))
    source.close()
    target = tmp_path / "target"
    RunLog(target).close()
    process = subprocess.Popen([sys.executable, "-c", IMPORTER.format(root=str(ROOT)), str(target), str(exported)])
    try:
        deadline = time.monotonic() + 60
        while counts(target / "runs.db")[0] == 0 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    partial = counts(target / "runs.db")
    assert 0 < partial[0] < 120 * 16, "the import was not caught in the middle"
    log = RunLog(target)
    assert log.integrity_check() == "ok"
    assert {c.run_count for c in log.list_comparisons(limit=1000)} == {16}       # whole comparisons only
    report = log.import_jsonl(exported)
    assert (report.imported, report.skipped, report.errors) == (120 * 16 - partial[0], partial[0], [])
    assert counts(log.path) == (1920, 1920, 120)
    assert log.integrity_check() == "ok"
    log.close()


def test_migration_4_gives_existing_runs_and_comparisons_a_uid(tmp_path):
    db = sqlite3.connect(tmp_path / "runs.db")
    for _, sql in MIGRATIONS[:3]:
        db.executescript(sql)
    db.executescript("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);"
                     "INSERT INTO _migrations VALUES (1, 'x'), (2, 'x'), (3, 'x');"
                     "INSERT INTO comparisons (modality, title, created_at) VALUES ('text', 'old', 'x');")
    for i in range(3):
        db.execute("INSERT INTO runs (comparison_id, status, modality, model_id, prompt, seed, cache_key, created_at)"
                   " VALUES (1, 'ok', 'text', 'm', 'p', ?, 'k', 'x')", (i,))
    db.commit()
    db.close()
    log = RunLog(tmp_path)
    runs = log.list_runs()
    assert len({r.uid for r in runs}) == 3 and all(r.uid and not r.imported for r in runs)
    assert log.get_comparison(1).uid
    log.close()


def test_imported_runs_are_never_served_as_cache_hits(log, tmp_path):
    forged = record(1, output_text="forged output")
    exported = log.export(tmp_path / "f.jsonl", "jsonl", runs=[log.get_run(log.add_run(forged))])
    victim = RunLog(tmp_path / "victim")
    assert victim.import_jsonl(exported).imported == 1
    assert victim.list_runs()[0].imported
    assert victim.find_cached(record(1)) is None
    assert victim.find_cached(record(1), include_imported=True).output_text == "forged output"
    own = victim.add_run(record(1, output_text="generated here"))
    assert victim.find_cached(record(1)).id == own
    victim.close()


def test_imported_flag_in_a_file_cannot_claim_local_origin(log, tmp_path):
    path = tmp_path / "claims.jsonl"
    path.write_text(json.dumps(dict(dataclasses.asdict(record(2)), imported=False, uid="claim-0001")) + "\n")
    assert log.import_jsonl(path).imported == 1
    assert log.find_cached(record(2)) is None


TEXT_COLUMNS = [f.name for f in dataclasses.fields(RunRecord) if "str" in str(f.type)
                and f.name not in ("uid", "status", "artifact")]     # chosen by the log, not by a user
DANGEROUS = ["=HYPERLINK(\"http://x\",\"click\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\tTAB", "\rCR"]


@pytest.mark.parametrize("column", TEXT_COLUMNS + ["comparison_title"])
def test_csv_cells_cannot_start_a_formula(log, tmp_path, column):
    runs = []
    for number, payload in enumerate(DANGEROUS):
        if column == "comparison_title":
            comparison = log.start_comparison("text", payload)
            run_id = log.add_run(record(number, comparison_id=comparison))
        elif column in ("stars", "thumbs", "note"):
            run_id = log.add_run(record(number))
            log.rate(run_id, note=payload)
        else:
            run_id = log.add_run(record(number, **{column: payload}))
        runs.append(log.get_run(run_id))
    path = log.export(tmp_path / "x.csv", "csv", runs=runs)
    with path.open(newline="", encoding="utf-8") as handle:
        cells = [r[column] for r in csv.DictReader(handle)]
    assert column in _CSV_COLUMNS
    assert cells == ["'" + payload for payload in DANGEROUS]


@pytest.mark.parametrize("bad", [10**20, -1, 0, "abc", "7", True, 1.5, None, float("nan"), "1e3", [1], 2**63])
def test_ids_are_validated_at_the_store_boundary(log, bad):
    comparison = log.start_comparison("text", "ids")
    run_id = log.add_run(record(1, comparison_id=comparison))
    calls = [lambda: log.get_comparison(bad), lambda: log.get_comparison_header(bad), lambda: log.get_run(bad),
             lambda: log.rate(bad, stars=3), lambda: log.set_winner(bad, run_id),
             lambda: log.set_winner(comparison, bad), lambda: log.finish_comparison(bad),
             lambda: log.list_runs(comparison_id=bad)][:None if bad is not None else -1]   # None: no filter
    for call in calls:
        with pytest.raises(InvalidId) as caught:
            call()
        assert isinstance(caught.value, (ValueError, StoreInputError)) and "id must be" in str(caught.value)
    for bad_limit in (bad, -5, 2**64):
        if isinstance(bad_limit, int) and not isinstance(bad_limit, bool) and 0 <= bad_limit < 2**63:
            continue
        with pytest.raises(StoreInputError):
            log.list_runs(limit=bad_limit)
        with pytest.raises(StoreInputError):
            log.list_comparisons(offset=bad_limit)


def test_missing_rows_are_not_found_with_a_clean_message(log):
    with pytest.raises(NotFound) as caught:
        log.get_run(2**62)
    assert str(caught.value) == f"no run #{2**62} in the log" and isinstance(caught.value, KeyError)
    with pytest.raises(NotFound):
        log.rate(12345, stars=1)
    assert log.list_runs(comparison_id=7.0) == []              # JSON's 7.0 is the whole number 7; "7" is text
