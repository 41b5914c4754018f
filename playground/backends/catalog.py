"""Model presets, model-id resolution, and the warm-model cache.

The catalog is the only owner of loaded models: backends are loaded here, kept warm in a bounded LRU, and
unloaded (with device memory freed) when the user moves on to other models.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..settings import Settings
from .base import MODALITIES, Backend, InvalidInput, choose_device, choose_dtype, free_device_memory
from .tiny import TINY_MODELS, tiny_model_path


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
    Preset("tiny-text", "text", "Tiny text (offline, random weights)", "built locally; output is noise",
           {"max_new_tokens": 32}, tiny=True),
    Preset("tiny-image", "image", "Tiny image (offline, random weights)", "built locally; output is noise",
           {"num_inference_steps": 4, "width": 128, "height": 128}, tiny=True),
    Preset("tiny-music", "music", "Tiny music (offline, random weights)", "built locally; output is noise",
           {"duration_s": 2.0}, tiny=True),
)


def preset_params(model_id: str, modality: str | None = None) -> dict:
    """Parameters a model needs whatever the template says (turbo models: few steps, no guidance)."""
    preset = next((p for p in PRESETS if p.id == model_id), None)
    if preset is None or (modality and preset.modality != modality):
        return {}
    return dict(preset.params)


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
_PIPELINE_TAGS = {"text": {"text-generation", "conversational", "text2text-generation"},
                  "image": {"text-to-image"}, "music": {"text-to-audio", "text-to-speech"}}
_NEEDS = {"text": "a causal language model (transformers AutoModelForCausalLM)",
          "image": "a text-to-image diffusers pipeline",
          "music": "a MusicGen model"}


def backend_class(modality: str) -> type[Backend]:
    # Imported on first use: these modules import torch, transformers and diffusers, which start-up must avoid.
    if modality == "text":
        from .text import TextBackend
        return TextBackend
    if modality == "image":
        from .image import ImageBackend
        return ImageBackend
    if modality == "music":
        from .music import MusicBackend
        return MusicBackend
    raise InvalidInput("modality", f"must be one of {', '.join(MODALITIES)}, got {modality!r}")


def hub_reachable(timeout: float = 3.0) -> bool:
    try:
        import huggingface_hub

        huggingface_hub.model_info("stabilityai/sd-turbo", timeout=timeout)
        return True
    except Exception:
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
    """Presets, resolution of what the user typed, and an LRU of warm backends."""

    def __init__(self, settings: Settings, offline: bool | None = None):
        self.settings = settings
        self._offline = offline if offline is not None else (True if settings.offline else None)
        self._loaded: OrderedDict[tuple[str, str], Backend] = OrderedDict()
        self._lock = threading.RLock()
        self._model_locks: dict[tuple[str, str], threading.Lock] = {}
        self.loads = 0      # how many times a model was loaded from disk (tests and the benchmark read it)

    @property
    def offline(self) -> bool:
        """Offline when asked to be, or when the hub does not answer (checked once, on first need)."""
        if self._offline is None:
            self._offline = not hub_reachable()
        return self._offline

    def presets(self, modality: str) -> list[Preset]:
        """Offline: the tiny models only. Online: the real presets, GPU ones only when a GPU is present."""
        if self.offline:
            return [p for p in PRESETS if p.modality == modality and p.tiny]
        has_gpu = self._has_gpu()
        return [p for p in PRESETS if p.modality == modality and not p.tiny and (has_gpu or not p.gpu)]

    def default_model(self, modality: str) -> str:
        return self.presets(modality)[0].id

    @staticmethod
    def preset(model_id: str) -> Preset | None:
        return next((p for p in PRESETS if p.id == model_id), None)

    def resolve(self, modality: str, model_id: str) -> str:
        """The folder or hub id that from_pretrained will load, after checking the model suits the tab."""
        model_id = (model_id or "").strip()
        if not model_id:
            raise InvalidInput("model", "is empty; pick a preset or type a hub id or a local folder")
        if model_id in TINY_MODELS:
            kind = TINY_MODELS[model_id]
            if kind != modality:
                raise InvalidInput("model", f"{model_id!r} is a {kind} model; the {modality} tab needs {_NEEDS[modality]}")
            return str(tiny_model_path(self.settings.models_dir, model_id))
        folder = Path(model_id).expanduser()
        if folder.is_dir():
            kind = modality_of_folder(folder)
            if kind != modality:
                what = f"holds a {kind} model" if kind else "holds no model config (config.json or model_index.json)"
                raise InvalidInput("model", f"folder {model_id!r} {what}; the {modality} tab needs {_NEEDS[modality]}")
            return str(folder.resolve())
        if not _HUB_ID.match(model_id) or model_id.startswith(("/", ".", "~")):
            raise InvalidInput("model", f"{model_id!r} is neither an existing folder nor a hub id like 'owner/name'")
        if self.offline:
            raise InvalidInput("model", f"{model_id!r} is not a local folder and the hub is offline; pick one of "
                               f"{', '.join(p.id for p in self.presets(modality))} or a folder with a saved model")
        self._check_hub_model(modality, model_id)
        return model_id

    def _check_hub_model(self, modality: str, model_id: str) -> None:
        import huggingface_hub
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

        try:
            info = huggingface_hub.model_info(model_id, timeout=10)
        except GatedRepoError:
            raise InvalidInput("model", f"{model_id!r} is gated: accept its license on the hub and set HF_TOKEN") from None
        except RepositoryNotFoundError:
            raise InvalidInput("model", f"the hub has no model {model_id!r}; check the spelling (owner/name)") from None
        except Exception:  # network trouble: let from_pretrained try (it may have a cached copy)
            return
        tag = getattr(info, "pipeline_tag", None)
        if tag and tag not in _PIPELINE_TAGS[modality]:
            raise InvalidInput("model", f"{model_id!r} is a {tag} model; the {modality} tab needs {_NEEDS[modality]}")

    def get(self, modality: str, model_id: str) -> Backend:
        """A warm backend for this model: reused if loaded, else loaded (evicting the least recently used)."""
        key = (modality, (model_id or "").strip())
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            model_lock = self._model_locks.setdefault(key, threading.Lock())
        with model_lock:             # one load per model, even when two requests race for it
            with self._lock:
                if key in self._loaded:
                    return self._loaded[key]
            source = self.resolve(modality, key[1])
            self._evict_to(self.settings.max_models_loaded - 1)
            device = choose_device(self.settings.device)
            dtype = choose_dtype(device, self.settings.dtype)
            try:
                backend = backend_class(modality).load(key[1], source, device, dtype)
            except InvalidInput:
                raise
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise InvalidInput("model", f"could not load {key[1]!r} as {_NEEDS[modality]}: {error}") from error
            backend.revision = revision_of(source)
            with self._lock:
                self._loaded[key] = backend
                self.loads += 1
            return backend

    def revision(self, modality: str, model_id: str) -> str:
        """The revision a run of this model would record, without loading it (the cache key needs it)."""
        with self._lock:
            backend = self._loaded.get((modality, (model_id or "").strip()))
        return backend.revision if backend else revision_of(self.resolve(modality, model_id))

    def loaded(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._loaded)

    def _evict_to(self, keep: int) -> None:
        with self._lock:
            evicted = []
            while len(self._loaded) > max(keep, 0):
                _, backend = self._loaded.popitem(last=False)
                backend.unload()
                evicted.append(backend)
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


def revision_of(source: str) -> str:
    """A local folder is identified by its path and modification time; a hub id by its cached commit."""
    folder = Path(source)
    if (folder / ".complete").exists():        # a tiny model: built deterministically, named by its version
        return f"built:{folder.name}"
    if folder.is_dir():
        newest = max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0)
        return f"local:{folder}@{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(newest))}"
    try:
        from huggingface_hub import try_to_load_from_cache

        for name in ("config.json", "model_index.json"):
            cached = try_to_load_from_cache(source, name)
            if isinstance(cached, str):
                return Path(cached).parent.name if "snapshots" in cached else cached
    except Exception:
        pass
    return "unknown"
