"""Scores in the run log: migration from today's schema, save/replace/read, export columns, rescoring old
comparisons from their logged files, and `python -m playground stats`."""

from __future__ import annotations

import io
import json
import sqlite3

import numpy as np
import pytest

from playground.scoring import ScorerContext, comparison_summary, rescore_comparison, score_and_save
from playground.store import MIGRATIONS, SCHEMA_VERSION, RunLog, RunRecord
from playground.store.scores import (Score, add_score_columns, delete_scores, save_scores, scores_for_runs,
                                     scores_from_export_row)


@pytest.fixture
def log(tmp_path):
    with RunLog(tmp_path / "data") as log:
        yield log


def text_run(log, comparison_id=None, variant="plain", seed=1, text="A solar lantern.", status="ok", **extra):
    record = RunRecord(modality="text", model_id="tiny-text", prompt=f"{variant}: write a tagline", seed=seed,
                       params={}, comparison_id=comparison_id, variant=variant, output_text=text, status=status,
                       variables={"product": "lantern"}, wall_s=0.25, **extra)
    log.add_run(record)
    return record


def test_a_database_at_migration_3_upgrades_to_scores(tmp_path):
    db = sqlite3.connect(tmp_path / "runs.db")        # the schema as released before scores existed
    db.execute("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    for number, sql in MIGRATIONS:
        if number <= 3:
            db.executescript(sql)
            db.execute("INSERT INTO _migrations VALUES (?, '2025-01-01T00:00:00.000Z')", (number,))
    db.execute("INSERT INTO runs (status, modality, model_id, prompt, seed, cache_key, created_at, output_text) "
               "VALUES ('ok', 'text', 'old-model', 'an old prompt', 7, 'k', '2025-01-01T00:00:00Z', 'a lantern')")
    db.commit()
    db.close()
    with RunLog(tmp_path) as log:
        assert log.schema_version() == SCHEMA_VERSION
        applied = [r[0] for r in log._db().execute("SELECT id FROM _migrations ORDER BY id")]
        assert 5 in applied and applied[:3] == [1, 2, 3]
        old = log.list_runs()[0]
        assert old.output_text == "a lantern"
        save_scores(log, old.id, [Score("contains=lantern", 1.0, True, {"check": "contains"})])
        assert scores_for_runs(log, [old.id])[old.id]["contains=lantern"].passed is True


def test_save_replace_read_and_delete(log):
    run = text_run(log)
    scores = [Score("clip", 0.31, None, {"check": "clip", "better": "higher"}), Score("contains=x", 0.0, False)]
    save_scores(log, run.id, scores)
    assert scores[0].run_id == run.id and scores[0].created_at
    save_scores(log, run.id, [Score("clip", 0.42, None, {"check": "clip", "note": "again"})])   # replaces
    stored = scores_for_runs(log, [run.id, 999])
    assert list(stored) == [run.id]
    assert stored[run.id]["clip"].value == 0.42 and stored[run.id]["clip"].detail["note"] == "again"
    assert stored[run.id]["contains=x"].passed is False
    assert log._db().execute("SELECT count(*) FROM scores").fetchone()[0] == 2
    assert delete_scores(log, run.id, ["clip"]) == 1 and list(scores_for_runs(log, [run.id])[run.id]) == ["contains=x"]


def test_bad_scores_are_refused_and_nothing_is_half_written(log):
    run = text_run(log)
    for bad, message in [(Score("", 1.0), "name"), (Score("x", float("nan")), "finite"),
                         (Score("x", "high"), "number"), (Score("x", 1.0, passed="yes"), "passed")]:
        with pytest.raises(ValueError, match=message):
            save_scores(log, run.id, [Score("fine", 1.0), bad])
    assert scores_for_runs(log, [run.id]) == {}
    with pytest.raises(KeyError, match="no run #999"):
        save_scores(log, 999, [Score("x", 1.0)])


def test_scores_go_when_their_run_goes(log):
    run = text_run(log)
    save_scores(log, run.id, [Score("latency", 0.25)])
    with log._write() as tx:
        tx.execute("DELETE FROM runs WHERE id = ?", (run.id,))
    assert log._db().execute("SELECT count(*) FROM scores").fetchone()[0] == 0


def test_export_rows_carry_scores_and_import_reads_them_back(log):
    a, b = text_run(log), text_run(log, seed=2)
    save_scores(log, a.id, [Score("contains=lantern", 1.0, True, {"check": "contains"}), Score("latency", 0.25)])
    rows = log._export_rows([a, b])
    columns = add_score_columns(log, rows)
    assert columns == ["passed:contains=lantern", "score:contains=lantern", "score:latency"]
    first = next(r for r in rows if r["id"] == a.id)
    assert first["score:latency"] == 0.25 and first["passed:contains=lantern"] is True
    assert first["scores"]["contains=lantern"] == {"value": 1.0, "passed": True, "detail": {"check": "contains"}}
    assert next(r for r in rows if r["id"] == b.id)["scores"] == {}
    nested_only = log._export_rows([a])
    assert add_score_columns(log, nested_only, flat=False) == [] and "score:latency" not in nested_only[0]
    back = scores_from_export_row(json.loads(json.dumps(first)))
    assert {(s.name, s.value, s.passed) for s in back} == {("contains=lantern", 1.0, True), ("latency", 0.25, None)}
    with pytest.raises(ValueError, match="must be an object"):
        scores_from_export_row({"scores": [1, 2]})
    (infinite,) = scores_from_export_row({"scores": {"x": {"value": float("inf")}}})
    assert infinite.value is None and "must be finite" in infinite.detail["error"]


def test_scores_travel_with_their_runs_through_an_export_file(log, tmp_path):
    comparison_id = log.start_comparison("text", "scored")
    a = text_run(log)
    with log._write() as tx:
        tx.execute("UPDATE runs SET comparison_id = ? WHERE id = ?", (comparison_id, a.id))
    a = log.get_run(a.id)
    save_scores(log, a.id, [Score("latency", 0.25), Score("contains=lantern", 1.0, True, {"check": "contains"})])
    exported = log.export(tmp_path / "scored.jsonl", "jsonl", runs=[a])
    other = RunLog(tmp_path / "elsewhere")
    report = other.import_jsonl(exported)
    assert report.imported == 1 and not report.errors
    (run,) = other.list_runs()
    back = scores_for_runs(other, [run.id])[run.id]
    assert back["latency"].value == 0.25 and back["contains=lantern"].passed is True
    other.close()


def test_a_nan_score_is_that_scores_failure_only(log, tmp_path, monkeypatch):
    from playground.scoring.record import Latency

    monkeypatch.setattr(Latency, "score", lambda self, cell, context: self.make(float("nan")))
    run = text_run(log)
    scores = score_and_save(log, run, None, ["contains=solar", "latency"], ScorerContext(models_dir=tmp_path))
    assert [s.value for s in scores] == [1.0, None] and "must be finite, got nan" in scores[1].detail["error"]
    stored = scores_for_runs(log, [run.id])[run.id]
    assert stored["contains=solar"].value == 1.0 and stored["latency"].value is None


def test_an_imported_row_with_a_nan_score_keeps_its_run_and_other_scores(log, tmp_path):
    a = text_run(log)
    save_scores(log, a.id, [Score("latency", 0.25), Score("contains=lantern", 1.0, True, {"check": "contains"})])
    exported = log.export(tmp_path / "scored.jsonl", "jsonl", runs=[a])
    row = json.loads(exported.read_text())
    row["scores"]["latency"]["value"] = float("nan")              # json writes NaN, json reads it back
    row["scores"]["contains=lantern"]["detail"] = "not an object"
    exported.write_text(json.dumps(row) + "\n")
    with RunLog(tmp_path / "elsewhere") as other:
        report = other.import_jsonl(exported)
        assert report.imported == 1 and not report.errors
        (run,) = other.list_runs()
        back = scores_for_runs(other, [run.id])[run.id]
    assert back["latency"].value is None and "must be finite" in back["latency"].detail["error"]
    assert back["contains=lantern"].value is None and "detail must be an object" in \
        back["contains=lantern"].detail["error"]


def png_bytes(seed: int) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_rescore_an_old_text_comparison_then_summarize(log, tmp_path):
    comparison = log.start_comparison("text", "taglines", "product-tagline")
    texts = {("plain", 1): "A lamp.", ("role", 1): "A solar lantern!", ("plain", 2): "Light.",
             ("role", 2): "Your lantern, sun-powered.", ("plain", 3): "A lantern."}
    for (variant, seed), text in texts.items():
        text_run(log, comparison, variant, seed, text)
    text_run(log, comparison, "role", 3, None, status="error", error="out of memory")
    context = ScorerContext(models_dir=tmp_path / "models")
    results = rescore_comparison(log, comparison, ["contains=lantern", "length"], context)
    assert len(results) == 5                                # the failed cell is not scored
    summary = comparison_summary(log, comparison)
    contains = next(m for m in summary.metrics if m.name == "contains=lantern")
    plain, role = contains.variants
    assert (plain.mean, role.mean, role.failed) == (pytest.approx(1 / 3), 1.0, 1)
    assert contains.pairs[0].a == "role" and contains.pairs[0].n == 2
    # computing again replaces rather than duplicates
    rescore_comparison(log, comparison, ["contains=lantern"], context)
    assert log._db().execute("SELECT count(*) FROM scores").fetchone()[0] == 10


def test_rescore_checks_the_modality_first(log, tmp_path):
    comparison = log.start_comparison("text", "t")
    text_run(log, comparison)
    from playground.scoring import CheckError

    with pytest.raises(CheckError, match="not text"):
        rescore_comparison(log, comparison, ["clip"], ScorerContext(models_dir=tmp_path))
    assert log._db().execute("SELECT count(*) FROM scores").fetchone()[0] == 0


def test_rescore_images_from_their_files_with_the_tiny_clip(log, models_dir):
    comparison = log.start_comparison("image", "foxes")
    for variant in ("plain", "detailed"):
        for seed in (1, 2, 3):
            record = RunRecord(modality="image", model_id="tiny-image", prompt=f"a red fox, {variant}", seed=seed,
                               params={}, comparison_id=comparison, variant=variant, wall_s=0.5)
            log.add_run(record, artifact=png_bytes(seed * 10 + len(variant)), artifact_ext="png")
    context = ScorerContext(models_dir=models_dir, offline=True)
    results = rescore_comparison(log, comparison, ["clip", "latency"], context)
    values = [scores[0].value for scores in results.values()]
    assert len(values) == 6 and all(-1 <= v <= 1 for v in values) and len(set(values)) == 6
    assert all(scores[0].detail["meaningless"] for scores in results.values())
    summary = comparison_summary(log, comparison)
    assert [m.name for m in summary.metrics] == ["clip", "latency"]
    assert summary.metrics[0].pairs[0].n == 3


def test_score_and_save_stores_under_the_run(log, tmp_path):
    run = text_run(log)
    scores = score_and_save(log, run, None, ["contains=solar", "latency"], ScorerContext(models_dir=tmp_path))
    assert [s.value for s in scores] == [1.0, 0.25]
    assert set(scores_for_runs(log, [run.id])[run.id]) == {"contains=solar", "latency"}


def test_cli_stats_prints_means_intervals_and_pairs(tmp_path, capsys):
    from playground.cli import main

    data = tmp_path / "data"
    with RunLog(data) as log:
        comparison = log.start_comparison("text", "taglines", "product-tagline")
        for seed in range(1, 5):
            text_run(log, comparison, "plain", seed, "A lamp for you." if seed < 4 else "A lantern.")
            text_run(log, comparison, "role", seed, "A solar lantern that lights every night.")
    assert main(["--offline", "--data-dir", str(data), "stats", str(comparison), "--check", "contains=lantern",
                 "--check", "length"]) == 0
    out = capsys.readouterr().out
    assert "contains=lantern (score, higher is better)" in out
    assert "role     4      1.000  1.000 to 1.000" in out
    assert "role - plain" in out and "better in 3 of 4 pairs" in out
    assert "length (score, a measurement)" in out

    assert main(["--offline", "--data-dir", str(data), "stats", str(comparison), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["comparison_id"] == comparison and summary["metrics"][0]["name"] == "contains=lantern"

    assert main(["--offline", "--data-dir", str(data), "stats", str(comparison), "--check", "clip"]) == 2
    assert "applies to image outputs, not text" in capsys.readouterr().err
