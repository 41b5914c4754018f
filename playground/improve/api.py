"""Searches as the CLI and the page use them: build a spec from plain values, project it, submit it as a job, follow,
pause, resume or cancel it, and save its winner as a new variant of the template. A search's id is its search
comparison's id (where the proposer's calls are logged), like an experiment's. Every function takes `owner` (the
visitor on a public deployment; None locally): another owner's search reads as missing."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..datasets import DatasetError
from ..jobs import Job, JobError
from ..registry import InvalidInput
from ..store import NotFound
from ..templates import Template, TemplateError, parse_template, with_changes, with_variant
from .data import split_plan, values_rows
from .loop import KIND
from .project import project, sample_sizes
from .record import Record
from .score import resolve_terms
from .spec import DEFAULT_PROPOSER_TOKENS, DEFAULT_TEMPERATURE, ImproveSpec, parse_objective


@dataclass
class Search:
    id: int                          # its search comparison
    job: Job
    spec: ImproveSpec
    created: bool = False


@dataclass
class SearchStatus:
    id: int
    status: str                      # the job's
    title: str
    record: Record
    error: str | None = None
    spec: dict = field(default_factory=dict)

    def line(self) -> str:
        r = self.record
        calls = r.calls or {}
        best = f"best {r.best} {r.best_score:.3f}" if r.best_score is not None else "no score yet"
        phase = "" if r.phase == self.status else f": {r.phase}"
        return (f"{self.status}{phase}, round {r.round} of {r.rounds} · {best} (original "
                f"{_num(r.original_score)}) · calls: proposer {calls.get('proposer', 0):,}, generator "
                f"{calls.get('generator', 0):,}")

    def to_dict(self) -> dict:
        return {"id": self.id, "status": self.status, "title": self.title, "error": self.error,
                "record": self.record.to_dict()}


def _num(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def build_spec(services, *, template: Template | str, variant: str, models: list[str], proposer: str,
               dataset=None, values: dict | None = None, objective: str | None = None, checks: list | None = None,
               mapping: dict | None = None, expected: str | None = None, search_split: str = "dev",
               test_split: str = "test", split_column: str = "split", split_shares: dict | None = None,
               rows: int = 20, test_rows: int = 100, seeds=None, test_seeds=None, rounds: int = 3,
               candidates: int = 4, patience: int = 1, max_calls: int | None = None, seed: int = 0,
               params: dict | None = None, proposer_params: dict | None = None, title: str = "",
               owner: str | None = None) -> ImproveSpec:
    """A spec from what a form or the CLI gives. Text searches a dataset (`dataset`: a DatasetInfo or a dataset's
    id, name or version); images and music search values x seeds (`values`: variable -> values; default: the
    template's default and examples), with held-out seeds."""
    if isinstance(template, str):
        template = services.library_for(owner).get(template)
    if variant not in template.variants:
        raise TemplateError(f"{template.name} has no variant {variant!r}; its variants: "
                            f"{', '.join(template.variants)}")
    text = template.modality == "text"
    if text and dataset is None:
        raise DatasetError("a text search is scored on a dataset: give one (--dataset file, folder or id), with a "
                           f"{split_column!r} column holding {search_split!r} and {test_split!r}, or none (then "
                           "its rows are split by a hash of their content)")
    if dataset is None:
        info = services.datasets.add_rows(values_rows(template, values), name=f"{template.name}-values",
                                          owner=owner)
    else:
        info = dataset if hasattr(dataset, "version") else services.datasets.get(dataset, owner=owner)
    shares, _ = split_plan(info, search_split, test_split, split_column, split_shares) if text else (None, "")
    checks, given = _own_checks(template, list(checks or []))
    terms = parse_objective(objective) if objective else _default_objective(template, given)
    seeds = list(seeds or ([1] if text else [1, 2]))
    data = {"template": template.text, "template_name": template.name, "template_hash": template.hash,
            "variant": variant, "modality": template.modality, "dataset": info.version, "dataset_name": info.name,
            "mapping": dict(mapping or {}), "expected": expected, "held_out": "rows" if text else "seeds",
            "split_column": split_column, "split_shares": shares, "search_split": search_split,
            "test_split": test_split, "rows": rows, "test_rows": test_rows, "seeds": seeds,
            "test_seeds": list(test_seeds or ([1] if text else _fresh_seeds(seeds, 4))), "models": list(models),
            "params": dict(params or {}), "checks": checks, "objective": [t.model_dump() for t in terms],
            "proposer": proposer, "proposer_params": {"temperature": DEFAULT_TEMPERATURE,
                                                      "max_new_tokens": DEFAULT_PROPOSER_TOKENS,
                                                      **(proposer_params or {})},
            "rounds": rounds, "candidates": candidates, "patience": patience, "max_calls": max_calls,
            "seed": seed, "title": title}
    spec = ImproveSpec.parse(data)
    resolve_terms(spec.objective, [dict(c) for c in template.checks] + checks, spec.modality, bool(expected))
    found_rows, found_test = sample_sizes(services, spec, owner)    # exact counts: the plan and budget use them
    return ImproveSpec.parse({**data, "rows": min(rows, found_rows), "test_rows": min(test_rows, found_test)})


def _own_checks(template: Template, checks: list[dict]) -> tuple[list[dict], list[str]]:
    """(checks to add to the template's, the name of every check given). A bare `--check length` where the
    template already declares a check named `length` names that check instead of adding a second one."""
    from ..scoring import make_checks

    declared = {c.get("name") or c.get("type"): c for c in template.checks}
    added, given = [], []
    for check in checks:
        name = check.get("name") or check.get("type")
        if name in declared and (set(check) <= {"type", "name"} or check == declared[name]):
            given.append(name)
            continue
        added.append(check)
        given.append(make_checks([check], template.modality, has_reference=True)[0].name)
    return added, given


def _default_objective(template: Template, given: list[str]):
    """One check given: it is the objective; none: the template's first check; else the user must say."""
    if len(given) == 1:
        return parse_objective(given[0])
    if not given and template.checks:
        return parse_objective(template.checks[0].get("name") or template.checks[0]["type"])
    raise InvalidInput("objective", "say what to optimise: --objective 'check*weight + ...' naming the checks"
                       if given else f"{template.name} declares no checks: give one with --check (e.g. --check "
                       f"{'contains=...' if template.modality == 'text' else 'clip'})")


def _fresh_seeds(seeds: list[int], count: int) -> list[int]:
    fresh, candidate = [], max(seeds) + 1
    while len(fresh) < count:
        fresh.append(candidate)
        candidate += 1
    return fresh


def submit(services, spec: ImproveSpec, *, owner: str | None = None, start: bool = True,
           new: bool = False) -> Search:
    """Create the search (its comparison and its job) and queue it. The same spec submitted again returns the
    search it made before (resumed when it had stopped and `start`), unless that one was cancelled or `new`."""
    job = None if new else services.jobs.existing(KIND, spec.key, owner, start)
    if job is not None:
        return Search(job.comparison_id, job, spec)
    projection = project(services, spec, owner)
    title = spec.title or f"improve {spec.template_name}/{spec.variant} on {spec.objective_text()}: proposals"
    comparison_id = services.log.start_comparison("text", title, template_name=spec.template_name, owner=owner,
                                                  spec={"improve": spec.model_dump(),
                                                        "projection": projection.to_dict()})
    job = services.jobs.submit(KIND, spec.model_dump(), owner=owner, comparison_id=comparison_id,
                               status="queued" if start else "paused", key=spec.key)
    services.jobs.report(job, {"planned_calls": projection.calls.total, "rounds": projection.rounds,
                               "notes": projection.notes, "phase": "queued"})
    return Search(comparison_id, services.jobs.get(job.id), spec, created=True)


def get(services, search_id: int, owner: str | None = None) -> Search:
    header = services.log.get_comparison_header(search_id, owner=owner)
    job = services.jobs.for_comparison(header.id)
    if job is None or job.kind != KIND:
        raise NotFound(f"#{header.id} is not an improvement search")
    return Search(header.id, job, ImproveSpec.parse(job.spec))


def status(services, search_id: int, owner: str | None = None) -> SearchStatus:
    search = get(services, search_id, owner)
    header = services.log.get_comparison_header(search.id)
    return SearchStatus(search.id, search.job.status, header.title, Record.from_dict(search.job.progress),
                        search.job.error, search.job.spec)


def list_searches(services, owner: str | None = None, limit: int = 50) -> list[SearchStatus]:
    found = []
    for job in services.jobs.list(KIND, owner=owner, limit=limit):
        try:
            found.append(status(services, job.comparison_id, owner))
        except (NotFound, TypeError, ValueError):
            continue
    return found


def _signal(services, job_id: int) -> None:
    if getattr(services, "worker", None) is not None:
        services.worker.signal(job_id)


def pause(services, search_id: int, owner: str | None = None) -> SearchStatus:
    job = get(services, search_id, owner).job
    services.jobs.pause(job.id, owner)
    _signal(services, job.id)
    return status(services, search_id, owner)


def cancel(services, search_id: int, owner: str | None = None) -> SearchStatus:
    job = get(services, search_id, owner).job
    services.jobs.cancel(job.id, owner)
    _signal(services, job.id)
    return status(services, search_id, owner)


def resume(services, search_id: int, owner: str | None = None) -> SearchStatus:
    job = get(services, search_id, owner).job
    if job.status == "cancelled":
        raise JobError(f"search #{search_id} was cancelled; start it again to begin anew")
    services.jobs.resume(job.id, owner)
    return status(services, search_id, owner)


def winner_template(services, search_id: int, *, name: str | None = None, variant_name: str | None = None,
                    owner: str | None = None) -> Template:
    """The template with the winner added as a new variant, with a note of what changed and where it was tested."""
    found = status(services, search_id, owner)
    record, spec = found.record, get(services, search_id, owner).spec
    if not record.best or record.best == spec.variant:
        raise JobError(f"search #{search_id} has no winner to save: no candidate beat the original"
                       if record.phase == "done" else f"search #{search_id} has not finished")
    template = parse_template(spec.template, source="user")
    variant_name = variant_name or f"{spec.variant}-improved"
    test = record.test or {}
    note = (f"Variant `{variant_name}` was written by improve #{search_id} (candidate {record.best}, proposed by "
            f"{spec.proposer}) from `{spec.variant}`, to raise {spec.objective_text()}: "
            f"{_num(record.original_score)} -> {_num(record.best_score)} on the search rows. Held-out test: "
            f"comparison #{test.get('experiment', '-')}: {test.get('sentence', 'not run')}")
    saved = with_variant(template, variant_name, record.best_text, name=name or f"{spec.template_name}-improved")
    return with_changes(saved, notes=f"{template.notes.strip()}\n\n{note}".strip())


def save_winner(services, search_id: int, *, name: str | None = None, variant_name: str | None = None,
                owner: str | None = None, overwrite: bool = False) -> Template:
    """Save the winner as a new variant of (a copy of) the template, in the owner's own templates."""
    template = winner_template(services, search_id, name=name, variant_name=variant_name, owner=owner)
    path = services.libraries.save(template, owner, overwrite=overwrite)
    return parse_template(path.read_text(encoding="utf-8"), path=path, source="user")
