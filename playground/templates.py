"""The prompt-template library: Markdown files with YAML front matter, rendered in a Jinja2 sandbox.

A template names a technique and carries 1-8 variants of a prompt that differ in exactly that technique, plus the
variables they share. `expand` turns variants x variable values into grid cells that remember what made them.
No gradio and no model library here.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import jinja2
import jinja2.meta
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MODALITIES = ("text", "image", "music")
LIBRARY_DIR = Path(__file__).resolve().parent.parent / "prompts"
NAME_RULE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_VARIANTS = 8
MAX_SOURCE_CHARS = 20_000          # one variant's template text
MAX_FILE_BYTES = 200_000
MAX_RANGE = 10_000                 # range() inside a template
MAX_REPEAT = 100_000               # 'ab' * n inside a template
DEFAULT_MAX_CHARS = 8000           # one rendered prompt
FRONT_KEYS = {"name", "modality", "description", "technique", "techniques", "variables", "params", "variants",
              "system", "negative_prompt"}


class TemplateError(ValueError):
    """A template problem, with the file (when there is one) and what to fix."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


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

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def defaults(self) -> dict[str, str]:
        return {name: variable.default for name, variable in self.variables.items()}

    def render(self, variant: str, values: Mapping[str, str], max_chars: int = DEFAULT_MAX_CHARS) -> str:
        if variant not in self.variants:
            raise TemplateError(f"no variant {variant!r}; variants: {', '.join(self.variants)}", self.path)
        return render_source(self.variants[variant], {**self.defaults(), **values}, max_chars=max_chars,
                             where=f"{self.name} / {variant}")


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
        except KeyError:
            import difflib

            close = difflib.get_close_matches(str(name), self.templates, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise TemplateError(f"no template named {name!r}{hint}") from None

    def by_modality(self, modality: str) -> list[Template]:
        return [t for t in self.templates.values() if t.modality == modality]


# ---- rendering --------------------------------------------------------------------------------------------------

class _Sandbox(ImmutableSandboxedEnvironment):
    """No underscore attributes, no str.format, no huge ranges, repeats or powers; undefined names are errors."""

    intercepted_binops = frozenset({"*", "**"})

    def is_safe_attribute(self, obj, attr, value) -> bool:
        if attr.startswith("_") or attr in {"format", "format_map", "mro"}:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise SecurityError(f"power of {right}; at most 64")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(times, int) \
                        and len(sequence) * times > MAX_REPEAT:
                    raise SecurityError(f"repeating {len(sequence)} items {times} times; at most {MAX_REPEAT}")
        return super().call_binop(context, operator, left, right)


def _safe_range(*args):
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range of {len(rng)} items; at most {MAX_RANGE}")
    return rng


_ENV = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
_ENV.globals = {"range": _safe_range}
_ENV.filters.pop("format", None)
_ENV.filters.pop("attr", None)


def _compile(source: str, where: str, path: Path | None = None) -> jinja2.Template:
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(f"{where}: the template is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}",
                            path)
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"{where}: syntax error on line {error.lineno}: {error.message}", path) from None


def variables_used(source: str) -> set[str]:
    try:
        return jinja2.meta.find_undeclared_variables(_ENV.parse(source)) - set(_ENV.globals)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"syntax error on line {error.lineno}: {error.message}") from None


def render_source(source: str, values: Mapping[str, str], *, max_chars: int = DEFAULT_MAX_CHARS,
                  where: str = "", path: Path | None = None) -> str:
    """Render one template string with plain string values; any failure is a TemplateError saying what to fix."""
    where = where or "template"
    template = _compile(source, where, path)
    try:
        out = template.render({k: str(v) for k, v in values.items()})
    except jinja2.UndefinedError as error:
        raise TemplateError(f"{where}: {error.message}; give it a value or declare it under variables", path) \
            from None
    except SecurityError as error:
        raise TemplateError(f"{where}: refused by the sandbox: {error}", path) from None
    except jinja2.TemplateError as error:
        raise TemplateError(f"{where}: {error}", path) from None
    except (TypeError, ValueError, ArithmeticError, OverflowError, RecursionError, MemoryError) as error:
        raise TemplateError(f"{where}: {type(error).__name__}: {error}", path) from None
    if len(out) > max_chars:
        raise TemplateError(f"{where}: the rendered prompt is {len(out)} characters; the limit is {max_chars}. "
                            "Shorten the template or the variable values", path)
    return out


# ---- parsing ----------------------------------------------------------------------------------------------------

def check_name(name: object, what: str = "name", path: Path | None = None) -> str:
    if not isinstance(name, str) or not NAME_RULE.match(name):
        raise TemplateError(f"{what} {name!r} is not allowed: use 1-64 lowercase letters, digits, '-' or '_', "
                            "starting with a letter or digit (no paths)", path)
    return name


