"""Two experiments on the same dataset version, side by side: a baseline and a candidate (an edited prompt, another
model). Per dataset row, each one's mean of a check over its seeds and models; which rows got better and which got
worse, sorted by the change, with the paired statistics over rows (the same test the summary panel uses). And
re-running a chosen subset of rows as a new experiment linked to its parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..registry import InvalidInput
from ..scoring.stats import ALPHA, bootstrap_interval, sign_test
from .api import Experiment, build_spec, submit
from .results import DATASET_ROW, experiment_spec, variants_of


@dataclass
class RowChange:
    dataset_row: int
    values: dict
    baseline: float
    candidate: float

    @property
    def change(self) -> float:
        return self.candidate - self.baseline


@dataclass
class ExperimentComparison:
    baseline: int
    candidate: int
    check: str
    better: str | None                   # "higher", "lower" or None (a measurement)
    baseline_variant: str
    candidate_variant: str
    rows: int = 0                         # dataset rows both have a value for
    mean_change: float | None = None      # candidate - baseline, over rows
    low: float | None = None              # 95% bootstrap interval of the mean change
    high: float | None = None
    improved: list[RowChange] = field(default_factory=list)    # better first
    worsened: list[RowChange] = field(default_factory=list)    # worse first
    unchanged: int = 0
    p_value: float | None = None          # sign test over the rows that changed
    clear: bool = False
    sentence: str = ""


def _row_means(log, experiment_id: int, column: int, check: str) -> dict[int, tuple[float, str]]:
    rows = log._db().execute(
        f"SELECT {DATASET_ROW} AS drow, avg(s.value) AS mean, max(r.variables) AS variables FROM runs r "
        "JOIN scores s ON s.run_id = r.id AND s.name = ? WHERE r.comparison_id = ? AND r.col = ? AND "
        "r.status = 'ok' AND r.cell_key IS NOT NULL AND s.value IS NOT NULL GROUP BY drow",
        (check, experiment_id, column))
    return {row["drow"]: (row["mean"], row["variables"]) for row in rows}


def _pick(variants: list[str], chosen: str | None, other: list[str], which: str) -> str:
    if chosen is not None:
        if chosen not in variants:
            raise InvalidInput(which, f"no variant {chosen!r}; the variants are {', '.join(variants)}")
        return chosen
    if len(variants) == 1:
        return variants[0]
    shared = [v for v in variants if v in other]
    if len(shared) == 1:
        return shared[0]
    raise InvalidInput(which, f"pick one of the variants {', '.join(variants)}")


def compare_experiments(log, baseline: int, candidate: int, check: str, *, baseline_variant: str | None = None,
                        candidate_variant: str | None = None, owner: str | None = None) -> ExperimentComparison:
    """Rows of the same dataset version where the candidate did better or worse than the baseline on `check`."""
    import json

    a, b = experiment_spec(log, baseline, owner), experiment_spec(log, candidate, owner)
    if a.dataset != b.dataset:
        raise InvalidInput("candidate", f"the experiments ran on different datasets ({a.dataset_name} "
                           f"{a.dataset[:12]} and {b.dataset_name} {b.dataset[:12]}): compare runs on one version")
    va, vb = variants_of(a), variants_of(b)
    left = _pick(va, baseline_variant, vb, "baseline_variant")
    right = _pick(vb, candidate_variant, va, "candidate_variant")
    before, after = _row_means(log, baseline, va.index(left), check), _row_means(log, candidate, vb.index(right),
                                                                                   check)
    if not before or not after:
        raise InvalidInput("check", f"no values of {check!r} in {'the baseline' if not before else 'the candidate'}")
    better = _direction(log, check)
    result = ExperimentComparison(baseline, candidate, check, better, left, right)
    changes = [RowChange(row, json.loads(before[row][1] or "{}"), before[row][0], after[row][0])
               for row in sorted(set(before) & set(after))]
    _fill(result, changes)
    return result


def _direction(log, check: str) -> str | None:
    row = log._db().execute("SELECT json_extract(detail, '$.better') FROM scores WHERE name = ? LIMIT 1",
                            (check,)).fetchone()
    return row[0] if row else "higher"


def _fill(result: ExperimentComparison, changes: list[RowChange]) -> None:
    sign = -1.0 if result.better == "lower" else 1.0
    result.rows = len(changes)
    result.improved = sorted((c for c in changes if sign * c.change > 0), key=lambda c: -sign * c.change)
    result.worsened = sorted((c for c in changes if sign * c.change < 0), key=lambda c: sign * c.change)
    result.unchanged = len(changes) - len(result.improved) - len(result.worsened)
    if not changes:
        result.sentence = "no dataset row has a value in both experiments"
        return
    diffs = np.array([c.change for c in changes], dtype=float)
    result.mean_change = float(diffs.mean())
    result.low, result.high = bootstrap_interval(diffs)
    if result.better is not None:
        result.p_value = sign_test(len(result.improved), len(result.worsened))
        excludes_zero = result.low is not None and (result.low > 0 or result.high < 0)
        result.clear = bool(excludes_zero and result.p_value is not None and result.p_value < ALPHA)
    interval = f"95% CI {result.low:+.3g} to {result.high:+.3g}" if result.low is not None else "no interval"
    verdict = "clearly " if result.clear else "not clearly "
    direction = "better" if sign * result.mean_change > 0 else "worse" if sign * result.mean_change < 0 else "even"
    result.sentence = (f"candidate #{result.candidate} ({result.candidate_variant}) is {verdict}{direction} than "
                       f"baseline #{result.baseline} ({result.baseline_variant}) on {result.check}: "
                       f"{result.mean_change:+.3g} ({interval}); better in {len(result.improved)} of {result.rows} "
                       f"rows, worse in {len(result.worsened)}")


def rerun_rows(services, experiment_id: int, rows: list[int], *, owner: str | None = None, start: bool = True,
               **changes) -> Experiment:
    """A new experiment on exactly these dataset rows of `experiment_id`, linked to it as its parent. `changes`
    override what the parent ran with: template (a Template or a name), models, seeds, params, checks, variants,
    title."""
    parent = experiment_spec(services.log, experiment_id, owner)
    allowed = {"template", "models", "seeds", "params", "checks", "variants", "title", "expected", "mapping"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidInput(unknown[0], f"cannot be changed in a re-run; allowed: {', '.join(sorted(allowed))}")
    template = changes.get("template")
    if template is None:
        from .spec import load_template

        template = load_template(parent)
    spec = build_spec(services, template=template, dataset=parent.dataset, owner=owner,
                      models=changes.get("models", parent.models), seeds=changes.get("seeds", parent.seeds),
                      mapping=changes.get("mapping", parent.mapping), expected=changes.get("expected", parent.expected),
                      sample={"rows": sorted(set(int(r) for r in rows))},
                      variants=changes.get("variants", parent.variants), params=changes.get("params", parent.params),
                      checks=changes.get("checks", parent.checks), rerun=True, parent=experiment_id,
                      title=changes.get("title") or f"{len(set(rows))} rows of #{experiment_id}")
    return submit(services, spec, owner=owner, start=start, new=True)
