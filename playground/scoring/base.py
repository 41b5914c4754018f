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
from ..store.scores import Score

ALL = tuple(MODALITIES)              # every modality (registry.MODALITIES)
MAX_CHECKS = 20                   # per comparison: every check runs on every cell


class CheckError(ValueError):
    """A check declaration the server refuses; the message names the check and what is allowed."""


@dataclass(frozen=True)
class Arg:
    """One argument of a check: its type (str, int, float, bool, dict), default, and allowed choices."""

    name: str
    kind: type
    default: Any = None
    required: bool = False
    help: str = ""
    choices: tuple | None = None

    def coerce(self, check: str, value: Any) -> Any:
        where = f"check {check!r}, argument {self.name!r}"
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
                return value.lower() in {"true", "yes", "1"}
            raise CheckError(f"{where}: must be true or false, got {value!r}")
        if self.kind in (int, float):
            if isinstance(value, bool):
                raise CheckError(f"{where}: must be a number, got {value!r}")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise CheckError(f"{where}: must be a number, got {value!r}") from None
            if self.kind is int:
                if number != int(number):
                    raise CheckError(f"{where}: must be a whole number, got {value!r}")
                number = int(number)
            value = number
        elif self.kind is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise CheckError(f"{where}: must be text, got {value!r}")
            value = str(value)
            if len(value) > 20_000:
                raise CheckError(f"{where}: is {len(value)} characters; the limit is 20,000")
        elif self.kind is dict:
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as error:
                    raise CheckError(f"{where}: not valid JSON ({error.msg})") from None
            if not isinstance(value, dict):
                raise CheckError(f"{where}: must be an object, got {type(value).__name__}")
        if self.choices is not None and value not in self.choices:
            raise CheckError(f"{where}: must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        return value


@dataclass
class CellInput:
    """What a check looks at: the cell's prompt and record, and its output as text, an image or a waveform."""

    modality: str
    prompt: str
    record: Any = None                    # the RunRecord (metrics such as wall_s come from here)
    text: str | None = None
    image: Any = None                     # PIL.Image.Image
    audio: tuple[int, Any] | None = None  # (sample_rate, float32 numpy array, mono or (channels, samples))


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
    _models: dict = field(default_factory=dict, repr=False)
    _memo: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    memo_size: int = 512

    @classmethod
    def from_settings(cls, settings, **kwargs) -> "ScorerContext":
        return cls(models_dir=settings.models_dir, offline=settings.offline, device=settings.device or "cpu",
                   **kwargs)

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
    args: ClassVar[tuple[Arg, ...]] = ()
    needs_model: ClassVar[bool] = False
    runs_torch: ClassVar[bool] = False           # scores with a local torch model: on the compute thread
    better: ClassVar[str | None] = "higher"      # which way a larger value goes; None: neither (a measurement)
    main_arg: ClassVar[str | None] = None         # the argument `--check type=VALUE` sets
    description: ClassVar[str] = ""

    def __init__(self, name: str, options: dict):
        self.name = name
        self.options = options

    def score(self, cell: CellInput, context: ScorerContext) -> Score:
        raise NotImplementedError

    def make(self, value: float | None, passed: bool | None = None, **detail) -> Score:
        """A Score named after this check, its detail saying which check made it and which way is better."""
        better = detail.pop("better", self.better)
        return Score(name=self.name, value=None if value is None else float(value), passed=passed,
                     detail={"check": self.type, "better": better, **detail})

    @classmethod
    def describe(cls) -> dict:
        """For the UI and the API: what this check is and what it takes."""
        return {"type": cls.type, "modalities": list(cls.modalities), "needs_model": cls.needs_model,
                "better": cls.better, "description": cls.description,
                "args": [{"name": a.name, "type": a.kind.__name__, "default": a.default, "required": a.required,
                          "choices": list(a.choices) if a.choices else None, "help": a.help} for a in cls.args]}

    @classmethod
    def validate(cls, options: dict) -> dict:
        """Hook for checks whose arguments need more than a type check (a regex compiles, a schema is valid)."""
        return options


REGISTRY: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    if cls.type in REGISTRY:
        raise ValueError(f"check type {cls.type!r} is registered twice")
    REGISTRY[cls.type] = cls
    return cls


def registry() -> dict[str, type[Check]]:
    """Every check type, the built-in ones loaded."""
    from . import audio, image, models, record, text  # noqa: F401  (registration happens on import)

    return REGISTRY


def make_check(spec: dict | str) -> Check:
    """One declaration (`{type: contains, value: "x", name: optional}` or a `--check` string) -> a Check."""
    if isinstance(spec, str):
        spec = parse_check_arg(spec)
    if not isinstance(spec, dict):
        raise CheckError(f"a check is an object like {{type: contains, value: \"x\"}}, got {spec!r}")
    known = registry()
    kind = spec.get("type")
    if kind not in known:
        raise CheckError(f"unknown check type {kind!r}; known: {', '.join(sorted(known))}")
    cls = known[kind]
    allowed = {a.name: a for a in cls.args}
    unknown = sorted(set(spec) - set(allowed) - {"type", "name"})
    if unknown:
        raise CheckError(f"check {kind!r}: unknown argument {unknown[0]!r}; allowed: "
                         f"{', '.join(allowed) or 'none'}")
    options = {}
    for arg in cls.args:
        if spec.get(arg.name) is None:
            if arg.required:
                raise CheckError(f"check {kind!r}: argument {arg.name!r} is required ({arg.help})")
            options[arg.name] = arg.default
        else:
            options[arg.name] = arg.coerce(kind, spec[arg.name])
    options = cls.validate(options)
    name = spec.get("name")
    if name is None:
        main = options.get(cls.main_arg) if cls.main_arg else None
        name = kind if main is None else f"{kind}={_short(main)}"
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise CheckError(f"check {kind!r}: name must be text of 1 to 200 characters, got {name!r}")
    return cls(name, options)


def make_checks(specs, modality: str | None = None) -> list[Check]:
    """Declarations -> checks. With `modality`, a check that cannot apply to it is refused; names must differ."""
    if specs is None:
        return []
    if isinstance(specs, (dict, str)):
        specs = [specs]
    specs = list(specs)
    if len(specs) > MAX_CHECKS:
        raise CheckError(f"{len(specs)} checks; the limit is {MAX_CHECKS} per comparison")
    checks = [spec if isinstance(spec, Check) else make_check(spec) for spec in specs]
    seen: set[str] = set()
    for check in checks:
        if modality is not None and modality not in check.modalities:
            raise CheckError(f"check {check.type!r} applies to {', '.join(check.modalities)} outputs, "
                             f"not {modality}")
        if check.name in seen:
            raise CheckError(f"two checks are named {check.name!r}; give one a different `name`")
        seen.add(check.name)
    return checks


def parse_check_args(values: list[str] | None, modality: str | None = None) -> list[dict]:
    """`--check` strings -> check declarations, each validated (against `modality` when given).
    Raises CheckError with a message that says what to change."""
    specs = [parse_check_arg(value) for value in values or []]
    make_checks(specs, modality)
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
    for part in text[colon + 1:].split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise CheckError(f"--check {text!r}: write arguments as name=value, separated by commas")
        try:
            spec[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            spec[name.strip()] = value
    return spec


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
