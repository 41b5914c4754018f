"""Check declarations: `{type: contains, value: "x", name: optional}`. Each check's arguments are a pydantic model
(a subclass of CheckArgs on the check class), checked strictly like every other request; the check's own rules (a
pattern compiles, a schema is valid) are validators on that model."""

from __future__ import annotations

import functools
import json
import types
import typing
from typing import Any, Literal

from pydantic import create_model
from pydantic.fields import FieldInfo

from ..settings import Settings
from .base import Strict, check, text

CheckText = text("max_check_text_chars")
CheckName = text("max_name_chars", empty=False)


class CheckArgs(Strict):
    """A check's arguments: a field per argument (no default: required), its description the help text."""


@functools.lru_cache(maxsize=None)
def _declaration(kind: str, args: type[CheckArgs]) -> type[Strict]:
    """The whole declaration of one check type: its type, an optional name, and its arguments."""
    return create_model(f"{args.__name__}Declaration", __base__=args, type=(Literal[kind], ...),
                        name=(CheckName | None, None))


def check_declaration(kind: str, args: type[CheckArgs], given: dict, settings: Settings | None = None
                      ) -> tuple[str | None, dict]:
    """(declared name or None, the arguments with defaults filled in), or a RequestError that names the
    argument: "argument 'max' must be a whole number, got 2.5"."""
    declared = check(_declaration(kind, args), given, settings, root="check", noun="argument", style="argument")
    values = declared.model_dump(by_alias=True)
    name = values.pop("name")
    values.pop("type")
    return name, values


def takes_text(args: type[CheckArgs], name: str) -> bool:
    """Whether an argument is text, so a `--check` value for it is kept as typed (not read as JSON)."""
    field = next((f for key, f in args.model_fields.items() if (f.alias or key) == name), None)
    return field is not None and str in _plain_types(field.annotation)


def describe_arguments(args: type[CheckArgs]) -> list[dict]:
    """For the UI and the API: name, type, default, required, choices and help of each argument."""
    return [_describe(field.alias or name, field) for name, field in args.model_fields.items()]


def _describe(name: str, field: FieldInfo) -> dict:
    kinds = _plain_types(field.annotation)
    choices = next((list(typing.get_args(k)) for k in kinds if typing.get_origin(k) is Literal), None)
    kind = "str" if choices else next((k.__name__ for k in kinds if isinstance(k, type)), "any")
    required = field.is_required()
    return {"name": name, "type": kind, "default": None if required else field.default, "required": required,
            "choices": choices, "help": field.description or ""}


def _plain_types(annotation) -> tuple:
    """int | None -> (int,); Annotated[str, ...] -> (str,); Literal stays Literal."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(t for a in typing.get_args(annotation) for t in _plain_types(a) if t is not type(None))
    return (annotation,)


def json_object(value: Any) -> Any:
    """An object given as itself or as its JSON text (a `--check` line or a template can only hold text)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"is not valid JSON ({error.msg})") from None
    return value
