"""What a template is: its variables, variants and the cells it expands to, plus the library that holds them."""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..settings import defaults
from .errors import TemplateError
from .sandbox import MAX_VALUE_CHARS, check_value_sizes  # noqa: F401 (re-exported)
from .worker import render_source

MODALITIES = ("text", "image", "music")
LIBRARY_DIR = Path(__file__).resolve().parent.parent.parent / "prompts"
NAME_RULE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_VARIANTS = defaults().max_variants
DEFAULT_MAX_CHARS = 8000           # one rendered prompt


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    examples: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Template:
    name: str
    modality: str
    description: str
    techniques: tuple[str, ...]
    variables: dict[str, Variable]
    params: dict
    variants: dict[str, str]
    system: str | None = None
    negative_prompt: str | None = None
    notes: str = ""
    path: Path | None = None
    source: str = "library"          # library | user | adhoc
    text: str = ""
    checks: tuple[dict, ...] = ()    # [{type: contains, value: ...}]; which types exist is decided elsewhere

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def defaults(self) -> dict[str, str]:
        return {name: variable.default for name, variable in self.variables.items()}

    def render(self, variant: str, values: Mapping[str, str] | None = None,
               max_chars: int = DEFAULT_MAX_CHARS) -> str:
        """One variant rendered with these values (missing ones take their defaults)."""
        if variant not in self.variants:
            raise TemplateError(f"no variant {variant!r}; variants: {', '.join(self.variants)}", self.path)
        values = dict(values or {})
        self.check_values(values)
        merged = {**self.defaults(), **values}
        check_value_sizes(merged, self.path)
        return render_source(self.variants[variant], merged, max_chars=max_chars,
                             where=f"{self.name} / variant {variant!r}", path=self.path)

    def check_values(self, values: Mapping[str, object]) -> None:
        """A value for a variable the template does not declare is a mistake (a typo, another template's form)."""
        unknown = [name for name in values if name not in self.variables]
        if unknown:
            raise TemplateError(f"{self.name}: unknown variable {unknown[0]!r}; this template declares: "
                                f"{', '.join(self.variables) or 'none'}", self.path)


@dataclass(frozen=True)
class PromptCell:
    variant: str
    values: dict[str, str]
    prompt: str
    system: str | None
    negative_prompt: str | None
    row: int
    col: int

    @property
    def label(self) -> str:
        return " · ".join([self.variant] + [f"{k}={v}" for k, v in self.values.items()])


@dataclass
class LoadError:
    path: Path
    message: str


@dataclass
class Library:
    templates: dict[str, Template] = field(default_factory=dict)
    errors: list[LoadError] = field(default_factory=list)

    def get(self, name: str) -> Template:
        try:
            return self.templates[name]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(name), self.templates, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise TemplateError(f"no template named {str(name)[:100]!r}{hint}") from None

    def by_modality(self, modality: str) -> list[Template]:
        return [t for t in self.templates.values() if t.modality == modality]


def check_name(name: object, what: str = "name", path: Path | None = None) -> str:
    if not isinstance(name, str) or not NAME_RULE.match(name):
        shown = name[:80] if isinstance(name, str) else name
        raise TemplateError(f"{what} {shown!r} is not allowed: use 1-64 lowercase letters, digits, '-' or '_', "
                            "starting with a letter or digit (no paths)", path)
    return name
