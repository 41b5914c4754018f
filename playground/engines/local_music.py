"""MusicGen through transformers: a batch of descriptions in one batched `generate`, waveforms out."""

from __future__ import annotations

import math
from typing import Callable, Iterator

import torch
from transformers import AutoProcessor, MusicgenForConditionalGeneration, StoppingCriteriaList

from . import linears
from .base import Event, GenerationRequest, LocalModel, Output, Step, Timer, check_prompts, stream_blocking, torch_dtype
from .local_text import StopWhenSet
from .placement import ensure_precision, load_plan, transformers_placement
from .sampling import SeededSampler


class LocalMusicModel(LocalModel):
    def load_weights(self) -> None:
        self.processor = AutoProcessor.from_pretrained(self.source, **self.hub_revision)
        self.plan = load_plan(self.device, self.offload)
        self.model = MusicgenForConditionalGeneration.from_pretrained(
            self.source, dtype=torch_dtype(self.dtype), **transformers_placement(self.plan, self.device),
            **self.hub_revision)
        if self.plan == "cpu":
            self.model.to(self.device)
        self.model.eval()
        self.model.audio_encoder.decode = _decode_each_clip(self.model.audio_encoder.decode)
        # Packed linears: a faster decoder step on CPU, each row's numbers independent of its batch (linears.py).
        self.linears = linears.pack(self.model) if self.plan == "cpu" else linears.PLAIN

    @property
    def frame_rate(self) -> float:
        """Audio-token frames per second, from the model's own codec (50 for the released checkpoints)."""
        codec = self.model.config.audio_encoder
        return codec.sampling_rate / math.prod(codec.upsampling_ratios)

    @property
    def sampling_rate(self) -> int:
        return int(self.model.config.audio_encoder.sampling_rate)

    def stream(self, requests: list[GenerationRequest], options: dict) -> Iterator[Event]:
        check_prompts(requests)
        reload_s = ensure_precision(self, options)
        inputs = self.processor(text=[r.prompt for r in requests], padding=True,
                                return_tensors="pt").to(self.model.device)
        # The delay pattern costs num_codebooks - 1 frames at the end; generate them too so the clip is full length.
        steps = math.ceil(options["duration_s"] * self.frame_rate) + self.model.decoder.num_codebooks - 1
        guidance = options["guidance_scale"]

        def work(emit, stop) -> list[Output]:
            sampler = SeededSampler([r.seed for r in requests], do_sample=options["temperature"] > 0,
                                    temperature=options["temperature"] or 1.0, top_k=options["top_k"],
                                    rows_per_seed=self.model.decoder.num_codebooks, guidance_scale=guidance,
                                    on_step=lambda step: emit(Step(min(step, steps), steps)))
            timer = Timer()
            with torch.inference_mode():
                audio = self.model.generate(**inputs, max_new_tokens=steps, do_sample=False, guidance_scale=guidance,
                                            logits_processor=[sampler],
                                            stopping_criteria=StoppingCriteriaList([StopWhenSet(stop)]))
            wall = timer.elapsed
            samples = int(round(options["duration_s"] * self.sampling_rate))
            outputs = []
            for wave_ in audio.float().cpu().numpy()[..., :samples]:
                wave_ = wave_[0] if wave_.shape[0] == 1 else wave_
                seconds = wave_.shape[-1] / self.sampling_rate
                outputs.append(Output(audio=(self.sampling_rate, wave_), metrics={
                    "wall_s": wall, "audio_s": seconds, "realtime_factor": seconds / wall if wall > 0 else None,
                    "audio_tokens": steps, "batch_rows": len(requests), "placement": self.plan, "linears": self.linears,
                    "precision_reload_s": reload_s}))
            return outputs

        yield from stream_blocking(work)


def _decode_each_clip(decode: Callable) -> Callable:
    """Wrap the codec's decode so every clip is decoded as a batch of one.

    A batched decode rounds differently from a batch of one (EnCodec at MusicGen-small's size differs in float32
    and in bfloat16: tests/test_speed.py); decoding each clip alone keeps a cell's waveform bit-identical whichever
    cells ran beside it, at the cost of a few small codec calls (their share is printed by benchmarks/bench_speed.py).
    """
    def per_clip(audio_codes, audio_scales=None, *args, **kwargs):
        scales = audio_scales or [None] * audio_codes.shape[1]
        parts = [decode(audio_codes[:, i:i + 1], [scales[i]], *args, **kwargs) for i in range(audio_codes.shape[1])]
        first = parts[0]
        first.audio_values = torch.cat([part.audio_values for part in parts])
        return first

    per_clip.__wrapped_decode__ = decode      # the batched decode, for measuring what per-clip costs
    return per_clip
