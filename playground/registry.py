"""Modalities and engines: the one table that runner, UI, CLI and API read. Torch-free and gradio-free.

A modality says what a cell produces (text, an image, audio) and which prompt fields it has. An engine says how a
model id is served (in this process with transformers/diffusers, or by a remote server), which options it takes
(a pydantic model: type, default, range, help; the UI builds its controls from it and the server validates every
call against it, capped by the settings) and what it can do. Adding an engine is one module in `engines/` plus one
`register(...)` call in `engines/__init__.py`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
import typing
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .requests.base import STRICT, InvalidInput, WholeNumber, explain

__all__ = ["InvalidInput"]


# ---- modalities -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Modality:
    name: str
    label: str
    output: str                        # "text", "image" or "audio": what a cell shows
    artifact_ext: str | None           # the file a cell's output is stored as (None: text in the log)
    prompt_fields: tuple[str, ...]     # extra prompt fields beside the prompt itself
    needs: str                         # what a model must be, for error messages
    pipeline_tags: tuple[str, ...]     # Hub pipeline tags of models that fit


MODALITIES: dict[str, Modality] = {m.name: m for m in (
    Modality("text", "Text", "text", None, ("system",),
             "a causal language model (transformers AutoModelForCausalLM) or a chat model behind an API",
             ("text-generation", "conversational", "text2text-generation", "image-text-to-text")),
    Modality("image", "Image", "image", "png", ("negative_prompt",), "a text-to-image diffusers pipeline",
             ("text-to-image",)),
    Modality("music", "Music", "audio", "wav", (), "a MusicGen model (text-to-audio)", ("text-to-audio",)),
)}


def modality(name: str) -> Modality:
    try:
        return MODALITIES[name]
    except (KeyError, TypeError):
        raise InvalidInput("modality", f"must be one of {', '.join(MODALITIES)}, got {name!r}") from None


# ---- options --------------------------------------------------------------------------------------------------------

# Server limits (Settings fields) that tighten an option's own range.
CAPS = {"max_new_tokens": "max_new_tokens", "num_inference_steps": "max_steps", "width": "max_side",
        "height": "max_side", "duration_s": "max_duration_s"}


class Options(BaseModel):
    """Generation options of one engine, checked strictly like every request (playground.requests): unknown names
    are errors (a typo must not be silently ignored), true is not 1 and 1.5 is not 1."""

    model_config = ConfigDict(**STRICT, frozen=True)
    multiple_of: ClassVar[dict[str, int]] = {}


def value_type(annotation) -> Any:
    """The type an option's value has when set: `float | None` (None: the model's own default) is float."""
    arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
    if type(None) in typing.get_args(annotation) and len(arguments) == 1:
        annotation = arguments[0]
    if typing.get_origin(annotation) is Annotated:         # WholeNumber: an int with pydantic's strictness
        return typing.get_args(annotation)[0]
    return annotation


def _bounds(field) -> tuple[float | None, float | None]:
    low = high = None
    for item in field.metadata:
        low = getattr(item, "ge", low)
        high = getattr(item, "le", high)
    return low, high


@dataclass(frozen=True)
class OptionSpec:
    """One option as the UI needs it: type, default, range (with the server cap applied) and help."""

    name: str
    kind: type
    default: Any
    low: float | None
    high: float | None
    help: str
    multiple_of: int | None = None


def option_specs(options: type[Options], limits=None) -> list[OptionSpec]:
    specs = []
    for name, field in options.model_fields.items():
        low, high = _bounds(field)
        cap = getattr(limits, CAPS[name], None) if limits is not None and name in CAPS else None
        if cap is not None:
            high = cap if high is None else min(high, cap)
        specs.append(OptionSpec(name, value_type(field.annotation), field.default, low, high,
                                field.description or "", options.multiple_of.get(name)))
    return specs


def validate_options(options: type[Options], values: dict | None, limits=None) -> dict:
    """Checked, complete options (defaults filled in), within the server's limits; else InvalidInput."""
    if values is not None and not isinstance(values, dict):
        raise InvalidInput("params", f"must be an object of option names to values, got {type(values).__name__}")
    try:
        # None means "not set": the option's default (for some, the model's own value, decided by the engine).
        checked = options.model_validate({k: v for k, v in (values or {}).items() if v is not None}).model_dump()
    except ValidationError as error:
        raise explain(error, options, root="params", noun="option") from None
    for spec in option_specs(options, limits):
        value = checked[spec.name]
        if spec.high is not None and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and value > spec.high:
            raise InvalidInput(spec.name, f"must be at most {spec.high:g} on this server, got {value!r}")
        if spec.multiple_of and value % spec.multiple_of:
            raise InvalidInput(spec.name, f"must be a multiple of {spec.multiple_of}, got {value!r}")
    return checked


