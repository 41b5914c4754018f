"""Jobs as rows of the run log: submit, look up, pause, resume, cancel, and what a worker uses to claim a job, beat
for it and finish it (see the package's docstring for the design)."""


from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field

from ..store.records import NotFound, _now, check_id

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

    def existing(self, kind: str, spec_hash_: str, owner: str | None = None, start: bool = True) -> Job | None:
        """The job a spec submitted again finds: the newest of this kind and spec hash that was not cancelled,
        queued again when it had stopped and `start` asks for it; None when there is none."""
        job = self.find(kind, spec_hash_, owner)
        if job is None or job.status == "cancelled" or job.comparison_id is None:
            return None
        if start and job.status in ("paused", "interrupted", "failed"):
            job = self.resume(job.id, owner)
        return job

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

    def claim(self, worker: str, job_id: int | None = None, kinds: tuple[str, ...] | None = None,
              paused: bool = False) -> Job | None:
        """Take one job to run (the oldest claimable one, or `job_id`), in one transaction: no other process can
        take the same job. `paused`: `job_id` may be paused (its owner runs it in its own thread)."""
        statuses = "'queued', 'interrupted', 'running'" + (", 'paused'" if paused and job_id is not None else "")
        if self.log._db().execute(f"SELECT 1 FROM jobs WHERE status IN ({statuses}) LIMIT 1").fetchone() is None:
            return None                          # nothing to do: an idle poll takes no write lock
        with self.log._write() as tx:
            where, args = f"status IN ({statuses})", []
            if job_id is not None:
                where, args = where + " AND id = ?", [int(job_id)]
            for row in tx.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY id LIMIT 100", args).fetchall():
                job = _job(row)
                if kinds is not None and job.kind not in kinds:
                    continue
                if job.worker and self._worker_alive(job):
                    continue                         # someone is (still) on it
                if job.status in ("running", "paused") or job.status in CLAIMABLE:
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

    def set_options(self, job: Job, options: dict) -> None:
        job.options = dict(options)
        with self.log._write() as tx:
            tx.execute("UPDATE jobs SET options = ? WHERE id = ?", (json.dumps(job.options), job.id))

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
