"""The run log mirrored to a Dataset folder and restored from it: files named per process, append-only rows, media
copied once, and a restore that adds each run once however often it runs. The Hub itself is never called."""

from __future__ import annotations

import functools
import shutil
import signal
import threading
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import pytest

from playground.hub_sync import (LogMirror, _scheduler_class, check_repo_id, restore_from_folder, run_identity,
                                 start)
from playground.settings import Settings
from playground.store import RunLog, RunRecord


def _png(shade: int) -> bytes:
    """A real image: imports decode what they are given."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (shade % 256, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def _run(log: RunLog, comparison_id: int, i: int, artifact: bytes | None = None, **extra) -> int:
    record = RunRecord(modality="image" if artifact else "text", model_id="tiny-text", prompt=f"a lantern, take {i}",
                       seed=i, params={"steps": 2}, comparison_id=comparison_id, row=i, col=0, variant="plain",
                       template_name="product-tagline", output_text=None if artifact else f"light {i}", **extra)
    return log.add_run(record, artifact=artifact, artifact_ext="png" if artifact else None)


def _comparison(log: RunLog, n: int, owner: str | None = None, first: int = 0) -> tuple[int, list[int]]:
    comparison_id = log.start_comparison("text", f"comparison from {first}", "product-tagline", {"seeds": n},
                                         owner=owner)
    ids = [_run(log, comparison_id, first + i, artifact=_png(first + i) if i == 0 else None)
           for i in range(n)]
    log.finish_comparison(comparison_id)
    return comparison_id, ids


def _push(mirror: LogMirror, dataset: Path) -> None:
    """What CommitScheduler does with the mirror folder: the Dataset repo ends up holding the same files."""
    mirror.sync()
    shutil.copytree(mirror.folder, dataset, dirs_exist_ok=True)


def _fingerprints(log: RunLog) -> list[tuple]:
    return sorted((r.prompt, r.seed, r.stars, r.note, r.output_text, r.created_at)
                  for r in log.list_runs(limit=1_000_000))


@pytest.fixture
def log(tmp_path):
    run_log = RunLog(tmp_path / "process-1", orphan_age_s=0)
    yield run_log
    run_log.close()


def test_the_mirror_appends_new_runs_to_one_file_per_process_with_media_beside_it(log, tmp_path):
    comparison_id, ids = _comparison(log, 2)
    mirror = LogMirror(log, tmp_path / "mirror")
    assert mirror.sync() == 2
    files = list((tmp_path / "mirror" / "runs").glob("*.jsonl"))
    assert files == [mirror.path]
    first = mirror.path.read_bytes()
    assert len(first.splitlines()) == 2
    artifact = log.get_run(ids[0]).artifact
    assert (tmp_path / "mirror" / "media" / artifact).read_bytes() == log.artifact_path(log.get_run(ids[0])).read_bytes()

    assert mirror.sync() == 0 and mirror.path.read_bytes() == first          # nothing new: the file is untouched
    _run(log, comparison_id, 9)
    assert mirror.sync() == 1
    grown = mirror.path.read_bytes()
    assert grown.startswith(first) and len(grown.splitlines()) == 3            # append-only

    log.rate(ids[1], stars=5, note="best")
    assert mirror.sync() == 1                                                 # a later judgement: one more row
    assert b'"note": "best"' in mirror.path.read_bytes().splitlines()[-1]
    assert not list((tmp_path / "mirror").rglob("*.tmp"))

    other = LogMirror(log, tmp_path / "mirror")                               # a second process, same folder
    assert other.path != mirror.path and other.path.parent == mirror.path.parent


def test_a_winner_and_an_owner_set_later_are_mirrored_again(log, tmp_path):
    comparison_id, ids = _comparison(log, 2)
    mirror = LogMirror(log, tmp_path / "mirror")
    mirror.sync()
    log.set_winner(comparison_id, ids[1])
    assert mirror.sync() == 1
    log.set_winner(comparison_id, ids[0])
    assert mirror.sync() == 2                                                 # the old winner and the new one


def test_a_comparison_is_restored_with_its_last_status_and_one_left_running_as_interrupted(log, tmp_path):
    dataset, mirror = tmp_path / "dataset", LogMirror(log, tmp_path / "mirror")
    partial = log.start_comparison("text", "ended partial", "product-tagline", {})
    _run(log, partial, 0)
    _push(mirror, dataset)                                                    # mirrored while it ran
    _run(log, partial, 1, status="error", error="the server went away")
    log.finish_comparison(partial, "partial")
    done = log.start_comparison("text", "finished after its last run was mirrored", "product-tagline", {})
    _run(log, done, 2)
    _push(mirror, dataset)
    log.finish_comparison(done, "done")
    stopped = log.start_comparison("text", "running when the Space stopped", "product-tagline", {})
    _run(log, stopped, 3)
    _push(mirror, dataset)
    with RunLog(tmp_path / "restarted") as fresh:
        report = restore_from_folder(fresh, dataset)
        assert (report.imported, report.errors) == (4, [])
        assert {c.title: c.status for c in fresh.list_comparisons()} == {
            "ended partial": "partial", "finished after its last run was mirrored": "done",
            "running when the Space stopped": "interrupted"}


def test_restoring_twice_adds_nothing_the_second_time(log, tmp_path):
    _comparison(log, 3, owner="hf:alice")
    mirror = LogMirror(log, tmp_path / "mirror")
    mirror.sync()
    with RunLog(tmp_path / "restarted") as fresh:
        first = restore_from_folder(fresh, mirror.folder)
        assert (first.imported, first.errors) == (3, [])
        second = restore_from_folder(fresh, mirror.folder)
        assert (second.imported, second.skipped, second.errors) == (0, 3, [])
        assert _fingerprints(fresh) == _fingerprints(log)
        assert len(fresh.list_comparisons()) == 1
        assert fresh.integrity_check() == "ok"
    # Restoring into the log that wrote the mirror (a disk that survived) adds nothing either.
    assert restore_from_folder(log, mirror.folder).imported == 0
    assert len(log.list_runs(limit=1000)) == 3


def test_three_restarts_keep_every_run_once_with_its_last_rating_winner_owner_and_media(tmp_path):
    dataset = tmp_path / "dataset"                     # the Dataset repo, as a snapshot_download would give it
    with RunLog(tmp_path / "p1") as p1:
        c1, ids1 = _comparison(p1, 2, owner="hf:alice", first=0)
        p1.rate(ids1[0], stars=2)
        mirror1 = LogMirror(p1, tmp_path / "p1-mirror")
        _push(mirror1, dataset)
        media_bytes = p1.artifact_path(p1.get_run(ids1[0])).read_bytes()

    with RunLog(tmp_path / "p2") as p2:                # the disk was wiped: restore, then carry on
        assert restore_from_folder(p2, dataset).imported == 2
        mirror2 = LogMirror(p2, tmp_path / "p2-mirror")
        mirror2.skip_existing()
        assert mirror2.sync() == 0                     # restored runs are not mirrored again
        old = {r.seed: r for r in p2.list_runs(owner="hf:alice")}
        assert set(old) == {0, 1}                      # the owner came back: alice still sees her history
        p2.rate(old[0].id, stars=5, note="changed my mind")
        p2.set_winner(old[1].comparison_id, old[1].id)
        _comparison(p2, 1, owner="anon:" + "b" * 32, first=10)
        _push(mirror2, dataset)

    assert len(list((dataset / "runs").glob("*.jsonl"))) == 2
    with RunLog(tmp_path / "p3") as p3:
        for _ in range(2):                             # a restart that restores twice
            restore_from_folder(p3, dataset)
        runs = p3.list_runs(limit=1000)
        assert sorted(r.seed for r in runs) == [0, 1, 10]
        by_seed = {r.seed: r for r in runs}
        assert (by_seed[0].stars, by_seed[0].note) == (5, "changed my mind")
        assert p3.get_comparison(by_seed[1].comparison_id).winner_run_id == by_seed[1].id
        assert [r.seed for r in p3.list_runs(owner="hf:alice")] == [1, 0]
        assert [r.seed for r in p3.list_runs(owner="anon:" + "b" * 32)] == [10]
        assert p3.artifact_path(by_seed[0]).read_bytes() == media_bytes
        assert len(p3.list_comparisons()) == 2


def test_a_damaged_row_is_reported_and_the_rest_restored(log, tmp_path):
    _comparison(log, 2)
    mirror = LogMirror(log, tmp_path / "mirror")
    mirror.sync()
    with open(mirror.path, "a", encoding="utf-8") as handle:
        handle.write('{"cut off mid-wri\n{"prompt": "no time, no model"}\n{"prompt": "nor here"}\n')
    with RunLog(tmp_path / "restarted") as fresh:
        report = restore_from_folder(fresh, mirror.folder)
        assert report.imported == 2 and len(report.errors) == 3
        assert "line 3" in report.errors[0] and "not a run: no created_at" in report.errors[1]


def test_media_paths_in_a_row_never_reach_outside_the_snapshot(log, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the log")
    _comparison(log, 1)
    mirror = LogMirror(log, tmp_path / "mirror")
    mirror.sync()
    text = mirror.path.read_text()
    artifact = log.list_runs()[0].artifact
    mirror.path.write_text(text.replace(artifact, "../../secret.txt"))
    with RunLog(tmp_path / "restarted") as fresh:
        restore_from_folder(fresh, mirror.folder)
        assert [r.artifact for r in fresh.list_runs()] == [None]


def test_run_identity_is_kept_by_export_and_import(log, tmp_path):
    _comparison(log, 2)
    exported = log.export(tmp_path / "all.jsonl", "jsonl", runs=log.list_runs())
    with RunLog(tmp_path / "other") as other:
        other.import_jsonl(exported)
        assert sorted(run_identity(r.__dict__) for r in other.list_runs()) == \
            sorted(run_identity(r.__dict__) for r in log.list_runs())


# ---- start-up wiring, with the Hub replaced at its edge -----------------------------------------------------------------

class FakeHub:
    """Stands in for HfApi: records what CommitScheduler would create and commit."""

    def __init__(self):
        self.commits = []
        self.queue = threading.Lock()        # HfApi runs futures one at a time, in one worker

    def create_repo(self, repo_id, private=None, repo_type=None, exist_ok=False):
        self.created = (repo_id, private, repo_type)
        return SimpleNamespace(repo_id=repo_id)

    def run_as_future(self, fn, *args, **kwargs):
        future = Future()
        with self.queue:
            future.set_result(fn(*args, **kwargs))
        return future

    def create_commit(self, repo_id, repo_type, operations, commit_message, revision=None):
        self.commits.append({op.path_in_repo: op.path_or_fileobj.read() for op in operations})
        return "commit"


def test_start_does_nothing_without_a_dataset_or_a_token(log, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    assert start(Settings(data_dir=tmp_path), log) is None
    assert start(Settings(data_dir=tmp_path, hub_dataset="someone/log"), log) is None
    with pytest.raises(ValueError, match="owner/name"):
        start(Settings(data_dir=tmp_path, hub_dataset="not a repo"), log, token="hf_x")
    assert check_repo_id(" someone/log ") == "someone/log"


def test_start_restores_then_pushes_the_mirror_through_commit_scheduler(tmp_path):
    dataset = tmp_path / "dataset"
    with RunLog(tmp_path / "before") as before:
        _comparison(before, 2, owner="hf:alice")
        _push(LogMirror(before, tmp_path / "before-mirror"), dataset)

    downloads = []

    def download(repo_id, repo_type, local_dir, token, allow_patterns):
        downloads.append((repo_id, repo_type, token))
        shutil.copytree(dataset, local_dir, dirs_exist_ok=True)

    hub = FakeHub()
    previous = signal.getsignal(signal.SIGTERM)
    settings = Settings(data_dir=tmp_path / "after", hub_dataset="someone/log", hub_sync_every_min=60)
    with RunLog(settings.data_dir) as after:
        scheduler = start(settings, after, token="hf_secret", download=download,
                          scheduler_class=functools.partial(_scheduler_class(), hf_api=hub))
        try:
            assert downloads == [("someone/log", "dataset", "hf_secret")]
            assert hub.created == ("someone/log", True, "dataset")
            assert len(after.list_runs(owner="hf:alice")) == 2          # restored, with its owner
            assert hub.commits == []                                   # restored runs are not pushed back
            comparison_id, ids = _comparison(after, 1, first=20)
            scheduler.trigger().result()
            (pushed,) = hub.commits
            rows = [name for name in pushed if name.startswith("runs/")]
            assert len(rows) == 1 and pushed[rows[0]].count(b"\n") == 1
            assert any(name.startswith("media/artifacts/") for name in pushed)
            assert b"hf_secret" not in b"".join(pushed.values())
            assert signal.getsignal(signal.SIGTERM) is not previous    # one more push when the Space stops
        finally:
            scheduler.stop()
            signal.signal(signal.SIGTERM, previous)


def test_restore_holds_fields_to_the_spaces_limits_but_not_to_an_uploads_caps(log, tmp_path):
    """A mirror file outgrows an upload's row and size caps as the Space is used; its runs must still come back."""
    from playground.store.limits import ImportLimits

    _comparison(log, 3)
    mirror = LogMirror(log, tmp_path / "mirror")
    mirror.sync()
    with RunLog(tmp_path / "restarted") as fresh:
        report = restore_from_folder(fresh, mirror.folder, ImportLimits(max_rows=1, max_bytes=10))
        assert (report.imported, report.errors) == (3, [])
    with RunLog(tmp_path / "strict") as strict:
        report = restore_from_folder(strict, mirror.folder, ImportLimits(max_prompt_chars=3))
        assert report.imported == 0 and report.errors
