"""The prompt-template library: Markdown files with YAML front matter, rendered in a Jinja2 sandbox.

A template names a technique and carries 1-8 variants of a prompt that differ in exactly that technique, plus the
variables they share. `expand` turns variants x variable values into grid cells that remember what made them.
No gradio and no model library here.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import jinja2
import jinja2.meta
import yaml
from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.utils import _PassArg
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
RESERVED_NAMES = {"range", "loop", "self", "caller", "varargs", "kwargs", "true", "false", "none", "True",
                  "False", "None"}
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

    def render(self, variant: str, values: Mapping[str, str] | None = None,
               max_chars: int = DEFAULT_MAX_CHARS) -> str:
        """One variant rendered with these values (missing ones take their defaults)."""
        if variant not in self.variants:
            raise TemplateError(f"no variant {variant!r}; variants: {', '.join(self.variants)}", self.path)
        values = dict(values or {})
        self.check_values(values)
        return render_source(self.variants[variant], {**self.defaults(), **values}, max_chars=max_chars,
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
        except KeyError:
            import difflib

            close = difflib.get_close_matches(str(name), self.templates, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise TemplateError(f"no template named {name!r}{hint}") from None

    def by_modality(self, modality: str) -> list[Template]:
        return [t for t in self.templates.values() if t.modality == modality]


# ---- rendering --------------------------------------------------------------------------------------------------
#
# The sandbox blocks attribute tricks (underscores, str.format, |attr, |format). On top of it every render gets a
# budget: loop iterations and calls count as steps, and the strings and lists the template builds are charged against
# a character budget (before they are made, for the operations that can multiply their input: *, ~, +, %, join,
# replace, indent, expandtabs), so no template can spin the CPU or fill memory, whatever its values.

MAX_STEPS = 100_000                # loop iterations + calls in one render
MAX_WORK_CHARS = 2_000_000         # characters (and list items) built in one render
MAX_INT_ARG = 100_000              # any integer handed to a filter or a method
MAX_INT_BITS = 4096                # integers a template computes with * and **
_WIDTH_RE = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


class _Budget:
    __slots__ = ("steps", "chars")

    def __init__(self):
        self.steps = 0
        self.chars = 0

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise SecurityError(f"the template takes more than {MAX_STEPS} loop steps and calls; simplify it")

    def charge(self, n: int) -> None:
        self.chars += n
        if n > MAX_WORK_CHARS or self.chars > MAX_WORK_CHARS:
            raise SecurityError(f"the template builds more than {MAX_WORK_CHARS} characters of text")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


def _budget() -> _Budget:
    return _BUDGET.get() or _Budget()          # outside a render (constant folding): a fresh one per operation


def _size(obj, limit: int = MAX_WORK_CHARS) -> int:
    """Roughly how many characters str(obj) takes; stops counting once past the limit."""
    total, stack = 0, [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, (list, tuple, set, frozenset, dict)):
            total += 2 + 2 * len(item)
            if total > limit:
                return total
            stack.extend(item.items() if isinstance(item, dict) else item)
        else:
            total += 8
        if total > limit:
            return total
    return total


def _check_ints(values) -> None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT_ARG:
            raise SecurityError(f"the number {value} is too large here; at most {MAX_INT_ARG}")


def _join_size(items, sep) -> int:
    items = list(items)
    return sum(_size(i) for i in items) + _size(sep) * max(len(items) - 1, 0)


def _estimate(name: str, value, params: tuple, kwargs: dict) -> int:
    """Output size of the calls that can multiply their input; 0 when the result is checked afterwards."""
    if name == "replace" and isinstance(value, str) and len(params) >= 2:
        old, new = str(params[0]), str(params[1])
        count = value.count(old) if old else len(value) + 1
        return len(value) + count * len(new)
    if name == "join":
        return _join_size(value, params[0] if params else kwargs.get("d", ""))
    if name == "indent" and isinstance(value, str):
        width = params[0] if params else kwargs.get("width", 4)
        width = width if isinstance(width, int) else len(str(width))
        return len(value) + (value.count("\n") + 1) * max(width, 0)
    if name == "expandtabs" and isinstance(value, str):
        tabsize = params[0] if params else kwargs.get("tabsize", 8)
        return len(value) + value.count("\t") * (tabsize if isinstance(tabsize, int) else 8)
    return 0


def _guard_filter(name: str, func):
    pass_arg = _PassArg.from_obj(func)

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        budget = _budget()
        budget.step()
        skip = 1 if pass_arg is not None else 0
        value, params = (args[skip] if len(args) > skip else None), args[skip + 1:]
        _check_ints([*params, *kwargs.values()])
        if _size(value) > MAX_WORK_CHARS:
            raise SecurityError(f"the input of |{name} is more than {MAX_WORK_CHARS} characters")
        if name == "join" and value is not None and not isinstance(value, (str, list, tuple)):
            value = list(value)
            args = (*args[:skip], value, *params)
        budget.charge(_estimate(name, value, params, kwargs))
        result = func(*args, **kwargs)
        if isinstance(result, (str, list, tuple, dict)):
            budget.charge(_size(result))
        return result

    return guarded


class _CodeGenerator(CodeGenerator):
    def visit_Concat(self, node, frame) -> None:           # the ~ operator: sized before it is joined
        self.write("environment.tilde_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    """No underscore attributes, no str.format, no huge ranges, repeats or powers; undefined names are errors;
    every render stays within a step and size budget."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def is_safe_attribute(self, obj, attr, value) -> bool:
        if attr.startswith("_") or attr in {"format", "format_map", "mro"}:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):              # every loop iteration is a step
            loop.iter = nodes.Filter(loop.iter, "steps_", [], [], None, None, lineno=loop.iter.lineno)
        return tree

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja's own signature)
        budget = _budget()
        budget.step()
        if __obj is not _safe_range:
            _check_ints([*args, *kwargs.values()])
        method = getattr(__obj, "__name__", "")
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            if method == "join":
                args = (list(args[0]),) + args[1:] if args else args
                budget.charge(_join_size(args[0] if args else (), owner))
            else:
                budget.charge(_estimate(method, owner, args, kwargs))
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, (str, list, tuple, dict)):
            budget.charge(_size(result))
        return result

    def call_binop(self, context, operator, left, right):
        budget = _budget()
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise SecurityError(f"power of {right}; at most 64")
        if operator in ("*", "**") and all(isinstance(v, int) for v in (left, right)):
            bits = left.bit_length() * abs(right) if operator == "**" else left.bit_length() + right.bit_length()
            if bits > MAX_INT_BITS:
                raise SecurityError(f"the number would have more than {MAX_INT_BITS} bits")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                    if len(sequence) * times > MAX_REPEAT:
                        raise SecurityError(f"repeating {len(sequence)} items {times} times; at most {MAX_REPEAT}")
                    budget.charge(_size(sequence) * max(times, 0))
        if operator == "+" and isinstance(left, (str, list, tuple)):
            budget.charge(_size(left) + _size(right))
        if operator == "%" and isinstance(left, str):
            for match in _WIDTH_RE.finditer(left):
                for number in match.groups():
                    if number == "*" or (number and int(number) > MAX_INT_ARG):
                        raise SecurityError(f"format width {number} in {match.group(0)!r} is not allowed")
            budget.charge(len(left) + _size(right))
        return super().call_binop(context, operator, left, right)

    def tilde_join(self, items) -> str:
        budget = _budget()
        budget.charge(sum(_size(item) for item in items))
        return "".join(map(str, items))


