"""What every engine shares: the request of one cell, its output, the events a stream yields, and device helpers.

torch is imported lazily inside functions: importing this module must stay cheap so the app starts fast.

An engine instance serves one model. `stream(requests, options)` is a generator of events: `Partial` text while
cells run, `Step` k of n, and one `Finished` or `Failed` per request. To stop, the consumer closes the generator;
the engine then stops its model within one step (a StoppingCriteria for `generate`, `pipe._interrupt` for
diffusers) or cancels its in-flight requests. Events and requests are plain picklable dataclasses, so a stream can
run in another process (the ZeroGPU worker) and cross back event by event.
"""

from __future__ import annotations

import functools
import io
import queue
import threading
import time
import wave
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

from ..registry import InvalidInput
from ..settings import MAX_SEED
from . import compute

SEED_MAX = MAX_SEED


@dataclass
class GenerationRequest:
    """One cell to generate: a rendered prompt with its own seed; options are shared by the batch."""

    prompt: str
    seed: int = 0
    system: str | None = None           # None: no system message; "" is an explicit empty one
    negative_prompt: str | None = None
    max_new_tokens: int | None = None   # this cell's own cap, below the options' (an experiment row's)


@dataclass
class Output:
    """What one cell produced. Exactly one of text / image / audio is set."""

    text: str | None = None
    image: Any = None                         # PIL.Image.Image
    audio: tuple[int, Any] | None = None      # (sample_rate, float32 numpy array (samples,) or (channels, samples))
    metrics: dict = field(default_factory=dict)


@dataclass
class Partial:
    """Text so far of the cells still running (request index -> text)."""

    texts: dict[int, str]


@dataclass
class Step:
    step: int
    steps: int


@dataclass
class Finished:
    index: int
    output: Output


@dataclass
class Failed:
    """One request failed; the message says what to fix (never a key or a token). `text`: what a stream had sent
    before it broke, kept in the cell's record."""

    index: int
    error: str
    text: str | None = None


Event = Partial | Step | Finished | Failed


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        if isinstance(seed, float) and seed.is_integer():
            seed = int(seed)
        else:
            raise InvalidInput("seed", f"must be a whole number from 0 to {SEED_MAX}, got {seed!r}")
    if not 0 <= seed <= SEED_MAX:
        raise InvalidInput("seed", f"must be from 0 to {SEED_MAX}, got {seed}")
    return seed


def check_prompts(requests: list[GenerationRequest], max_chars: int = 100_000) -> None:
    if not requests:
        raise InvalidInput("prompt", "at least one prompt is needed")
    for request in requests:
        if not isinstance(request.prompt, str) or not request.prompt.strip():
            raise InvalidInput("prompt", "is empty; type a prompt or pick a template")
        if len(request.prompt) > max_chars:
            raise InvalidInput("prompt", f"is {len(request.prompt)} characters; the limit is {max_chars}")
        check_seed(request.seed)


def stream_blocking(work: Callable[[Callable[[Event], None], threading.Event], list[Output]]) -> Iterator[Event]:
    """Run a blocking model call (`generate`, a pipeline) and yield its events as they happen.

    `work(emit, stop)` calls `emit(event)` from inside the model loop and returns one Output per request. The call
    runs on the compute thread (compute.py), as transformers' own streaming recipe runs it on a worker thread;
    closing this generator sets `stop`, which the model's StoppingCriteria or step callback turns into a stop within
    one step, and waits for the call to end.
    """
    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def target():
        try:
            events.put(("done", work(lambda event: events.put(("event", event)), stop)))
        except BaseException as error:     # handed to the consumer, which raises it
            events.put(("error", error))

    call = compute.submit(target)
    try:
        while True:
            kind, payload = events.get()
            if kind == "event":
                yield payload
            elif kind == "error":
                raise payload
            else:
                for index, output in enumerate(payload):
                    yield Finished(index, output)
                return
    finally:
        stop.set()
        futures.wait([call])


def choose_device(preference: str | None = None) -> str:
    import torch

    if preference:
        return preference
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


PRECISIONS = ("auto", "float32", "bfloat16", "float16")


