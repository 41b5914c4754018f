"""MusicGen through transformers: all descriptions in one batched `generate`, waveforms out."""

from __future__ import annotations

import io
import math
import time
import wave
from typing import Callable

import numpy as np
import torch
from transformers import AutoProcessor, MusicgenForConditionalGeneration

from .base import Backend, GenerationRequest, Output, check_prompts, torch_dtype
from .sampling import SeededSampler


class MusicBackend(Backend):
    modality = "music"
    backend_name = "transformers.MusicgenForConditionalGeneration"

    def load_weights(self) -> None:
        self.processor = AutoProcessor.from_pretrained(self.source)
        self.model = MusicgenForConditionalGeneration.from_pretrained(self.source, dtype=torch_dtype(self.dtype))
        self.model.to(self.device).eval()
        self.model.audio_encoder.decode = _decode_each_clip(self.model.audio_encoder.decode)

    @property
    def frame_rate(self) -> float:
        """Audio-token frames per second, from the model's own codec (50 for the released checkpoints)."""
        codec = self.model.config.audio_encoder
        return codec.sampling_rate / math.prod(codec.upsampling_ratios)

    @property
    def sampling_rate(self) -> int:
        return int(self.model.config.audio_encoder.sampling_rate)

    def generate(self, requests: list[GenerationRequest], params: dict,
                 on_progress: Callable[[tuple[int, int]], None] | None = None) -> list[Output]:
        check_prompts(requests, max_chars=100_000)
        inputs = self.processor(text=[r.prompt for r in requests], padding=True, return_tensors="pt").to(self.device)
        # The delay pattern costs num_codebooks - 1 frames at the end; generate them too so the clip is full length.
        steps = math.ceil(params["duration_s"] * self.frame_rate) + self.model.decoder.num_codebooks - 1
        guidance = params["guidance_scale"]
        sampler = SeededSampler([r.seed for r in requests], do_sample=params["temperature"] > 0,
                                temperature=params["temperature"] or 1.0, top_k=params["top_k"],
                                rows_per_seed=self.model.decoder.num_codebooks,
                                guidance_scale=guidance,
                                on_step=(lambda step: on_progress((min(step, steps), steps))) if on_progress else None)

        started = time.perf_counter()
        with torch.inference_mode():
            audio = self.model.generate(**inputs, max_new_tokens=steps, do_sample=False, guidance_scale=guidance,
                                        logits_processor=[sampler])
        wall = time.perf_counter() - started

        samples = int(round(params["duration_s"] * self.sampling_rate))
        waves = audio.float().cpu().numpy()[..., :samples]
        outputs = []
        for wave_ in waves:
            wave_ = wave_[0] if wave_.shape[0] == 1 else wave_
            seconds = wave_.shape[-1] / self.sampling_rate
            outputs.append(Output(audio=(self.sampling_rate, wave_), metrics={
                "wall_s": wall, "audio_s": seconds, "realtime_factor": seconds / wall if wall > 0 else None,
                "audio_tokens": steps}))
        return outputs


def _decode_each_clip(decode: Callable) -> Callable:
    """Wrap the codec's decode so every clip is decoded as a batch of one.

    A batched decode rounds differently from a batch of one; decoding each clip alone keeps a cell's waveform
    bit-identical whichever cells ran beside it, at the cost of a few small codec calls.
    """
    def per_clip(audio_codes, audio_scales=None, *args, **kwargs):
        scales = audio_scales or [None] * audio_codes.shape[1]
        parts = [decode(audio_codes[:, i:i + 1], [scales[i]], *args, **kwargs) for i in range(audio_codes.shape[1])]
        first = parts[0]
        first.audio_values = torch.cat([part.audio_values for part in parts])
        return first

    return per_clip


def to_wav_bytes(sample_rate: int, waveform: np.ndarray) -> bytes:
    """16-bit PCM WAV; peaks above full scale are clipped rather than wrapped."""
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
