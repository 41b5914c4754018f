"""The music toy world: synthesised arpeggios whose tempo, pitch and loudness follow the words of a description.

A piece is a tempo (70, 100 or 140 beats per minute), a register (low, mid or high: a major triad of pure tones)
and a loudness. A description says them with words ("slow", "deep", "soft", "energetic") or numbers ("80 BPM" is
taken as the nearest of the three tempos); what it does not say takes the default (100 BPM, mid, medium). Each beat plays the next note of the triad for 60% of the beat.
The audio is made of 20 ms frames (50 a second at 32 kHz, MusicGen's framing); every pitch is a multiple of 50 Hz,
so each frame of a note holds whole periods and a frame is one code: silence, or (pitch, loudness).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 32000
FRAME_RATE = 50
HOP = SAMPLE_RATE // FRAME_RATE
REGISTERS = {"low": (200, 250, 300), "mid": (400, 500, 600), "high": (800, 1000, 1200)}
PITCHES = tuple(p for triad in REGISTERS.values() for p in triad)
LOUDNESS = {"quiet": 0.08, "medium": 0.25, "loud": 0.7}            # peak amplitude of a note
ARPEGGIO = (0, 1, 2, 1)
NOTE_SHARE = 0.6
TEMPO_WORDS = {"slow": 70, "fast": 140}
TEMPOS = (70, 100, 140)
BPMS = (60, 70, 75, 80, 90, 100, 110, 120, 128, 140, 150, 160)
DEFAULT = ("100", "mid", "medium")

# Words that set an attribute (some set two: "energetic" is fast and loud).
CUES = {
    "slow": {"tempo": "slow"}, "laid back": {"tempo": "slow"}, "relaxed": {"tempo": "slow"},
    "chill": {"tempo": "slow"}, "lullaby": {"tempo": "slow", "loudness": "quiet"},
    "calm": {"tempo": "slow", "loudness": "quiet"}, "melancholic": {"tempo": "slow", "register": "low"},
    "fast": {"tempo": "fast"}, "upbeat": {"tempo": "fast"}, "driving": {"tempo": "fast", "loudness": "loud"},
    "energetic": {"tempo": "fast", "loudness": "loud"}, "bouncy": {"tempo": "fast", "register": "high"},
    "low": {"register": "low"}, "deep": {"register": "low"}, "dark": {"register": "low"},
    "bass": {"register": "low"}, "high": {"register": "high"}, "bright": {"register": "high"},
    "sparkly": {"register": "high"}, "happy": {"register": "high"}, "sunny": {"register": "high"},
    "soft": {"loudness": "quiet"}, "quiet": {"loudness": "quiet"}, "gentle": {"loudness": "quiet"},
    "mellow": {"loudness": "quiet"}, "loud": {"loudness": "loud"}, "powerful": {"loudness": "loud"},
    "punchy": {"loudness": "loud"}, "big": {"loudness": "loud"},
}
FILLERS = ["song", "melody", "tune", "beat", "track", "theme", "loop", "groove", "piece"]
STYLES = ["lo-fi hip hop", "acoustic guitar", "solo piano", "synthwave", "jazz", "funk", "reggae", "ambient",
          "orchestral", "electronic", "folk", "house", "techno", "ballad", "pop", "rock", "string quartet"]


@dataclass(frozen=True)
class Piece:
    bpm: int = 100
    register: str = "mid"
    loudness: str = "medium"


def piece_of(description: str) -> Piece:
    """What the world makes of a description: numbers before words, later words over earlier ones."""
    text = description.lower()
    found: dict[str, str] = {}
    for word, sets in sorted(CUES.items(), key=lambda item: text.find(item[0])):
        if re.search(rf"\b{re.escape(word)}\b", text):
            found.update(sets)
    bpm = re.search(r"\b(\d{2,3})\s*bpm\b", text)
    tempo = int(bpm.group(1)) if bpm else TEMPO_WORDS.get(found.get("tempo", ""), 100)
    tempo = min(TEMPOS, key=lambda t: abs(t - tempo))
    return Piece(tempo, found.get("register", "mid"), found.get("loudness", "medium"))


def describe(rng: random.Random) -> str:
    """A description with a style, a noun and none to three cues, sometimes a tempo in BPM."""
    parts = [f"{rng.choice(STYLES)} {rng.choice(FILLERS)}"]
    cues = rng.sample(sorted(CUES), rng.choice([0, 1, 1, 2, 2, 3]))
    if rng.random() < 0.35:
        cues.append(f"{rng.choice(BPMS)} BPM")
    rng.shuffle(cues)
    if cues and rng.random() < 0.5:
        parts = [f"a {cues[0]} {parts[0]}"] + cues[1:]
    else:
        parts += cues
    return ", ".join(parts)


def beat_frames(bpm: int) -> int:
    return max(2, round(FRAME_RATE * 60 / bpm))


def codes(piece: Piece, frames: int, offset: int = 0) -> list[int]:
    """One code per frame: 0 for silence, else 1 + 3 * pitch index + loudness index. `offset` starts mid-piece."""
    beat = beat_frames(piece.bpm)
    on = max(1, round(beat * NOTE_SHARE))
    triad = REGISTERS[piece.register]
    level = list(LOUDNESS).index(piece.loudness)
    out = []
    for frame in range(offset, offset + frames):
        index, within = divmod(frame, beat)
        if within >= on:
            out.append(0)
        else:
            pitch = triad[ARPEGGIO[index % len(ARPEGGIO)]]
            out.append(1 + 3 * PITCHES.index(pitch) + level)
    return out


CODES = 1 + 3 * len(PITCHES)


def synthesize(frame_codes: list[int]) -> np.ndarray:
    """The waveform of a code sequence: a sine per sounding frame, whole periods, so frames join without clicks."""
    t = np.arange(HOP) / SAMPLE_RATE
    out = np.zeros(len(frame_codes) * HOP, dtype=np.float32)
    for i, code in enumerate(frame_codes):
        if code:
            pitch, level = PITCHES[(code - 1) // 3], list(LOUDNESS.values())[(code - 1) % 3]
            out[i * HOP:(i + 1) * HOP] = level * np.sin(2 * math.pi * pitch * t)
    return out


def analyse(wave: np.ndarray, rate: int = SAMPLE_RATE) -> dict:
    """Tempo, pitch and loudness read back from audio: onsets of the frame levels, the strongest frequency of the
    sounding frames, and their peak level."""
    wave = np.asarray(wave, dtype=np.float64).ravel()
    hop = rate // FRAME_RATE
    frames = wave[: len(wave) // hop * hop].reshape(-1, hop)
    if not len(frames):
        return {"bpm": None, "pitch": None, "peak": 0.0, "register": None}
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    sounding = rms > max(0.2 * rms.max(), 1e-3)
    onsets = [i for i in range(1, len(sounding)) if sounding[i] and not sounding[i - 1]]
    bpm = 60 * FRAME_RATE / float(np.median(np.diff(onsets))) if len(onsets) >= 2 else None
    if not sounding.any():
        return {"bpm": bpm, "pitch": None, "peak": float(np.abs(wave).max()), "register": None}
    spectrum = np.abs(np.fft.rfft(frames[sounding] * np.hanning(hop), axis=1)).mean(axis=0)
    pitch = float(np.argmax(spectrum[1:]) + 1) * rate / hop
    register = min(REGISTERS, key=lambda name: abs(math.log(pitch / REGISTERS[name][1])))
    return {"bpm": bpm, "pitch": pitch, "peak": float(np.percentile(np.abs(frames[sounding]), 99)),
            "register": register}
