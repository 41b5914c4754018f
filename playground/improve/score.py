"""The objective of every scored cell, read from the log: each term from the cell's stored score (a pass counts 1,
a fail 0; otherwise the value, negated when lower is better) or, for `votes`, from people's A/B votes on the run.
The objective is saved on each cell as a score of its own (`objective`), so History, `stats` and exports show
exactly what the search optimised, and the paired statistics of the held-out test read it like any check."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..registry import InvalidInput
from ..scoring import make_checks
from ..store.scores import Score, save_scores, scores_for_runs
from .spec import OBJECTIVE, VOTES, Term


@dataclass
class Cell:
    run_id: int
    variant: int                     # the column: the variant's index in its experiment
    key: str                         # what pairs cells across variants (dataset row, seed, model)
    status: str
    objective: float | None
    output: str | None = None
    values: dict = field(default_factory=dict)
    reference: str | None = None


def resolve_terms(terms: list[Term], checks: list[dict], modality: str, has_reference: bool) -> list[tuple]:
    """`[(name, weight, check type)]`, every name a check of the search (its template's and its own) or `votes`.
    A check with no better side and no bounds (a pure measurement) cannot be optimised: refused with a hint."""
    made = {check.name: check for check in make_checks(checks, modality, has_reference=has_reference)}
    if OBJECTIVE in made:
        raise InvalidInput("checks", f"{OBJECTIVE!r} is the name the search gives its own score: rename the check")
    resolved = []
    for term in terms:
        if term.name == VOTES:
            resolved.append((term.name, term.weight, VOTES))
            continue
        check = made.get(term.name)
        if check is None:
            known = ", ".join(made) or "none (add one with --check)"
            raise InvalidInput("objective", f"no check named {term.name!r}; the search's checks: {known}, or votes")
        bounded = any(check.options.get(bound) is not None for bound in ("min", "max"))
        if check.better is None and not bounded:
            raise InvalidInput("objective", f"{term.name!r} is a measurement with no better side: give it bounds "
                               f"so each output passes or fails (e.g. {check.type}:max=12), or pick a check where "
                               "higher or lower is better")
        resolved.append((term.name, term.weight, check.type))
    return resolved


def term_value(score: Score | None) -> float | None:
    """One term of one cell: a pass 1, a fail 0; else the value, negated when lower is better."""
    if score is None:
        return None
    if score.passed is not None:
        return 1.0 if score.passed else 0.0
    if score.value is None:
        return None
    better = (score.detail or {}).get("better")
    if better == "higher":
        return float(score.value)
    if better == "lower":
        return -float(score.value)
    return None


def vote_shares(log, run_ids: list[int]) -> dict[int, float]:
    """run id -> the share of its A/B votes it won (a tie counts half), for runs with votes."""
    ids = sorted({int(i) for i in run_ids})
    if not ids:
        return {}
    won: dict[int, list[float]] = {}
    rows = log._db().execute(
        "SELECT run_low, run_high, outcome, winner_run_id FROM votes WHERE run_low IN (SELECT value FROM "
        "json_each(?)) OR run_high IN (SELECT value FROM json_each(?))", (json.dumps(ids), json.dumps(ids)))
    wanted = set(ids)
    for low, high, outcome, winner in rows:
        for run in (low, high):
            if run in wanted:
                won.setdefault(run, []).append(0.5 if outcome == "tie" else float(winner == run))
    return {run: sum(values) / len(values) for run, values in won.items()}


def experiment_cells(log, experiment_id: int, terms: list[tuple]) -> list[Cell]:
    """Every cell of one scored experiment with its objective (None: it failed, or a term has no value)."""
    rows = log._db().execute(
        "SELECT id, col, row, seed, model_id, status, cell_key, cached_from, output_text, variables, reference "
        "FROM runs WHERE comparison_id = ? ORDER BY row, col", (experiment_id,)).fetchall()
    ids = [r["id"] for r in rows]
    scores = scores_for_runs(log, ids)
    votes = vote_shares(log, ids + [r["cached_from"] for r in rows if r["cached_from"]]) \
        if any(kind == VOTES for _, _, kind in terms) else {}
    cells = []
    for row in rows:
        value = None
        if row["status"] == "ok":
            value = _objective(row, scores.get(row["id"], {}), votes, terms)
        cells.append(Cell(row["id"], row["col"], (row["cell_key"] or "").split(".v")[0] + f".s{row['seed']}"
                          f".{row['model_id']}", row["status"], value, row["output_text"],
                          json.loads(row["variables"] or "{}"), row["reference"]))
    return cells


def _objective(row, scores: dict, votes: dict, terms: list[tuple]) -> float | None:
    total = 0.0
    for name, weight, kind in terms:
        if kind == VOTES:
            share = votes.get(row["id"], votes.get(row["cached_from"]))
            if share is None:
                return None
            total += weight * share
            continue
        value = term_value(scores.get(name))
        if value is None:
            return None
        total += weight * value
    return total


def save_objective(log, cells: list[Cell], describe: str) -> None:
    """The objective of each cell stored as its `objective` score (computing it again replaces it)."""
    for cell in cells:
        if cell.status == "ok":
            save_scores(log, cell.run_id, [Score(OBJECTIVE, cell.objective, None, {
                "check": OBJECTIVE, "better": "higher", "terms": describe,
                **({} if cell.objective is not None else {"error": "a term of the objective has no value"})})])


@dataclass
class VariantScore:
    mean: float | None
    scored: int                      # cells with an objective
    cells: int                       # cells in all (failed ones included)
    error: str | None = None         # why it has no mean


def variant_scores(log, experiment_id: int, cells: list[Cell], variants: list[str]) -> dict[str, VariantScore]:
    """Each variant's mean objective over its cells; a variant most of whose cells could not be scored gets no
    mean (a prompt that breaks generation, or a check that cannot be computed here), with the reason."""
    found = {}
    for index, name in enumerate(variants):
        mine = [c for c in cells if c.variant == index]
        values = [c.objective for c in mine if c.objective is not None]
        score = VariantScore(sum(values) / len(values) if values else None, len(values), len(mine))
        if mine and len(values) * 2 < len(mine):
            score.mean, score.error = None, _why_unscored(log, mine)
        found[name] = score
    return found


def _why_unscored(log, cells: list[Cell]) -> str:
    failed = [c for c in cells if c.status != "ok"]
    if failed:
        row = log._db().execute("SELECT error FROM runs WHERE id = ?", (failed[0].run_id,)).fetchone()
        return f"{len(failed)} of {len(cells)} cells failed: {(row[0] if row else '') or 'no error logged'}"
    return (f"{sum(c.objective is None for c in cells)} of {len(cells)} cells have no value for a term of the "
            "objective (a check that cannot be computed here, or no votes)")