def _split_front_matter(text: str, path: Path | None) -> tuple[dict, str]:
    match = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)(.*)$", text, re.S)
    if not match:
        raise TemplateError("no front matter: the file must start with a line '---', the YAML fields, then '---'",
                            path)
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" on line {mark.line + 2}" if mark else ""
        raise TemplateError(f"front matter is not valid YAML{where}: {getattr(error, 'problem', error)}", path) \
            from None
    if not isinstance(data, dict):
        raise TemplateError("front matter must be a mapping of fields (name:, modality:, variants:, ...)", path)
    return data, match.group(2)


def _text_field(data: dict, key: str, path: Path | None, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise TemplateError(f"missing '{key}'", path)
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise TemplateError(f"'{key}' must be text", path)
    return str(value)


def _variables(raw, path: Path | None) -> dict[str, Variable]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TemplateError("'variables' must be a mapping: name: {default: ..., examples: [...]}", path)
    variables = {}
    for name, spec in raw.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", str(name)):
            raise TemplateError(f"variable name {name!r}: use letters, digits and '_', not starting with a digit",
                                path)
        if isinstance(spec, dict):
            unknown = set(spec) - {"default", "examples", "description"}
            if unknown:
                raise TemplateError(f"variable {name!r}: unknown keys {sorted(unknown)}; use default, examples, "
                                    "description", path)
            default, examples, description = spec.get("default", ""), spec.get("examples") or [], \
                spec.get("description") or ""
        else:
            default, examples, description = spec, [], ""
        if isinstance(default, (dict, list)) or not isinstance(examples, list):
            raise TemplateError(f"variable {name!r}: default must be text and examples a list", path)
        variables[str(name)] = Variable(str(name), "" if default is None else str(default),
                                        tuple(str(e) for e in examples), str(description))
    return variables


def parse_template(text: str, path: Path | None = None, source: str = "library") -> Template:
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise TemplateError(f"the file is larger than {MAX_FILE_BYTES} bytes", path)
    data, notes = _split_front_matter(text, path)
    unknown = set(data) - FRONT_KEYS
    if unknown:
        raise TemplateError(f"unknown fields {sorted(unknown)}; allowed: {sorted(FRONT_KEYS)}", path)
    name = check_name(data.get("name"), "name", path)
    modality = data.get("modality")
    if modality not in MODALITIES:
        raise TemplateError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}", path)
    techniques = data.get("technique", data.get("techniques", []))
    if isinstance(techniques, str):
        techniques = [techniques]
    if not isinstance(techniques, list) or not all(isinstance(t, str) for t in techniques):
        raise TemplateError("'technique' must be a word or a list of words", path)
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise TemplateError("'params' must be a mapping like {max_new_tokens: 60}", path)
    variants = data.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise TemplateError("'variants' must be a mapping of at least one variant name to its prompt", path)
    if len(variants) > MAX_VARIANTS:
        raise TemplateError(f"{len(variants)} variants; at most {MAX_VARIANTS}", path)
    clean_variants = {}
    for variant, body in variants.items():
        check_name(str(variant), "variant name", path)
        if not isinstance(body, str) or not body.strip():
            raise TemplateError(f"variant {variant!r} must be non-empty text", path)
        clean_variants[str(variant)] = body
    system = _text_field(data, "system", path)
    negative = _text_field(data, "negative_prompt", path)
    if system is not None and modality != "text":
        raise TemplateError("'system' is for text templates only", path)
    if negative is not None and modality != "image":
        raise TemplateError("'negative_prompt' is for image templates only", path)
    variables = _variables(data.get("variables"), path)
    sources = {f"variant {k!r}": v for k, v in clean_variants.items()}
    if system is not None:
        sources["system"] = system
    if negative is not None:
        sources["negative_prompt"] = negative
    for where, body in sources.items():
        _compile(body, where, path)
        missing = variables_used(body) - set(variables)
        if missing:
            raise TemplateError(f"{where} uses {', '.join(sorted(missing))}, which is not declared under "
                                f"variables (declared: {', '.join(variables) or 'none'})", path)
    return Template(name=name, modality=modality, description=_text_field(data, "description", path) or "",
                    techniques=tuple(techniques), variables=variables, params=dict(params),
                    variants=clean_variants, system=system, negative_prompt=negative, notes=notes.strip(),
                    path=path, source=source, text=text)


def template_to_text(t: Template) -> str:
    """The file form of a template (front matter + notes); parse_template(template_to_text(t)) equals t."""
    front = {"name": t.name, "modality": t.modality, "description": t.description,
             "technique": list(t.techniques),
             "variables": {n: _variable_yaml(v) for n, v in t.variables.items()},
             "params": dict(t.params)}
    if t.system is not None:
        front["system"] = t.system
    if t.negative_prompt is not None:
        front["negative_prompt"] = t.negative_prompt
    front["variants"] = dict(t.variants)
    body = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=120)
    return f"---\n{body}---\n{t.notes.strip()}\n" if t.notes.strip() else f"---\n{body}---\n"


def _variable_yaml(v: Variable) -> dict:
    out: dict = {"default": v.default}
    if v.examples:
        out["examples"] = list(v.examples)
    if v.description:
        out["description"] = v.description
    return out


