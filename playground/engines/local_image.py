"""Text-to-image through diffusers' AutoPipelineForText2Image: a batch of cells in one pipeline call.

Two modes. "exact" runs the text encoders, the denoiser and the VAE one cell at a time inside the batched call, so a
cell is bit-identical whichever cells ran beside it; on a CPU that costs nothing, since batching gains nothing there.
"fast" runs one batched denoiser call: about 2x on a GPU, at a small measured difference per cell (PSNR against
exact, in benchmarks/bench_speed.py). "auto" picks exact on CPU and fast on accelerators.
"""

from __future__ import annotations

from typing import Iterator

import torch
from diffusers import AutoPipelineForText2Image

from .base import (Event, GenerationRequest, InvalidInput, LocalModel, Output, Step, Timer, check_prompts,
                   stream_blocking, torch_dtype)
from .placement import diffusers_placement, ensure_precision, load_plan

# Tiny preview autoencoders (TAESD family) by pipeline class: they share the latent space of the full VAE and decode
# in a fraction of its time. A folder path works as well as a hub id.
PREVIEW_VAES = {"StableDiffusionPipeline": "madebyollin/taesd", "StableDiffusionXLPipeline": "madebyollin/taesdxl",
                "StableDiffusion3Pipeline": "madebyollin/taesd3", "FluxPipeline": "madebyollin/taef1"}


class LocalImageModel(LocalModel):
    def load_weights(self) -> None:
        self.plan = load_plan(self.device, self.offload)
        pipe = AutoPipelineForText2Image.from_pretrained(self.source, dtype=torch_dtype(self.dtype),
                                                         **diffusers_placement(self.plan, self.device),
                                                         **self.hub_revision)
        pipe.set_progress_bar_config(disable=True)
        if self.plan == "offload":
            pipe.enable_model_cpu_offload(device=self.device)   # each component on the GPU only while it runs
        elif self.plan == "cpu":
            pipe.to(self.device)
        self.pipe = pipe
        self.full_vae = pipe.vae
        self.preview = None                 # (source, AutoencoderTiny), loaded on first use
        self.cells = _CellCount()
        _run_per_cell(pipe, self.cells)
        self.multiple = getattr(pipe, "vae_scale_factor", 8) or 8

    def mode(self, options: dict) -> str:
        wanted = options.get("image_mode", "auto")
        return ("exact" if self.device == "cpu" else "fast") if wanted == "auto" else wanted

    def preview_vae(self):
        """The tiny autoencoder of this pipeline's family, loaded once; a clear error where there is none."""
        if self.preview is None:
            from diffusers import AutoencoderTiny

            family = type(self.pipe).__name__
            source = PREVIEW_VAES.get(family)
            if source is None:
                raise InvalidInput("preview_vae", f"no tiny preview autoencoder is known for {family}; turn it off")
            try:
                vae = AutoencoderTiny.from_pretrained(source, dtype=torch_dtype(self.dtype))
            except OSError as error:
                raise InvalidInput("preview_vae", f"could not load {source} ({error}); it comes from the Hugging "
                                   "Face Hub: go online once, or turn the preview autoencoder off") from None
            vae.to(self.pipe.device if self.plan != "offload" else self.device).eval()
            vae.decode = _split_by_cell(vae.decode, self.cells)
            self.preview = (source, vae)
        return self.preview

    def stream(self, requests: list[GenerationRequest], options: dict) -> Iterator[Event]:
        check_prompts(requests)
        for side in ("width", "height"):
            if options[side] % self.multiple:
                raise InvalidInput(side, f"must be a multiple of {self.multiple} for this model, got {options[side]}")
        reload_s = ensure_precision(self, options)
        mode = self.mode(options)
        preview = self.preview_vae() if options.get("preview_vae") else None
        negatives = [r.negative_prompt or "" for r in requests]
        steps = options["num_inference_steps"]

        def work(emit, stop) -> list[Output]:
            # One generator per cell: each cell's starting noise comes from its own seed alone.
            generators = [torch.Generator(device="cpu").manual_seed(r.seed) for r in requests]

            def step_end(pipe, step, timestep, kwargs):
                if stop.is_set():
                    pipe._interrupt = True          # diffusers' own stop flag: the loop ends at this step
                emit(Step(step + 1, steps))
                return kwargs

            self.cells.n = len(requests) if mode == "exact" else 1     # 1: modules see the whole batch
            self.pipe.vae = preview[1] if preview else self.full_vae
            timer = Timer()
            try:
                with torch.inference_mode():
                    result = self.pipe(
                        prompt=[r.prompt for r in requests],
                        negative_prompt=negatives if any(negatives) and options["guidance_scale"] > 1 else None,
                        num_inference_steps=steps, guidance_scale=options["guidance_scale"],
                        width=options["width"], height=options["height"], generator=generators,
                        callback_on_step_end=step_end)
            finally:
                self.pipe.vae = self.full_vae
            wall = timer.elapsed
            metrics = {"wall_s": wall, "steps_per_s": steps / wall if wall > 0 else None, "image_mode": mode,
                       "batch_rows": len(requests), "placement": self.plan, "precision_reload_s": reload_s}
            if preview:
                metrics["preview_vae"] = preview[0]
            return [Output(image=image, metrics=dict(metrics)) for image in result.images]

        yield from stream_blocking(work)


