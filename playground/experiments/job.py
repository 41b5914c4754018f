"""The `experiment` job: run every cell of an experiment that is not yet logged, into its comparison.

Resumable by construction: what is left is worked out from the log (the cell keys of its runs), never from memory,
so a job continued after a crash, a SIGKILL or a restart runs exactly the missing cells; the unique cell key in the
log keeps even a race from logging one twice. Memory stays flat: cells are streamed a chunk at a time and outputs
are dropped once logged.
"""

from __future__ import annotations

import time
from dataclasses import replace

from .budget import check_budget
from .cells import pending_chunks
from .spec import ExperimentSpec, make_plan
from .store import cell_counts, logged_cells, set_status


class Tally:
    """Counters of one job session, turned into the progress a page or the CLI shows."""

    def __init__(self, total: int, done: int, failed: int, elapsed_before: float, tokens_before: int):
        self.total, self.done, self.failed = total, done, failed
        self.cached = self.session = 0
        self.tokens = tokens_before
        self.elapsed_before = elapsed_before
        self.started = time.monotonic()
        self.first_at: float | None = None     # the session's first cell: the rate leaves out the model's load

    def add(self, record, cached: bool) -> None:
        self.session += 1
        if self.first_at is None:
            self.first_at = time.monotonic()
        if record.status == "ok":
            self.done += 1
            self.cached += cached
        else:
            self.failed += 1
        self.tokens += (record.prompt_tokens or 0) + (record.completion_tokens or 0)

    def progress(self) -> dict:
        now = time.monotonic()
        session_s = now - self.started
        since_first = now - self.first_at if self.first_at is not None else 0.0
        rate = (self.session - 1) / since_first if self.session > 1 and since_first > 0.5 else None
        left = max(self.total - self.done - self.failed, 0)
        return {"total": self.total, "done": self.done, "failed": self.failed, "cached": self.cached,
                "tokens": self.tokens, "elapsed_s": round(self.elapsed_before + session_s, 3),
                "cells_per_s": round(rate, 4) if rate else None,
                "remaining_s": round(left / rate, 1) if rate else None, "left": left}


def run_job(context) -> None:
    """The handler the job worker calls (playground.jobs.KINDS['experiment']). A job that fails leaves its
    comparison saying how far it got (failed or partial), not running."""
    try:
        _run(context)
    except Exception:
        _settle(context.services.log, context.job.comparison_id, failed=True)
        raise


def _run(context) -> None:
    job, services = context.job, context.services
    spec = ExperimentSpec.parse(job.spec)
    comparison_id = job.comparison_id
    plan = make_plan(spec, services.datasets, owner=job.owner)
    runner, settings = services.runner, services.settings
    template_checks = [dict(c) for c in plan.template.checks] + list(spec.checks)
    checked = runner.prepare(plan.modality, [(m, None) for m in spec.models],
                             plan.params, template_checks,
                             has_reference=bool(spec.expected))
    logged = logged_cells(services.log, comparison_id)
    retry = bool(job.options.get("retry_errors"))
    skip = {key for key, status in logged.items() if status == "ok" or not retry}
    counts = cell_counts(services.log, comparison_id)
    tally = Tally(plan.total, counts["ok"], 0 if retry else counts["error"],    # a retried failure is left to do
                  float(job.progress.get("elapsed_s") or 0), counts["tokens"])
    set_status(services.log, comparison_id, "running")
    context.progress(force=True, **tally.progress(), notes=plan.notes)
    chunk_cells = max(settings.experiment_chunk_cells, 1)
    remote = {r.model_id for r in checked.models.values() if r.engine.remote}
    for chunk in pending_chunks(plan, services.datasets, skip, chunk_cells, settings.max_prompt_chars):
        if context.stopping:
            break
        check_budget(services, job.owner, sum(1 for c in chunk.spec.cells if c.model_id in remote))
        unrendered = replace(chunk.spec, cells=[cell for cell, _ in chunk.failed])
        for index, (_, message) in enumerate(chunk.failed):
            tally.add(runner.log_failure(unrendered, index, comparison_id, checked, message).record, False)
        if chunk.spec.cells:
            _run_chunk(context, runner, chunk.spec, comparison_id, checked, tally, chunk_cells)
        context.progress(**tally.progress())
    context.progress(force=True, **tally.progress())
    if not context.stopping:
        _settle(services.log, comparison_id)
        if retry:                     # done with the retry: resuming later runs only what was never logged
            context.queue.set_options(job, {**job.options, "retry_errors": False})


def _settle(log, comparison_id: int, failed: bool = False) -> None:
    """The comparison's status from its cells: done, partial or failed."""
    counts = cell_counts(log, comparison_id)
    if failed or counts["error"]:
        set_status(log, comparison_id, "partial" if counts["ok"] else "failed")
    else:
        set_status(log, comparison_id, "done")


def _run_chunk(context, runner, spec, comparison_id, checked, tally: Tally, chunk_cells: int) -> None:
    for event in runner.run(spec, cancel=context.stop, owner=context.job.owner, into=comparison_id,
                            checked=checked, batch_size=chunk_cells, max_cells=len(spec.cells)):
        if event.result is not None:
            tally.add(event.result.record, event.result.cached)
            context.progress(**tally.progress())
