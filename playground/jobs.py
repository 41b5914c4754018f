"""Server-side jobs: long work (an experiment's thousands of cells, later an optimisation loop) that the server
owns, not a page. No gradio and no torch here.

DESIGN
- A job is a row in the run log's `jobs` table (migration 9): its kind, owner, status, spec (JSON, immutable),
  the spec's hash (the same command run again finds its job), options (mutable run-time switches such as
  retry_errors), progress counters (JSON), the error that stopped it, and who runs it now: `worker`
  (host:pid:token), `pid`, `host` and `heartbeat_at`. A restart finds every job in the database.
- Statuses: queued -> running -> done | failed; running -> paused (pause) -> queued (resume); any unfinished ->
  cancelled; running with a dead worker -> interrupted, which is claimed again like queued. `paused`, `cancelled`,
  `done` and `failed` stay until a person acts.
- Claiming is one write transaction (BEGIN IMMEDIATE): it picks a queued or interrupted job nobody holds (or a
  running one whose worker is dead) and writes this worker into it, so two processes never run the same job.
- A worker is dead when its heartbeat is older than `job_stale_after_s`, or at once when it ran on this host and
  its pid is gone (SIGKILL, a crash). Workers beat every few seconds from a thread of their own, so one slow cell
  (a model loading for minutes) does not make a live job look dead.
- Pause and cancel write the status; the worker sees it at its next heartbeat, stops the handler, and lets go
  (`worker` NULL). It finishes a job only while the job is still `running` and still its own (compare-and-set),
  so a pause or a cancel is never overwritten, and a resumed job is not claimed while its old worker still holds it.
- Handlers are registered by kind (`register_kind("experiment", "module:function")`); a handler gets a JobContext
  (job, services, a stop event, progress reporting) and is written to be resumable: it works out what is left
  from the log, never from memory. An exception fails the job with its message.
- The worker is a few threads of the app process (`Services.start_jobs()`) and of the CLI (which runs one job in
  the foreground with `JobWorker.run_one`), not a second service.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from .store.records import NotFound, _now, check_id

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "paused", "cancelled", "done", "failed", "interrupted")
UNFINISHED = ("queued", "running", "paused", "interrupted")
CLAIMABLE = ("queued", "interrupted")
HEARTBEAT_S = 2.0
PROGRESS_EVERY_S = 1.0
HOST = socket.gethostname()


class JobError(ValueError):
    """A job operation refused (a job that is finished, another owner's, a kind nobody handles)."""


@dataclass
class Job:
    id: int
    kind: str
    status: str
    spec: dict
    spec_hash: str
    owner: str | None = None
    options: dict = field(default_factory=dict)
    comparison_id: int | None = None
    progress: dict = field(default_factory=dict)
    error: str | None = None
    worker: str | None = None
    pid: int | None = None
    host: str | None = None
    heartbeat_at: float | None = None
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED

    def to_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in ("spec", "worker", "pid", "host")}


