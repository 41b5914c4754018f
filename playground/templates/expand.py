"""Expansion: variants x variable values -> grid cells that remember what made them."""

from __future__ import annotations

import itertools
import json
import time
from typing import Mapping

from .errors import TemplateError
from .model import DEFAULT_MAX_CHARS, MAX_VARIANTS, PromptCell, Template, check_value_sizes
from .sandbox import MAX_SOURCE_CHARS, RENDER_SECONDS
from .worker import render_source

EXPAND_SECONDS = 5.0               # all the renders of one grid together
MAX_VALUES_INPUT_CHARS = 200_000   # everything typed for one variable (its list of values)


def parse_values(raw: str | list | tuple | None) -> list[str]:
    """Bulk entry: a JSON list of strings, or one value per line (blank lines ignored)."""
    if raw is None:
        return []
    if isinstance(raw, (list, tuple)):
        return [str(v) for v in raw]
    text = str(raw)
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list):
            return [v if isinstance(v, str) else json.dumps(v) for v in data]
    return [line for line in (part.strip() for part in text.splitlines()) if line]


def _options(given, default: str) -> list[str]:
    """A variable's values: a single value is kept verbatim; a list, JSON list or multi-line text is split.
    Blank values fall back to the variable's default."""
    size = len(given) if isinstance(given, str) else sum(len(str(v)) for v in given) if isinstance(
        given, (list, tuple)) else len(str(given or ""))
    if size > MAX_VALUES_INPUT_CHARS:
        raise TemplateError(f"the values given are {size} characters; at most {MAX_VALUES_INPUT_CHARS}")
    if isinstance(given, str) and "\n" not in given and not given.lstrip().startswith("["):
        options = [given]
    else:
        options = parse_values(given)
    return [v for v in options if v.strip()] or [default]


def expand(template: Template, values: Mapping[str, str | list[str]] | None = None,
           variants: Mapping[str, str] | None = None, max_cells: int = 64,
           max_chars: int = DEFAULT_MAX_CHARS) -> list[PromptCell]:
    """Variants x value combinations -> cells; rows are value combinations, columns the variants."""
    variants = dict(variants) if variants is not None else dict(template.variants)
    if not variants:
        raise TemplateError("no variants to run; add at least one", template.path)
    if len(variants) > MAX_VARIANTS:
        raise TemplateError(f"{len(variants)} variants; at most {MAX_VARIANTS}", template.path)
    for variant, body in variants.items():
        if not isinstance(variant, str) or not isinstance(body, str) or not 0 < len(variant) <= 64:
            raise TemplateError("each variant needs a name of 1-64 characters and its prompt as text", template.path)
        if len(body) > MAX_SOURCE_CHARS:
            raise TemplateError(f"variant {variant!r} is {len(body)} characters; the limit is {MAX_SOURCE_CHARS}",
                                template.path)
    values = dict(values or {})
    template.check_values(values)
    lists = {}
    for name, variable in template.variables.items():
        given = values.get(name)
        if isinstance(given, (list, tuple)) and len(given) > max_cells:
            raise TemplateError(f"{len(given)} values for {name!r}; a grid holds at most {max_cells} cells",
                                template.path)
        try:
            lists[name] = _options(given, variable.default)
        except TemplateError as error:
            raise TemplateError(f"{name!r}: {error.message}", template.path) from None
        check_value_sizes({name: max(lists[name], key=len)}, template.path)
    rows = 1
    for options in lists.values():
        rows *= len(options)
    total = rows * len(variants)
    if total > max_cells:
        raise TemplateError(f"{len(variants)} variants x {rows} value combinations = {total} cells; the limit is "
                            f"{max_cells}. Use fewer values or variants", template.path)
    cells = []
    names = list(lists)
    deadline = time.monotonic() + EXPAND_SECONDS

    def render(body: str, row_values: dict, where: str) -> str:
        return render_source(body, row_values, max_chars=max_chars, where=f"{template.name} / {where}",
                             path=template.path, seconds=min(RENDER_SECONDS, deadline - time.monotonic()))

    for row, combo in enumerate(itertools.product(*(lists[n] for n in names))):
        row_values = dict(zip(names, combo))
        system = render(template.system, row_values, "system") if template.system is not None else None
        negative = render(template.negative_prompt, row_values, "negative_prompt") \
            if template.negative_prompt else None
        for col, (variant, body) in enumerate(variants.items()):
            prompt = render(body, row_values, f"variant {variant!r}")
            cells.append(PromptCell(variant, row_values, prompt, system, negative, row, col))
    return cells


