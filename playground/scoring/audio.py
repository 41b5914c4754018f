"""Checks on music outputs that need no model: loudness, clipping and silence, from the waveform with numpy."""

from __future__ import annotations

import io
import wave

import numpy as np

from pydantic import Field

from .base import CellInput, Check
from ..requests.checks import CheckArgs

_FLOOR_DB = -120.0             # what digital silence reads as, instead of minus infinity


def read_wav(data: bytes) -> tuple[int, np.ndarray]:
    """PCM WAV bytes (8, 16, 24 or 32 bit) -> (sample_rate, float32 array in -1..1, (samples,) or (channels, samples))."""
    with wave.open(io.BytesIO(data), "rb") as handle:
        rate, channels, width = handle.getframerate(), handle.getnchannels(), handle.getsampwidth()
        frames = handle.readframes(handle.getnframes())
    if width == 1:
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        samples = (np.where(value >= 1 << 23, value - (1 << 24), value) / float(1 << 23)).astype(np.float32)
    elif width == 4:
        samples = np.frombuffer(frames, dtype="<i4").astype(np.float32) / float(1 << 31)
    else:
        raise ValueError(f"unsupported WAV sample width: {width} bytes")
    if channels > 1:
        samples = samples.reshape(-1, channels).T
    return rate, samples


def mono(waveform) -> np.ndarray:
    data = np.asarray(waveform, dtype=np.float32)
    return data if data.ndim == 1 else data.mean(axis=0)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """`samples` at `rate` brought to `target` samples per second (polyphase, scipy); unchanged at the same rate."""
    if rate == target:
        return samples
    from scipy.signal import resample_poly

    divisor = int(np.gcd(rate, target))
    return resample_poly(samples, target // divisor, rate // divisor).astype(np.float32)


def dbfs(rms: np.ndarray | float) -> np.ndarray | float:
    """RMS level in dB relative to full scale (a full-scale square wave is 0 dBFS, a full-scale sine -3)."""
    return np.maximum(20.0 * np.log10(np.maximum(rms, 1e-12)), _FLOOR_DB)


def _audio(cell: CellInput) -> tuple[int, np.ndarray]:
    if cell.audio is None:
        raise ValueError("this cell has no audio to check")
    rate, waveform = cell.audio
    return int(rate), np.asarray(waveform, dtype=np.float32)


class Loudness(Check):
    type, modalities, better = "loudness", ("music",), None
    description = "RMS level in dBFS; passes when between min_db and max_db if given"
    class Args(CheckArgs):
        min_db: float | None = Field(None, description="quietest acceptable level, e.g. -30")
        max_db: float | None = Field(None, description="loudest acceptable level, e.g. -6")

    def score(self, cell, context):
        rate, waveform = _audio(cell)
        data = waveform.ravel()
        level = float(dbfs(float(np.sqrt(np.mean(np.square(data, dtype=np.float64))))) if data.size else _FLOOR_DB)
        low, high = self.options["min_db"], self.options["max_db"]
        passed = None if low is None and high is None else (
            (low is None or level >= low) and (high is None or level <= high))
        return self.make(round(level, 4), passed, unit="dBFS", peak=float(np.max(np.abs(data))) if data.size else 0.0)


class Clipping(Check):
    type, modalities, better = "clipping", ("music",), "lower"
    description = "share of samples at full scale; passes when at most max_fraction"
    class Args(CheckArgs):
        threshold: float = Field(0.999, description="|sample| at or above this counts as clipped")
        max_fraction: float = Field(0.001, description="most clipped samples allowed, as a share")

    def score(self, cell, context):
        rate, waveform = _audio(cell)
        data = np.abs(waveform.ravel())
        fraction = float(np.mean(data >= self.options["threshold"])) if data.size else 0.0
        return self.make(fraction, fraction <= self.options["max_fraction"], clipped_samples=int(
            np.sum(data >= self.options["threshold"])))


class Silence(Check):
    type, modalities, better = "silence", ("music",), "lower"
    description = "share of 50 ms windows quieter than silence_db; passes when at most max_fraction"
    class Args(CheckArgs):
        silence_db: float = Field(-60.0, description="a window quieter than this (dBFS) is silent")
        max_fraction: float = Field(0.5, description="most silent time allowed, as a share")

    def score(self, cell, context):
        rate, waveform = _audio(cell)
        data = mono(waveform)
        window = max(int(rate * 0.05), 1)
        count = max(len(data) // window, 1)
        frames = np.resize(data, count * window).reshape(count, window) if len(data) >= window else data[None, :]
        levels = dbfs(np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))) if data.size else \
            np.array([_FLOOR_DB])
        fraction = float(np.mean(levels < self.options["silence_db"]))
        return self.make(fraction, fraction <= self.options["max_fraction"], windows=int(len(levels)))
