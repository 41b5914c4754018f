"""The small interface every model backend implements, plus the parameter checks and device choice they share.

torch is imported lazily inside functions: importing this module must stay cheap so the app starts fast.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

MODALITIES = ("text", "image", "music")


class InvalidInput(ValueError):
    """A request the server refuses; the message names the field and what is allowed."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Param:
    """One generation parameter: its type, default and allowed range (inclusive)."""

    name: str
    kind: type            # int, float or bool
    default: Any
    low: float | None = None
    high: float | None = None
    help: str = ""
    multiple_of: int | None = None

    def check(self, value: Any, high: float | None = None) -> Any:
        """Coerce and range-check one value; `high` tightens the upper bound (a server limit)."""
        high = self.high if high is None else min(high, self.high if self.high is not None else high)
        if self.kind is bool:
            if isinstance(value, str) and value.lower() in {"true", "false", "1", "0"}:
                return value.lower() in {"true", "1"}
            if isinstance(value, (bool, int)) and value in (0, 1):
                return bool(value)
            raise InvalidInput(self.name, f"must be true or false, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(self.name, f"must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise InvalidInput(self.name, f"must be a finite number, got {value!r}")
        if self.kind is int:
            if number != int(number):
                raise InvalidInput(self.name, f"must be a whole number, got {value!r}")
            number = int(number)
        if (self.low is not None and number < self.low) or (high is not None and number > high):
            raise InvalidInput(self.name, f"must be between {_fmt(self.low)} and {_fmt(high)}, got {value!r}")
        if self.multiple_of and number % self.multiple_of:
            raise InvalidInput(self.name, f"must be a multiple of {self.multiple_of}, got {value!r}")
        return number


def _fmt(bound: float | None) -> str:
    if bound is None:
        return "any"
    return str(int(bound)) if float(bound).is_integer() else str(bound)


SEED = Param("seed", int, 0, 0, 2**32 - 1, "random seed of the cell")


def validate_params(specs: tuple[Param, ...], params: dict | None, caps: dict[str, float] | None = None) -> dict:
    """Defaults filled in, every value checked; an unknown name is an error (a typo must not be silently ignored)."""
    params = dict(params or {})
    caps = caps or {}
    known = {p.name: p for p in specs}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InvalidInput(unknown[0], f"unknown parameter; allowed: {', '.join(sorted(known))}")
    return {name: spec.check(params.get(name, spec.default), caps.get(name)) for name, spec in known.items()}


def check_seed(seed: Any) -> int:
    return SEED.check(seed)


@dataclass
class GenerationRequest:
    """One cell to generate: a rendered prompt with its own seed; params are shared by the batch."""

    prompt: str
    seed: int = 0
    system: str | None = None
    negative_prompt: str | None = None


@dataclass
class Output:
    """What one cell produced. Exactly one of text / image / audio is set."""

    text: str | None = None
    image: Any = None                         # PIL.Image.Image
    audio: tuple[int, Any] | None = None      # (sample_rate, float32 numpy array of shape (samples,) or (channels, samples))
    metrics: dict = field(default_factory=dict)


def check_prompts(requests: list[GenerationRequest], max_chars: int) -> None:
    if not requests:
        raise InvalidInput("prompt", "at least one prompt is needed")
    for request in requests:
        if not isinstance(request.prompt, str) or not request.prompt.strip():
            raise InvalidInput("prompt", "is empty; type a prompt or pick a template")
        if len(request.prompt) > max_chars:
            raise InvalidInput("prompt", f"is {len(request.prompt)} characters; the limit is {max_chars}")
        check_seed(request.seed)


class Backend:
    """A loaded model of one modality. Subclasses name their modality and implement `load_weights` and `generate`;
    their parameters are declared in params.py."""

    modality: ClassVar[str]
    backend_name: ClassVar[str] = ""        # logged with every run

    def __init__(self, model_id: str, source: str, device: str, dtype: str):
        self.model_id = model_id      # what the user picked (hub id, preset, or folder)
        self.source = source          # what from_pretrained loaded (hub id or local folder)
        self.device = device
        self.dtype = dtype
        self.revision: str | None = None
        self.load_s: float = 0.0

    @classmethod
    def load(cls, model_id: str, source: str, device: str, dtype: str) -> "Backend":
        """Load through from_pretrained (a hub id or a folder: the same path either way), timing it."""
        backend = cls(model_id, source, device, dtype)
        started = time.perf_counter()
        backend.load_weights()
        backend.load_s = time.perf_counter() - started
        return backend

    def load_weights(self) -> None:
        raise NotImplementedError

    @classmethod
    def validate(cls, params: dict | None, limits=None) -> dict:
        """Checked, complete parameters; needs no loaded model, so bad input is refused before any loading."""
        from .params import validate

        return validate(cls.modality, params, limits)

    def generate(self, requests: list[GenerationRequest], params: dict,
                 on_progress: Callable[[list[str]], None] | None = None) -> list[Output]:
        raise NotImplementedError

    def unload(self) -> None:
        """Drop references to weights; the catalog calls this on eviction and then frees device memory."""
        for name in list(vars(self)):
            if name in {"model", "pipe", "tokenizer", "processor"}:
                setattr(self, name, None)


def choose_device(preference: str | None = None) -> str:
    import torch

    if preference:
        return preference
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def choose_dtype(device: str, preference: str | None = None) -> str:
    """Half precision on accelerators, float32 on CPU (CPU half-precision kernels are slow or missing)."""
    if preference:
        return preference
    return "float32" if device == "cpu" else "float16"


def torch_dtype(name: str):
    import torch

    try:
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
    except KeyError:
        raise InvalidInput("dtype", f"must be float32, float16 or bfloat16, got {name!r}") from None


def free_device_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


@functools.cache
def gpu_decorator() -> Callable:
    """`spaces.GPU` on Hugging Face ZeroGPU Spaces; elsewhere a no-op."""
    try:
        import spaces  # type: ignore[import-not-found]

        return spaces.GPU
    except ImportError:
        return lambda fn: fn
