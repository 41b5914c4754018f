"""A comparison request: what /compare, the comparison tabs' Run and the CLI's `run comparison.json` send, and the
prompts /render_template shows. One model; each door fills the fields it has."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainValidator, ValidationInfo, WithJsonSchema, model_validator

from ..settings import MAX_SEED
from .base import ModelId, Name, Strict, _limit, items, refuse, shown as _short, storable, text, whole

def _modality(value: str) -> str:
    from ..registry import MODALITIES          # the registry reads this package: look it up when first needed

    if value not in MODALITIES:
        raise refuse("modality", "must be one of {choices}", choices=", ".join(MODALITIES))
    return value


Modality = Annotated[str, AfterValidator(_modality)]
Seed = whole(0, MAX_SEED)
PromptText = text("max_value_chars")
Title = text("max_name_chars")


def _variable_value(value: Any, info: ValidationInfo) -> str | list[str]:
    """Text, or a list of texts (each list multiplies the grid). A number is taken as its text; true is not."""
    listed = isinstance(value, list)
    entries = value if listed else [value]
    if listed and not entries:
        raise refuse("empty", "is an empty list; give at least one value")
    top, out = _limit(info, "max_value_chars"), []
    for entry in entries:
        if isinstance(entry, bool) or not isinstance(entry, (str, int, float)) or (
                isinstance(entry, float) and not math.isfinite(entry)):
            raise refuse("value", "must be text or a list of texts, got {got}", got=_short(entry))
        entry = storable(str(entry))
        if len(entry) > top:
            raise refuse("too_long", "holds a value of {length} characters; the limit is {limit}",
                         length=len(entry), limit=top)
        out.append(entry)
    return out if listed else out[0]


def _param_value(value: Any, info: ValidationInfo) -> Any:
    """A generation option's value as sent: a number, true/false, short text or null; each engine checks names
    and ranges against its own options."""
    if isinstance(value, float) and not math.isfinite(value):
        raise refuse("finite", "must be a finite number, got {got}", got=_short(value))
    if isinstance(value, str):
        if len(value) > _limit(info, "max_name_chars"):
            raise refuse("too_long", "is {length} characters long; the limit is {limit}", length=len(value),
                         limit=_limit(info, "max_name_chars"))
        return storable(value)
    if value is not None and not isinstance(value, (bool, int, float)):
        raise refuse("param", "must be a number, true/false or text, got {got}", got=_short(value))
    return value


def _check_declaration(value: Any) -> dict:
    """One check as declared: an object with a "type"; its arguments are checked against that check's own model."""
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise refuse("check", "must be an object like {example}, got {got}",
                     example='{"type": "contains", "value": "x"}', got=_short(value))
    return value


VariableValue = Annotated[Any, PlainValidator(_variable_value), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})]
ParamValue = Annotated[Any, PlainValidator(_param_value), WithJsonSchema(
    {"anyOf": [{"type": "number"}, {"type": "boolean"}, {"type": "string"}, {"type": "null"}]})]
CheckDeclaration = Annotated[dict, PlainValidator(_check_declaration), WithJsonSchema(
    {"type": "object", "properties": {"type": {"type": "string"}}, "required": ["type"]})]


class ComparisonRequest(Strict):
    """A comparison: a library template (or, from a comparison file, a modality and variants) x values x seeds x
    models, with parameters and checks."""

    template: Name | None = Field(None, description="a library template's name (see list_templates)")
    modality: Modality | None = None
    name: Name | None = Field(None, description="the name of a template made from this file's variants")
    title: Title | None = None
    values: Annotated[dict[Name, VariableValue], items("max_variables")] | None = Field(
        None, description="an object of variable name -> text or a list of texts")
    variants: Annotated[dict[Name, PromptText], items("max_variants", at_least=1)] | None = Field(
        None, description="an object of variant name -> prompt text")
    models: Annotated[list[ModelId], items("max_models", at_least=1)] | None = Field(
        None, description='a list of strings (model ids), e.g. ["tiny-text"]')
    seeds: Annotated[list[Seed], items("max_seeds", at_least=1)] | None = Field(
        None, description=f"a list of whole numbers from 0 to {MAX_SEED}, e.g. [1, 2, 3]")
    params: dict[Name, ParamValue] | None = Field(
        None, description="an object of option name -> number, true/false or text")
    system: PromptText | None = None
    negative_prompt: PromptText | None = None
    rerun: bool = False
    checks: Annotated[list[CheckDeclaration], items("max_checks")] | None = Field(
        None, description='a list of objects like {"type": "contains", "value": "x"}')

    @model_validator(mode="after")
    def _names_a_template(self) -> "ComparisonRequest":
        if self.template is None and (self.modality is None or self.variants is None):
            raise ValueError('give either "template" (a library name) or "modality" and "variants"')
        return self

    def resolve_template(self, library):
        """The library template it names, or one made from its own variants (a comparison file)."""
        from ..templates import make_template

        if self.template is not None:
            return library.get(self.template)
        defaults = {k: (v[0] if isinstance(v, list) else v) for k, v in (self.values or {}).items()}
        return make_template(name=self.name or "ad-hoc", modality=self.modality, variants=dict(self.variants),
                             variables=defaults, params=dict(self.params or {}), system=self.system,
                             negative_prompt=self.negative_prompt)

    def spec(self, template, settings, default_model: str, *, variants: bool | None = None, more_checks=()):
        """The grid this request asks for, on `template`. `variants`: whether the request's variants replace the
        template's (by default, when it names a library template)."""
        from ..spec import build_spec

        replace = self.template is not None if variants is None else variants
        return build_spec(template, values=dict(self.values) if self.values else None,
                          variants=dict(self.variants) if replace and self.variants else None,
                          models=list(self.models or [default_model]), seeds=list(self.seeds or [1]),
                          params=dict(self.params or {}), max_cells=settings.max_cells, rerun=self.rerun,
                          title=self.title or "", checks=list(self.checks or []) + list(more_checks))