def engine_options(modality_name: str, engines: list[str], params: dict | None, limits=None) -> dict[str, dict]:
    """engine name -> its checked options, from one set of params. A page sends every option of its tab and each
    engine takes the ones it knows; a name no engine of the modality knows is a typo."""
    params = dict(params or {})
    known = set().union(*(e.options.model_fields for e in engines_for(modality_name)))
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidInput(unknown[0], f"unknown option; allowed: {', '.join(sorted(known))}")
    return {name: validate_options(ENGINES[name].options,
                                   {k: v for k, v in params.items() if k in ENGINES[name].options.model_fields},
                                   limits) for name in engines}


Precision = Literal["auto", "float32", "bfloat16", "float16"]
PRECISION_HELP = ("weights' dtype; auto: bfloat16 on CPUs with native bf16 and on GPUs that support it (else "
                  "float16 on GPU, float32 on CPU); float32 for exact work; the dtype used is logged")


MODEL_DEFAULT = "; unset: the model's own (its generation_config), else "


class LocalTextOptions(Options):
    """Sampling values left unset (None) take the model's own generation_config values, else the playground's; the
    values used are logged with each cell (metrics: sampling)."""

    max_new_tokens: WholeNumber = Field(128, ge=1, le=8192, description="tokens to generate per cell")
    temperature: float | None = Field(None, ge=0.0, le=2.0, description="0 picks the most likely token (greedy)"
                                      + MODEL_DEFAULT + "0.7")
    top_p: float | None = Field(None, ge=0.01, le=1.0, description="nucleus sampling mass" + MODEL_DEFAULT + "0.95")
    top_k: WholeNumber | None = Field(None, ge=0, le=1000, description="0 turns top-k off" + MODEL_DEFAULT + "50")
    repetition_penalty: float | None = Field(None, ge=0.5, le=2.0, description="above 1 discourages repeats"
                                             + MODEL_DEFAULT + "1")
    do_sample: bool = Field(True, description="off: greedy decoding")
    precision: Precision = Field("auto", description=PRECISION_HELP)


class RemoteTextOptions(Options):
    max_new_tokens: WholeNumber = Field(128, ge=1, le=32768, description="tokens to generate per cell (max_tokens)")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="0 asks for the most likely token")
    top_p: float = Field(0.95, ge=0.01, le=1.0, description="nucleus sampling mass")
    completions: bool = Field(False, description="use the legacy completions endpoint (raw prompt, no chat)")


class RemoteImageOptions(Options):
    """What a text-to-image provider takes."""

    multiple_of: ClassVar[dict[str, int]] = {"width": 8, "height": 8}
    num_inference_steps: WholeNumber = Field(25, ge=1, le=150, description="denoising steps (turbo models: 1-4)")
    guidance_scale: float = Field(7.0, ge=0.0, le=30.0, description="prompt adherence (turbo models: 0)")
    width: WholeNumber = Field(512, ge=64, le=2048, description="pixels")
    height: WholeNumber = Field(512, ge=64, le=2048, description="pixels")


class ImageOptions(RemoteImageOptions):
    """A diffusers pipeline on this machine: the provider's options plus precision and how the batch runs."""

    width: WholeNumber = Field(512, ge=32, le=2048, description="pixels")  # 32: the offline tiny model's own size
    height: WholeNumber = Field(512, ge=32, le=2048, description="pixels")
    precision: Precision = Field("auto", description=PRECISION_HELP + " (this machine's models only)")
    image_mode: Literal["auto", "exact", "fast"] = Field(
        "auto", description="exact: each cell's denoiser runs alone, so a cell is bit-identical whatever ran beside "
        "it; fast: one batched denoiser call (about 2x on a GPU, a small measured difference per cell); auto: exact "
        "on CPU, fast on GPU (this machine's models only)")
    preview_vae: bool = Field(False, description="decode with a tiny autoencoder (TAESD): much faster decoding, "
                              "softer detail; for previews (this machine's models only)")


