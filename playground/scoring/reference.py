"""Checks that compare an image or a clip with the row's reference image or clip: an experiment whose dataset has an
image or audio column as the expected answer (the rows' files are kept in the data dir: datasets/store.py).

Each has a method that needs no model and means something offline, and the embedding a real model gives:
- image_match: `pixels` (1 - the mean absolute difference of the two images at 32x32, 0 to 1) or `clip` (cosine of
  CLIP image embeddings, -1 to 1: the "CLIP-I" similarity of DreamBooth's evaluation).
- audio_match: `spectrum` (correlation of the two clips' average log spectra over 48 log-spaced bands, -1 to 1: the
  same register and timbre score near 1) or `clap` (cosine of CLAP audio embeddings, -1 to 1).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from ..requests.checks import CheckArgs, CheckText
from .audio import mono, read_wav, resample
from .base import CellInput, Check, ScorerContext
from .models import (CLAP_PRESET, CLIP_PRESET, _cosine, audio_features, clap_for, clip_for, image_features,
                     resolve_scorer, scorer_detail)

IMAGE_SIDE = 32                 # pixels per side both images are reduced to before they are compared
AUDIO_RATE = 16_000             # both clips are resampled to this before their spectra are compared
BANDS = 48                      # log-spaced bands between 50 Hz and 8 kHz


def no_reference(kind: str) -> str:
    return (f"no reference {kind} for this cell: in an experiment, choose the dataset's {kind} column as the "
            "expected answer (an image or audio folder with a metadata.csv, or a Hugging Face dataset with one)")


def _reference_bytes(cell: CellInput, kind: str) -> bytes:
    if cell.reference_file is None:
        raise ValueError(no_reference(kind))
    path = Path(cell.reference_file)
    if not path.is_file():
        raise ValueError(f"the reference {kind} of this cell is no longer in the data dir (imported without it?): "
                         "run the experiment here to keep it again")
    return path.read_bytes()


def reference_image(cell: CellInput):
    from PIL import Image

    image = Image.open(io.BytesIO(_reference_bytes(cell, "image")))
    image.load()
    return image


def reference_audio(cell: CellInput) -> tuple[int, np.ndarray]:
    data = _reference_bytes(cell, "audio")
    if not (data[:4] == b"RIFF" and data[8:12] == b"WAVE"):
        raise ValueError(f"the reference audio is a {Path(cell.reference_file).suffix or 'binary'} file; audio "
                         "references are read as WAV: convert the column's clips to WAV")
    return read_wav(data)


class _ReferenceCheck(Check):
    """Compares the cell's output with the row's reference: by a method that needs no model (`free_method`), or by
    the cosine of a model's embeddings of the two. Subclasses say how to read each side and how to measure."""

    runs_torch = True
    free_method: ClassVar[str]
    preset: ClassVar[str]
    tiny: ClassVar[str]

    def output(self, cell: CellInput):
        raise NotImplementedError

    def reference(self, cell: CellInput):
        raise NotImplementedError

    def free(self, output, reference) -> tuple[float, dict]:
        """(similarity, detail) by the method that needs no model."""
        raise NotImplementedError

    def embeddings(self, context: ScorerContext, source: str, output, reference):
        """The model's embeddings of the output and the reference, one row each."""
        raise NotImplementedError

    def score(self, cell, context):
        output, reference = self.output(cell), self.reference(cell)
        method = self.options["method"]
        if method == self.free_method:
            value, detail = self.free(output, reference)
        else:
            source, meaningless = resolve_scorer(context, self.options["model"], self.preset, self.tiny)
            embedded = self.embeddings(context, source, output, reference)
            value, detail = _cosine(embedded[:1], embedded[1:]), scorer_detail(self.options["model"], self.preset,
                                                                               source, meaningless)
        value = round(value, 6)
        low = self.options["min"]
        return self.make(value, None if low is None else value >= low, method=method, **detail)


