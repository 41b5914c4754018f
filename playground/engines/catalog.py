"""Model presets, model-id resolution, and the warm-model cache.

The catalog is the only owner of loaded models: local models are loaded here, kept warm in a bounded LRU, and
unloaded (with device memory freed) when the user moves on; remote clients are kept per endpoint. Resolution checks
a model once per comparison and pins what will be loaded (the hub commit, or a hash of a shipped tiny model's files).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..registry import MODALITIES, Engine, InvalidInput, engine_for, engines_for, modality, split_model_id
from ..settings import Settings
from .base import EngineModel, LocalModel, choose_device, choose_dtype, free_device_memory
from .endpoints import Endpoint, load_endpoints
from .tiny import TINY_MODELS, shipped_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    id: str
    modality: str
    label: str
    note: str = ""
    params: dict = field(default_factory=dict)   # what this model needs; overrides a template's params
    gpu: bool = False                            # too slow for a CPU-only machine
    tiny: bool = False


PRESETS: tuple[Preset, ...] = (
    Preset("HuggingFaceTB/SmolLM2-360M-Instruct", "text", "SmolLM2 360M Instruct", "small and quick; runs on a CPU Space"),
    Preset("Qwen/Qwen2.5-0.5B-Instruct", "text", "Qwen2.5 0.5B Instruct", "multilingual; runs on a CPU Space"),
    Preset("Qwen/Qwen2.5-3B-Instruct", "text", "Qwen2.5 3B Instruct", "stronger; wants a GPU", gpu=True),
    Preset("stabilityai/sd-turbo", "image", "SD Turbo", "1-4 steps, no guidance; runs on a CPU Space",
           {"num_inference_steps": 2, "guidance_scale": 0.0}),
    Preset("stabilityai/sdxl-turbo", "image", "SDXL Turbo", "1-4 steps, no guidance; wants a GPU",
           {"num_inference_steps": 2, "guidance_scale": 0.0}, gpu=True),
    Preset("stable-diffusion-v1-5/stable-diffusion-v1-5", "image", "Stable Diffusion 1.5", "classic; wants a GPU",
           gpu=True),
    Preset("facebook/musicgen-small", "music", "MusicGen small", "300M; a few seconds of audio on a CPU Space"),
    Preset("facebook/musicgen-medium", "music", "MusicGen medium", "1.5B; wants a GPU", gpu=True),
    Preset("tiny-text", "text", "Tiny text (offline, trained on a toy world)",
           "taglines, labels, summaries, JSON: shows that prompts matter; not a real model", {"max_new_tokens": 96},
           tiny=True),
    Preset("tiny-image", "image", "Tiny image (offline, trained on a toy world)",
           "32x32 coloured shapes: shows that prompts matter; not a real model",
           {"num_inference_steps": 50, "guidance_scale": 3.0, "width": 32, "height": 32}, tiny=True),
    Preset("tiny-music", "music", "Tiny music (offline, trained on a toy world)",
           "synthesised tones: shows that prompts matter; not a real model", {"duration_s": 2.0}, tiny=True),
)


def preset_params(model_id: str, modality_name: str | None = None) -> dict:
    """Parameters a model needs whatever the template says (turbo models: few steps, no guidance)."""
    preset = next((p for p in PRESETS if p.id == model_id), None)
    if preset is None or (modality_name and preset.modality != modality_name):
        return {}
    return dict(preset.params)


@dataclass(frozen=True)
class Resolved:
    """A model id checked for a modality: which engine serves it, what is loaded, and the revision to log."""

    model_id: str
    modality: str
    engine: Engine
    source: str                     # a local folder or hub id (local engines); the model name (remote ones)
    revision: str | None = None
    endpoint: Endpoint | None = None


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
MAX_MODEL_ID_CHARS = 300


def check_remote_model_name(engine_name: str, name: str) -> None:
    """A remote model is named, never addressed: the host a request goes to (and the key it carries) comes from the
    operator's configuration alone. `hf:` takes a hub id (`owner/name`), which the client would otherwise treat as
    a URL to post the token to if it looked like one; no engine takes a URL or a host as a model."""
    if "://" in name or name.startswith("//"):
        raise InvalidInput("model", f"{name[:80]!r} is a URL; a model id names a model, never a server. Servers "
                           "are chosen by this server's operator (OPENAI_BASE_URL, endpoints.yaml, "
                           "PLAYGROUND_HF_BASE_URL)")
    if engine_name.startswith("hf-") and not _HUB_ID.match(name):
        raise InvalidInput("model", f"hf: takes a Hugging Face model id like 'owner/name', got {name[:80]!r}")


def hub_reachable(timeout: float = 3.0) -> bool:
    try:
        import huggingface_hub

        huggingface_hub.model_info("stabilityai/sd-turbo", timeout=timeout)
        return True
    except Exception as error:          # any failure means: work offline
        log.info("the Hugging Face Hub is not reachable (%s): using the offline tiny models", type(error).__name__)
        return False


def modality_of_folder(folder: Path) -> str | None:
    """What a local checkpoint folder holds, read from its config files; None if it is no model we know."""
    if (folder / "model_index.json").exists():
        return "image"
    config_file = folder / "config.json"
    if not config_file.exists():
        return None
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if str(config.get("model_type", "")).startswith("musicgen"):
        return "music"
    if any(str(a).endswith("ForCausalLM") for a in config.get("architectures") or []):
        return "text"
    return None


class Catalog:
    """Presets, resolution of what the user typed, an LRU of warm local models, and remote endpoints."""

    def __init__(self, settings: Settings, offline: bool | None = None):
        self.settings = settings
        self._offline = offline if offline is not None else (True if settings.offline else None)
        self._loaded: OrderedDict[tuple, LocalModel] = OrderedDict()
        self._lock = threading.RLock()
        self._model_locks: dict[tuple, threading.Lock] = {}
        self._endpoints: dict[str, Endpoint] | None = None
        self._remotes: dict[tuple, object] = {}
        self.loads = 0      # how many times a model was loaded from disk (tests and the benchmark read it)

    @property
    def offline(self) -> bool:
        """Offline when asked to be, or when the hub does not answer (checked once, on first need)."""
        if self._offline is None:
            self._offline = not hub_reachable()
            log.info("models: %s", "offline tiny models" if self._offline else "Hugging Face Hub")
        return self._offline

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        """Remote servers: OPENAI_BASE_URL/OPENAI_API_KEY plus the named ones in <data dir>/endpoints.yaml."""
        if self._endpoints is None:
            self._endpoints = load_endpoints(self.settings.data_dir / "endpoints.yaml")
        return self._endpoints

    def presets(self, modality_name: str) -> list[Preset]:
        """Offline: the tiny models only. Online: the real presets, GPU ones only when a GPU is present."""
        if self.offline:
            return [p for p in PRESETS if p.modality == modality_name and p.tiny]
        has_gpu = self._has_gpu()
        return [p for p in PRESETS if p.modality == modality_name and not p.tiny and (has_gpu or not p.gpu)]

    def model_choices(self, modality_name: str) -> list[tuple[str, str]]:
        """(label, model id) for the model picker: local presets, then the configured endpoints' models."""
        choices = [(p.label if p.tiny else f"{p.label} · {p.id}", p.id) for p in self.presets(modality_name)]
        for engine in engines_for(modality_name):          # models a plugin engine offers
            choices += [(f"{model} · {engine.label}", model) for model in engine.models]
        if modality_name == "text":
            for endpoint in self.endpoints.values():
                choices += [(f"{model} · {endpoint.name} ({endpoint.host})", f"{endpoint.name}:{model}")
                            for model in endpoint.models]
        return choices

    def default_model(self, modality_name: str) -> str:
        return self.presets(modality_name)[0].id

    # ---- resolution -------------------------------------------------------------------------------------------------

    def resolve(self, modality_name: str, model_id: str, revision: str | None = None) -> Resolved:
        """Check that `model_id` suits the modality and pin what will run. `revision` re-uses a logged one."""
        needs = modality(modality_name).needs
        if not isinstance(model_id, str):
            raise InvalidInput("model", f"must be a model id (text), got {type(model_id).__name__}")
        model_id = model_id.strip()
        if not model_id:
            raise InvalidInput("model", "is empty; pick a preset or type a hub id or a local folder")
        if len(model_id) > MAX_MODEL_ID_CHARS or not model_id.isprintable():
            raise InvalidInput("model", f"is not a model id (at most {MAX_MODEL_ID_CHARS} printable characters)")
        engine = engine_for(modality_name, model_id, self.endpoints)
        if engine.remote:
            return self._resolve_remote(modality_name, model_id, engine)
        if model_id in TINY_MODELS:
            kind = TINY_MODELS[model_id]
            if kind != modality_name:
                raise InvalidInput("model", f"{model_id!r} is a {kind} model; the {modality_name} tab needs {needs}")
            folder, revision = shipped_model(model_id)
            return Resolved(model_id, modality_name, engine, str(folder), f"built:{model_id}@{revision}")
        folder = Path(model_id).expanduser()
        looks_like_path = folder.is_absolute() or model_id.startswith((".", "~")) or not _HUB_ID.match(model_id)
        if looks_like_path or (self.settings.local_model_roots() is None and folder.is_dir()):
            return self._resolve_folder(modality_name, model_id, folder, engine)
        if self.offline:
            cached = _cached_commit(model_id, revision)
            if cached is None:
                raise InvalidInput("model", f"{model_id!r} is not a local folder and the hub is offline; pick one of "
                                   f"{', '.join(p.id for p in self.presets(modality_name))} or a folder with a "
                                   "saved model")
            return Resolved(model_id, modality_name, engine, model_id, cached)
        return Resolved(model_id, modality_name, engine, model_id, self._check_hub_model(modality_name, model_id,
                                                                                           revision))

    def _resolve_folder(self, modality_name, model_id, folder: Path, engine) -> Resolved:
        roots = self.settings.local_model_roots() or ()
        resolved = folder.resolve()
        if roots and not any(resolved == root or root in resolved.parents for root in roots):
            # One message whether the folder exists or not: a client learns nothing about the server's disk.
            raise InvalidInput("model", f"{model_id!r} is not a preset, a hub id or a folder under this server's "
                               "model roots")
        kind = modality_of_folder(resolved) if resolved.is_dir() else None
        if kind != modality_name:
            if roots:
                raise InvalidInput("model", f"{model_id!r} is not a preset, a hub id or a folder under this "
                                   "server's model roots")
            if not resolved.is_dir():
                raise InvalidInput("model", f"{model_id!r} is neither an existing folder nor a hub id like "
                                   "'owner/name'")
            what = f"holds a {kind} model" if kind else "holds no model config (config.json or model_index.json)"
            raise InvalidInput("model", f"folder {model_id!r} {what}; the {modality_name} tab needs "
                               f"{modality(modality_name).needs}")
        newest = max((p.stat().st_mtime for p in resolved.rglob("*") if p.is_file()), default=0)
        return Resolved(model_id, modality_name, engine, str(resolved),
                        f"local:{resolved.name}@{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(newest))}")

    def _resolve_remote(self, modality_name, model_id, engine) -> Resolved:
        prefix, name = split_model_id(model_id)
        if not name.strip():
            raise InvalidInput("model", f"{model_id!r} names no model after {prefix}:")
        check_remote_model_name(engine.name, name)
        endpoint = None
        if engine.name == "openai":
            endpoint = self.endpoints.get(prefix) or self.endpoints.get("openai")
            if endpoint is None:
                raise InvalidInput("model", f"{model_id!r}: no OpenAI-compatible endpoint is configured; set "
                                   "OPENAI_BASE_URL (and OPENAI_API_KEY) or add one to endpoints.yaml in the data dir")
        return Resolved(model_id, modality_name, engine, name, None, endpoint)

    def _check_hub_model(self, modality_name: str, model_id: str, revision: str | None) -> str | None:
        """One hub look-up: the model exists, suits the tab, and its current commit (what will be loaded)."""
        import huggingface_hub
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

        try:
            info = huggingface_hub.model_info(model_id, revision=revision, timeout=10)
        except GatedRepoError:
            raise InvalidInput("model", f"{model_id!r} is gated: accept its license on the hub and set HF_TOKEN") \
                from None
        except RepositoryNotFoundError:
            raise InvalidInput("model", f"the hub has no model {model_id!r}; check the spelling (owner/name)") from None
        except RevisionNotFoundError:
            raise InvalidInput("model", f"{model_id!r} has no revision {revision!r} any more") from None
        except Exception as error:     # network trouble: let from_pretrained try its cached copy
            log.warning("hub check of %s failed (%s); trying the local cache", model_id, error)
            return _cached_commit(model_id, revision) or revision
        tag = getattr(info, "pipeline_tag", None)
        if tag and tag not in MODALITIES[modality_name].pipeline_tags:
            raise InvalidInput("model", f"{model_id!r} is a {tag} model; the {modality_name} tab needs "
                               f"{modality(modality_name).needs}")
        return getattr(info, "sha", None) or revision

    # ---- loaded models ----------------------------------------------------------------------------------------------

    def get(self, resolved: Resolved) -> LocalModel:
        """A warm local model: reused if loaded, else loaded (evicting the least recently used)."""
        key = (resolved.modality, resolved.model_id, resolved.revision)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            model_lock = self._model_locks.setdefault(key, threading.Lock())
        with model_lock:             # one load per model, even when two requests race for it
            with self._lock:
                if key in self._loaded:
                    return self._loaded[key]
            self._evict_to(self.settings.max_models_loaded - 1)
            device = choose_device(self.settings.device)
            dtype = choose_dtype(device, self.settings.dtype)
            cls = resolved.engine.load_class()
            try:
                model = cls.load(resolved.model_id, resolved.source, resolved.revision, device, dtype,
                                 offload=self.settings.cpu_offload, prepared_dir=self._prepared_dir())
            except InvalidInput:
                raise
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.warning("loading %s failed: %s", resolved.model_id, error)
                raise InvalidInput("model", f"could not load {resolved.model_id!r} as "
                                   f"{modality(resolved.modality).needs}: {error}") from error
            _checked_model(resolved.engine, model)
            log.info("loaded %s (%s, %s on %s) in %.1f s", resolved.model_id, resolved.revision, dtype, device,
                     model.load_s)
            with self._lock:
                self._loaded[key] = model
                self.loads += 1
            return model

    def preparing(self, modality_name: str, model_id: str) -> str | None:
        """What first using this model takes: "load" (a local model not loaded in this process), or None (loaded
        already, remote, or not a model id)."""
        try:
            if engine_for(modality_name, model_id, self.endpoints).remote:
                return None
        except InvalidInput:
            return None
        with self._lock:
            warm = any(key[:2] == (modality_name, model_id) for key in self._loaded)
        return None if warm else "load"

    def _prepared_dir(self) -> Path | None:
        """Where loads keep prepared weights (engines/prepared.py), trimmed to the setting's size; None: off."""
        if not self.settings.prepared_cache_mb:
            return None
        folder = self.settings.data_dir / "prepared"
        from .prepared import trim       # torch: imported only when a model is loaded anyway

        trim(folder, self.settings.prepared_cache_mb * 2**20)
        return folder

    def find_loaded(self, modality_name: str, model_id: str, revision: str | None) -> LocalModel | None:
        with self._lock:
            return self._loaded.get((modality_name, model_id, revision))

    def remote(self, resolved: Resolved):
        """The client of a remote model (one per endpoint and model, reused across comparisons)."""
        key = (resolved.engine.name, resolved.model_id)
        with self._lock:
            if key not in self._remotes:
                self._remotes[key] = _checked_model(resolved.engine, resolved.engine.load_class()(resolved,
                                                                                                self.settings))
            return self._remotes[key]

    def loaded(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(m, i) for m, i, _ in self._loaded]

    def _evict_to(self, keep: int) -> None:
        with self._lock:
            evicted = []
            while len(self._loaded) > max(keep, 0):
                _, model = self._loaded.popitem(last=False)
                model.unload()
                evicted.append(model)
        if evicted:
            del evicted
            free_device_memory()

    def clear(self) -> None:
        self._evict_to(0)

    def _has_gpu(self) -> bool:
        if self.settings.device:
            return self.settings.device != "cpu"
        try:
            import torch
            return torch.cuda.is_available()
        except ImportError:
            return False


def _checked_model(engine: Engine, model):
    """An engine's model must be what the runner calls (engines.base.EngineModel): a plugin that is not gets a
    message naming what it lacks, not an AttributeError in the middle of a grid."""
    if not isinstance(model, EngineModel):
        missing = [name for name in ("device", "dtype", "versions", "stream") if not hasattr(model, name)]
        raise InvalidInput("model", f"engine {engine.name!r}: its model class lacks {', '.join(missing)} "
                           "(see playground.engines.base.EngineModel)")
    return model


def _cached_commit(model_id: str, revision: str | None) -> str | None:
    """The commit of a hub model in the local cache (None when it was never downloaded)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        for name in ("config.json", "model_index.json"):
            cached = try_to_load_from_cache(model_id, name, revision=revision)
            if isinstance(cached, str) and "snapshots" in cached:
                return Path(cached).parent.name
    except Exception as error:          # a broken cache is the same as none
        log.warning("reading the hub cache for %s failed: %s", model_id, error)
    return None