def _safe_range(*args):
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range of {len(rng)} items; at most {MAX_RANGE}")
    return rng


def _steps(iterable):
    budget = _budget()
    for item in iterable:
        budget.step()
        yield item


def _checked_concat(parts) -> str:
    parts = list(parts)
    _budget().charge(sum(len(p) for p in parts))
    return "".join(parts)


def _finalize(value):
    _budget().charge(_size(value))
    return value


_ENV = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
                finalize=_finalize)
_ENV.globals = {"range": _safe_range}
for _name in ("format", "attr", "random"):       # format strings, attribute lookups by name, nondeterminism
    _ENV.filters.pop(_name, None)
_ENV.filters = {name: _guard_filter(name, func) for name, func in _ENV.filters.items()}
_ENV.filters["steps_"] = _steps
_ENV.concat = _checked_concat


def _compile(source: str, where: str, path: Path | None = None) -> jinja2.Template:
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(f"{where}: the template is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}. "
                            "Shorten it", path)
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"{where}: syntax error on line {error.lineno}: {error.message}", path) from None
    except (RecursionError, MemoryError) as error:
        raise TemplateError(f"{where}: the template is nested too deeply ({type(error).__name__})", path) from None


def variables_used(source: str) -> set[str]:
    """The variables a template source reads (jinja2.meta), without the sandbox's own globals."""
    try:
        return jinja2.meta.find_undeclared_variables(_ENV.parse(source)) - set(_ENV.globals)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"syntax error on line {error.lineno}: {error.message}") from None
    except (RecursionError, MemoryError) as error:
        raise TemplateError(f"the template is nested too deeply ({type(error).__name__})") from None