class _CellCount:
    n = 1


def _run_per_cell(pipe, cells: _CellCount) -> None:
    """Evaluate the text encoders, the denoiser and the VAE decoder one cell at a time inside the pipeline call.

    Matrix kernels round differently for different batch sizes (a batch of one takes a matrix-vector path), so a
    batched denoiser would make a cell's image depend on how many cells ran beside it. Tokenizing, scheduling and the
    step loop stay batched; each cell's denoiser input has the same shape it has when the cell runs alone
    ([unconditional, conditional] under classifier-free guidance), which keeps images bit-identical.
    """
    for name in ("text_encoder", "text_encoder_2", "text_encoder_3", "unet", "transformer"):
        module = getattr(pipe, name, None)
        if module is not None:
            module.forward = _split_by_cell(module.forward, cells)
    pipe.vae.decode = _split_by_cell(pipe.vae.decode, cells)


def _split_by_cell(forward, cells: _CellCount):
    def per_cell(sample, *args, **kwargs):
        batch, n = sample.shape[0], cells.n
        if n <= 1 or batch % n:
            return forward(sample, *args, **kwargs)
        rows_per_cell = batch // n          # 2 under classifier-free guidance: [uncond..., cond...]
        groups = [torch.tensor([cell + k * n for k in range(rows_per_cell)]) for cell in range(n)]
        parts = [forward(sample[g], *[_take(a, g, batch) for a in args],
                         **{k: _take(v, g, batch) for k, v in kwargs.items()}) for g in groups]
        order = torch.cat(groups).argsort()
        return _merge(parts, order)

    return per_cell


def _take(value, rows, batch):
    if torch.is_tensor(value) and value.ndim > 0 and value.shape[0] == batch:
        return value[rows]
    if isinstance(value, dict):
        return {k: _take(v, rows, batch) for k, v in value.items()}
    return value


def _merge(parts, order):
    """Put per-cell outputs back into one batch in the original row order (tensors, tuples, model outputs)."""
    first = parts[0]
    if torch.is_tensor(first):
        return torch.cat(parts)[order] if first.ndim else first
    if isinstance(first, (tuple, list)):
        return type(first)(_merge([p[i] for p in parts], order) for i in range(len(first)))
    if hasattr(first, "items"):             # transformers' and diffusers' output classes behave like dicts
        for key in list(first.keys()):
            first[key] = _merge([p[key] for p in parts], order)
    return first
