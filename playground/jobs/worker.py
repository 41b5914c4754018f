"""Running jobs: the handler of each kind, what a handler works with, and the worker threads of a process."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from .queue import HOST, PROGRESS_EVERY_S, HEARTBEAT_S, Job, JobError, JobQueue

log = logging.getLogger(__name__)

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

    def run_one(self, job_id: int, *, paused: bool = False, stop: threading.Event | None = None,
                stopped: str = "interrupted") -> Job | None:
        """Claim `job_id` and run it in this thread (the CLI, or a job running another inside it); None when another
        live worker holds it. `paused`: the job may be paused (kept so, that no other worker takes it); `stop`: an
        event that stops it (the outer job's); `stopped`: its status when `stop` ended it."""
        job = self.queue.claim(self.name, job_id=job_id, paused=paused)
        if job is None:
            return None
        if not self._threads:
            self._spawn(self._heartbeat, "jobs-heartbeat")
        return self._run(job, stop, stopped)

    def _run(self, job: Job, stop: threading.Event | None = None, stopped: str = "interrupted") -> Job:
        context = JobContext(job, self.services, self.queue, stop=stop or threading.Event())
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
        if context.stopping and status == "done":     # it may have stopped midway: claimed again, it finds out
            status = stopped
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
