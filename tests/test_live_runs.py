"""One rule for which runs a comparison shows: a re-run names the run it replaces, and a replaced run is not live.
The counts, the grid, History, the statistics, votes, the report and exports all follow it."""

from __future__ import annotations

import json
import sqlite3

import pytest

from playground.store import MIGRATIONS, RunLog, RunRecord
from playground.store.scores import Score, save_scores

VARIANTS = ("plain", "role", "short")


@pytest.fixture
def log(tmp_path):
    run_log = RunLog(tmp_path / "data", orphan_age_s=0)
    yield run_log
    run_log.close()


def run(comparison_id: int, row: int, col: int, seed: int, **extra) -> RunRecord:
    return RunRecord(modality="text", model_id="tiny-text", prompt=f"{VARIANTS[col]} prompt", seed=seed, params={},
                     comparison_id=comparison_id, row=row, col=col, variant=VARIANTS[col],
                     variables={"product": "a lantern"}, output_text=f"output {row}.{col} seed {seed}", **extra)


def grid_of_six(log: RunLog, status: str = "done") -> tuple[int, dict[tuple[int, int], int]]:
    """Three variants x seeds 1 and 2, each cell scored; returns the comparison and its run ids by cell."""
    cells = [{"row": row, "col": col, "seed": row + 1} for row in range(2) for col in range(3)]
    comparison_id = log.start_comparison("text", "product-tagline · 6 cells", spec={"cells": cells})
    ids = {}
    for cell in cells:
        ids[(cell["row"], cell["col"])] = log.add_run(run(comparison_id, **cell))
        save_scores(log, ids[(cell["row"], cell["col"])], [Score("contains=a", 1.0, True, {"check": "contains"})])
    log.finish_comparison(comparison_id, status)
    return comparison_id, ids


def reseed(log: RunLog, comparison_id: int, replaced: int, row: int, col: int, seed: int = 777) -> int:
    fresh = log.add_run(run(comparison_id, row, col, seed, replaces=replaced))
    save_scores(log, fresh, [Score("contains=a", 0.0, False, {"check": "contains"})])
    return fresh


def test_a_rerun_replaces_its_run_in_every_count(log):
    comparison_id, ids = grid_of_six(log)
    fresh = reseed(log, comparison_id, ids[(0, 1)], 0, 1)

    live = log.get_comparison(comparison_id).runs
    assert len(live) == 6 and ids[(0, 1)] not in {r.id for r in live} and fresh in {r.id for r in live}
    assert log.get_comparison_header(comparison_id).run_count == 6
    assert log.list_comparisons()[0].run_count == 6
    assert len(log.get_comparison(comparison_id, live_only=False).runs) == 7       # kept in the log
    assert len(log.list_runs(comparison_id=comparison_id, live_only=True)) == 6
    assert log.get_run(fresh).replaces == ids[(0, 1)]
    assert log.row_seeds(comparison_id) == {0: 1, 1: 2}                           # the row keeps its seed
    role = next(r for r in log.variant_summary() if r["variant"] == "role")
    assert role["runs"] == 2


def test_two_reruns_of_one_cell_replace_one_another_in_turn(log):
    comparison_id, ids = grid_of_six(log)
    first = reseed(log, comparison_id, ids[(1, 2)], 1, 2, seed=5)
    second = reseed(log, comparison_id, ids[(1, 2)], 1, 2, seed=6)       # named the same, already replaced, run
    assert log.get_run(second).replaces == first
    assert [r.id for r in log.get_comparison(comparison_id).runs if (r.row, r.col) == (1, 2)] == [second]
    other = log.start_comparison("text", "another")
    with pytest.raises(ValueError, match="a re-run replaces a run of its own comparison"):
        log.add_run(run(other, 0, 0, 1, replaces=ids[(0, 0)]))


def test_statistics_votes_and_the_report_read_live_runs(log):
    from playground.scoring import comparison_summary
    from playground.stakeholders.report import build_context
    from playground.stakeholders.votes import candidate_pairs, progress

    comparison_id, ids = grid_of_six(log)
    fresh = reseed(log, comparison_id, ids[(0, 1)], 0, 1)

    metric = next(m for m in comparison_summary(log, comparison_id, resamples=50).metrics if m.name == "contains=a")
    role = next(v for v in metric.variants if v.variant == "role")
    assert role.n == 2 and role.missing == 0                # the replaced run no longer counts
    pairs = candidate_pairs(log.get_comparison(comparison_id).runs)
    assert ids[(0, 1)] not in {r.id for pair in pairs for r in pair}
    assert progress(log, comparison_id, "anon:x") == (0, len(pairs))

    context = build_context(log, comparison_id)
    assert context["cell_count"] == 6 and context["cells_text"] == "6"
    first_row = context["rows"][0]
    assert first_row["seed"] == 1                           # under its row's seed, with its own in the badge
    assert first_row["cells"][1]["run_id"] == fresh and first_row["cells"][1]["rerun"] == "re-run · seed 777"
    assert [r["id"] for r in context["records"]].count(fresh) == 1 and ids[(0, 1)] not in [
        r["id"] for r in context["records"]]


