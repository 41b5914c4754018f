"""What an improvement search is: the variant it starts from, the data it is scored on (a dataset's dev rows for
text, values x seeds for images and music) and the held-out part it is tested on at the end, the objective, the
proposer, and the budget. Like an experiment's spec it holds everything that decides what runs, and nothing that
is derived: the search is worked out again from the spec and the log, the same way every time.

The objective is one check, or a weighted sum of checks (and of votes where a run has any), written
`length*1 + contains=lantern*0.5`. Per cell each term is the check's pass (1 or 0) when it passes or fails, else its
value, negated when lower is better; a check with no better side and no bounds cannot be an objective.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..jobs import spec_hash
from ..registry import InvalidInput

VOTES = "votes"                   # the objective term that reads people's A/B votes on a run
OBJECTIVE = "objective"           # the score every searched cell gets, under this name
DEFAULT_TEMPERATURE = 1.0         # OPRO samples its candidates at temperature 1.0
DEFAULT_PROPOSER_TOKENS = 400


class Term(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=200)      # a check's name, or "votes"
    weight: float = 1.0

    @field_validator("weight")
    @classmethod
    def _weight(cls, weight: float) -> float:
        if weight == 0:
            raise ValueError("a weight of 0 leaves the term out: drop it instead")
        return weight

    def text(self) -> str:
        return self.name if self.weight == 1 else f"{self.name}*{self.weight:g}"


class ImproveSpec(BaseModel):
    """Everything that decides a search: its data, objective, proposer and budget."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    template: str = Field(min_length=1, max_length=200_000)      # the template file's text
    template_name: str = Field(min_length=1, max_length=100)
    template_hash: str = Field(min_length=64, max_length=64)
    variant: str = Field(min_length=1, max_length=100)           # the variant the search starts from
    modality: str = Field(pattern=r"^(text|image|music)$")
    dataset: str = Field(pattern=r"^[0-9a-f]{64}$")              # the dataset's version
    dataset_name: str = Field("", max_length=200)
    mapping: dict[str, str] = Field(default_factory=dict)
    expected: str | None = Field(None, max_length=200)
    held_out: str = Field("rows", pattern=r"^(rows|seeds)$")     # rows: a test split; seeds: new seeds, same values
    split_column: str = Field("split", min_length=1, max_length=200)
    split_shares: dict[str, float] | None = None
    search_split: str = Field("dev", min_length=1, max_length=100)
    test_split: str = Field("test", min_length=1, max_length=100)
    rows: int = Field(20, ge=1, le=100_000)                      # rows each candidate is scored on
    test_rows: int = Field(100, ge=1, le=1_000_000)              # held-out rows the winner is tested on
    seeds: list[int] = Field(default_factory=lambda: [1], min_length=1, max_length=100)
    test_seeds: list[int] = Field(default_factory=lambda: [1], min_length=1, max_length=100)
    models: list[str] = Field(min_length=1, max_length=8)
    params: dict = Field(default_factory=dict)
    checks: list[dict] = Field(default_factory=list, max_length=20)   # beyond the template's own
    objective: list[Term] = Field(min_length=1, max_length=20)
    proposer: str = Field(min_length=1, max_length=300)
    proposer_params: dict = Field(default_factory=dict)
    rounds: int = Field(3, ge=1)
    candidates: int = Field(4, ge=1)
    patience: int = Field(1, ge=1, le=100)                       # rounds without a gain before it stops
    max_calls: int | None = Field(None, ge=0)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    title: str = Field("", max_length=300)

    @field_validator("seeds", "test_seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds) or any(not 0 <= s <= 2**32 - 1 for s in seeds):
            raise ValueError(f"seeds are different whole numbers from 0 to {2**32 - 1}")
        return seeds

    @model_validator(mode="after")
    def _apart(self):
        if self.held_out == "seeds" and set(self.seeds) & set(self.test_seeds):
            raise ValueError("the held-out seeds must differ from the search seeds: a test on the seeds searched "
                             "on would not be held out")
        if self.held_out == "rows" and self.search_split == self.test_split:
            raise ValueError(f"the search split and the held-out split are both {self.search_split!r}: a test on "
                             "the rows searched on would not be held out")
        names = [t.name for t in self.objective]
        if len(set(names)) != len(names):
            raise ValueError("each objective term once")
        return self

    @property
    def key(self) -> str:
        """The hash the same search is found by (its title left out)."""
        return spec_hash(self.model_dump(exclude={"title"}))

    def objective_text(self) -> str:
        return " + ".join(term.text() for term in self.objective)

    @classmethod
    def parse(cls, data: dict) -> "ImproveSpec":
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "improve"
            raise InvalidInput(where, problem["msg"].removeprefix("Value error, ")) from None


def parse_objective(text: str) -> list[Term]:
    """`length*1 + contains=lantern*0.5` (or one name) -> terms; InvalidInput saying what to write."""
    terms = []
    for part in (text or "").split("+"):
        part = part.strip()
        if not part:
            raise InvalidInput("objective", f"{text!r}: write CHECK, or CHECK*WEIGHT + CHECK*WEIGHT")
        name, star, weight = part.rpartition("*")
        if not star:
            name, weight = part, "1"
        try:
            value = float(weight)
        except ValueError:
            raise InvalidInput("objective", f"{part!r}: the weight after * is a number, e.g. {name.strip()}*0.5") \
                from None
        if not math.isfinite(value):
            raise InvalidInput("objective", f"{part!r}: the weight is a finite number")
        if value == 0:
            raise InvalidInput("objective", f"{part!r}: a weight of 0 leaves the term out; drop it instead")
        terms.append(Term(name=name.strip(), weight=value))
    return terms