def spec_hash(spec: dict) -> str:
    """The hash a job is found by: the spec as canonical JSON."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                     default=str).encode("utf-8")).hexdigest()


def _job(row) -> Job:
    data = dict(row)
    for name in ("spec", "options", "progress"):
        data[name] = json.loads(data[name] or "{}")
    return Job(**data)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


class JobQueue:
    """The jobs of one run log: submit, look up, pause/resume/cancel, and what workers use to claim and report."""

    def __init__(self, log_, stale_after_s: float = 60.0):
        self.log = log_
        self.stale_after_s = stale_after_s
        self.submitted = threading.Event()      # wakes idle workers of this process

    # ---- people and pages ---------------------------------------------------------------------------------------

    def submit(self, kind: str, spec: dict, *, owner: str | None = None, comparison_id: int | None = None,
               options: dict | None = None, status: str = "queued", key: str | None = None) -> Job:
        """A new job; `key` is the hash it is found by (default: the hash of the whole spec)."""
        if status not in ("queued", "paused"):
            raise JobError("a new job is queued, or paused to be started later")
        with self.log._write() as tx:
            cursor = tx.execute("INSERT INTO jobs (kind, owner, status, spec, spec_hash, options, comparison_id, "
                                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (kind, owner, status, json.dumps(spec, default=str), key or spec_hash(spec),
                                 json.dumps(options or {}), comparison_id, _now()))
        self.submitted.set()
        return self.get(cursor.lastrowid)

    def get(self, job_id, owner: str | None = None) -> Job:
        """Another owner's job reads as missing."""
        job_id = check_id(job_id, "job")
        where, args = ("id = ?", [job_id]) if owner is None else ("id = ? AND owner = ?", [job_id, owner])
        row = self.log._db().execute(f"SELECT * FROM jobs WHERE {where}", args).fetchone()
        if row is None:
            raise NotFound(f"no job #{job_id}")
        return _job(row)

    def find(self, kind: str, spec_hash_: str, owner: str | None = None) -> Job | None:
        """The newest job of this kind and spec hash (of this owner)."""
        row = self.log._db().execute("SELECT * FROM jobs WHERE kind = ? AND spec_hash = ? AND owner IS ? "
                                     "ORDER BY id DESC LIMIT 1", (kind, spec_hash_, owner)).fetchone()
        return _job(row) if row else None

    def for_comparison(self, comparison_id: int) -> Job | None:
        row = self.log._db().execute("SELECT * FROM jobs WHERE comparison_id = ? ORDER BY id DESC LIMIT 1",
                                     (int(comparison_id),)).fetchone()
        return _job(row) if row else None

    def list(self, kind: str | None = None, owner: str | None = None, limit: int = 50,
             statuses: tuple[str, ...] | None = None) -> list[Job]:
        where, args = ["1"], []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            args += list(statuses)
        rows = self.log._db().execute(f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
                                      [*args, int(limit)]).fetchall()
        return [_job(row) for row in rows]

    def active_count(self, owner: str | None) -> int:
        """Jobs of an owner that are queued, running or waiting to resume by themselves."""
        return self.log._db().execute("SELECT count(*) FROM jobs WHERE owner IS ? AND status IN "
                                      "('queued', 'running', 'interrupted')", (owner,)).fetchone()[0]

    def pause(self, job_id, owner: str | None = None) -> Job:
        return self._move(job_id, owner, ("queued", "running", "interrupted"), "paused")

    def cancel(self, job_id, owner: str | None = None) -> Job:
        return self._move(job_id, owner, UNFINISHED, "cancelled", finished=True)

    def resume(self, job_id, owner: str | None = None, options: dict | None = None) -> Job:
        """Queue a paused, interrupted or failed job again (a done or cancelled one too, when `options` asks for
        more work, e.g. retry_errors). A running job is left running."""
        job = self.get(job_id, owner)
        if job.status == "running" and self._worker_alive(job):
            return job
        allowed = ("paused", "interrupted", "failed", "queued", "running")
        if job.status not in allowed and not options:
            raise JobError(f"job #{job.id} is {job.status}; nothing to resume")
        with self.log._write() as tx:
            tx.execute("UPDATE jobs SET status = 'queued', error = NULL, finished_at = NULL, options = ? "
                       "WHERE id = ?", (json.dumps({**job.options, **(options or {})}), job.id))
        self.submitted.set()
        return self.get(job.id)

    def _move(self, job_id, owner, allowed, status: str, finished: bool = False) -> Job:
        job = self.get(job_id, owner)
        if job.status == status:
            return job
        if job.status not in allowed:
            raise JobError(f"job #{job.id} is {job.status}; it cannot be {status}")
        with self.log._write() as tx:
            tx.execute("UPDATE jobs SET status = ?, finished_at = ? WHERE id = ? AND status = ?",
                       (status, _now() if finished else None, job.id, job.status))
        return self.get(job.id)

    # ---- workers ------------------------------------------------------------------------------------------------

    def _worker_alive(self, job: Job) -> bool:
        if not job.worker:
            return False
        if job.host == HOST and not _alive(job.pid):
            return False
        return job.heartbeat_at is not None and time.time() - job.heartbeat_at < self.stale_after_s

    def recover(self) -> int:
        """Running jobs whose worker is dead become `interrupted` (and are claimed again)."""
        stale = [job for job in self.list(statuses=("running",), limit=10_000) if not self._worker_alive(job)]
        with self.log._write() as tx:
            for job in stale:
                tx.execute("UPDATE jobs SET status = 'interrupted', worker = NULL WHERE id = ? AND worker IS ?",
                           (job.id, job.worker))
        return len(stale)

    def claim(self, worker: str, job_id: int | None = None, kinds: tuple[str, ...] | None = None) -> Job | None:
        """Take one job to run (the oldest claimable one, or `job_id`), in one transaction: no other process can
        take the same job."""
        if self.log._db().execute("SELECT 1 FROM jobs WHERE status IN ('queued', 'interrupted', 'running') "
                                  "LIMIT 1").fetchone() is None:
            return None                          # nothing to do: an idle poll takes no write lock
        with self.log._write() as tx:
            where, args = "status IN ('queued', 'interrupted', 'running')", []
            if job_id is not None:
                where, args = where + " AND id = ?", [int(job_id)]
            for row in tx.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY id LIMIT 100", args).fetchall():
                job = _job(row)
                if kinds is not None and job.kind not in kinds:
                    continue
                if job.worker and self._worker_alive(job):
                    continue                         # someone is (still) on it
                if job.status == "running" or job.status in CLAIMABLE:
                    tx.execute("UPDATE jobs SET status = 'running', worker = ?, pid = ?, host = ?, heartbeat_at = ?, "
                               "started_at = coalesce(started_at, ?), error = NULL WHERE id = ?",
                               (worker, os.getpid(), HOST, time.time(), _now(), job.id))
                    return self.get(job.id)
        return None

    def beat(self, job: Job, worker: str) -> str | None:
        """The worker is alive: refresh the heartbeat, and return the job's status (None: no longer ours)."""
        with self.log._write() as tx:
            row = tx.execute("SELECT status, worker FROM jobs WHERE id = ?", (job.id,)).fetchone()
            if row is None or row["worker"] != worker:
                return None
            tx.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", (time.time(), job.id))
            return row["status"]

    def report(self, job: Job, progress: dict) -> None:
        with self.log._write() as tx:
            tx.execute("UPDATE jobs SET progress = ? WHERE id = ?", (json.dumps(progress, default=str), job.id))

    def finish(self, job: Job, worker: str, status: str, error: str | None = None) -> bool:
        """End a job this worker runs; a job paused or cancelled meanwhile keeps that status. Always lets go."""
        with self.log._write() as tx:
            cursor = tx.execute("UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND worker = ? "
                                "AND status = 'running'", (status, error, _now(), job.id, worker))
            if error and cursor.rowcount == 0:
                tx.execute("UPDATE jobs SET error = ? WHERE id = ? AND worker = ?", (error, job.id, worker))
            tx.execute("UPDATE jobs SET worker = NULL WHERE id = ? AND worker = ?", (job.id, worker))
        return cursor.rowcount == 1


