"""The strict base of every request the app takes, the value types requests share, and the one way a refusal is
worded.

Strict means a value is taken as sent, never converted: `true` is not 1, 1.5 is not a seed, "12" is not an id, NaN
and infinity are refused, a string is not split into a list. One exception, decided here once for every whole
number: an integral float (3.0) is taken as that number, because JSON has a single number type and some clients
write every number with a point; 3.5 is still refused.

Limits are settings (`playground.settings`): a type names the setting that bounds it, and `check(Model, data,
settings)` hands the settings in as validation context (the defaults when none are given). A refusal is a
RequestError whose message names each field and what it allows: "seeds[0]: must be a whole number, got true".
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError,
                      ValidationInfo)
from pydantic import Strict as StrictType
from pydantic_core import PydanticCustomError

from ..settings import MAX_ID, Settings, defaults

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class Strict(BaseModel):
    """A request: strict types, unknown fields refused, NaN and infinity refused."""

    model_config = ConfigDict(**STRICT, frozen=True)


class InvalidInput(ValueError):
    """A request the server refuses; the message names the field and what is allowed."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RequestError(InvalidInput):
    """A request refused; `problems` holds (field, what it allows) pairs, the message says them all."""

    def __init__(self, problems: list[tuple[str, str]], style: str = "plain"):
        ValueError.__init__(self, "; ".join(_label(field, style) + " " + text for field, text in problems))
        self.problems = problems
        self.field, self.message = problems[0]


# ---- limits from the settings -----------------------------------------------------------------------------------

def settings_of(info: ValidationInfo | None) -> Settings:
    """The settings (or any object with the same limit names, such as an import's limits) in the context."""
    context = info.context if info is not None else None
    if isinstance(context, dict) and context.get("settings") is not None:
        return context["settings"]
    return defaults()


def _limit(info: ValidationInfo, limit: int | str) -> int:
    """A number, or the name of the setting that holds it."""
    return getattr(settings_of(info), limit) if isinstance(limit, str) else limit


def refuse(kind: str, message: str, **context) -> PydanticCustomError:
    return PydanticCustomError(kind, message, context)


# ---- shared value types -------------------------------------------------------------------------------------------

def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = Annotated[int, StrictType(), BeforeValidator(_integral)]     # 3 or 3.0; not 3.5, true or "3"


def whole(low: int, high: int | str) -> Any:
    """A whole number from `low` to `high` (a number, or the name of the setting that holds it)."""

    def within(value: int, info: ValidationInfo) -> int:
        top = _limit(info, high)
        if not low <= value <= top:
            raise refuse("range", "must be a whole number between {low} and {high}", low=low, high=top)
        return value

    bounds = {"minimum": low} | ({"maximum": high} if isinstance(high, int) else {})
    return Annotated[WholeNumber, AfterValidator(within), Field(json_schema_extra=bounds)]


def storable(value: str) -> str:
    """Text the log can hold as UTF-8: no lone surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise refuse("unicode", "holds characters that are not valid Unicode (a lone surrogate)") from None
    return value


def text(limit: int | str, *, empty: bool = True) -> Any:
    """Text of at most `limit` characters (a number or a setting's name); `empty=False` refuses blank text."""

    def within(value: str, info: ValidationInfo) -> str:
        top = _limit(info, limit)
        if len(value) > top:
            raise refuse("too_long", "is {length} characters long; the limit is {limit}", length=len(value),
                         limit=top)
        if not empty and not value.strip():
            raise refuse("empty", "is empty")
        return value

    return Annotated[str, StrictType(), AfterValidator(within), AfterValidator(storable)]


def items(limit: int | str, *, at_least: int = 0) -> AfterValidator:
    """How many items a list (or keys an object) may hold: at most `limit` (a number or a setting's name)."""

    def within(value, info: ValidationInfo):
        top = _limit(info, limit)
        if len(value) > top:
            raise refuse("too_many", "has {count} items; the limit is {limit}", count=len(value), limit=top)
        if len(value) < at_least:
            raise refuse("too_few", "is empty; give at least {at_least}", at_least=at_least)
        return value

    return AfterValidator(within)


Id = whole(1, MAX_ID)                      # a comparison or run id
Count = whole(0, MAX_ID)                   # an offset
Name = text("max_name_chars", empty=False)
ModelId = text("max_model_id_chars", empty=False)


# ---- checking and wording -----------------------------------------------------------------------------------------

def check(model: type[BaseModel], data: Any, settings: Settings | None = None, *, root: str = "request",
          noun: str = "field", style: str = "plain"):
    """`data` validated as `model` under the settings' limits, or a RequestError."""
    try:
        return model.model_validate(data, context={"settings": settings or defaults()})
    except ValidationError as error:
        raise explain(error, model, root=root, noun=noun, style=style) from None


def check_value(adapter: TypeAdapter, data: Any, context: dict, *, root: str, style: str = "plain"):
    """`data` validated by a TypeAdapter (with its own context), or a RequestError."""
    try:
        return adapter.validate_python(data, context=context)
    except ValidationError as error:
        raise explain(error, None, root=root, style=style) from None


def explain(error: ValidationError, model: type[BaseModel] | None = None, *, root: str = "request",
            style: str = "plain", noun: str = "field") -> RequestError:
    """The one wording of a refusal: each problem as its field and what is allowed, with what was sent. `style`:
    "plain" writes `seeds[0]: ...`, "field" writes `field 'seed' ...`; `noun` is what an unknown name is called."""
    problems = []
    for problem in error.errors(include_url=False)[:5]:
        loc = problem["loc"]
        field = _where(loc) or root
        described = _field_description(model, loc)
        problems.append((field, _phrase(problem, described, model if len(loc) <= 1 else None, noun)))
    return RequestError(problems, style)


def _label(field: str, style: str) -> str:
    return f"{style} {field!r}" if style in ("field", "argument") else f"{field}:"


def _where(loc: tuple) -> str:
    out = ""
    for index, part in enumerate(loc):
        if part == "[key]":
            out = f"a key of {out}"
        elif isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if index else "") + str(part)
    return out