def make_template(name: str, modality: str, variants: Mapping[str, str],
                  variables: Mapping[str, str | Variable] | None = None, params: dict | None = None,
                  system: str | None = None, negative_prompt: str | None = None, description: str = "",
                  techniques=(), notes: str = "") -> Template:
    """A template typed by hand: undeclared variables used by the variants are declared with an empty default."""
    declared: dict[str, Variable] = {}
    for key, value in (variables or {}).items():
        declared[key] = value if isinstance(value, Variable) else Variable(key, "" if value is None else str(value))
    for body in [*variants.values(), system or "", negative_prompt or ""]:
        for used in sorted(variables_used(body)):
            declared.setdefault(used, Variable(used, ""))
    draft = Template(name=check_name(name), modality=modality, description=description,
                     techniques=tuple(techniques), variables=declared, params=dict(params or {}),
                     variants=dict(variants), system=system, negative_prompt=negative_prompt, notes=notes,
                     source="adhoc")
    text = template_to_text(draft)
    return replace(parse_template(text, source="adhoc"), text=text)


# ---- the library ------------------------------------------------------------------------------------------------

def _load_file(path: Path, source: str) -> Template:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise TemplateError(f"cannot read: {error.strerror}", path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TemplateError(f"not UTF-8 text (byte {error.start}); save the file as UTF-8", path) from None
    template = parse_template(text, path=path, source=source)
    if template.name != path.stem:
        raise TemplateError(f"the name {template.name!r} must match the file name {path.stem!r}", path)
    return template


def load_library(library_dir: Path = LIBRARY_DIR, user_dir: Path | None = None) -> Library:
    """Every template under library_dir (then user_dir); each broken file is listed, the rest still load."""
    library = Library()
    sources = [(Path(library_dir), "library")] + ([(Path(user_dir), "user")] if user_dir else [])
    for folder, source in sources:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.md")):
            if path.name.lower() == "readme.md":
                continue
            try:
                template = _load_file(path, source)
                if template.name in library.templates:
                    other = library.templates[template.name]
                    raise TemplateError(f"duplicate name {template.name!r}: {other.path} already uses it", path)
                library.templates[template.name] = template
            except TemplateError as error:
                library.errors.append(LoadError(path, error.message))
    return library


# ---- expansion --------------------------------------------------------------------------------------------------

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
    values = dict(values or {})
    unknown = set(values) - set(template.variables)
    if unknown:
        raise TemplateError(f"unknown variable {sorted(unknown)[0]!r}; this template declares: "
                            f"{', '.join(template.variables) or 'none'}", template.path)
    lists = {name: _options(values.get(name), variable.default) for name, variable in template.variables.items()}
    rows = 1
    for options in lists.values():
        rows *= len(options)
    total = rows * len(variants)
    if total > max_cells:
        raise TemplateError(f"{len(variants)} variants x {rows} value combinations = {total} cells; the limit is "
                            f"{max_cells}. Use fewer values or variants", template.path)
    cells = []
    names = list(lists)
    for row, combo in enumerate(itertools.product(*(lists[n] for n in names))):
        row_values = dict(zip(names, combo))
        system = render_source(template.system, row_values, max_chars=max_chars, where="system",
                               path=template.path) if template.system else None
        negative = render_source(template.negative_prompt, row_values, max_chars=max_chars,
                                 where="negative_prompt", path=template.path) if template.negative_prompt else None
        for col, (variant, body) in enumerate(variants.items()):
            prompt = render_source(body, row_values, max_chars=max_chars, where=f"variant {variant!r}",
                                   path=template.path)
            cells.append(PromptCell(variant, row_values, prompt, system, negative, row, col))
    return cells


# ---- user templates ---------------------------------------------------------------------------------------------

def save_user_template(t: Template, user_dir: Path, library: Library | None = None,
                       overwrite: bool = False) -> Path:
    """Write a template into the user's folder (never the repo's prompts/); refuses to shadow a library one."""
    name = check_name(t.name)
    if library is not None and name in library.templates and library.templates[name].source == "library":
        raise TemplateError(f"{name!r} is a library template; save under another name")
    user_dir = Path(user_dir)
    user_dir.mkdir(parents=True, exist_ok=True)
    path = (user_dir / f"{name}.md").resolve()
    if path.parent != user_dir.resolve():
        raise TemplateError(f"{name!r} would be written outside {user_dir}")
    if path.exists() and not overwrite:
        raise TemplateError(f"you already have a template named {name!r}; pick another name or overwrite it")
    text = template_to_text(t)
    parse_template(text)                        # never write a file the library cannot read back
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def import_template(text_or_path: str | Path, user_dir: Path, library: Library | None = None,
                    overwrite: bool = False) -> Template:
    if isinstance(text_or_path, Path):
        try:
            text = text_or_path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise TemplateError("not UTF-8 text; save the file as UTF-8", text_or_path) from None
        except OSError as error:
            raise TemplateError(f"cannot read: {error.strerror}", text_or_path) from None
    else:
        text = text_or_path
    template = parse_template(text, source="user")
    path = save_user_template(template, user_dir, library, overwrite=overwrite)
    return replace(template, path=path, text=path.read_text(encoding="utf-8"))