# ---- kinds ----------------------------------------------------------------------------------------------------------

KINDS: dict[str, str | Callable] = {"experiment": "playground.experiments.job:run_job"}


def register_kind(kind: str, handler: str | Callable) -> None:
    """`handler(context: JobContext)`, or "module:function" imported on first use."""
    KINDS[kind] = handler


def handler_for(kind: str) -> Callable:
    target = KINDS.get(kind)
    if target is None:
        raise JobError(f"no handler for jobs of kind {kind!r}; known: {', '.join(KINDS)}")
    if isinstance(target, str):
        module, _, name = target.partition(":")
        target = KINDS[kind] = getattr(importlib.import_module(module), name)
    return target


@dataclass
class JobContext:
    """What a handler works with: its job, the app's services, a stop event (set on pause, cancel or shutdown) and
    `progress(...)`, which keeps the counters and writes them at most once a second."""

    job: Job
    services: object
    queue: JobQueue
    stop: threading.Event = field(default_factory=threading.Event)
    _last: float = 0.0

    def progress(self, force: bool = False, **counters) -> None:
        self.job.progress.update(counters)
        now = time.monotonic()
        if force or now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            self.queue.report(self.job, self.job.progress)

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()


class JobWorker:
    """Runs jobs in threads of this process, beats for them, and resumes interrupted jobs at start-up."""

    def __init__(self, services, queue: JobQueue, threads: int = 2, poll_s: float = 1.0):
        self.services, self.queue = services, queue
        self.threads, self.poll_s = threads, poll_s
        self.name = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.running: dict[int, JobContext] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> "JobWorker":
        recovered = self.queue.recover()
        if recovered:
            log.info("%d job(s) left running by a stopped process will continue", recovered)
        self._spawn(self._heartbeat, "jobs-heartbeat")
        for number in range(self.threads):
            self._spawn(self._loop, f"jobs-{number}")
        return self

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; the running ones stop and are left `interrupted`, to continue at the next start."""
        self._stopping.set()
        self.queue.submitted.set()
        with self._lock:
            for context in self.running.values():
                context.stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def signal(self, job_id: int) -> None:
        """Tell a job this worker runs to stop now (it was paused or cancelled), not at the next heartbeat."""
        with self._lock:
            context = self.running.get(job_id)
        if context is not None:
            context.stop.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            job = self.queue.claim(self.name, kinds=tuple(KINDS))
            if job is None:
                self.queue.submitted.wait(self.poll_s)
                self.queue.submitted.clear()
                continue
            self._run(job)

    def run_one(self, job_id: int) -> Job | None:
        """Claim `job_id` and run it in this thread (the CLI); None when another live worker holds it."""
        job = self.queue.claim(self.name, job_id=job_id)
        if job is None:
            return None
        if not self._threads:
            self._spawn(self._heartbeat, "jobs-heartbeat")
        return self._run(job)

    def _run(self, job: Job) -> Job:
        context = JobContext(job, self.services, self.queue)
        with self._lock:
            self.running[job.id] = context
        status, error = "done", None
        try:
            handler_for(job.kind)(context)
        except Exception as failure:            # the job fails with a message; the worker goes on
            log.warning("job #%s (%s) failed: %s", job.id, job.kind, failure, exc_info=not isinstance(failure,
                                                                                                   ValueError))
            status, error = "failed", str(failure)[:2000] or type(failure).__name__
        except BaseException:                   # Ctrl-C in the CLI: the job waits, paused, for `resume`
            self.queue.pause(job.id)
            self.queue.finish(job, self.name, "paused")
            raise
        finally:
            with self._lock:
                self.running.pop(job.id, None)
            context.progress(force=True)
        if context.stopping and status == "done":
            status = "interrupted" if self._stopping.is_set() else status
        self.queue.finish(job, self.name, status, error)
        return self.queue.get(job.id)

    def _heartbeat(self) -> None:
        while not self._stopping.wait(HEARTBEAT_S):
            with self._lock:
                contexts = list(self.running.values())
            for context in contexts:
                try:
                    status = self.queue.beat(context.job, self.name)
                except Exception as error:         # a busy database: try again at the next beat
                    log.warning("heartbeat of job #%s failed: %s", context.job.id, error)
                    continue
                if status != "running":
                    context.stop.set()
