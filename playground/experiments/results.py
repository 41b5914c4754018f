"""An experiment's results as a table a page can show at any size: grid rows (a dataset row with one seed and one
model) x variants, each cell's output and scores, a page at a time, filtered (failed rows, rows where the variants
disagree on a check, a dataset column's value) and sorted (by the difference between two variants on a check).
Plus each variant's mean per check, and the `--fail-under` gate on them. All of it is SQL over the log's indexes:
a page of a 20,000-row experiment reads only that page's runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

from ..store.scores import scores_for_runs
from .spec import ExperimentSpec, load_template, parse_key

DATASET_ROW = "CAST(substr(r.cell_key, 2, instr(r.cell_key, '.') - 2) AS INTEGER)"
ONLY = ("failed", "disagree", "check_failed")


@dataclass
class ResultCell:
    run_id: int
    status: str
    output: str | None              # the text (cut to `text_chars`), or None for an image or audio cell
    artifact: str | None            # the image or audio file, relative to the data dir
    error: str | None
    scores: dict = field(default_factory=dict)     # check name -> {"value": float | None, "passed": bool | None}


@dataclass
class ResultRow:
    row: int                         # the grid row (a dataset row with one seed and one model)
    dataset_row: int
    seed: int
    model: str
    values: dict                     # the template values this row filled in
    reference: str | None
    cells: dict[str, ResultCell] = field(default_factory=dict)   # variant -> its cell
    diff: float | None = None        # the sort key, when sorted by a difference
    reference_file: str | None = None   # the row's reference image or clip (under the data dir)


@dataclass
class ResultsPage:
    experiment_id: int
    variants: list[str]
    checks: list[str]
    total_rows: int                  # grid rows that pass the filters
    offset: int
    limit: int
    rows: list[ResultRow] = field(default_factory=list)


def experiment_spec(log, experiment_id: int, owner: str | None = None) -> ExperimentSpec:
    """The spec an experiment's comparison keeps (also after an export and import)."""
    header = log.get_comparison_header(experiment_id, owner=owner)
    data = header.spec.get("experiment") if isinstance(header.spec, dict) else None
    if not isinstance(data, dict):
        raise KeyError(f"comparison #{header.id} is not an experiment")
    return ExperimentSpec.parse(data)


@lru_cache(maxsize=64)
def _variants(template_text: str, template_hash: str, chosen: tuple | None) -> tuple[str, ...]:
    from ..templates import parse_template

    return tuple(chosen) if chosen else tuple(parse_template(template_text, source="user").variants)


def variants_of(spec: ExperimentSpec) -> list[str]:
    return list(_variants(spec.template, spec.template_hash, tuple(spec.variants) if spec.variants else None))


def check_names(log, experiment_id: int) -> list[str]:
    rows = log._db().execute("SELECT DISTINCT s.name FROM scores s JOIN runs r ON r.id = s.run_id WHERE "
                             "r.comparison_id = ? ORDER BY s.name", (experiment_id,))
    return [row[0] for row in rows]


def results_page(log, experiment_id: int, *, offset: int = 0, limit: int = 50, only: str | None = None,
                 check: str | None = None, where: dict | None = None, sort: tuple[str, str] | None = None,
                 datasets=None, owner: str | None = None, text_chars: int = 2000) -> ResultsPage:
    """One page of the rows x variants table. `only`: "failed" (a cell failed), "disagree" (the variants' values
    of `check` differ) or "check_failed" (a cell did not pass `check`); `where`: {dataset column: value} (needs `datasets`); `sort`: (variant a, variant b) puts the
    rows where a beats b by most on `check` first. `check` defaults to the experiment's first check."""
    spec = experiment_spec(log, experiment_id, owner)
    variants = variants_of(spec)
    checks = check_names(log, experiment_id)
    check = check or (checks[0] if checks else None)
    if only is not None and only not in ONLY:
        raise ValueError(f"only must be one of {', '.join(ONLY)}, got {only!r}")
    if (only in ("disagree", "check_failed") or sort) and check is None:
        raise ValueError("this experiment has no scores yet: there is nothing to compare variants on")
    if check is not None and checks and check not in checks:
        raise ValueError(f"no check {check!r} in this experiment; its checks: {', '.join(checks)}")
    a, b = (_column(variants, sort[0]), _column(variants, sort[1])) if sort else (-1, -1)
    filters, args = [], [a, b, check, experiment_id]       # in the order of the placeholders below
    if where:
        filters.append(f"{DATASET_ROW} IN (SELECT value FROM json_each(?))")
        args.append(json.dumps(_matching_rows(spec, datasets, where, owner)))
    having = {"failed": "failed > 0", "disagree": "spread > 0", "check_failed": "missed > 0", None: "1"}[only]
    grid = (f"SELECT r.row AS row, max(r.status != 'ok') AS failed, max(s.value) - min(s.value) AS spread, "
            f"max(s.passed = 0) AS missed, "
            f"max(CASE WHEN r.col = ? THEN s.value END) - max(CASE WHEN r.col = ? THEN s.value END) AS diff "
            f"FROM runs r LEFT JOIN scores s ON s.run_id = r.id AND s.name = ? WHERE r.comparison_id = ? "
            f"{''.join(' AND ' + f for f in filters)} GROUP BY r.row")
    db = log._db()
    total = db.execute(f"SELECT count(*) FROM ({grid}) WHERE {having}", args).fetchone()[0]
    order = "diff DESC NULLS LAST, row" if sort else "row"
    picked = db.execute(f"SELECT row, diff FROM ({grid}) WHERE {having} ORDER BY {order} LIMIT ? OFFSET ?",
                        [*args, int(limit), int(offset)]).fetchall()
    page = ResultsPage(experiment_id, variants, checks, total, offset, limit)
    page.rows = _rows(log, experiment_id, [(r["row"], r["diff"]) for r in picked], spec, variants, text_chars)
    return page


