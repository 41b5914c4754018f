"""Before a search starts: everything checked (template and variant, data, objective, models, proposer, budget,
limits), and the projected calls, proposer and generator, shown as DSPy's MIPROv2 shows its projection before it
asks to go on. The projection is an upper bound: rejected candidates, cache hits and an early stop spend less."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import experiments
from ..experiments.budget import check_hardware, check_visitor
from ..registry import InvalidInput
from ..scoring import make_checks
from ..scoring.tiny import TINY_SCORERS
from ..templates import TemplateError
from .data import search_sample, test_sample
from .meta import describe_objective
from .spec import ImproveSpec

FEW_ROWS = 20             # below this a candidate's score moves in coarse steps
FEW_TEST_ROWS = 30        # below this the held-out test has little power


@dataclass
class Calls:
    proposer: int
    original: int                    # the original on the search rows
    candidates: int                  # every candidate on the search rows
    held_out: int                    # the original and the winner on the held-out part

    @property
    def generator(self) -> int:
        return self.original + self.candidates + self.held_out

    @property
    def total(self) -> int:
        return self.proposer + self.generator


def plan_calls(spec: ImproveSpec, rounds: int | None = None) -> Calls:
    """The most calls `rounds` rounds can spend (every candidate valid, no cache hit, no early stop)."""
    rounds = spec.rounds if rounds is None else rounds
    per_candidate = spec.rows * len(spec.seeds) * len(spec.models)
    held_out = 2 * spec.test_rows * len(spec.test_seeds) * len(spec.models)
    return Calls(rounds * spec.candidates, per_candidate, rounds * spec.candidates * per_candidate, held_out)


@dataclass
class Projection:
    spec: ImproveSpec
    calls: Calls
    rounds: int                      # rounds within the budget
    objective: str                   # in words
    data: str
    judge_calls: int = 0
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        spec, calls = self.spec, self.calls
        per_model = calls.generator // len(spec.models)
        lines = [f"improve {spec.template_name}/{spec.variant} on {spec.objective_text()}: {self.objective}",
                 f"data: {self.data}",
                 f"search: up to {self.rounds} round{'s' if self.rounds != 1 else ''} x {spec.candidates} "
                 f"candidate{'s' if spec.candidates != 1 else ''} (proposer temperature "
                 f"{spec.proposer_params.get('temperature', 1.0)}), stopping early after {spec.patience} "
                 f"round{'s' if spec.patience != 1 else ''} without a gain",
                 "projected calls (at most):",
                 f"  proposer   {spec.proposer}: {calls.proposer:,}"]
        for model in spec.models:
            lines.append(f"  generator  {model}: {per_model:,} = {calls.original // len(spec.models):,} (the "
                         f"original) + {calls.candidates // len(spec.models):,} (candidates) + "
                         f"{calls.held_out // len(spec.models):,} (held-out test of the winner and the original)")
        if self.judge_calls:
            lines.append(f"  judge      {self.judge_calls:,} (llm_judge scores every cell; not in the budget)")
        budget = f" of a budget of {spec.max_calls:,}" if spec.max_calls is not None else ""
        lines.append(f"  total      {calls.total:,}{budget}")
        lines.append("rejected candidates, cache hits and an early stop spend less")
        return "\n".join(lines + [f"note: {note}" for note in self.notes])

    def to_dict(self) -> dict:
        return {"proposer": self.calls.proposer, "generator": self.calls.generator, "total": self.calls.total,
                "rounds": self.rounds, "judge": self.judge_calls, "text": self.text(), "notes": self.notes}


def project(services, spec: ImproveSpec, owner: str | None = None) -> Projection:
    """Check everything a search needs and project its calls; raises InvalidInput, TemplateError or DatasetError
    saying what to change. Nothing is logged and nothing runs."""
    from .search import Search

    settings = services.settings
    _check_limits(spec, settings)
    search = Search(services, spec, job_id=0, search_id=0, owner=owner)
    if spec.variant not in search.template.variants:
        raise TemplateError(f"{spec.template_name} has no variant {spec.variant!r}; its variants: "
                            f"{', '.join(search.template.variants)}")
    checks = make_checks(search.checks, spec.modality, has_reference=bool(spec.expected))
    _offline_scorers(checks, settings)
    search_plan = experiments.check_experiment(services, search.experiment_spec(
        {spec.variant: search.original}, held_out=False, notes="", title=""), owner)
    test_plan = experiments.check_experiment(services, search.experiment_spec(
        {spec.variant: search.original}, held_out=True, notes="", title=""), owner)
    _check_proposer(services, spec)
    calls = plan_calls(spec)
    rounds = _rounds(spec, calls)
    remote = _remote_share(services, spec)
    check_visitor(services, owner, calls.generator, int(calls.generator * remote) +
                  (calls.proposer if _remote(services, spec.proposer) else 0))
    if calls.total > settings.max_improve_calls and (spec.max_calls is None or
                                                     spec.max_calls > settings.max_improve_calls):
        raise InvalidInput("max_calls", f"{calls.total:,} projected calls; a search may spend "
                           f"{settings.max_improve_calls:,} here (setting max_improve_calls): give a budget of at "
                           "most that (--max-calls), or fewer rounds, candidates or rows")
    judge = calls.generator if any(c.type == "llm_judge" for c in checks) else 0
    projection = Projection(spec, plan_calls(spec, rounds), rounds, describe_objective(search.terms),
                            _data_text(spec, search_plan, test_plan), judge)
    projection.notes += _advice(spec, search_plan, test_plan, checks, settings)
    return projection


def _check_limits(spec: ImproveSpec, settings) -> None:
    """The limits of this server (settings), enforced here: the CLI, the page and the API all pass through."""
    most = min(settings.max_variants, settings.max_improve_candidates)
    if spec.candidates > most:
        raise InvalidInput("candidates", f"at most {most} per round here (settings max_improve_candidates and "
                           "max_variants: a round's candidates run side by side as the variants of one experiment)")
    if spec.rounds > settings.max_improve_rounds:
        raise InvalidInput("rounds", f"at most {settings.max_improve_rounds} here (setting max_improve_rounds)")
    for name, rows in (("rows", spec.rows), ("test_rows", spec.test_rows)):
        if rows > settings.max_improve_rows:
            raise InvalidInput(name, f"{rows:,} rows; at most {settings.max_improve_rows:,} here (setting "
                               "max_improve_rows)")


def _rounds(spec: ImproveSpec, calls: Calls) -> int:
    if spec.max_calls is None:
        return spec.rounds
    if spec.max_calls == 0:
        raise InvalidInput("max_calls", "a budget of 0 calls runs nothing: give --max-calls at least the calls "
                           f"of scoring the original and the held-out test ({plan_calls(spec, 0).total:,}) plus a "
                           "round, or leave it out")
    least = plan_calls(spec, 0).total + spec.candidates * (1 + spec.rows * len(spec.seeds) * len(spec.models))
    if least > spec.max_calls:
        raise InvalidInput("max_calls", f"{spec.max_calls:,} calls cannot pay for one round: scoring the "
                           f"original, one round of {spec.candidates} candidates and the held-out test take "
                           f"{least:,}. Raise --max-calls, or use fewer rows or candidates")
    return max(r for r in range(spec.rounds + 1) if plan_calls(spec, r).total <= spec.max_calls)


def _check_proposer(services, spec: ImproveSpec) -> None:
    try:
        services.runner.prepare("text", [(spec.proposer, None)], {"temperature": 1.0, "max_new_tokens": 400,
                                                                  **spec.proposer_params}, [])
    except InvalidInput as error:
        raise InvalidInput("proposer", f"{spec.proposer!r}: {error}") from None
    if not _remote(services, spec.proposer):
        check_hardware([spec.proposer])


def _remote(services, model: str) -> bool:
    return services.catalog.resolve("text", model).engine.remote


def _remote_share(services, spec: ImproveSpec) -> float:
    remote = [m for m in spec.models if services.catalog.resolve(spec.modality, m).engine.remote]
    return len(remote) / len(spec.models)


def _offline_scorers(checks, settings) -> None:
    """A scorer model that cannot be loaded here would leave every cell unscored after its calls were spent."""
    for check in checks:
        model = check.options.get("model") if check.needs_model and check.type != "llm_judge" else None
        if settings.offline and model and model not in TINY_SCORERS and not Path(model).expanduser().exists():
            raise InvalidInput("checks", f"check {check.name!r} needs the scorer {model!r}, which cannot be loaded "
                               "offline: point it at a local folder, leave the model out (offline: a tiny "
                               "stand-in), or run without --offline")


def _data_text(spec: ImproveSpec, search_plan, test_plan) -> str:
    name = spec.dataset_name or spec.dataset[:12]
    if spec.held_out == "seeds":
        return (f"{len(search_plan.rows)} value rows of {name} x seeds {spec.seeds} for the search; the same values "
                f"x held-out seeds {spec.test_seeds} for the test")
    return (f"{name}: {len(search_plan.rows)} rows of split {spec.search_split!r} score every candidate; "
            f"{len(test_plan.rows)} rows of split {spec.test_split!r} are held out for the final test")


def _advice(spec: ImproveSpec, search_plan, test_plan, checks, settings) -> list[str]:
    notes = list(dict.fromkeys(search_plan.notes + test_plan.notes))
    if spec.held_out == "rows" and spec.split_shares is not None:
        notes.append(f"the dataset has no {spec.split_column!r} column: its rows are split by a hash of their "
                     "content, so the same row always lands in the same split")
    cells = len(search_plan.rows) * len(spec.seeds) * len(spec.models)
    if cells < FEW_ROWS:
        notes.append(f"each candidate is scored on {cells} cells, so small gains are noise (a pass/fail score "
                     f"moves in steps of {1 / cells:.2f}); {FEW_ROWS} or more rows are better")
    tested = len(test_plan.rows) * len(spec.test_seeds) * len(spec.models)
    if tested < FEW_TEST_ROWS:
        notes.append(f"the held-out test pairs {tested} cells: only a large gain can be shown to be real; "
                     f"{FEW_TEST_ROWS} or more are better")
    if settings.offline and any(c.needs_model and c.type != "llm_judge" for c in checks):
        notes.append("offline, scorer models are tiny random stand-ins: their scores are meaningless, so the "
                     "search optimises noise")
    return notes


def sample_sizes(services, spec: ImproveSpec, owner: str | None = None) -> tuple[int, int]:
    """(search rows, held-out rows) the samples select from the dataset."""
    from ..datasets import select_rows

    info = services.datasets.get(spec.dataset, owner=owner)
    table = services.datasets.table(info)
    return (len(select_rows(table, search_sample(spec), f"dataset {info.name!r}")),
            len(select_rows(table, test_sample(spec), f"dataset {info.name!r}")))