def render_source(source: str, values: Mapping[str, str], *, max_chars: int = DEFAULT_MAX_CHARS,
                  where: str = "", path: Path | None = None) -> str:
    """Render one template string with plain string values; any failure is a TemplateError saying what to fix."""
    where = where or "template"
    template = _compile(source, where, path)
    token = _BUDGET.set(_Budget())
    try:
        parts, length = [], 0
        for part in template.generate({k: str(v) for k, v in values.items()}):
            parts.append(part)
            length += len(part)
            if length > max_chars:
                raise TemplateError(f"{where}: the rendered prompt is too long; the limit is {max_chars} characters. "
                                    "Shorten the template or the variable values", path)
        return "".join(parts)
    except jinja2.UndefinedError as error:
        raise TemplateError(f"{where}: {error.message}; give it a value or declare it under variables", path) \
            from None
    except SecurityError as error:
        raise TemplateError(f"{where}: refused by the sandbox: {error}", path) from None
    except jinja2.TemplateError as error:
        raise TemplateError(f"{where}: {error}", path) from None
    except (TypeError, ValueError, LookupError, AttributeError, ArithmeticError, RecursionError,
            MemoryError) as error:
        if isinstance(error, TemplateError):
            raise
        raise TemplateError(f"{where}: {type(error).__name__}: {error}", path) from None
    finally:
        _BUDGET.reset(token)


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
        if str(name) in RESERVED_NAMES:
            raise TemplateError(f"variable name {name!r} is reserved by the template language; pick another",
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
    for key, value in params.items():
        if not isinstance(key, str) or not isinstance(value, (str, int, float, bool)):
            raise TemplateError(f"params: {key!r} must name a parameter and have a number, true/false or text "
                                "as its value", path)
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
                    if other.source == "library" and source == "user":
                        raise TemplateError(f"{template.name!r} is the name of a library template ({other.path}); "
                                            "a user template may not shadow it. Rename this one", path)
                    raise TemplateError(f"duplicate name {template.name!r}: {other.path} already uses it. "
                                        "Rename one of them", path)
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
    template.check_values(values)
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
        system = render_source(template.system, row_values, max_chars=max_chars, where=f"{template.name} / system",
                               path=template.path) if template.system else None
        negative = render_source(template.negative_prompt, row_values, max_chars=max_chars,
                                 where=f"{template.name} / negative_prompt", path=template.path) if template.negative_prompt else None
        for col, (variant, body) in enumerate(variants.items()):
            prompt = render_source(body, row_values, max_chars=max_chars, where=f"{template.name} / variant {variant!r}",
                                   path=template.path)
            cells.append(PromptCell(variant, row_values, prompt, system, negative, row, col))
    return cells


# ---- user templates ---------------------------------------------------------------------------------------------

def save_user_template(t: Template, user_dir: Path, library: Library | None = None,
                       overwrite: bool = False) -> Path:
    """Write a template into the user's folder (never the repo's prompts/); refuses to shadow a library one."""
    name = check_name(t.name)
    if library is not None:
        taken = name in library.templates and library.templates[name].source == "library"
    else:
        taken = any(LIBRARY_DIR.glob(f"*/{name}.md")) or (LIBRARY_DIR / f"{name}.md").exists()
    if taken:
        raise TemplateError(f"{name!r} is a library template; save under another name")
    user_dir = Path(user_dir).resolve()
    if user_dir == LIBRARY_DIR or LIBRARY_DIR in user_dir.parents:
        raise TemplateError(f"user templates cannot be saved inside the library folder {LIBRARY_DIR}; "
                            "choose another folder")
    user_dir.mkdir(parents=True, exist_ok=True)
    path = (user_dir / f"{name}.md").resolve()
    if path.parent != user_dir:
        raise TemplateError(f"{name!r} would be written outside {user_dir}")
    if path.exists() and not overwrite:
        raise TemplateError(f"you already have a template named {name!r}; pick another name or overwrite it")
    text = template_to_text(t)
    parse_template(text)                        # never write a file the library cannot read back
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def import_template(text_or_path: str | os.PathLike, user_dir: Path, library: Library | None = None,
                    overwrite: bool = False) -> Template:
    """Validate a template (its file text, or a path to a .md file) and save it as a user template."""
    origin = None
    if isinstance(text_or_path, os.PathLike):
        origin = Path(text_or_path)
        try:
            if origin.stat().st_size > MAX_FILE_BYTES:
                raise TemplateError(f"the file is larger than {MAX_FILE_BYTES} bytes", origin)
            text = origin.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise TemplateError("not UTF-8 text; save the file as UTF-8", origin) from None
        except OSError as error:
            raise TemplateError(f"cannot read: {error.strerror}", origin) from None
    else:
        text = str(text_or_path)
    template = parse_template(text, path=origin, source="user")
    path = save_user_template(template, user_dir, library, overwrite=overwrite)
    return replace(template, path=path, text=path.read_text(encoding="utf-8"))


def with_variant(template: Template, variant: str, source: str, name: str | None = None) -> Template:
    """A copy of a template with one more variant (or one variant replaced), ready for save_user_template.

    The copy gets `name` (it must differ from a library template's name when it is saved); variables the new
    variant uses and the template does not declare are added with an empty default."""
    check_name(variant, "variant name")
    variants = {**template.variants, variant: source}
    return make_template(name=name or template.name, modality=template.modality, variants=variants,
                         variables=template.variables, params=template.params, system=template.system,
                         negative_prompt=template.negative_prompt, description=template.description,
                         techniques=template.techniques, notes=template.notes)
