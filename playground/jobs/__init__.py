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

from .queue import CLAIMABLE, HOST, STATUSES, UNFINISHED, Job, JobError, JobQueue, spec_hash
from .worker import KINDS, JobContext, JobWorker, handler_for, register_kind

__all__ = ["CLAIMABLE", "HOST", "KINDS", "STATUSES", "UNFINISHED", "Job", "JobContext", "JobError", "JobQueue",
           "JobWorker", "handler_for", "register_kind", "spec_hash"]
