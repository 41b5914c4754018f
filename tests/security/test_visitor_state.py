"""Nothing one visitor does shows in what another sees: the result cache and the uids of imported runs are kept
per visitor where visitors are kept apart, and an import file's own mistakes get messages, not SQLite's words."""

from __future__ import annotations

import json

import pytest

from public_mode import public_app, visitor  # noqa: F401 (fixtures)

from playground.store import RunLog, RunRecord


def comparison_rows(uid_prefix: str = "shared", n: int = 3, output: str = "genuine") -> list[dict]:
    comparison = {"title": "a shared comparison", "modality": "text", "uid": f"{uid_prefix}-comparison-0001"}
    return [dict(modality="text", model_id="tiny-text", prompt=f"prompt {i}", seed=i, params={}, row=0, col=i,
                 comparison_id=7, variant=f"v{i}", output_text=f"{output} {i}", uid=f"{uid_prefix}-run-{i:04d}",
                 comparison=comparison) for i in range(n)]


def write(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def log(tmp_path):
    run_log = RunLog(tmp_path / "data")
    yield run_log
    run_log.close()


def test_the_cache_serves_a_visitor_only_their_own_runs(log):
    def run(owner):
        cid = log.start_comparison("text", "t", owner=owner)
        record = RunRecord(modality="text", model_id="tiny-text", prompt="secret plan", seed=1, params={},
                           comparison_id=cid, output_text="the plan")
        log.add_run(record)
        return record

    alices = run("anon:alice")
    probe = RunRecord(modality="text", model_id="tiny-text", prompt="secret plan", seed=1, params={})
    assert log.find_cached(probe, owner="anon:bob") is None
    assert log.find_cached(probe, owner="anon:alice").id == alices.id
    assert log.find_cached(probe).id == alices.id            # local use: one user, one cache


def test_a_forged_copy_neither_blocks_nor_reveals_a_genuine_import(log, tmp_path):
    genuine = write(tmp_path / "genuine.jsonl", comparison_rows())
    forged = write(tmp_path / "forged.jsonl", comparison_rows(output="forged"))
    first = log.import_jsonl(forged, owner="anon:bob")
    assert first.imported == 3 and not first.errors

    carols = log.import_jsonl(genuine, owner="anon:carol")
    assert (carols.imported, carols.skipped, carols.errors) == (3, 0, [])
    again = log.import_jsonl(genuine, owner="anon:carol")        # importing twice still adds nothing
    assert (again.imported, again.skipped) == (0, 3)
    outputs = sorted(r.output_text for r in log.list_runs(owner="anon:carol"))
    assert outputs == ["genuine 0", "genuine 1", "genuine 2"]
    assert sorted(r.output_text for r in log.list_runs(owner="anon:bob")) == ["forged 0", "forged 1", "forged 2"]
    bobs_again = log.import_jsonl(forged, owner="anon:bob")
    assert (bobs_again.imported, bobs_again.skipped) == (0, 3)


def test_a_visitor_reimporting_their_own_export_adds_nothing(log, tmp_path):
    cid = log.start_comparison("text", "mine", owner="anon:alice")
    log.add_run(RunRecord(modality="text", model_id="tiny-text", prompt="p", seed=1, params={}, comparison_id=cid,
                          output_text="o"))
    exported = log.export(tmp_path / "mine.jsonl", "jsonl", runs=log.get_comparison(cid).runs)
    report = log.import_jsonl(exported, owner="anon:alice")
    assert (report.imported, report.skipped) == (0, 1)


def test_a_uid_twice_in_one_file_is_named_not_a_constraint(log, tmp_path):
    rows = comparison_rows(n=2)
    rows += [dict(rows[0], output_text="another output"), rows[1]]
    report = log.import_jsonl(write(tmp_path / "twice.jsonl", rows))
    assert (report.imported, report.skipped) == (2, 1)           # the very same line twice: taken once
    assert [line for line, _ in report.errors] == [3]
    message = report.errors[0][1]
    assert "also the uid of line 1" in message and "UNIQUE" not in message


def test_loose_runs_are_refused_where_visitors_are_kept_apart(log, tmp_path):
    loose = [dict(modality="text", model_id="tiny-text", prompt="p", seed=1, params={}, uid="loose-run-0001")]
    report = log.import_jsonl(write(tmp_path / "loose.jsonl", loose), owner="anon:alice")
    assert report.imported == 0 and "without its comparison" in report.errors[0][1]


@pytest.mark.slow
def test_a_visitor_running_anothers_inputs_is_not_served_their_cache(visitor):
    alice, bob = visitor(), visitor()
    args = ("product-tagline", None, None, ["tiny-text"], [1], {"max_new_tokens": 2}, False, None)
    alices = alice.predict(*args, api_name="/compare")
    bobs = bob.predict(*args, api_name="/compare")
    assert not any(run["cached"] for run in bobs["runs"])
    alice_ids = {run["run_id"] for run in alices["runs"]}
    assert all(run["run_id"] not in alice_ids for run in bobs["runs"])
    assert all(run["cached"] for run in alice.predict(*args, api_name="/compare")["runs"])    # her own cache works
