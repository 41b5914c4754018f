"""Experiments as the UI, the CLI and an optimisation loop use them: build a spec, check it, submit it as a job, and
follow, pause, resume or cancel it. An experiment's id is its comparison's id: its cells are ordinary runs of that
comparison, so History, stats, votes, Diff, export and the report read it like any comparison.

Every function takes `owner` (the visitor on a public deployment; None locally): another owner's experiment reads
as missing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterator

from ..jobs import Job, JobError
from ..registry import InvalidInput, engine_for
from ..store import NotFound
from ..templates import Template
from .budget import check_hardware, check_visitor, on_zero_gpu
from .spec import ExperimentSpec, Plan, make_plan, spec_summary
from .store import cell_counts, imported_experiments, set_status

KIND = "experiment"
PAGE_CHUNK_S = 20.0        # a page runs an experiment in chunks of this long (its GPU lease on ZeroGPU)


@dataclass
class Experiment:
    id: int                        # the comparison its cells are logged into
    job: Job | None                # None: imported from an export (read, not run)
    spec: ExperimentSpec
    created: bool = False          # False: the same spec was submitted before, and that experiment is returned


@dataclass
class ExperimentStatus:
    id: int
    title: str
    status: str                    # the job's: queued, running, paused, cancelled, done, failed, interrupted
    total: int
    done: int                      # cells logged OK
    failed: int                    # cells logged as failed
    cells_per_s: float | None = None
    tokens: int = 0
    elapsed_s: float = 0.0
    remaining_s: float | None = None
    error: str | None = None
    job_id: int | None = None
    created_at: str = ""
    summary: dict = field(default_factory=dict)    # template, dataset, sample, models, seeds
    notes: list[str] = field(default_factory=list)

    @property
    def left(self) -> int:
        return max(self.total - self.done - self.failed, 0)

    def line(self) -> str:
        """One line for a progress bar or a log: done/total, failed, speed, tokens, elapsed and remaining time."""
        parts = [f"{self.done + self.failed:,}/{self.total:,} cells", f"{self.failed:,} failed"]
        if self.cells_per_s:
            parts.append(f"{self.cells_per_s:.1f} cells/s")
        parts += [f"{self.tokens:,} tokens", f"{clock(self.elapsed_s)} elapsed"]
        if self.remaining_s is not None and self.left:
            parts.append(f"{clock(self.remaining_s)} left")
        return " · ".join(parts)

    def to_dict(self) -> dict:
        return {**vars(self), "left": self.left}


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def build_spec(services, *, template: Template | str, dataset, models: list[str], seeds=(1,),
               mapping: dict | None = None, expected: str | None = None, sample=None, variants=None,
               params: dict | None = None, checks: list | None = None, title: str = "", rerun: bool = False,
               parent: int | None = None, owner: str | None = None) -> ExperimentSpec:
    """A spec from what a form or the CLI gives: a Template (or a library name), a dataset (DatasetInfo, id,
    version or name), and the rest as plain values."""
    if isinstance(template, str):
        template = services.library_for(owner).get(template)
    info = dataset if hasattr(dataset, "version") else services.datasets.get(dataset, owner=owner)
    return ExperimentSpec.parse({
        "template": template.text, "template_name": template.name, "template_hash": template.hash,
        "dataset": info.version, "dataset_name": info.name, "mapping": dict(mapping or {}), "expected": expected,
        "sample": sample if sample is not None else {}, "variants": list(variants) if variants else None,
        "models": list(models), "seeds": [int(s) for s in seeds], "params": dict(params or {}),
        "checks": list(checks or []), "title": title, "rerun": rerun, "parent": parent})


def check_experiment(services, spec: ExperimentSpec, owner: str | None = None, *,
                     server_side: bool = True) -> Plan:
    """Everything checked before anything runs: template, dataset, mapping, sample, models, options, checks and
    the limits. Returns the plan; raises DatasetError, TemplateError or InvalidInput saying what to change.
    `server_side`: it is to run as the server's job (on ZeroGPU local models can run only from a page)."""
    plan = make_plan(spec, services.datasets, owner=owner)
    limit = services.settings.max_experiment_cells
    if plan.total > limit:
        raise InvalidInput("cells", f"{plan.describe()}; the limit is {limit:,} (setting max_experiment_cells): "
                           "sample fewer rows, or use fewer seeds or models")
    checked = services.runner.prepare(plan.modality, [(m, None) for m in spec.models],
                                      plan.params,
                                      [dict(c) for c in plan.template.checks] + list(spec.checks),
                                      has_reference=bool(spec.expected))
    check_references(plan, checked.checks)
    remote = {r.model_id for r in checked.models.values() if r.engine.remote}
    if server_side:
        check_hardware([m for m in spec.models if m not in remote])
    remote_calls = plan.total // len(spec.models) * len(remote)
    check_visitor(services, owner, plan.total, remote_calls)
    return plan