def test_the_grid_after_a_reload_draws_the_rerun_with_its_badge_under_its_row(log):
    from playground.ui import grid

    comparison_id, ids = grid_of_six(log)
    reseed(log, comparison_id, ids[(0, 1)], 0, 1)
    views = grid.views_for_records(log.list_runs(comparison_id=comparison_id, newest_first=False, live_only=True),
                                   log)
    rerun = next(v for v in views if (v.row, v.col) == (0, 1))
    assert rerun.badge == "re-run · seed 777" and rerun.row_label.endswith("seed 1")
    html = grid.render_grid(views, "text", comparison_id=comparison_id,
                            **grid.logged_progress(log.get_comparison_header(comparison_id)))
    assert html.count('class="pp-rowhead"') == 2 and "seed 777" not in html.split('class="pp-cell')[0]
    assert "6 / 6 cells · done" in html and 'class="pp-badge">re-run · seed 777<' in html


def test_export_and_import_keep_which_run_replaced_which(log, tmp_path):
    comparison_id, ids = grid_of_six(log)
    fresh = reseed(log, comparison_id, ids[(0, 1)], 0, 1)
    dest = log.export(tmp_path / "export.jsonl", "jsonl",
                      runs=log.get_comparison(comparison_id, live_only=False).runs)
    with RunLog(tmp_path / "elsewhere") as other:
        report = other.import_jsonl(dest)
        assert report.imported == 7 and not report.errors
        copy = other.list_comparisons()[0]
        assert copy.run_count == 6
        live = other.get_comparison(copy.id).runs
        assert sorted(r.seed for r in live) == [1, 1, 2, 2, 2, 777]
        rerun = next(r for r in live if r.seed == 777)
        replaced = other.get_run(rerun.replaces)              # the copy of the run it replaced, by its new id
        assert (replaced.row, replaced.col, replaced.seed, replaced.uid) == (0, 1, 1, log.get_run(ids[(0, 1)]).uid)
        assert rerun.uid == log.get_run(fresh).uid


def test_an_older_export_without_the_link_still_shows_one_run_per_cell(log, tmp_path):
    comparison_id, ids = grid_of_six(log)
    reseed(log, comparison_id, ids[(0, 1)], 0, 1)
    dest = log.export(tmp_path / "export.jsonl", "jsonl",
                      runs=log.get_comparison(comparison_id, live_only=False).runs)
    rows = [json.loads(line) for line in dest.read_text(encoding="utf-8").splitlines()]
    dest.write_text("".join(json.dumps({k: v for k, v in row.items() if k != "replaces"}) + "\n" for row in rows),
                    encoding="utf-8")
    with RunLog(tmp_path / "elsewhere") as other:
        other.import_jsonl(dest)
        copy = other.list_comparisons()[0]
        assert copy.run_count == 6 and 777 in {r.seed for r in other.get_comparison(copy.id).runs}


def test_a_log_from_before_links_its_reruns_when_it_upgrades(tmp_path):
    db = sqlite3.connect(tmp_path / "runs.db")
    db.executescript("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);")
    for number, sql in MIGRATIONS:
        if number < 12:
            for statement in _statements(sql):
                db.execute(statement)
            db.execute("INSERT INTO _migrations VALUES (?, '2025-01-01T00:00:00.000Z')", (number,))
    db.execute("INSERT INTO comparisons (id, modality, title, created_at, uid) VALUES (1, 'text', 't', 'x', 'u1')")
    for run_id, (row, col, seed) in enumerate([(0, 0, 1), (0, 1, 1), (0, 1, 99)], start=1):
        db.execute("INSERT INTO runs (id, comparison_id, row, col, status, modality, model_id, prompt, seed, "
                   "cache_key, created_at, uid) VALUES (?, 1, ?, ?, 'ok', 'text', 'm', 'p', ?, 'k', 'x', ?)",
                   (run_id, row, col, seed, f"run-{run_id}"))
    db.commit()
    db.close()
    with RunLog(tmp_path) as log:
        assert log.get_run(3).replaces == 2 and log.get_run(2).replaces is None
        assert [r.id for r in log.get_comparison(1).runs] == [1, 3]


def _statements(sql):
    from playground.store.schema import _statements as split

    return split(sql)
