"""Before an experiment starts: how many cells and calls per model, and an estimate of tokens, time and (where an
endpoint declares prices) cost. Figures come from the log's own runs of each model (recent OK runs, not cache
hits); a short pilot (`pilot=N`) runs N real cells first when the log has none (they are logged, and the
experiment later takes them from the cache). Without figures, prompt tokens are guessed from the rendered prompts'
length and completions at their cap, and the estimate says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .api import check_experiment, clock
from .cells import comparison_spec, pending_chunks
from .spec import ExperimentSpec, Plan
from .store import logged_cells

RECENT = 200                 # runs of a model the figures come from
SAMPLE_ROWS = 8              # rows rendered to guess prompt lengths
CHARS_PER_TOKEN = 4.0


@dataclass
class ModelEstimate:
    model: str
    cells: int
    calls: int                       # requests to the engine (cells not served from the cache)
    prompt_tokens: int
    completion_tokens: int
    seconds: float | None
    cost: float | None               # None: the endpoint declares no prices (or the model is local)
    basis: str                       # where the figures come from


@dataclass
class Estimate:
    describe: str
    cells: int
    pending: int
    models: list[ModelEstimate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        known = [m.seconds for m in self.models if m.seconds is not None]
        return sum(known) if known else None

    @property
    def cost(self) -> float | None:
        known = [m.cost for m in self.models if m.cost is not None]
        return sum(known) if known else None

    def text(self) -> str:
        lines = [self.describe, f"{self.pending:,} of them still to run"]
        for m in self.models:
            cost = f", cost ~{m.cost:.4f}" if m.cost is not None else ""
            lines.append(f"  {m.model}: {m.calls:,} calls, ~{m.prompt_tokens:,} prompt + ~{m.completion_tokens:,} "
                         f"completion tokens, ~{clock(m.seconds)}{cost} ({m.basis})")
        total = f"total: ~{clock(self.seconds)}" + (f", cost ~{self.cost:.4f}" if self.cost is not None else "")
        return "\n".join(lines + [total] + [f"note: {n}" for n in self.notes])


def estimate(services, spec: ExperimentSpec, *, owner: str | None = None, pilot: int = 0,
             experiment_id: int | None = None) -> Estimate:
    """The dry run of `spec` (of an existing experiment's remaining cells with `experiment_id`)."""
    plan = check_experiment(services, spec, owner, server_side=False) if experiment_id is None else \
        _plan_of(services, spec, owner)
    logged = logged_cells(services.log, experiment_id) if experiment_id is not None else {}
    done = sum(1 for status in logged.values() if status == "ok")
    result = Estimate(plan.describe(), plan.total, plan.total - done, notes=list(plan.notes))
    checked = services.runner.prepare(plan.modality, [(m, None) for m in spec.models],
                                      plan.params, [], has_reference=False)
    if pilot:
        _pilot(services, plan, checked, pilot, owner)
    prompt_chars = _prompt_chars(services, plan)
    per_model = result.pending // len(spec.models)
    for model in spec.models:
        resolved = checked.models[(model, None)]
        options = checked.options[resolved.engine.name]
        result.models.append(_model_estimate(services, resolved, options, per_model, prompt_chars))
    return result


def _plan_of(services, spec, owner) -> Plan:
    from .spec import make_plan

    return make_plan(spec, services.datasets, owner=owner)


def _prompt_chars(services, plan: Plan) -> float:
    chunk = next(pending_chunks(plan, services.datasets, set(), plan.per_row * SAMPLE_ROWS,
                                services.settings.max_prompt_chars, positions=range(min(SAMPLE_ROWS,
                                                                                      len(plan.rows)))), None)
    cells = chunk.spec.cells if chunk else []
    return sum(len(c.prompt) + len(c.system or "") for c in cells) / len(cells) if cells else 0.0


def _figures(log, model_id: str) -> dict | None:
    row = log._db().execute(
        "SELECT count(*) AS n, avg(prompt_tokens) AS prompt, avg(completion_tokens) AS completion, "
        "avg(wall_s / max(1, coalesce(json_extract(metrics, '$.batch_rows'), 1))) AS seconds FROM "
        "(SELECT * FROM runs WHERE model_id = ? AND status = 'ok' AND cached_from IS NULL AND wall_s IS NOT NULL "
        "ORDER BY id DESC LIMIT ?)", (model_id, RECENT)).fetchone()
    return dict(row) if row and row["n"] else None


def _model_estimate(services, resolved, options: dict, cells: int, prompt_chars: float) -> ModelEstimate:
    figures = _figures(services.log, resolved.model_id)
    cap = int(options.get("max_new_tokens") or 0)
    if figures:
        prompt, completion = figures["prompt"] or prompt_chars / CHARS_PER_TOKEN, figures["completion"] or cap
        per_cell, basis = figures["seconds"], f"from {figures['n']} logged runs of this model"
    else:
        prompt, completion, per_cell = prompt_chars / CHARS_PER_TOKEN, cap, None
        basis = "no runs of this model in the log: prompt tokens guessed from length, completions at their cap; " \
                "run a pilot (--pilot 5) for times"
    seconds = None
    if per_cell is not None:
        in_flight = 1
        if resolved.engine.remote:
            endpoint = resolved.endpoint
            in_flight = (endpoint.max_concurrency if endpoint and endpoint.max_concurrency else
                         services.settings.remote_concurrency)
        seconds = cells * per_cell / in_flight
    cost = None
    endpoint = resolved.endpoint
    if endpoint is not None and (endpoint.price_per_1k_input is not None or endpoint.price_per_1k_output is not None):
        cost = (cells * prompt / 1000 * (endpoint.price_per_1k_input or 0.0) +
                cells * completion / 1000 * (endpoint.price_per_1k_output or 0.0))
    return ModelEstimate(resolved.model_id, cells, cells, int(cells * prompt), int(cells * completion), seconds,
                         cost, basis)


def _pilot(services, plan: Plan, checked, cells: int, owner: str | None) -> None:
    """Run the first `cells` cells of each model as an ordinary comparison: real figures for the estimate, and
    cache hits for the experiment later."""
    chunk = next(pending_chunks(plan, services.datasets, set(), plan.per_row * max(cells, 1),
                                services.settings.max_prompt_chars), None)
    if chunk is None:
        return
    picked = []
    for model in plan.spec.models:
        picked += [c for c in chunk.spec.cells if c.model_id == model][:cells]
    for cell in picked:
        cell.key = None                      # an ordinary comparison's cells, not the experiment's
    spec = comparison_spec(plan, picked)
    spec.title = f"pilot of {plan.template.name} × {plan.dataset.name}"
    for _ in services.runner.run(spec, owner=owner, max_cells=len(picked)):
        pass
