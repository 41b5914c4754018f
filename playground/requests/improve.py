"""Improve requests: what the Improve tab and the improve_* API endpoints send to search for a better variant, follow
a search and save its winner. Every limit is a setting (rounds, candidates, rows, the call cap), so a request over
one is refused here, before anything is projected."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..settings import MAX_SEED
from .base import Id, ModelId, Name, Strict, items, text, whole
from .comparison import CheckDeclaration, ParamValue, PromptText, Seed

Objective = text("max_name_chars")
Rounds = whole(1, "max_improve_rounds")
Candidates = whole(1, "max_improve_candidates")
Rows = whole(1, "max_improve_rows")
Calls = whole(1, "max_improve_calls")
Title = text("max_name_chars")


class ImproveRequest(Strict):
    """A search: the variant to start from, the data, the objective, the proposer and the budget."""

    template: Name = Field(description="a library template's name (see list_templates)")
    variant: Name = Field(description="the variant to start from")
    proposer: ModelId = Field(description="the text model that writes candidates, e.g. openai:gpt-4o-mini")
    models: Annotated[list[ModelId], items("max_models", at_least=1)] | None = Field(
        None, description='the models the prompt is for, e.g. ["tiny-text"]; default: the modality\'s default')
    dataset: Name | None = Field(None, description="text: a dataset's id, name or version (see datasets)")
    data: Annotated[list[dict[Name, PromptText]], items("max_improve_rows", at_least=1)] | None = Field(
        None, description='text: the rows themselves instead of a dataset, e.g. [{"product": "a lamp", "split": '
        '"dev"}, ...]')
    expected: Name | None = Field(None, description="the dataset column checks read as the reference answer")
    values: Annotated[dict[Name, Annotated[list[PromptText], items("max_improve_rows", at_least=1)]],
                      items("max_variables")] | None = Field(
        None, description="images and music: variable -> the values to score on")
    checks: Annotated[list[CheckDeclaration], items("max_checks")] | None = Field(
        None, description='checks beyond the template\'s, e.g. [{"type": "contains", "value": "x"}]')
    objective: Objective | None = Field(None, description="CHECK, or 'CHECK*WEIGHT + CHECK*WEIGHT'; default: the "
                                        "one check given, else the template's first")
    rounds: Rounds = 3
    candidates: Candidates = 4
    rows: Rows = 20
    test_rows: Rows = 100
    max_calls: Calls | None = Field(None, description="the most calls it may spend")
    seeds: Annotated[list[Seed], items("max_seeds", at_least=1)] | None = None
    test_seeds: Annotated[list[Seed], items("max_seeds", at_least=1)] | None = None
    seed: whole(0, MAX_SEED) = 0
    params: dict[Name, ParamValue] | None = None
    title: Title = ""


class SearchRef(Strict):
    search_id: Id


class SaveWinnerRequest(Strict):
    search_id: Id
    name: Name | None = Field(None, description="the new template's name (default <template>-improved)")
    variant_name: Name | None = Field(None, description="the new variant's name (default <variant>-improved)")