def check_references(plan: Plan, checks) -> None:
    """A check that compares each output with the row's reference image or clip needs the expected column to hold
    them; a text column as the expected answer, with an image or audio check, is refused before anything runs."""
    expected = plan.spec.expected
    kind = plan.dataset.column(expected).type if expected else None
    for check in checks:
        wanted = check.needs_reference
        if wanted and kind != wanted:
            held = f"column {expected!r} holds {kind}" if expected else "no column is the expected answer"
            raise InvalidInput("checks", f"check {check.name!r} compares each output with the row's reference "
                                         f"{wanted}, but {held}: choose the dataset's {wanted} column as the "
                                         "expected answer")


def submit(services, spec: ExperimentSpec, *, owner: str | None = None, start: bool = True,
           new: bool = False) -> Experiment:
    """Create the experiment (its comparison and its job) and queue it; `start=False` leaves it paused (to hand its
    cells to a batch engine, or start later). The same spec submitted again returns the experiment it made before
    (resumed when it had stopped and `start`), unless that one was cancelled or `new` is given."""
    job = None if new else services.jobs.existing(KIND, spec.key, owner, start)
    if job is not None:
        return Experiment(job.comparison_id, job, spec)
    plan = check_experiment(services, spec, owner, server_side=start)
    title = spec.title or f"{plan.template.name} × {plan.dataset.name} · {plan.total:,} cells"
    comparison_id = services.log.start_comparison(
        plan.modality, title, template_name=plan.template.name, owner=owner,
        spec={"experiment": spec.model_dump(), "summary": spec_summary(spec), "cells": plan.total})
    job = services.jobs.submit(KIND, spec.model_dump(), owner=owner, comparison_id=comparison_id,
                               status="queued" if start else "paused", key=spec.key)
    job.progress = {"total": plan.total}
    return Experiment(comparison_id, job, spec, created=True)


def run_inline(services, spec: ExperimentSpec, *, owner: str | None = None,
               stop: threading.Event | None = None) -> ExperimentStatus:
    """Run an experiment's missing cells in this thread and return its status: what an optimisation loop does with
    each candidate from inside its own job. The experiment is created paused (no other worker takes it) and stays
    paused if `stop` (the loop's own stop event) ends it early; the same spec run again costs nothing, as its cells
    are already logged."""
    from ..jobs import JobWorker

    experiment = submit(services, spec, owner=owner, start=False)
    if experiment.job.status != "done":
        JobWorker(services, services.jobs).run_one(experiment.job.id, paused=True, stop=stop, stopped="paused")
    return status(services, experiment.id, owner)


def run_on_page(services, spec: ExperimentSpec, *, owner: str | None = None,
                chunk_s: float | None = None) -> Iterator[ExperimentStatus]:
    """Run an experiment from a page's own request, chunk by chunk, yielding its status before the first and after
    each: on ZeroGPU a local model gets a GPU only inside a visitor's request, which a server-side job does not
    have. Between chunks, and once the page has gone (its request ends at the next yield), the experiment is
    paused; running it from a page again continues it with the cells not yet logged."""
    from ..jobs import JobWorker

    experiment = submit(services, spec, owner=owner, start=False)
    chunk_s = PAGE_CHUNK_S if chunk_s is None else chunk_s
    current = status(services, experiment.id, owner)
    while True:
        yield current
        if current.status in ("done", "cancelled", "failed") or not current.left:
            return
        before = current.left
        stop = threading.Event()
        timer = threading.Timer(chunk_s, stop.set)
        timer.daemon = True
        timer.start()
        try:
            ran = JobWorker(services, services.jobs).run_one(experiment.job.id, paused=True, stop=stop,
                                                             stopped="paused")
        finally:
            timer.cancel()
        current = status(services, experiment.id, owner)
        if ran is None:             # another live worker holds it: it is running there
            yield current
            return
        if current.left == before:  # a chunk too short for a batch (a model's load): the next one is longer
            chunk_s *= 2


