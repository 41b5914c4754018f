"""Generation parameters of each modality: types, defaults, ranges. Torch-free, so the UI can build its controls."""

from __future__ import annotations

from .base import Param, validate_params

PARAMS: dict[str, tuple[Param, ...]] = {
    "text": (
        Param("max_new_tokens", int, 128, 1, 8192, "tokens to generate per cell"),
        Param("temperature", float, 0.7, 0.0, 2.0, "0 picks the most likely token (greedy)"),
        Param("top_p", float, 0.95, 0.01, 1.0, "nucleus sampling mass"),
        Param("top_k", int, 50, 0, 1000, "0 turns top-k off"),
        Param("repetition_penalty", float, 1.0, 0.5, 2.0, "above 1 discourages repeats"),
        Param("do_sample", bool, True, help="off: greedy decoding"),
    ),
    "image": (
        Param("num_inference_steps", int, 25, 1, 150, "denoising steps (turbo models: 1-4)"),
        Param("guidance_scale", float, 7.0, 0.0, 30.0, "prompt adherence (turbo models: 0)"),
        Param("width", int, 512, 64, 2048, "pixels", multiple_of=8),
        Param("height", int, 512, 64, 2048, "pixels", multiple_of=8),
    ),
    "music": (
        Param("duration_s", float, 5.0, 0.5, 120.0, "clip length in seconds"),
        Param("guidance_scale", float, 3.0, 1.0, 15.0, "prompt adherence; above 1 doubles the batch"),
        Param("temperature", float, 1.0, 0.0, 2.0, "0 picks the most likely code (greedy)"),
        Param("top_k", int, 250, 0, 2048, "0 turns top-k off"),
    ),
}


def caps(modality: str, limits) -> dict[str, float]:
    """Server limits from the settings; they tighten each parameter's own range."""
    if limits is None:
        return {}
    return {
        "text": {"max_new_tokens": limits.max_new_tokens},
        "image": {"num_inference_steps": limits.max_steps, "width": limits.max_side, "height": limits.max_side},
        "music": {"duration_s": limits.max_duration_s},
    }[modality]


def validate(modality: str, params: dict | None, limits=None) -> dict:
    return validate_params(PARAMS[modality], params, caps(modality, limits))
