"""Text-to-image through diffusers' AutoPipelineForText2Image: all cells in one pipeline call."""

from __future__ import annotations

import time
from typing import Callable

import torch
from diffusers import AutoPipelineForText2Image

from .base import Backend, GenerationRequest, InvalidInput, Output, Param, check_prompts, torch_dtype


class ImageBackend(Backend):
    modality = "image"
    backend_name = "diffusers.AutoPipelineForText2Image"
    PARAMS = (
        Param("num_inference_steps", int, 25, 1, 150, "denoising steps (turbo models: 1-4)"),
        Param("guidance_scale", float, 7.0, 0.0, 30.0, "prompt adherence (turbo models: 0)"),
        Param("width", int, 512, 64, 2048, "pixels", multiple_of=8),
        Param("height", int, 512, 64, 2048, "pixels", multiple_of=8),
    )

    @classmethod
    def load(cls, model_id: str, source: str, device: str, dtype: str) -> "ImageBackend":
        backend = cls(model_id, source, device, dtype)
        started = time.perf_counter()
        pipe = AutoPipelineForText2Image.from_pretrained(source, torch_dtype=torch_dtype(dtype))
        pipe.set_progress_bar_config(disable=True)
        backend.pipe = pipe.to(device)
        backend.revision = getattr(pipe.config, "_commit_hash", None) if hasattr(pipe, "config") else None
        backend.multiple = getattr(pipe, "vae_scale_factor", 8) or 8
        backend.load_s = time.perf_counter() - started
        return backend

    def caps(self, limits) -> dict[str, float]:
        return {"num_inference_steps": limits.max_steps, "width": limits.max_side, "height": limits.max_side}

    def validate(self, params: dict | None, limits=None) -> dict:
        checked = super().validate(params, limits)
        for side in ("width", "height"):
            if checked[side] % self.multiple:
                raise InvalidInput(side, f"must be a multiple of {self.multiple} for this model, got {checked[side]}")
        return checked

    def generate(self, requests: list[GenerationRequest], params: dict,
                 on_progress: Callable[[int, int], None] | None = None) -> list[Output]:
        check_prompts(requests, max_chars=100_000)
        # One generator per cell: each cell's starting noise comes from its own seed alone.
        generators = [torch.Generator(device="cpu").manual_seed(r.seed) for r in requests]
        negatives = [r.negative_prompt or "" for r in requests]
        steps = params["num_inference_steps"]

        def step_end(pipe, step, timestep, kwargs):
            if on_progress is not None:
                on_progress(step + 1, steps)
            return kwargs

        started = time.perf_counter()
        with torch.inference_mode():
            result = self.pipe(
                prompt=[r.prompt for r in requests],
                negative_prompt=negatives if any(negatives) and params["guidance_scale"] > 1 else None,
                num_inference_steps=steps,
                guidance_scale=params["guidance_scale"],
                width=params["width"],
                height=params["height"],
                generator=generators,
                callback_on_step_end=step_end,
            )
        wall = time.perf_counter() - started
        return [Output(image=image, metrics={"wall_s": wall, "steps_per_s": steps / wall if wall > 0 else None})
                for image in result.images]