class MusicOptions(Options):
    duration_s: float = Field(5.0, ge=0.5, le=120.0, description="clip length in seconds")
    guidance_scale: float = Field(3.0, ge=1.0, le=15.0, description="prompt adherence; above 1 doubles the batch")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 picks the most likely code (greedy)")
    top_k: WholeNumber = Field(250, ge=0, le=2048, description="0 turns top-k off")
    precision: Precision = Field("auto", description=PRECISION_HELP)


class RemoteMusicOptions(Options):
    duration_s: float = Field(5.0, ge=0.5, le=120.0, description="clip length in seconds (where the provider "
                                                                  "takes one)")


# ---- engines --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Engine:
    """How one kind of model id is served.

    `prefix` is how its model ids start ("openai:", "hf:"); a local engine has none and takes hub ids, folders and
    the tiny models. `module:cls` is imported only when a model of this engine is first used; the class is built
    as `cls(resolved, settings)` (remote engines) or `cls.load(...)` (local ones: `engines.base.LocalModel`) and
    is an `engines.base.EngineModel`. `models` are model ids the engine offers in the model picker (plugins).
    """

    name: str
    modality: str
    label: str
    options: type[Options]
    module: str                       # "playground.engines.local_text:LocalTextModel"
    prefix: str | None = None
    batch_size: int = 1               # cells per call to the engine's stream()
    models: tuple[str, ...] = ()      # offered in the model picker (a plugin's own models)

    @property
    def remote(self) -> bool:
        return self.prefix is not None

    def load_class(self):
        module, _, name = self.module.partition(":")
        return getattr(importlib.import_module(module), name)


ENGINES: dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    """Add an engine (playground.plugins registers the built-in and installed ones); names are never replaced."""
    if engine.modality not in MODALITIES:
        raise ValueError(f"engine {engine.name!r}: unknown modality {engine.modality!r}")
    if ENGINES.get(engine.name, engine) is not engine:
        raise ValueError(f"engine {engine.name!r} is registered already")
    ENGINES[engine.name] = engine
    return engine


def engines_for(modality_name: str) -> list[Engine]:
    _ensure_registered()
    return [e for e in ENGINES.values() if e.modality == modality_name]


def split_model_id(model_id: str) -> tuple[str | None, str]:
    """'openai:gpt-4o-mini' -> ('openai', 'gpt-4o-mini'); 'owner/name' -> (None, 'owner/name')."""
    head, sep, rest = model_id.partition(":")
    if sep and head and rest and all(ch.isalnum() or ch in "-_" for ch in head) and len(head) > 1:
        return head, rest
    return None, model_id


def engine_for(modality_name: str, model_id: str, endpoints: dict | None = None) -> Engine:
    """The engine that serves `model_id` in this modality. A named endpoint (endpoints.yaml) is served by the
    OpenAI-compatible engine; any id without a known prefix goes to the modality's local engine."""
    _ensure_registered()
    modality(modality_name)
    prefix, _ = split_model_id(model_id)
    candidates = engines_for(modality_name)
    if prefix is not None:
        if endpoints and prefix in endpoints:
            prefix = "openai"
        for engine in candidates:
            if engine.prefix == prefix + ":":
                return engine
        others = [e for e in ENGINES.values() if e.prefix == prefix + ":"]
        if others:
            raise InvalidInput("model", f"{prefix}: models are not available for {modality_name}; the "
                               f"{modality_name} tab takes {', '.join(e.label for e in candidates)}")
        known = sorted({e.prefix for e in ENGINES.values() if e.prefix} | {f"{n}:" for n in endpoints or {}})
        raise InvalidInput("model", f"unknown engine prefix {prefix + ':'!r}; known: {', '.join(known)} "
                           "(named endpoints come from endpoints.yaml in the data dir)")
    local = [e for e in candidates if not e.remote]
    if not local:
        raise InvalidInput("model", f"no local engine for {modality_name}")
    return local[0]


def _ensure_registered() -> None:
    from .plugins import load_engines

    load_engines()