class ImageMatch(_ReferenceCheck):
    type, modalities, main_arg, needs_reference = "image_match", ("image",), "method", "image"
    free_method, preset, tiny = "pixels", CLIP_PRESET, "tiny-clip"
    description = ("how close the image is to the row's reference image: pixels (0 to 1, no model) or clip "
                   "(cosine of CLIP image embeddings); passes at min or more if given")

    class Args(CheckArgs):
        method: Literal["pixels", "clip"] = Field("pixels", description="pixels: 1 - mean absolute difference at "
                                                  "32x32; clip: cosine of CLIP image embeddings")
        model: CheckText | None = Field(None, description="for clip: a hub id or folder (default: the CLIP preset; "
                                                          "offline: a tiny random model)")
        min: float | None = Field(None, ge=-1, le=1, description="the similarity a pass needs, e.g. 0.9")

    def output(self, cell):
        if cell.image is None:
            raise ValueError("this cell has no image to compare")
        return cell.image

    def reference(self, cell):
        return reference_image(cell)

    def free(self, output, reference):
        return pixel_similarity(output, reference), {"side": IMAGE_SIDE}

    def embeddings(self, context, source, output, reference):
        model, processor = clip_for(context, source)
        return image_features(model, processor, [output, reference], context.device)


class AudioMatch(_ReferenceCheck):
    type, modalities, main_arg, needs_reference = "audio_match", ("music",), "method", "audio"
    free_method, preset, tiny = "spectrum", CLAP_PRESET, "tiny-clap"
    description = ("how close the clip is to the row's reference clip: spectrum (correlation of average log "
                   "spectra, no model) or clap (cosine of CLAP audio embeddings), -1 to 1; passes at min or more")

    class Args(CheckArgs):
        method: Literal["spectrum", "clap"] = Field("spectrum", description="spectrum: correlation of the average "
                                                    "log spectra; clap: cosine of CLAP audio embeddings")
        model: CheckText | None = Field(None, description="for clap: a hub id or folder (default: the CLAP preset; "
                                                          "offline: a tiny random model)")
        min: float | None = Field(None, ge=-1, le=1, description="the similarity a pass needs, e.g. 0.8")

    def output(self, cell):
        if cell.audio is None:
            raise ValueError("this cell has no audio to compare")
        return cell.audio

    def reference(self, cell):
        return reference_audio(cell)

    def free(self, output, reference):
        return spectrum_similarity(output, reference), {"bands": BANDS}

    def embeddings(self, context, source, output, reference):
        model, processor = clap_for(context, source)
        return audio_features(model, processor, [output, reference], context.device)


def pixel_similarity(image, reference) -> float:
    """1 - the mean absolute difference of the two images' RGB values at IMAGE_SIDE x IMAGE_SIDE, 0 to 1."""
    from PIL import Image

    def small(picture):
        return np.asarray(picture.convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BOX),
                          dtype=np.float64) / 255.0

    return float(1.0 - np.abs(small(image) - small(reference)).mean())


def log_spectrum(audio: tuple[int, np.ndarray]) -> np.ndarray:
    """The clip's average power per log-spaced band (50 Hz to 8 kHz), in dB: its register and timbre."""
    samples = resample(mono(audio[1]), int(audio[0]), AUDIO_RATE)
    window = 1024
    if len(samples) < window:
        samples = np.pad(samples, (0, window - len(samples)))
    frames = np.lib.stride_tricks.sliding_window_view(samples, window)[::window // 2] * np.hanning(window)
    power = (np.abs(np.fft.rfft(frames, axis=-1)) ** 2).mean(axis=0)
    frequencies = np.fft.rfftfreq(window, 1 / AUDIO_RATE)
    edges = np.geomspace(50, AUDIO_RATE / 2, BANDS + 1)
    band = np.digitize(frequencies, edges) - 1
    # bands too narrow to hold a frequency bin are left out: they would read the same in every clip
    energy = np.array([power[band == b].sum() for b in range(BANDS) if (band == b).any()])
    return 10 * np.log10(energy + 1e-10)


def spectrum_similarity(audio, reference) -> float:
    """Pearson correlation of the two clips' log spectra, -1 to 1 (0 when either is flat, such as silence)."""
    a, b = log_spectrum(audio), log_spectrum(reference)
    a, b = a - a.mean(), b - b.mean()
    scale = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return 0.0 if scale < 1e-9 else float((a * b).sum() / scale)
