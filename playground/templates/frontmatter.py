"""Template files: YAML front matter (a strict subset of YAML with a schema of plain values) + Markdown notes.

YAML is parsed by a loader that refuses anchors and aliases (a few hundred bytes of nested aliases expand to
gigabytes), explicit tags, timestamps and deep nesting, before anything is built from it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import yaml
from yaml.composer import ComposerError

from .errors import TemplateError
from ..settings import defaults
from .model import MAX_VARIANTS, MODALITIES, Template, Variable, check_name
from .sandbox import compile_source, variables_used

MAX_FILE_BYTES = 200_000
MAX_YAML_DEPTH = 8                 # front matter needs 4 (variables -> name -> examples -> item)
MAX_CHECKS = defaults().max_checks       # a template's checks must fit in one comparison
MAX_EXAMPLES = 100
MAX_SCALAR_CHARS = 20_000
RESERVED_NAMES = {"range", "loop", "self", "caller", "varargs", "kwargs", "true", "false", "none", "True",
                  "False", "None"}
FRONT_KEYS = {"name", "modality", "description", "technique", "techniques", "variables", "params", "variants",
              "system", "negative_prompt", "checks"}
_PLAIN_TAGS = {f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "null", "seq", "map")}
_CHECK_KEY = re.compile(r"^[a-z_][a-z0-9_]{0,31}$")
_NO_ALIASES = "anchors (&name) and aliases (*name) are not allowed in templates; write each value out"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors, aliases, explicit tags, timestamps or deep nesting."""

    yaml_implicit_resolvers = {key: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith(":timestamp")]
                               for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise ComposerError(None, None, _NO_ALIASES, event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise ComposerError(None, None, _NO_ALIASES, event.start_mark)
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in _PLAIN_TAGS:
            raise ComposerError(None, None, f"the tag {tag!r} is not allowed in templates", event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise ComposerError(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str, path: Path | None = None):
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" on line {mark.line + 2}" if mark else ""
        raise TemplateError(f"front matter is not valid YAML{where}: {getattr(error, 'problem', error)}", path) \
            from None
    except (RecursionError, MemoryError) as error:
        raise TemplateError(f"front matter is nested too deeply ({type(error).__name__})", path) from None


def _split_front_matter(text: str, path: Path | None) -> tuple[dict, str]:
    match = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)(.*)$", text, re.S)
    if not match:
        raise TemplateError("no front matter: the file must start with a line '---', the YAML fields, then '---'",
                            path)
    data = load_yaml(match.group(1), path)
    if not isinstance(data, dict):
        raise TemplateError("front matter must be a mapping of fields (name:, modality:, variants:, ...)", path)
    return data, match.group(2)


def _scalar(value, what: str, path: Path | None, allow_none: bool = False) -> str | None:
    """A plain text-like value (text, a number, true/false) as text; anything else is refused."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (str, int, float)) or (value is None):
        raise TemplateError(f"{what} must be plain text, got {type(value).__name__}", path)
    text = str(value)
    if len(text) > MAX_SCALAR_CHARS:
        raise TemplateError(f"{what} is {len(text)} characters; at most {MAX_SCALAR_CHARS}", path)
    return text


def _text_field(data: dict, key: str, path: Path | None) -> str | None:
    value = data.get(key)
    if isinstance(value, bool):
        raise TemplateError(f"'{key}' must be text", path)
    return _scalar(value, f"'{key}'", path, allow_none=True)


def _variables(raw, path: Path | None) -> dict[str, Variable]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TemplateError("'variables' must be a mapping: name: {default: ..., examples: [...]}", path)
    variables = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", name):
            raise TemplateError(f"variable name {str(name)[:80]!r}: use letters, digits and '_', not starting with "
                                "a digit", path)
        if name in RESERVED_NAMES:
            raise TemplateError(f"variable name {name!r} is reserved by the template language; pick another",
                                path)
        if isinstance(spec, dict):
            unknown = set(spec) - {"default", "examples", "description"}
            if unknown:
                raise TemplateError(f"variable {name!r}: unknown keys {sorted(map(str, unknown))}; use default, "
                                    "examples, description", path)
            default, examples, description = spec.get("default", ""), spec.get("examples") or [], \
                spec.get("description") or ""
        else:
            default, examples, description = spec, [], ""
        if isinstance(default, (dict, list)) or not isinstance(examples, list):
            raise TemplateError(f"variable {name!r}: default must be text and examples a list", path)
        if len(examples) > MAX_EXAMPLES:
            raise TemplateError(f"variable {name!r}: {len(examples)} examples; at most {MAX_EXAMPLES}", path)
        default = _scalar(default, f"variable {name!r}: default", path, allow_none=True) or ""
        examples = tuple(_scalar(e, f"variable {name!r}: each example", path) for e in examples)
        description = _scalar(description, f"variable {name!r}: description", path)
        variables[name] = Variable(name, default, examples, description)
    return variables


def check_checks(raw, path: Path | None = None) -> tuple[dict, ...]:
    """`checks:` is a list of {type: word, other: plain value}; which types exist is decided by the scorer."""
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)):
        raise TemplateError("'checks' must be a list like [{type: contains, value: lantern}]", path)
    if len(raw) > MAX_CHECKS:
        raise TemplateError(f"{len(raw)} checks; at most {MAX_CHECKS}", path)
    checks = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            raise TemplateError(f"check {number} must be a mapping with a 'type', like {{type: clip}}", path)
        kind = item.get("type")
        if not isinstance(kind, str) or not _CHECK_KEY.match(kind):
            raise TemplateError(f"check {number}: 'type' must be a word such as contains or clip, got {kind!r}",
                                path)
        clean = {}
        for key, value in item.items():
            if not isinstance(key, str) or not _CHECK_KEY.match(key):
                raise TemplateError(f"check {number}: argument name {str(key)[:40]!r} is not allowed", path)
            if not isinstance(value, (str, int, float, bool)):
                raise TemplateError(f"check {number}: {key!r} must be a plain value (text, number, true/false)",
                                    path)
            if isinstance(value, str) and len(value) > MAX_SCALAR_CHARS:
                raise TemplateError(f"check {number}: {key!r} is longer than {MAX_SCALAR_CHARS} characters", path)
            clean[key] = value
        checks.append(clean)
    return tuple(checks)


def parse_template(text: str, path: Path | None = None, source: str = "library") -> Template:
    if not isinstance(text, str):
        raise TemplateError("a template must be text", path)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise TemplateError(f"the file is larger than {MAX_FILE_BYTES} bytes", path)
    data, notes = _split_front_matter(text, path)
    unknown = set(map(str, data)) - FRONT_KEYS
    if unknown:
        raise TemplateError(f"unknown fields {sorted(unknown)}; allowed: {sorted(FRONT_KEYS)}", path)
    name = check_name(data.get("name"), "name", path)
    modality = data.get("modality")
    if modality not in MODALITIES:
        raise TemplateError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}", path)
    techniques = data.get("technique", data.get("techniques", []))
    if isinstance(techniques, str):
        techniques = [techniques]
    if not isinstance(techniques, list) or not all(isinstance(t, str) and len(t) <= 64 for t in techniques):
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
        compile_source(body, where, path)
        missing = variables_used(body) - set(variables)
        if missing:
            raise TemplateError(f"{where} uses {', '.join(sorted(missing))}, which is not declared under "
                                f"variables (declared: {', '.join(variables) or 'none'})", path)
    return Template(name=name, modality=modality, description=_text_field(data, "description", path) or "",
                    techniques=tuple(techniques), variables=variables, params=dict(params),
                    variants=clean_variants, system=system, negative_prompt=negative, notes=notes.strip(),
                    path=path, source=source, text=text, checks=check_checks(data.get("checks"), path))


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
    if t.checks:
        front["checks"] = [dict(check) for check in t.checks]
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
                  techniques=(), notes: str = "", checks=()) -> Template:
    """A template typed by hand: undeclared variables used by the variants are declared with an empty default."""
    declared: dict[str, Variable] = {}
    for key, value in (variables or {}).items():
        declared[key] = value if isinstance(value, Variable) else Variable(key, "" if value is None else str(value))
    for body in [*variants.values(), system or "", negative_prompt or ""]:
        if not isinstance(body, str):
            raise TemplateError("every variant must be text")
        for used in sorted(variables_used(body)):
            declared.setdefault(used, Variable(used, ""))
    draft = Template(name=check_name(name), modality=modality, description=description,
                     techniques=tuple(techniques), variables=declared, params=dict(params or {}),
                     variants=dict(variants), system=system, negative_prompt=negative_prompt, notes=notes,
                     source="adhoc", checks=check_checks(checks or None))
    text = template_to_text(draft)
    return replace(parse_template(text, source="adhoc"), text=text)
