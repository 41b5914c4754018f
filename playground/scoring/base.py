"""The check interface, its registry, and how checks are declared (template front matter, API, `--check`).

A check is a small class: the modalities it applies to, its arguments with their types, whether it needs a model,
and which way is better. `make_checks([{type: contains, value: "x"}, {type: clip}], modality)` turns declarations
into instances (every argument checked, with an error that says what to change); `Check.score` turns one cell
into a Score. Loaded scorer models live in a ScorerContext (one per app), never in module globals.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..registry import MODALITIES
from ..requests import RequestError
from ..requests.checks import CheckArgs, check_declaration, describe_arguments, takes_text
from ..settings import defaults
from ..store.scores import Score

ALL = tuple(MODALITIES)              # every modality (registry.MODALITIES)


class CheckError(ValueError):
    """A check declaration the server refuses; the message names the check and what is allowed."""


@dataclass
class CellInput:
    """What a check looks at: the cell's prompt and record, and its output as text, an image or a waveform."""

    modality: str
    prompt: str
    record: Any = None                    # the RunRecord (metrics such as wall_s come from here)
    text: str | None = None
    image: Any = None                     # PIL.Image.Image
    audio: tuple[int, Any] | None = None  # (sample_rate, float32 numpy array, mono or (channels, samples))
    reference: str | None = None          # the row's reference answer (an experiment's `expected` column)
    reference_file: Path | None = None    # or the row's reference image or audio clip (a file in the data dir)


@dataclass
class ScorerContext:
    """What scorers need from the app: where tiny scorer models live, whether the hub is reachable, the device,
    and the text engine an LLM judge talks to. Loaded scorer models are cached here (loaded once per context).

    `generate(prompt) -> text` is the default judge; `generate_for(model_id)` (optional) returns one for a
    judge check that names its own model."""

    models_dir: Path
    offline: bool = True
    device: str = "cpu"
    generate: Callable[[str], str] | None = None
    generate_for: Callable[[str], Callable[[str], str]] | None = None
    model_roots: tuple | None = None       # where local scorer models may come from (None: anywhere; local use)
    _models: dict = field(default_factory=dict, repr=False)
    _memo: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    memo_size: int = 512

    @classmethod
    def from_settings(cls, settings, **kwargs) -> "ScorerContext":
        return cls(models_dir=settings.models_dir, offline=settings.offline, device=settings.device or "cpu",
                   model_roots=settings.local_model_roots(), **kwargs)

    def cached(self, key: tuple, load: Callable[[], Any]) -> Any:
        """The loaded model under `key`, loading it on first use (one load even when threads race)."""
        with self._lock:
            if key not in self._models:
                self._models[key] = load()
            return self._models[key]

    def remember(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """A small LRU of computed values (e.g. a prompt's text embedding, shared by every seed of a variant)."""
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        value = compute()
        with self._lock:
            self._memo[key] = value
            while len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        return value

    def judge(self, model_id: str | None) -> Callable[[str], str]:
        if model_id and self.generate_for is not None:
            return self.generate_for(model_id)
        if self.generate is None:
            raise CheckError("check 'llm_judge' needs a text engine to act as judge; none is set up here "
                             "(pick a judge model, or remove the check)")
        return self.generate


class Check:
    """One registered kind of check. Subclasses set the class attributes and implement `score`."""

    type: ClassVar[str]
    modalities: ClassVar[tuple[str, ...]] = ALL
    Args: ClassVar[type[CheckArgs]] = CheckArgs   # its arguments; their validators hold the check's own rules
    needs_model: ClassVar[bool] = False
    runs_torch: ClassVar[bool] = False           # scores with a local torch model: on the compute thread
    better: ClassVar[str | None] = "higher"      # which way a larger value goes; None: neither (a measurement)
    main_arg: ClassVar[str | None] = None         # the argument `--check type=VALUE` sets
    description: ClassVar[str] = ""
    # Arguments that may be left out when each row brings its own reference answer (a dataset column), each with
    # a stand-in its validators accept; the check then reads the row's reference (see `argument`).
    from_reference: ClassVar[dict[str, Any]] = {}
    # A check that only compares with each row's reference file: what the file must be ("image" or "audio").
    needs_reference: ClassVar[str | None] = None

    def __init__(self, name: str, options: dict):
        self.name = name
        self.options = options

    def score(self, cell: CellInput, context: ScorerContext) -> Score:
        raise NotImplementedError

    def argument(self, name: str, cell: CellInput):
        """An argument's value, or the row's reference when the declaration left it out; None when neither."""
        value = self.options.get(name)
        return cell.reference if value is None else value

    def make(self, value: float | None, passed: bool | None = None, **detail) -> Score:
        """A Score named after this check, its detail saying which check made it and which way is better."""
        better = detail.pop("better", self.better)
        return Score(name=self.name, value=None if value is None else float(value), passed=passed,
                     detail={"check": self.type, "better": better, **detail})

    @classmethod
    def describe(cls) -> dict:
        """For the UI and the API: what this check is and what it takes."""
        return {"type": cls.type, "modalities": list(cls.modalities), "needs_model": cls.needs_model,
                "needs_reference": cls.needs_reference,
                "better": cls.better, "description": cls.description,
                "args": describe_arguments(cls.Args)}


REGISTRY: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    if REGISTRY.get(cls.type, cls) is not cls:
        raise ValueError(f"check type {cls.type!r} is registered already")
    REGISTRY[cls.type] = cls
    return cls


def registry() -> dict[str, type[Check]]:
    """Every check type: the built-in ones and the installed plugins' (playground.plugins)."""
    from ..plugins import load_checks

    load_checks()
    return REGISTRY


def make_check(spec: dict | str, settings=None, has_reference: bool = False) -> Check:
    """One declaration (`{type: contains, value: "x", name: optional}` or a `--check` string) -> a Check.
    With `has_reference` (each row brings a reference answer), an argument in the check's `from_reference` may be
    left out: the check reads the row's reference instead."""
    if isinstance(spec, str):
        spec = parse_check_arg(spec)
    if not isinstance(spec, dict):
        raise CheckError(f"a check is an object like {{type: contains, value: \"x\"}}, got {spec!r}")
    known = registry()
    kind = spec.get("type")
    if kind not in known:
        raise CheckError(f"unknown check type {kind!r}; known: {', '.join(sorted(known))}")
    cls = known[kind]
    missing = [arg for arg in cls.from_reference if spec.get(arg) is None] if has_reference else []
    try:
        name, options = check_declaration(kind, cls.Args, {**spec, **{a: cls.from_reference[a] for a in missing}},
                                          settings)
    except RequestError as error:
        raise CheckError(f"check {kind!r}, {error}") from None
    options.update({arg: None for arg in missing})
    if name is None:
        main = options.get(cls.main_arg) if cls.main_arg else None
        name = kind if main is None else f"{kind}={_short(main)}"
    return cls(name, options)


def make_checks(specs, modality: str | None = None, settings=None, has_reference: bool = False) -> list[Check]:
    """Declarations -> checks. With `modality`, a check that cannot apply to it is refused; names must differ.
    At most `max_checks` of the settings (every check runs on every cell)."""
    if specs is None:
        return []
    if isinstance(specs, (dict, str)):
        specs = [specs]
    specs = list(specs)
    limit = (settings or defaults()).max_checks
    if len(specs) > limit:
        raise CheckError(f"{len(specs)} checks; the limit is {limit} per comparison")
    checks = [spec if isinstance(spec, Check) else make_check(spec, settings, has_reference) for spec in specs]
    seen: set[str] = set()
    for check in checks:
        if modality is not None and modality not in check.modalities:
            raise CheckError(f"check {check.type!r} applies to {', '.join(check.modalities)} outputs, "
                             f"not {modality}")
        if check.name in seen:
            raise CheckError(f"two checks are named {check.name!r}; give one a name of its own, e.g. "
                             f"{_renamed(check)} (in a template's checks: name: {check.type}-2)")
        seen.add(check.name)
    return checks


def _renamed(check: Check) -> str:
    """`check` written again under a name of its own, as a --check line (the Checks box takes the same), or as
    JSON where a value holds a comma (the line form splits arguments on commas)."""
    defaults = {name: field.default for name, field in check.Args.model_fields.items()}
    changed = {k: v for k, v in check.options.items() if v is not None and v != defaults.get(k)}
    named = {"type": check.type, **changed, "name": f"{check.type}-2"}
    if any("," in json.dumps(v) for v in changed.values()):
        return json.dumps(named, ensure_ascii=False)
    arguments = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in named.items() if k != "type"]
    return f"{check.type}:{','.join(arguments)}"


