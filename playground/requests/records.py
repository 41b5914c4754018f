"""An imported run: one line of an export, held field by field to the limits a new comparison has.

The fields of a run record (and of the comparison it belongs to) as TypedDicts, checked by a TypeAdapter with the
import's limits as context. A refusal names the field and its limit in the one wording of base.py:
"field 'prompt' is 8001 characters long; the limit is 8000".
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, PlainValidator, TypeAdapter, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError
from typing_extensions import Required, TypedDict

from ..settings import MAX_ID, MAX_SEED
from .base import Id, ModelId, Name, _limit, check_value, refuse, shown, storable, text, whole
from .comparison import Modality
from .votes import Note, Stars, Thumbs

UID_RULE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_DICT_KEYS = 64
MAX_DICT_CHARS = 20_000           # params, variables, versions, metrics: their JSON form
MAX_MEASURE = 1e9                 # seconds, tokens per second: far above anything real


def _plain(value: Any) -> Any:
    """One value of params, variables, versions or metrics: text, a number, true/false or null."""
    if isinstance(value, float) and not math.isfinite(value):
        raise refuse("finite", "must be a finite number, got {got}", got=shown(value))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ID:
        raise refuse("range", "is out of range, got {got}", got=shown(value))
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise refuse("plain", "must be a plain value (text, a number, true/false or null), got {got}",
                     got=shown(value))
    return storable(value) if isinstance(value, str) else value


def _small_object(value: dict) -> dict:
    if len(value) > MAX_DICT_KEYS:
        raise refuse("too_many", "has {count} keys; the limit is {limit}", count=len(value), limit=MAX_DICT_KEYS)
    size = len(json.dumps(value, ensure_ascii=False))
    if size > MAX_DICT_CHARS:
        raise refuse("too_long", "is {length} characters as JSON; the limit is {limit}", length=size,
                     limit=MAX_DICT_CHARS)
    return value


def _cell_position(value: int, info: ValidationInfo) -> int:
    top = _limit(info, "max_cells") - 1
    if not 0 <= value <= top:
        raise refuse("range", "must be a whole number between 0 and {high}", high=top)
    return value


def _measure(value: float) -> float:
    if not 0 <= value <= MAX_MEASURE:
        raise refuse("range", "must be a finite number from 0 to 1e9")
    return value


def _uid(value: str) -> str:
    if not UID_RULE.match(value):
        raise refuse("uid", "must be 8-64 letters, digits, '-' or '_'")
    return value


# How a kept reference image or clip is named (datasets/store.py: keep_reference): a run names only such a file.
REFERENCE_FILE = re.compile(r"^references/[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]{2,5}$")


def _reference_file(value: str) -> str:
    if not REFERENCE_FILE.match(value):
        raise refuse("reference_file", "must name a kept reference (references/<hash>.<suffix>), never another file")
    return value


def _formatted_prompt(value: str, info: ValidationInfo) -> str:
    """The text the model saw: the prompt and the system prompt inside a chat template."""
    top = 2 * _limit(info, "max_prompt_chars") + 10_000
    if len(value) > top:
        raise refuse("too_long", "is {length} characters long; the limit is {limit}", length=len(value), limit=top)
    return value


Plain = Annotated[Any, PlainValidator(_plain), WithJsonSchema({})]
SmallObject = Annotated[dict[Annotated[str, AfterValidator(storable)], Plain], AfterValidator(_small_object)]
Position = Annotated[int, AfterValidator(_cell_position)]
Measure = Annotated[float, AfterValidator(_measure)]
Uid = Annotated[str, AfterValidator(_uid)]
ReferenceFile = Annotated[str, AfterValidator(_reference_file)]
Prompt = text("max_prompt_chars")
Output = text("max_output_chars")
Short = text(200)
Hash = text(128)
Label = text(64)
Path300 = text(300)
ErrorText = text(10_000)
Moment = text(40)
Tokens = whole(0, 10**9)
Seed = whole(0, MAX_SEED)
FormattedPrompt = Annotated[str, AfterValidator(_formatted_prompt), AfterValidator(storable)]
Title = text(500)


class RunFields(TypedDict, total=False):
    """The fields of RunRecord (store/records.py) an export row may carry; anything else on the row is ignored."""

    __pydantic_config__ = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")  # type: ignore[misc]

    modality: Required[Modality]
    model_id: Required[ModelId]
    prompt: Required[Prompt]
    seed: Required[Seed]
    params: Required[SmallObject]
    status: Literal["ok", "error", "cancelled"]
    comparison_id: Id | None
    row: Position
    col: Position
    template_name: Name | None
    template_hash: Hash | None
    variant: Name | None
    variables: SmallObject
    system: Prompt | None
    negative_prompt: Prompt | None
    model_revision: Path300 | None
    backend: Short | None
    device: Label | None
    dtype: Label | None
    versions: SmallObject
    wall_s: Measure | None
    load_s: Measure | None
    tokens_per_s: Measure | None
    realtime_factor: Measure | None
    ttft_s: Measure | None
    prompt_tokens: Tokens | None
    completion_tokens: Tokens | None
    output_text: Output | None
    artifact: Path300 | None
    error: ErrorText | None
    cached_from: Id | None
    endpoint: Path300 | None
    formatted_prompt: FormattedPrompt | None
    metrics: SmallObject
    replaces: Id | None
    cell_key: Short | None
    reference: Output | None
    reference_file: ReferenceFile | None
    id: Id | None
    created_at: Moment | None
    stars: Stars | None
    thumbs: Thumbs | None
    note: Note | None
    uid: Uid | None
    imported: bool


class ComparisonInfo(TypedDict, total=False):
    """The comparison an export row belongs to, as the export writes it beside the row."""

    __pydantic_config__ = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")  # type: ignore[misc]

    title: Title | None
    spec: dict | None
    template_name: Short | None
    status: Short | None
    created_at: Short | None
    modality: Short | None
    winner_run_id: Id | None
    uid: Uid | None


_RUN = TypeAdapter(RunFields)
_COMPARISON = TypeAdapter(ComparisonInfo)
MAX_SPEC_CHARS = 100_000


_ID = TypeAdapter(Id)


def row_id(value) -> int:
    """A run or comparison id (1 .. 2**63-1), or a RequestError."""
    return check_value(_ID, value, {}, root="id")


def run_fields(row: dict, limits) -> dict:
    """The run fields of an export row, checked against `limits` (an ImportLimits); else a RequestError."""
    return check_value(_RUN, row, {"settings": limits}, root="row", style="field")


def comparison_info(info: Any, limits) -> dict:
    """The comparison beside an export row, checked; {} when the row carries none."""
    if not isinstance(info, dict):
        return {}
    checked = check_value(_COMPARISON, info, {"settings": limits}, root="comparison", style="field")
    if checked.get("spec") is not None:
        size = len(json.dumps(checked["spec"], ensure_ascii=False, default=str))
        if size > MAX_SPEC_CHARS:
            raise ValueError(f"field 'comparison.spec' is {size} characters as JSON; the limit is {MAX_SPEC_CHARS}")
    return checked


__all__ = ["ComparisonInfo", "PydanticCustomError", "RunFields", "UID_RULE", "comparison_info", "row_id", "run_fields"]
