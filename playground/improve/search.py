"""One search's moving parts, each of which reads the log before it spends anything:

- `propose(round, meta)` runs the proposer's missing calls of a round into the search's own comparison (each call a
  logged run keyed `p.r<round>.c<k>`, its prompt the meta-prompt, its seed derived from the search's seed) and
  returns the round's answers, read back from the log;
- `score(round, candidates)` scores candidates as one experiment (each candidate a variant of the template, every
  cell an ordinary logged run) through `experiments.run_inline`, whose cells already logged cost nothing;
- `held_out(best)` runs the original and the winner on the held-out part.

A round's experiment is found again by its spec, so a search resumed after a restart meets the very same
experiments and runs only what they lack.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import experiments
from ..experiments.budget import check_budget
from ..scoring import make_checks
from ..spec import Cell as GridCell
from ..spec import ComparisonSpec
from ..templates import Template, parse_template, variables_used, with_changes
from .data import search_sample, test_sample
from .meta import Exemplar, MetaPrompt, Tried, describe_objective
from .score import (Cell, VariantScore, experiment_cells, resolve_terms, save_objective, variant_scores)
from .spec import ImproveSpec

ORIGINAL, IMPROVED = "original", "improved"


@dataclass
class Proposal:
    round: int
    index: int                      # 1-based within the round
    name: str                       # the candidate's variant name
    run_id: int
    status: str                     # the proposer call's: ok or error
    answer: str | None
    error: str | None
    meta: str                       # the meta-prompt it answered
    seed: int


def proposer_seed(spec: ImproveSpec, round_: int, index: int) -> int:
    return (spec.seed * 100_003 + round_ * 101 + index) % 2**32


class Search:
    def __init__(self, services, spec: ImproveSpec, *, job_id: int, search_id: int, owner: str | None):
        self.services, self.spec, self.owner = services, spec, owner
        self.job_id, self.search_id = job_id, search_id
        self.template: Template = parse_template(spec.template, source="user")
        self.original = self.template.variants[spec.variant]
        self.checks = [dict(c) for c in self.template.checks] + list(spec.checks)
        self.terms = resolve_terms(spec.objective, self.checks, spec.modality, bool(spec.expected))
        self.variables = sorted(variables_used(self.original))

    # ---- the proposer -------------------------------------------------------------------------------------------

    def logged_proposals(self, round_: int) -> list[Proposal]:
        rows = self.services.log._db().execute(
            "SELECT id, cell_key, status, output_text, error, prompt, seed, variant FROM runs WHERE comparison_id = ? "
            "AND cell_key LIKE ? ORDER BY col", (self.search_id, f"p.r{round_}.c%")).fetchall()
        return [Proposal(round_, int(r["cell_key"].rsplit(".c", 1)[1]), r["variant"], r["id"], r["status"],
                         r["output_text"], r["error"], r["prompt"], r["seed"]) for r in rows]

    def propose(self, round_: int, meta: str, stop, retry_failed: bool = False) -> list[Proposal]:
        """The round's proposals: those logged, plus the missing calls run now (failed ones again when
        `retry_failed`: a round whose every call failed is tried again when the search resumes)."""
        logged = {p.index: p for p in self.logged_proposals(round_)}
        missing = [k for k in range(1, self.spec.candidates + 1)
                   if k not in logged or (retry_failed and logged[k].status != "ok")]
        if missing:
            check_budget(self.services, self.owner,
                                            len(missing) if self._proposer_remote() else 0)
            cells = [GridCell(prompt=meta, model_id=self.spec.proposer, seed=proposer_seed(self.spec, round_, k),
                              variant=f"r{round_}-c{k}", row=round_, col=k - 1, key=f"p.r{round_}.c{k}")
                     for k in missing]
            run = ComparisonSpec(modality="text", cells=cells, params=self.proposer_params(),
                                 title=f"improve #{self.job_id}: proposals")
            for _ in self.services.runner.run(run, cancel=stop, owner=self.owner, into=self.search_id,
                                              max_cells=len(cells)):
                pass
        return self.logged_proposals(round_)

    def proposer_params(self) -> dict:
        return {"temperature": 1.0, "max_new_tokens": 400, **self.spec.proposer_params}

    def _proposer_remote(self) -> bool:
        resolved = self.services.catalog.resolve("text", self.spec.proposer)
        return resolved.engine.remote

    def meta_prompt(self, tried: list[Tried], exemplars: list[Exemplar]) -> MetaPrompt:
        task = self.template.description or f"the template {self.template.name}"
        rows = self.spec.rows * len(self.spec.seeds) * len(self.spec.models)
        return MetaPrompt(task=f"{task} (variant {self.spec.variant!r})", modality=self.spec.modality,
                          variables=self.variables, objective=describe_objective(self.terms), rows=rows,
                          tried=tried, exemplars=exemplars, system=self.template.system)

    # ---- scoring ------------------------------------------------------------------------------------------------

    def experiment_spec(self, variants: dict[str, str], *, held_out: bool, notes: str,
                        title: str) -> experiments.ExperimentSpec:
        template = with_changes(self.template, variants=variants, notes=notes)
        spec = self.spec
        return experiments.build_spec(
            self.services, template=template, dataset=spec.dataset, models=spec.models,
            seeds=spec.test_seeds if held_out else spec.seeds, mapping=spec.mapping, expected=spec.expected,
            sample=(test_sample if held_out else search_sample)(spec).model_dump(exclude_defaults=True),
            params=spec.params, checks=spec.checks, title=title, owner=self.owner)

    def score(self, variants: dict[str, str], stop, *, held_out: bool = False, notes: str = "",
              title: str = "") -> tuple[int, dict[str, VariantScore], list[Cell], bool]:
        """(experiment id, variant -> its score, the cells, finished) for these variants; `finished` False when
        `stop` ended it first (its cells so far stay logged, and the same call later runs only the rest)."""
        spec = self.experiment_spec(variants, held_out=held_out, notes=notes, title=title)
        status = experiments.run_inline(self.services, spec, owner=self.owner, stop=stop)
        cells = experiment_cells(self.services.log, status.id, self.terms)
        save_objective(self.services.log, cells, self.spec.objective_text())
        return status.id, variant_scores(self.services.log, status.id, cells, list(variants)), cells, \
            status.status == "done"

    def cells_per_candidate(self, held_out: bool = False) -> int:
        """Cells one variant runs: rows (at most) x seeds x models."""
        seeds = self.spec.test_seeds if held_out else self.spec.seeds
        return (self.spec.test_rows if held_out else self.spec.rows) * len(seeds) * len(self.spec.models)

    def exemplars(self, cells: list[Cell], variant_index: int) -> list[Exemplar]:
        """The cells where a variant did worst (lowest objective first), as the meta-prompt shows them."""
        from .meta import EXEMPLARS

        mine = [c for c in cells if c.variant == variant_index and c.objective is not None]
        mine.sort(key=lambda c: c.objective)
        text = self.spec.modality == "text"
        return [Exemplar(c.values, c.reference, c.output if text else None, c.objective) for c in mine[:EXEMPLARS]]

    def describe_checks(self) -> list[str]:
        return [c.name for c in make_checks(self.checks, self.spec.modality, has_reference=bool(self.spec.expected))]
