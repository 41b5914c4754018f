"""Where a search stands, as its job's progress holds it: every candidate with its lineage and score, the best so
far by round, the calls spent, why it stopped, and the held-out result. The loop writes it as it goes; the CLI and
the page read it. It is a summary of the log, never the source: a resumed search works it out from the log again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

TEXT_CHARS = 600                 # of a candidate's text kept in the progress (the log holds it whole)


@dataclass
class Candidate:
    name: str
    round: int
    status: str                      # original, scored, rejected (not run), unscored (run, no score), failed
    parent: str | None = None        # the best prompt when it was proposed
    score: float | None = None       # mean objective on the search rows
    scored: int = 0                  # cells with an objective
    cells: int = 0
    reason: str | None = None        # why it was rejected or could not be scored
    run_id: int | None = None        # the proposer's run (its prompt is the meta-prompt; its seed, settings)
    experiment: int | None = None    # the experiment it was scored in
    text: str = ""
    kept: bool = False               # it became the best


@dataclass
class Record:
    phase: str = "starting"
    round: int = 0
    rounds: int = 0                  # rounds the search may run
    candidates: list[Candidate] = field(default_factory=list)
    by_round: list[dict] = field(default_factory=list)     # {round, best, score, experiment}
    best: str | None = None
    best_score: float | None = None
    best_text: str = ""
    original: str = ""
    original_score: float | None = None
    calls: dict = field(default_factory=dict)              # proposer, generator: calls spent (cache hits are free)
    planned_calls: int = 0
    stopped: str | None = None       # why the search ended (early stop, budget, no usable candidate)
    test: dict | None = None         # the held-out result
    search_comparison: int | None = None
    notes: list[str] = field(default_factory=list)

    def add(self, candidate: Candidate) -> Candidate:
        self.candidates = [c for c in self.candidates if c.name != candidate.name] + [candidate]
        return candidate

    def to_dict(self) -> dict:
        data = asdict(self)
        for entry in data["candidates"]:
            if len(entry["text"]) > TEXT_CHARS:
                entry["text"] = entry["text"][:TEXT_CHARS - 1] + "…"
        return data

    @classmethod
    def from_dict(cls, data: dict | None) -> "Record":
        data = dict(data or {})
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["candidates"] = [Candidate(**{k: v for k, v in c.items() if k in Candidate.__dataclass_fields__})
                               for c in known.get("candidates") or []]
        return cls(**known)


def spent_calls(log, search_id: int, experiment_ids: list[int]) -> dict[str, int]:
    """Calls made so far (each attempt of a cell, cache hits left out): the proposer's and the generator's."""
    def count(ids: list[int]) -> int:
        if not ids:
            return 0
        marks = ", ".join("?" for _ in ids)
        row = log._db().execute(
            f"SELECT coalesce(sum(coalesce(json_extract(metrics, '$.attempt'), 1)), 0) FROM runs WHERE "
            f"comparison_id IN ({marks}) AND cached_from IS NULL", ids).fetchone()
        return int(row[0])

    return {"proposer": count([search_id]), "generator": count(sorted(set(experiment_ids)))}