def get(services, experiment_id: int, owner: str | None = None) -> Experiment:
    """An experiment by id; one imported from an export has no job (`job` None): it is read, not run."""
    header = services.log.get_comparison_header(experiment_id, owner=owner)
    job = services.jobs.for_comparison(header.id)
    if job is not None and job.kind == KIND:
        return Experiment(header.id, job, ExperimentSpec.parse(job.spec))
    if isinstance(header.spec, dict) and isinstance(header.spec.get("experiment"), dict):
        return Experiment(header.id, None, ExperimentSpec.parse(header.spec["experiment"]))
    raise NotFound(f"comparison #{header.id} is not an experiment")


def status(services, experiment_id: int, owner: str | None = None) -> ExperimentStatus:
    """Where an experiment stands: the job's status, exact counts from the log, and the worker's speed figures."""
    experiment = get(services, experiment_id, owner)
    header = services.log.get_comparison_header(experiment.id)
    job = experiment.job
    progress = job.progress if job is not None else {}
    counts = cell_counts(services.log, experiment.id)
    total = int(progress.get("total") or header.spec.get("cells") or 0)
    running = job is not None and job.status == "running"
    return ExperimentStatus(
        id=experiment.id, title=header.title, status=job.status if job is not None else header.status, total=total,
        done=counts["ok"], failed=counts["error"], cells_per_s=progress.get("cells_per_s") if running else None,
        tokens=counts["tokens"], elapsed_s=float(progress.get("elapsed_s") or 0.0),
        remaining_s=progress.get("remaining_s") if running else None, error=job.error if job else None,
        job_id=job.id if job else None, created_at=header.created_at, summary=header.spec.get("summary", {}),
        notes=progress.get("notes", []))


def list_experiments(services, owner: str | None = None, limit: int = 50) -> list[ExperimentStatus]:
    """The newest experiments: those with a job, and those imported from an export (read, not run)."""
    ids = [job.comparison_id for job in services.jobs.list(KIND, owner=owner, limit=limit)]
    ids = sorted(set(ids + imported_experiments(services.log, owner, limit)) - {None}, reverse=True)[:limit]
    found = []
    for experiment_id in ids:
        try:
            found.append(status(services, experiment_id, owner))
        except (NotFound, TypeError, ValueError):
            continue              # its comparison was deleted
    return found


def _job(services, experiment_id: int, owner: str | None) -> Job:
    job = get(services, experiment_id, owner).job
    if job is None:
        raise JobError(f"experiment #{experiment_id} was imported: it has no job to run")
    return job


def _signal(services, job_id: int) -> None:
    """A job this process runs stops at once; one elsewhere at its worker's next heartbeat."""
    if getattr(services, "worker", None) is not None:
        services.worker.signal(job_id)


def pause(services, experiment_id: int, owner: str | None = None) -> ExperimentStatus:
    """Stop running it; what is logged stays, and `resume` runs the rest."""
    job = _job(services, experiment_id, owner)
    services.jobs.pause(job.id, owner)
    _signal(services, job.id)
    return status(services, experiment_id, owner)


def cancel(services, experiment_id: int, owner: str | None = None) -> ExperimentStatus:
    """Stop it for good (what is logged stays)."""
    job = _job(services, experiment_id, owner)
    services.jobs.cancel(job.id, owner)
    _signal(services, job.id)
    set_status(services.log, experiment_id, "cancelled")
    return status(services, experiment_id, owner)


def resume(services, experiment_id: int, owner: str | None = None,
           retry_errors: bool = False) -> ExperimentStatus:
    """Queue it again: it runs only the cells not yet logged (with `retry_errors`, the failed ones too)."""
    job = _job(services, experiment_id, owner)
    if job.status == "cancelled" and not retry_errors:
        raise JobError(f"experiment #{experiment_id} was cancelled; submit it again to start over")
    if on_zero_gpu():               # queued again, it is the server's job: local models cannot run so there
        spec = ExperimentSpec.parse(job.spec)
        modality = make_plan(spec, services.datasets, owner=owner).modality
        check_hardware([m for m in spec.models if not engine_for(modality, m, services.catalog.endpoints).remote])
    services.jobs.resume(job.id, owner, options={"retry_errors": True} if retry_errors else None)
    return status(services, experiment_id, owner)