def parse_check_args(values: list[str] | None, modality: str | None = None,
                     has_reference: bool = False) -> list[dict]:
    """`--check` strings -> check declarations, each validated (against `modality` when given).
    Raises CheckError with a message that says what to change."""
    specs = [parse_check_arg(value) for value in values or []]
    make_checks(specs, modality, has_reference=has_reference)
    return specs


def parse_check_arg(text: str) -> dict:
    """`--check` text -> a declaration: `clip`, `contains=lantern` (the check's main argument),
    `length:unit=words,max=50` (named arguments; values may be JSON), or a JSON object."""
    text = (text or "").strip()
    if not text:
        raise CheckError("an empty --check; write e.g. --check clip or --check contains=lantern")
    if text.startswith("{"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as error:
            raise CheckError(f"--check {text!r}: not valid JSON ({error.msg})") from None
        if not isinstance(spec, dict):
            raise CheckError(f"--check {text!r}: a JSON check is an object")
        return spec
    equals, colon = text.find("="), text.find(":")
    if equals == -1 and colon == -1:
        return {"type": text}
    if colon == -1 or (equals != -1 and equals < colon):
        kind, value = text[:equals].strip(), text[equals + 1:]
        cls = registry().get(kind)
        if cls is None:
            raise CheckError(f"unknown check type {kind!r}; known: {', '.join(sorted(registry()))}")
        if cls.main_arg is None:
            raise CheckError(f"check {kind!r} takes named arguments: write {kind}:name=value,name=value")
        return {"type": kind, cls.main_arg: value}
    kind, spec = text[:colon].strip(), {"type": text[:colon].strip()}
    cls = registry().get(kind)
    for part in text[colon + 1:].split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CheckError(f"--check {text!r}: write arguments as name=value, separated by commas")
        spec[name] = value if cls is None or takes_text(cls.Args, name) else _json_or_text(value)
    return spec


def _json_or_text(value: str) -> Any:
    """A typed value: JSON (5, true, 1e3), else the text as typed; the argument's model says whether it fits."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