def _field_description(model, loc: tuple) -> str | None:
    """A list's or an object's description says its shape ("a list of whole numbers, e.g. [1, 2, 3]")."""
    if model is None or len(loc) != 1 or not isinstance(loc[0], str):
        return None
    field = model.model_fields.get(loc[0])
    return field.description if field is not None else None


_TYPES = {"int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
          "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
          "bool_type": "true or false", "bool_parsing": "true or false", "string_type": "text",
          "list_type": "a list", "tuple_type": "a list", "dict_type": "an object (name -> value)",
          "model_type": "an object (name -> value)", "model_attributes_type": "an object (name -> value)",
          "dataclass_type": "an object (name -> value)", "typed_dict_type": "an object (name -> value)"}
# Refusals that say what was sent themselves (or where "got" would only repeat the request).
_SAY_ENOUGH = {"too_long", "too_many", "too_few", "empty", "unicode", "missing", "extra_forbidden",
               "string_too_long", "too_short", "string_too_short", "value_error", "assertion_error"}


def _phrase(problem: dict, described: str | None, model, noun: str = "field") -> str:
    kind, context = problem["type"], problem.get("ctx") or {}
    if kind in _TYPES:
        shape = described if kind in ("list_type", "tuple_type", "dict_type") else None
        phrase = f"must be {shape or _TYPES[kind]}"
    elif kind == "literal_error":
        choices = [part.strip("'") for part in _split_choices(context.get("expected", ""))]
        phrase = f"must be one of {', '.join(choices)}"
    elif kind == "missing":
        phrase = "is required"
    elif kind == "extra_forbidden":
        allowed = f"; allowed: {', '.join(model.model_fields)}" if model is not None else ""
        phrase = f"is an unknown {noun}{allowed}"
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(context.values()), "")
        phrase = {"greater_than_equal": "must be at least", "greater_than": "must be above",
                  "less_than_equal": "must be at most", "less_than": "must be below"}[kind] + f" {bound}"
    elif kind == "string_too_long":
        phrase = f"is {len(problem.get('input') or '')} characters long; the limit is {context.get('max_length')}"
    elif kind == "too_long" and "max_length" in context:
        phrase = f"has {context.get('actual_length')} items; the limit is {context['max_length']}"
    else:
        message = problem["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        phrase = message[:1].lower() + message[1:]
    if kind in _SAY_ENOUGH or "got" in context:
        return phrase
    return f"{phrase}, got {shown(problem.get('input'))}"


def _split_choices(expected: str) -> list[str]:
    """Pydantic's "'a', 'b' or 'c'" as ['a', 'b', 'c']."""
    head, _, last = expected.rpartition(" or ")
    return [part.strip() for part in head.split(",") if part.strip()] + [last.strip()] if head else [expected]


def shown(value: Any) -> str:
    """What was sent, short, written as JSON (what API clients and comparison files speak)."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, int):
        digits = str(value)
        return digits if len(digits) <= 24 else f"a {len(digits)}-digit number"
    if isinstance(value, str):
        clipped = value if len(value) <= 40 else value[:40] + "…"
        return json.dumps(clipped)
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
