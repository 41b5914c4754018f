"""The `improve` job: OPRO's loop (Yang et al., "Large Language Models as Optimizers", 2023;
google-deepmind/opro, `opro/optimization/optimize_instructions.py`) over a template's variant.

    score the original on the search rows
    for each round:   build the meta-prompt (the best earlier prompts with their scores, ascending, and rows where
                      the best did worst) -> the proposer writes N candidates at a high temperature (OPRO: 8 at 1.0)
                      -> candidates that drop or invent a variable, repeat an earlier prompt or do not render are
                      rejected (logged with the reason, not run) -> the rest are scored on the same rows -> the best
                      is kept; a round that brings no gain (for `patience` rounds) stops the search early
    test the best against the original on the held-out part, and say with paired statistics whether it is better

Resumable by construction: every step reads the log before it spends anything (the proposer's answers are runs of
the search's comparison, keyed by round and candidate; every scored cell is a run of its round's experiment), so a
search continued after a crash, a SIGKILL or a restart re-reads what it had and calls only for what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..experiments.store import set_status
from ..store.scores import Score, save_scores
from .meta import Tried, judge
from .record import Candidate, Record, spent_calls
from .result import held_out_result
from .search import IMPROVED, ORIGINAL, Search
from .spec import OBJECTIVE, ImproveSpec

KIND = "improve"


class ImproveError(ValueError):
    """A search that cannot go on; the message says why and what to change (what is logged stays)."""


@dataclass
class Best:
    name: str
    text: str
    score: float
    experiment: int
    index: int                          # its column in its experiment
    cells: list = field(default_factory=list)


def run_job(context) -> None:
    """The handler the job worker calls (playground.jobs.KINDS['improve'])."""
    job, services = context.job, context.services
    spec = ImproveSpec.parse(job.spec)
    search = Search(services, spec, job_id=job.id, search_id=job.comparison_id, owner=job.owner)
    record = Record.from_dict(job.progress)
    record.search_comparison, record.original = job.comparison_id, spec.variant
    record.notes = list(job.progress.get("notes") or [])
    set_status(services.log, job.comparison_id, "running")
    try:
        Loop(context, search, record).run()
    except Exception:
        set_status(services.log, job.comparison_id, "failed")
        raise
    finally:
        _report(context, search, record, force=True)


def _report(context, search: Search, record: Record, force: bool = False) -> None:
    experiments = [c.experiment for c in record.candidates if c.experiment] + \
        ([record.test["experiment"]] if record.test else [])
    record.calls = spent_calls(context.services.log, search.search_id, experiments)
    context.progress(force=force, **record.to_dict())


class Loop:
    def __init__(self, context, search: Search, record: Record):
        self.context, self.search, self.record = context, search, record
        self.spec = search.spec
        self.max_chars = context.services.settings.max_prompt_chars

    def note(self, text: str) -> None:
        """A note on the search, once (a resumed search meets the same events again)."""
        if text not in self.record.notes:
            self.record.notes.append(text)

    def step(self, phase: str, round_: int) -> None:
        self.record.phase, self.record.round = phase, round_
        _report(self.context, self.search, self.record)

    def run(self) -> None:
        rounds = self.rounds_within_budget()
        self.record.rounds = rounds
        best = self.score_original()
        if best is None:
            return
        tried = {best.name: Tried(best.name, best.text, best.score)}
        stale = 0
        for round_ in range(1, rounds + 1):
            if self.context.stopping:
                return
            outcome = self.run_round(round_, best, tried)
            if outcome is None:
                return                                  # stopped midway: resumed later from the log
            if outcome.score > best.score:
                best, stale = outcome, 0
            else:
                stale += 1
            self.mark_best(best, round_)
            if stale >= self.spec.patience:
                self.record.stopped = (f"stopped early: round {round_} brought no gain" if self.spec.patience == 1
                                       else f"stopped early: {stale} rounds brought no gain")
                break
        else:
            if rounds < self.spec.rounds:
                self.record.stopped = f"the budget of {self.spec.max_calls:,} calls allowed {rounds} of " \
                                      f"{self.spec.rounds} rounds"
        self.test(best)

    def rounds_within_budget(self) -> int:
        """Rounds whose planned calls fit `max_calls` with the held-out test: decided from the plan, not from what
        was spent, so a resumed search decides the same."""
        from .project import plan_calls

        if self.spec.max_calls is None:
            return self.spec.rounds
        for rounds in range(self.spec.rounds, -1, -1):
            if plan_calls(self.spec, rounds).total <= self.spec.max_calls:
                return rounds
        return 0

    def score_original(self) -> Best | None:
        spec, search = self.spec, self.search
        self.step("scoring the original", 0)
        experiment, scores, cells, done = search.score(
            {spec.variant: search.original}, self.context.stop, title=f"improve #{search.job_id} · round 0: "
            f"{spec.template_name}/{spec.variant} as it is", notes=f"The starting point of improve "
            f"#{search.job_id}: variant {spec.variant!r} as written.")
        if not done:
            return None
        score = scores[spec.variant]
        self.record.original_score = score.mean
        self.record.add(Candidate(spec.variant, 0, "original", None, score.mean, score.scored, score.cells,
                                  score.error, None, experiment, search.original, kept=True))
        if score.mean is None:
            raise ImproveError(f"the original variant {spec.variant!r} could not be scored: {score.error}. "
                               "Fix that first (a model that fails, or a check that cannot be computed here); "
                               "what ran is logged")
        best = Best(spec.variant, search.original, score.mean, experiment, 0, cells)
        self.mark_best(best, 0)
        return best

    def mark_best(self, best: Best, round_: int) -> None:
        record = self.record
        record.best, record.best_score, record.best_text = best.name, best.score, best.text
        record.by_round = [r for r in record.by_round if r["round"] != round_] + [
            {"round": round_, "best": best.name, "score": best.score, "experiment": best.experiment}]
        for candidate in record.candidates:
            candidate.kept = candidate.kept or candidate.name == best.name

    def run_round(self, round_: int, best: Best, tried: dict[str, Tried]) -> Best | None:
        """One round; the round's best (or the current best when nothing beat it); None when stopped midway."""
        search, stop = self.search, self.context.stop
        self.step("proposing", round_)
        meta = search.meta_prompt(list(tried.values()), search.exemplars(best.cells, best.index))
        logged = search.logged_proposals(round_)
        again = len(logged) == self.spec.candidates and all(p.status != "ok" for p in logged)
        proposals = search.propose(round_, meta.text(self.max_chars), stop, retry_failed=again)
        if len(proposals) < self.spec.candidates:
            return None
        if all(p.status != "ok" for p in proposals):
            raise ImproveError(f"every proposer call of round {round_} failed: {proposals[0].error}. Nothing "
                               "logged is lost, and the calls are counted; fix the proposer (its key, its "
                               "server) and resume to try the round again")
        valid = self.judge_round(round_, proposals, best, tried)
        if not valid:
            return best
        self.step("scoring", round_)
        experiment, scores, cells, done = search.score(
            valid, stop, title=f"improve #{search.job_id} · round {round_}: {len(valid)} candidates for "
            f"{self.spec.template_name}/{self.spec.variant}", notes=self.lineage(round_, proposals, best))
        if not done:
            return None
        return self.settle_round(round_, proposals, valid, scores, experiment, cells, best, tried)

    def judge_round(self, round_: int, proposals, best: Best, tried: dict[str, Tried]) -> dict[str, str]:
        valid: dict[str, str] = {}
        earlier = {name: entry.text for name, entry in tried.items()}
        for proposal in proposals:
            candidate = Candidate(proposal.name, round_, "rejected", best.name, run_id=proposal.run_id)
            if proposal.status != "ok":
                candidate.reason = f"the proposer's call failed: {proposal.error}"
            else:
                verdict = judge(proposal.answer, self.search.template, self.spec.variant, {**earlier, **valid},
                                self.max_chars)
                candidate.text, candidate.reason = verdict.text or (proposal.answer or "")[:600], verdict.reason
                if verdict.text is not None:
                    valid[proposal.name] = verdict.text
                    candidate.status = "pending"
            self.record.add(candidate)
            if candidate.status == "rejected":
                self.save_lineage(candidate)
        if not valid:
            self.note(f"round {round_}: no usable candidate (every answer was rejected)")
        return valid

    def settle_round(self, round_, proposals, valid, scores, experiment, cells, best: Best,
                     tried: dict[str, Tried]) -> Best:
        round_best = best
        for index, name in enumerate(valid):
            score = scores[name]
            candidate = next(c for c in self.record.candidates if c.name == name)
            candidate.status = "scored" if score.mean is not None else "unscored"
            candidate.score, candidate.scored, candidate.cells = score.mean, score.scored, score.cells
            candidate.reason, candidate.experiment = score.error, experiment
            self.save_lineage(candidate)
            if score.mean is None:
                continue
            tried[name] = Tried(name, valid[name], score.mean)
            if score.mean > round_best.score:
                round_best = Best(name, valid[name], score.mean, experiment, index, cells)
        return round_best

    def lineage(self, round_: int, proposals, best: Best) -> str:
        params = self.search.proposer_params()
        lines = [f"Candidates of round {round_} of improve #{self.search.job_id}, proposed by "
                 f"{self.spec.proposer} (temperature {params.get('temperature')}) from the best so far, "
                 f"{best.name} ({best.score:.3f}):", ""]
        lines += [f"- {p.name}: proposer run #{p.run_id}, seed {p.seed}" for p in proposals if p.status == "ok"]
        return "\n".join(lines)

    def save_lineage(self, candidate: Candidate) -> None:
        """The candidate's lineage and score on its proposer run: History shows what each answer became."""
        if candidate.run_id is None:
            return
        save_scores(self.context.services.log, candidate.run_id, [Score(OBJECTIVE, candidate.score, None, {
            "check": OBJECTIVE, "better": "higher", "round": candidate.round, "candidate": candidate.name,
            "parent": candidate.parent, "status": candidate.status, "reason": candidate.reason,
            "experiment": candidate.experiment})])

    def test(self, best: Best) -> None:
        spec, search = self.spec, self.search
        if best.name == spec.variant:
            self.record.test = None
            self.note("no candidate beat the original on the search rows, so there is nothing to "
                                     "test on the held-out part (no calls spent on it)")
            self.finish()
            return
        self.step("testing on the held-out part", self.record.round)
        experiment, _, _, done = search.score(
            {ORIGINAL: search.original, IMPROVED: best.text}, self.context.stop, held_out=True,
            title=f"improve #{search.job_id} · held-out test: {best.name} vs {spec.variant}",
            notes=f"The held-out test of improve #{search.job_id}: `{ORIGINAL}` is variant {spec.variant!r} as "
                  f"written, `{IMPROVED}` is candidate {best.name} (score {best.score:.3f} on the search rows).")
        if not done:
            return
        self.record.test = held_out_result(self.context.services.log, experiment, spec, best.name)
        self.finish()

    def finish(self) -> None:
        self.record.phase = "done"
        set_status(self.context.services.log, self.search.search_id, "done")
