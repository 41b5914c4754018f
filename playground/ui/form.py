"""The comparison form as data: seeds typed by a person, variant names, variables found in edited variants, the
edited template, and the form remembered in the browser so a reload shows what produced the results."""

from __future__ import annotations

import re

from ..requests import InvalidInput
from ..templates import Template, TemplateError, Variable, make_template, variables_used, with_changes


def parse_seeds(raw: str) -> list:
    """Seeds as a person types them ("1, 2 3"): whole numbers become numbers, anything else stays as typed, so the
    request layer refuses it by name and range like any other seed."""
    return [int(part) if re.fullmatch(r"[+-]?\d{1,30}", part) else part
            for part in re.split(r"[\s,;]+", str(raw or "")) if part]


def fresh_name(base: str, taken: list[str]) -> str:
    """A name for a duplicate: `role` -> `role-2`; duplicating `role-2` gives `role-3`, not `role-2-2`."""
    stem = re.sub(r"-\d+$", "", base) or base
    for n in range(2, 1000):
        candidate = f"{stem}-{n}"
        if candidate not in taken:
            return candidate
    return f"{stem}-{len(taken) + 1}"


def used_variables(texts) -> list[str]:
    """Variables the given variant texts read, in order of first use; text with a syntax error adds none."""
    found: list[str] = []
    for text in texts:
        if not text:
            continue
        try:
            names = variables_used(text)
        except TemplateError:
            continue
        position = {name: text.find(name) for name in names}
        found += [n for n in sorted(names, key=lambda n: position[n]) if n not in found]
    return found


def form_variables(template_vars: list[str], texts, limit: int) -> list[str]:
    """The variable boxes to show: the template's own, then any new `{{ name }}` typed into a variant."""
    names = list(template_vars)
    names += [n for n in used_variables(texts) if n not in names]
    return names[:limit]


def blank_values(base: Template | None, names: list[str], raw_values: list, texts) -> tuple[list[str], list[str]]:
    """(warnings, errors) for variables left blank: a blank with a default says it uses the default; a blank that
    a variant reads and that has no default is an error."""
    used = set(used_variables(texts))
    warnings, errors = [], []
    for name, raw in zip(names, raw_values):
        if (raw or "").strip() or name not in used:
            continue
        default = base.variables[name].default if base is not None and name in base.variables else ""
        if default:
            warnings.append(f"{name} is blank: using its default {default!r}")
        else:
            errors.append(name)
    return warnings, errors


def edited_template(base: Template | None, modality: str, variants: dict, names: list[str],
                    extras: dict) -> Template:
    """The template exactly as run: the library one when untouched, else an edited copy with its own hash."""
    changes = {"variants": variants, **{k: (v or None) for k, v in extras.items()}}
    if base is not None and all(getattr(base, k) == v for k, v in changes.items()):
        return base
    variables = {n: (base.variables[n] if base is not None and n in base.variables else Variable(n, ""))
                 for n in names}
    if base is None:
        return make_template(name="ad-hoc", modality=modality, variables=variables, **changes)
    return with_changes(base, variables=variables, **changes)


def remembered_form(template: str | None, names: list[str], raw_values: list, variants: list[tuple[str, str]],
                    models: list[str], seeds: str, extras: dict, checks: str | None = None) -> dict:
    """What the browser keeps of the form (plain JSON): the checks too, they are part of the comparison."""
    return {"template": template, "variables": [[n, v or ""] for n, v in zip(names, raw_values)],
            "variants": [[n or "", t or ""] for n, t in variants], "models": list(models or []),
            "seeds": str(seeds or ""), "extras": {k: v or "" for k, v in extras.items()}, "checks": str(checks or "")}


def named_variants(pairs) -> dict[str, str]:
    """(name, prompt) pairs as typed -> variants; a blank name becomes variant-N, two alike are refused."""
    variants: dict[str, str] = {}
    for index, (name, text) in enumerate(pairs):
        name = (name or "").strip() or f"variant-{index + 1}"
        if name in variants:
            raise InvalidInput("variants", f"two variants are named {name!r}; give each a different name")
        variants[name] = text or ""
    if not variants:
        raise InvalidInput("variants", "add at least one variant")
    return variants
