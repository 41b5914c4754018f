"""Where and at what precision a local model's weights live: the load plan (CPU, straight to the accelerator, or
offloaded to CPU RAM between uses) and the switch to the precision a comparison asks for.

torch is imported lazily: the catalog imports this module before any model is needed.
"""

from __future__ import annotations

import time

from . import compute
from .base import choose_dtype, free_device_memory

# How weights are placed. "cpu": loaded and run on the CPU. "device": loaded straight onto the accelerator
# (accelerate's device_map: no full copy in CPU RAM first). "offload": weights wait in CPU RAM and each part moves
# to the accelerator while it runs, so a model bigger than the GPU's memory (SDXL, MusicGen-medium on 8-12 GB) runs.
PLANS = ("cpu", "device", "offload")


def load_plan(device: str, offload: bool) -> str:
    """The plan for a device; offloading means nothing on the CPU, so it is ignored there."""
    if device == "cpu":
        return "cpu"
    return "offload" if offload else "device"


def transformers_placement(plan: str, device: str) -> dict:
    """from_pretrained keyword arguments for a transformers model under `plan`.

    "offload" uses device_map="auto": accelerate fills the accelerator first and keeps the layers that do not fit in
    CPU RAM, moving each to the accelerator for its forward pass.
    """
    if plan == "device":
        return {"device_map": device}
    if plan == "offload":
        return {"device_map": "auto"}
    return {}


def diffusers_placement(plan: str, device: str) -> dict:
    """from_pretrained keyword arguments for a diffusers pipeline; "offload" is applied after loading instead
    (`enable_model_cpu_offload`, which needs the weights on the CPU first)."""
    return {"device_map": device} if plan == "device" else {}


def wanted_dtype(model, options: dict) -> str:
    """The dtype a comparison's `precision` option asks for; "auto" is what the model was first loaded at
    (the catalog's choice for this device and the server's settings)."""
    precision = options.get("precision", "auto")
    return model.auto_dtype if precision == "auto" else choose_dtype(model.device, precision)


def ensure_precision(model, options: dict) -> float:
    """Reload `model` at the precision `options` asks for when it differs from the loaded one; seconds spent.

    A model loaded at one dtype is a different model from the same checkpoint at another, so it is reloaded from
    its checkpoint rather than cast: casting bfloat16 back to float32 would not give the float32 weights back.
    """
    wanted = wanted_dtype(model, options)
    if wanted == model.dtype:
        return 0.0
    started = time.perf_counter()
    model.unload()
    free_device_memory()
    model.dtype = wanted
    compute.run(model.load_weights)
    return time.perf_counter() - started
