"""Media made small enough to embed in one HTML file: images as JPEG at display size, audio as short MP3 clips.

Audio is MP3 (mono, 16 kHz, 48 kbit/s, about 6 KB a second) encoded by `lameenc`, which bundles the LAME encoder
in its wheel, so no system binary is needed; MP3 plays in every current browser. Without lameenc, audio falls
back to 16 kHz mono 16-bit WAV (about 32 KB a second).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engines.base import to_wav_bytes
from ..scoring.audio import resample
from .diffs import read_wav

IMAGE_SIDE = 384            # px: the report's cell width; larger images are scaled down to it
JPEG_QUALITY = 80
AUDIO_RATE = 16_000
AUDIO_MAX_S = 20.0          # longer clips are cut, and the report says so
MP3_KBPS = 48


@dataclass
class Embedded:
    uri: str                 # data: URI
    size: int                # bytes of the encoded media (before base64)
    note: str = ""           # what was changed (scaled, clipped), shown under the media


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_jpeg(path: Path, side: int = IMAGE_SIDE, quality: int = JPEG_QUALITY) -> Embedded:
    from PIL import Image

    with Image.open(path) as image:
        original = image.size
        image = image.convert("RGB")
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
    data = buffer.getvalue()
    note = "" if image.size == original else f"shown at {image.size[0]}x{image.size[1]} (original " \
                                             f"{original[0]}x{original[1]})"
    return Embedded(data_uri("image/jpeg", data), len(data), note)


def _pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(np.nan_to_num(samples), -1.0, 1.0) * 32767).astype("<i2").tobytes()


def encode_mp3(samples: np.ndarray, rate: int = AUDIO_RATE, kbps: int = MP3_KBPS) -> bytes:
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_quality(5)
    return bytes(encoder.encode(_pcm16(samples)) + encoder.flush())


def audio_clip(path: Path, max_s: float = AUDIO_MAX_S) -> Embedded:
    rate, samples = read_wav(path)
    seconds = samples.size / rate if rate else 0.0
    samples = resample(samples[: int(max_s * rate)], rate, AUDIO_RATE)
    notes = [f"first {max_s:g} s of {seconds:.1f} s"] if seconds > max_s else []
    try:
        data, mime = encode_mp3(samples), "audio/mpeg"
    except ImportError:
        data, mime = to_wav_bytes(AUDIO_RATE, samples), "audio/wav"
    notes.append(f"{'MP3' if mime == 'audio/mpeg' else 'WAV'}, mono, {AUDIO_RATE // 1000} kHz")
    return Embedded(data_uri(mime, data), len(data), "; ".join(notes))
