"""Server-side jobs in the run log: one claim per job across processes, dead workers detected by pid and heartbeat,
pause, resume and cancel honoured by a running handler, failures kept with their message."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from playground import jobs
from playground.jobs import JobError, JobQueue, JobWorker
from playground.store import RunLog

ROOT = Path(__file__).resolve().parent.parent
STEPS: dict[int, int] = {}


def counting(context):
    """A resumable handler: counts to spec['steps'], keeping its place in progress; stops when asked."""
    done = int(context.job.progress.get("done", 0))
    for step in range(done, context.job.spec["steps"]):
        if context.stopping:
            return
        time.sleep(context.job.spec.get("sleep", 0.01))
        STEPS[context.job.id] = STEPS.get(context.job.id, 0) + 1
        context.progress(done=step + 1, force=True)


def failing(context):
    raise ValueError("the dataset is gone: add it again")


@pytest.fixture(autouse=True)
def kinds():
    STEPS.clear()
    jobs.register_kind("count", counting)
    jobs.register_kind("fail", failing)
    yield
    jobs.KINDS.pop("count", None)
    jobs.KINDS.pop("fail", None)


@pytest.fixture
def queue(tmp_path):
    log = RunLog(tmp_path / "data")
    yield JobQueue(log, stale_after_s=5)
    log.close()


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_submit_claim_and_finish(queue):
    job = queue.submit("count", {"steps": 3}, owner="anon:a")
    assert job.status == "queued" and job.spec_hash == jobs.spec_hash({"steps": 3})
    assert queue.find("count", job.spec_hash, "anon:a").id == job.id
    assert queue.find("count", job.spec_hash, "anon:b") is None
    with pytest.raises(KeyError):
        queue.get(job.id, owner="anon:b")
    claimed = queue.claim("w1")
    assert claimed.id == job.id and claimed.status == "running" and claimed.worker == "w1"
    assert queue.claim("w2") is None                      # a live worker holds it
    assert queue.beat(claimed, "w2") is None and queue.beat(claimed, "w1") == "running"
    assert queue.finish(claimed, "w1", "done")
    done = queue.get(job.id)
    assert done.status == "done" and done.worker is None and done.finished_at


def test_two_processes_never_claim_the_same_job(tmp_path):
    log = RunLog(tmp_path / "data")
    queue = JobQueue(log)
    for _ in range(6):
        queue.submit("count", {"steps": 1})
    code = ("import sys, time; sys.path.insert(0, %r)\n"
            "from playground.store import RunLog\nfrom playground.jobs import JobQueue\n"
            "queue = JobQueue(RunLog(sys.argv[1]))\nclaimed = []\n"
            "while True:\n    job = queue.claim(sys.argv[2])\n    if job is None: break\n    claimed.append(job.id)\n"
            "    queue.finish(job, sys.argv[2], 'done')\n"      # as a worker does: a finished job is never claimed again
            "print(','.join(map(str, claimed)))\n" % str(ROOT))
    workers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "data"), f"w{n}"],
                                stdout=subprocess.PIPE, text=True) for n in range(3)]
    claims = [int(x) for w in workers for x in w.communicate(timeout=120)[0].strip().split(",") if x]
    assert sorted(claims) == [j.id for j in reversed(queue.list())]     # each job exactly once
    log.close()


def test_a_dead_worker_is_found_by_its_pid_and_by_a_stale_heartbeat(queue):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    job = queue.submit("count", {"steps": 1})
    with queue.log._write() as tx:        # what a SIGKILLed process leaves behind
        tx.execute("UPDATE jobs SET status = 'running', worker = 'dead', pid = ?, host = ?, heartbeat_at = ? "
                   "WHERE id = ?", (gone.pid, jobs.HOST, time.time(), job.id))
    assert queue.recover() == 1 and queue.get(job.id).status == "interrupted"
    assert queue.claim("w1").id == job.id
    other = queue.submit("count", {"steps": 2})
    with queue.log._write() as tx:        # another host's worker, beating recently: alive
        tx.execute("UPDATE jobs SET status = 'running', worker = 'far', pid = 1, host = 'elsewhere', "
                   "heartbeat_at = ? WHERE id = ?", (time.time(), other.id))
    assert queue.claim("w2") is None
    with queue.log._write() as tx:        # ... and silent for longer than stale_after_s: dead
        tx.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", (time.time() - 60, other.id))
    assert queue.claim("w2").id == other.id


def test_pause_resume_and_cancel_a_running_job(queue):
    worker = JobWorker(services=None, queue=queue, threads=1, poll_s=0.1).start()
    try:
        job = queue.submit("count", {"steps": 400, "sleep": 0.02})
        assert wait_for(lambda: queue.get(job.id).progress.get("done", 0) >= 5)
        queue.pause(job.id)
        assert wait_for(lambda: queue.get(job.id).worker is None)
        paused = queue.get(job.id)
        assert paused.status == "paused" and 5 <= paused.progress["done"] < 400
        time.sleep(0.3)
        assert queue.get(job.id).progress["done"] == paused.progress["done"]     # it really stopped
        queue.resume(job.id)
        assert wait_for(lambda: queue.get(job.id).progress["done"] > paused.progress["done"])
        queue.cancel(job.id)
        assert wait_for(lambda: queue.get(job.id).worker is None)
        assert queue.get(job.id).status == "cancelled"
        with pytest.raises(JobError, match="cancelled; nothing to resume"):
            queue.resume(job.id)
        quick = queue.submit("count", {"steps": 3})
        assert wait_for(lambda: queue.get(quick.id).status == "done")
        assert STEPS[quick.id] == 3
    finally:
        worker.stop()


def test_a_failing_handler_fails_its_job_and_the_worker_goes_on(queue):
    worker = JobWorker(services=None, queue=queue, threads=1, poll_s=0.1).start()
    try:
        bad = queue.submit("fail", {})
        good = queue.submit("count", {"steps": 2})
        assert wait_for(lambda: queue.get(good.id).status == "done")
        failed = queue.get(bad.id)
        assert failed.status == "failed" and failed.error == "the dataset is gone: add it again"
    finally:
        worker.stop()
    assert queue.resume(bad.id).status == "queued"               # a failed job may be tried again


def test_stopping_the_worker_leaves_its_job_to_continue_at_the_next_start(queue):
    worker = JobWorker(services=None, queue=queue, threads=1, poll_s=0.1).start()
    job = queue.submit("count", {"steps": 300, "sleep": 0.02})
    assert wait_for(lambda: queue.get(job.id).progress.get("done", 0) >= 3)
    worker.stop()
    stopped = queue.get(job.id)
    assert stopped.status == "interrupted" and stopped.worker is None
    again = JobWorker(services=None, queue=queue, threads=1, poll_s=0.1).start()
    try:
        assert wait_for(lambda: queue.get(job.id).status == "done", timeout=60)
        assert STEPS[job.id] == 300                  # resumed from its progress, no step twice
    finally:
        again.stop()


def test_a_job_of_a_kind_nobody_handles_waits(queue):
    job = queue.submit("unknown-kind", {})
    assert queue.claim("w1", kinds=tuple(jobs.KINDS)) is None
    assert queue.get(job.id).status == "queued"
    with pytest.raises(JobError, match="no handler for jobs of kind 'unknown-kind'"):
        jobs.handler_for("unknown-kind")


def test_runs_in_the_foreground_with_run_one(queue):
    job = queue.submit("count", {"steps": 4})
    finished = JobWorker(services=None, queue=queue).run_one(job.id)
    assert finished.status == "done" and finished.progress["done"] == 4
    held = queue.submit("count", {"steps": 1})
    queue.claim("someone-alive", job_id=held.id)
    assert JobWorker(services=None, queue=queue).run_one(held.id) is None