@functools.cache         # the CPU does not change while the process runs; read /proc/cpuinfo once
def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bfloat16 in hardware (x86 AVX512-BF16 or AMX, Arm BF16 extension).

    Elsewhere torch emulates bf16 on CPU, which is slower than float32, so "auto" keeps float32 there.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.lower().startswith(("flags", "features")):
                    flags = set(line.partition(":")[2].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    except OSError:
        pass
    return False


def choose_dtype(device: str, preference: str | None = None) -> str:
    """The dtype that "auto" (or no preference) means on this device; an explicit preference is kept.

    CPU: bfloat16 where the CPU has native bf16 (about 2x faster than float32 for the same greedy tokens where the
    float32 top-1 margin is clear), float32 elsewhere. CUDA: bfloat16 where supported, else float16. MPS: float16.
    """
    if preference and preference != "auto":
        if preference not in PRECISIONS:
            raise InvalidInput("precision", f"must be one of {', '.join(PRECISIONS)}, got {preference!r}")
        return preference
    if device == "cpu":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float16"


def torch_dtype(name: str):
    import torch

    try:
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
    except KeyError:
        raise InvalidInput("precision", f"must be float32, float16 or bfloat16, got {name!r}") from None


def free_device_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


class Timer:
    """Wall time of a call and time to its first partial output."""

    def __init__(self):
        self.started = time.perf_counter()
        self.first: float | None = None

    def mark_first(self) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.started

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def to_wav_bytes(sample_rate: int, waveform) -> bytes:
    """16-bit PCM WAV; peaks above full scale are clipped rather than wrapped."""
    import numpy as np

    data = np.asarray(waveform, dtype=np.float32)
    channels = 1 if data.ndim == 1 else data.shape[0]
    frames = data if data.ndim == 1 else data.T
    pcm = (np.clip(np.nan_to_num(frames), -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


@runtime_checkable
class EngineModel(Protocol):
    """What the runner calls on a model of any engine: `LocalModel` subclasses (loaded here) and remote clients."""

    device: str | None           # where it runs: a device (cpu, cuda, mps) or a remote host; logged
    dtype: str | None            # the weights' dtype (None for remote models); logged

    @property
    def versions(self) -> dict[str, str]:
        """Versions of the libraries that shape this model's outputs; logged with every run."""

    def stream(self, requests: list[GenerationRequest], options: dict) -> Iterator[Event]:
        """Events for the requests (see the module docstring); closing the generator stops the model."""


_versions: dict[str, str] = {}


def library_versions() -> dict[str, str]:
    """Versions that shape a local model's outputs; read once (importlib.metadata is slow enough to matter per
    cell)."""
    if not _versions:
        from importlib.metadata import PackageNotFoundError, version

        from .. import __version__

        _versions["playground"] = __version__
        for name in ("torch", "transformers", "diffusers", "accelerate"):
            try:
                _versions[name] = version(name)
            except PackageNotFoundError:
                pass
    return dict(_versions)


class LocalModel:
    """A model loaded in this process through `from_pretrained` (a hub id or a folder: the same path either way)."""

    def __init__(self, model_id: str, source: str, revision: str | None, device: str, dtype: str,
                 offload: bool = False, prepared_dir=None):
        self.model_id = model_id      # what the user picked (hub id, preset, or folder)
        self.source = source          # what from_pretrained loads (hub id or local folder)
        self.revision = revision      # the hub commit from_pretrained is told to load (None: a local folder)
        self.device = device
        self.dtype = dtype            # the dtype the weights are loaded at now (logged with every run)
        self.auto_dtype = dtype       # what precision "auto" means for this model on this device
        self.offload = offload        # keep weights in CPU RAM between uses (accelerators only)
        self.prepared_dir = prepared_dir    # where prepared (packed) weights are kept between processes; None: not
        self.load_s: float = 0.0
        self.seconds_per_cell: float | None = None    # measured; sizes the GPU lease on ZeroGPU
        self._identity = set(vars(self)) | {"_identity"}   # what unload keeps: everything else came with the weights

    @classmethod
    def load(cls, model_id: str, source: str, revision: str | None, device: str, dtype: str,
             offload: bool = False, prepared_dir=None) -> "LocalModel":
        model = cls(model_id, source, revision, device, dtype, offload, prepared_dir)
        started = time.perf_counter()
        compute.run(model.load_weights)
        model.load_s = time.perf_counter() - started
        return model

    @property
    def versions(self) -> dict[str, str]:
        return library_versions()

    @property
    def hub_revision(self) -> dict:
        """`revision=` for from_pretrained: the logged commit of a hub model; nothing for a folder."""
        from pathlib import Path

        return {"revision": self.revision} if self.revision and not Path(self.source).exists() else {}

    def load_weights(self) -> None:
        raise NotImplementedError

    def stream(self, requests: list[GenerationRequest], options: dict) -> Iterator[Event]:
        raise NotImplementedError

    def unload(self) -> None:
        """Drop everything load_weights made (weights, and whatever holds them: cached heads, a kept VAE); the
        catalog calls this on eviction, and a precision switch before loading again, then frees device memory."""
        for name in set(vars(self)) - self._identity:
            setattr(self, name, None)