def _column(variants: list[str], name: str) -> int:
    if name not in variants:
        raise ValueError(f"no variant {name!r}; the variants are {', '.join(variants)}")
    return variants.index(name)


def _matching_rows(spec: ExperimentSpec, datasets, where: dict, owner) -> list[int]:
    if datasets is None:
        raise ValueError("filtering on a dataset column needs the datasets (services.datasets)")
    info = datasets.get(spec.dataset, owner=owner)
    table = datasets.table(info, list(where))
    rows = None
    for column, wanted in where.items():
        accepted = {str(v) for v in (wanted if isinstance(wanted, list) else [wanted])}
        found = {i for i, v in enumerate(table.column(column).to_pylist()) if str(v) in accepted}
        rows = found if rows is None else rows & found
    return sorted(rows or [])


def _rows(log, experiment_id, picked, spec, variants, text_chars) -> list[ResultRow]:
    if not picked:
        return []
    found = log._db().execute(
        "SELECT id, row, col, status, output_text, artifact, error, variables, seed, model_id, reference, cell_key, "
        "reference_file "
        "FROM runs WHERE comparison_id = ? AND row IN (SELECT value FROM json_each(?))",
        (experiment_id, json.dumps([row for row, _ in picked]))).fetchall()
    scores = scores_for_runs(log, [r["id"] for r in found])
    rows = {row: ResultRow(row, -1, 0, "", {}, None, diff=diff) for row, diff in picked}
    for run in found:
        result = rows[run["row"]]
        key = parse_key(run["cell_key"] or "")
        if key is not None:
            result.dataset_row = key[0]
        result.seed, result.model = run["seed"], run["model_id"]
        result.values, result.reference = json.loads(run["variables"] or "{}"), run["reference"]
        result.reference_file = run["reference_file"]
        text = run["output_text"]
        variant = variants[run["col"]] if run["col"] < len(variants) else str(run["col"])
        result.cells[variant] = ResultCell(
            run["id"], run["status"], text[:text_chars] if text is not None else None, run["artifact"],
            run["error"], {name: {"value": s.value, "passed": s.passed}
                           for name, s in scores.get(run["id"], {}).items()})
    return [rows[row] for row, _ in picked]


def variant_means(log, experiment_id: int, owner: str | None = None) -> dict[str, dict]:
    """variant -> {"cells": n, "failed": n, "checks": {check: mean of its values over OK cells}}."""
    spec = experiment_spec(log, experiment_id, owner)
    variants = variants_of(spec)
    result = {v: {"cells": 0, "failed": 0, "checks": {}} for v in variants}
    db = log._db()
    for col, status, count in db.execute("SELECT col, status, count(*) FROM runs WHERE comparison_id = ? "
                                         "GROUP BY col, status", (experiment_id,)):
        entry = result[variants[col]] if col < len(variants) else None
        if entry is not None:
            entry["cells"] += count
            entry["failed"] += count if status != "ok" else 0
    for col, name, mean in db.execute(
            "SELECT r.col, s.name, avg(s.value) FROM runs r JOIN scores s ON s.run_id = r.id WHERE "
            "r.comparison_id = ? AND r.status = 'ok' AND s.value IS NOT NULL GROUP BY r.col, s.name",
            (experiment_id,)):
        if col < len(variants):
            result[variants[col]]["checks"][name] = mean
    return result


def fail_under(means: dict[str, dict], thresholds: dict[str, float]) -> list[str]:
    """What fails the gate: every variant's mean of each check must reach its threshold (a pass/fail check scores
    1 or 0, so its mean is the pass rate)."""
    failures = []
    for check, threshold in thresholds.items():
        for variant, entry in means.items():
            mean = entry["checks"].get(check)
            if mean is None:
                failures.append(f"{variant}: no values of {check}")
            elif mean < threshold:
                failures.append(f"{variant}: {check} mean {mean:.4g} < {threshold:g}")
    return failures


def template_checks(spec: ExperimentSpec) -> list[str]:
    """The names of the checks an experiment scores (its template's and its own)."""
    from ..scoring import make_checks

    template = load_template(spec)
    made = make_checks([dict(c) for c in template.checks] + list(spec.checks), template.modality,
                       has_reference=bool(spec.expected))
    return [c.name for c in made]
