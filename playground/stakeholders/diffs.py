"""Differences between two variants' cells: word-level text diffs as HTML (render/templates), and audio
spectrograms as PNG.

Text is split into words and the whitespace between them, so a diff marks whole words and keeps line breaks.
Spectrograms are a numpy STFT (Hann window) in decibels, drawn with PIL: no plotting library needed.
"""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path

import numpy as np

from ..bounded import BoundedMatcher, OverBudget
from ..render import render

_TOKENS = re.compile(r"\s+|[^\s]+")
MAX_DIFF_CHARS = 200_000
MAX_DIFF_WORK = 3_000_000    # element comparisons one diff may make, in three budgets (about a second)


def tokens(text: str) -> list[str]:
    return _TOKENS.findall(text or "")


def _opcodes(a: list[str], b: list[str], budget: list[int]):
    # Blanks never start a match (they only extend one): they are half the tokens and all alike.
    return BoundedMatcher(a, b, budget, isjunk=str.isspace).get_opcodes()


def _pieces(a: list[str], b: list[str], budget: list[int]) -> list[tuple[str, str]]:
    pieces: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in _opcodes(a, b, budget):
        if op == "equal":
            pieces.append(("equal", "".join(a[i1:i2])))
            continue
        if op in ("delete", "replace"):
            pieces.append(("delete", "".join(a[i1:i2])))
        if op in ("insert", "replace"):
            pieces.append(("insert", "".join(b[j1:j2])))
    return pieces


_CHUNK_TOKENS = 40


def _chunks(words: list[str]) -> list[str]:
    """Tokens joined into short runs of text: a line, a sentence, or at most _CHUNK_TOKENS tokens."""
    chunks, current = [], []
    for token in words:
        current.append(token)
        if "\n" in token or len(current) >= _CHUNK_TOKENS or (token.isspace() and len(current) > 1
                                                                and current[-2].endswith((".", "!", "?", ";"))):
            chunks.append("".join(current))
            current = []
    if current:
        chunks.append("".join(current))
    return chunks


def word_diff_detail(old: str, new: str) -> tuple[list[tuple[str, str]], bool]:
    """(pieces, exact): the word diff when it fits its work budget; else sentences and lines compared as wholes,
    with words compared inside the changed ones while a second budget lasts (then a changed stretch is marked
    whole). The shared beginning and end are always found, in linear time. Never more than MAX_DIFF_WORK."""
    a, b = tokens((old or "")[:MAX_DIFF_CHARS]), tokens((new or "")[:MAX_DIFF_CHARS])
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    middle_a, middle_b = a[head:len(a) - tail], b[head:len(b) - tail]
    prefix = [("equal", "".join(a[:head]))] if head else []
    suffix = [("equal", "".join(a[len(a) - tail:]))] if tail else []
    try:
        return prefix + _pieces(middle_a, middle_b, [MAX_DIFF_WORK // 3]) + suffix, True
    except OverBudget:
        pass
    chunk_budget, word_budget = [MAX_DIFF_WORK // 3], [MAX_DIFF_WORK // 3]
    try:
        chunks_a, chunks_b = _chunks(middle_a), _chunks(middle_b)
        pieces = []
        for op, i1, i2, j1, j2 in _opcodes(chunks_a, chunks_b, chunk_budget):
            removed, added = "".join(chunks_a[i1:i2]), "".join(chunks_b[j1:j2])
            if op == "equal":
                pieces.append(("equal", removed))
                continue
            try:
                if removed and added:
                    pieces += _pieces(tokens(removed), tokens(added), word_budget)
                    continue
            except OverBudget:
                word_budget[0] = 0
            pieces += [p for p in (("delete", removed), ("insert", added)) if p[1]]
    except OverBudget:
        pieces = [p for p in (("delete", "".join(middle_a)), ("insert", "".join(middle_b))) if p[1]]
    return prefix + pieces + suffix, False


@functools.lru_cache(maxsize=8)          # the Diff tab asks for the stats and the HTML of the same two texts
def _cached_diff(old: str, new: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    pieces, exact = word_diff_detail(old, new)
    return tuple(pieces), exact


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(op, text) pieces, op in {"equal", "delete", "insert"}, that turn `old` into `new` word by word (within a
    work budget: see word_diff_detail)."""
    return list(_cached_diff(old or "", new or "")[0])


# Inline styles: the fragment is shown inside pages whose stylesheets we do not control.
DEL_STYLE = "background: #fde2e1; color: #8a1c1c"
INS_STYLE = "background: #dcfce7; color: #14532d; text-decoration: none"


def word_diff_html(old: str, new: str) -> str:
    """The diff as escaped HTML: removed words in <del>, added words in <ins>, inside a pre-wrapped block."""
    pieces, exact = _cached_diff(old or "", new or "")
    return render("word_diff.html.j2", pieces=pieces, exact=exact, del_style=DEL_STYLE, ins_style=INS_STYLE)


def diff_stats(old: str, new: str) -> dict:
    """Words kept, removed and added, and a similarity ratio in [0, 1]."""
    counts = {"equal": 0, "delete": 0, "insert": 0}
    for op, text in word_diff(old, new):
        counts[op] += len(text.split())
    total = 2 * counts["equal"] + counts["delete"] + counts["insert"]
    return {"kept": counts["equal"], "removed": counts["delete"], "added": counts["insert"],
            "similarity": 1.0 if total == 0 else round(2 * counts["equal"] / total, 3)}


# ---- audio ------------------------------------------------------------------------------------------------------

def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """(sample rate, mono float32 samples in [-1, 1]) of a PCM WAV file, read by the log's own WAV reader."""
    from ..scoring.audio import mono, read_wav as decode

    rate, data = decode(Path(path).read_bytes())
    return rate, mono(data)


def stft_db(samples: np.ndarray, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Magnitude spectrogram in dB (frequency bins x frames), 0 dB = the loudest bin."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size < n_fft:
        samples = np.pad(samples, (0, n_fft - samples.size))
    frames = 1 + (samples.size - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(samples[index] * np.hanning(n_fft), axis=1)).T
    db = 20 * np.log10(np.maximum(spectrum, 1e-10))
    return db - db.max()


# A perceptually ordered palette (dark blue -> teal -> yellow), interpolated to 256 steps.
_ANCHORS = np.array([[13, 8, 135], [84, 2, 163], [139, 10, 165], [185, 50, 137], [219, 92, 104], [244, 136, 73],
                     [254, 188, 43], [240, 249, 33]], dtype=float)
_PALETTE = np.stack([np.interp(np.linspace(0, len(_ANCHORS) - 1, 256), np.arange(len(_ANCHORS)), _ANCHORS[:, c])
                     for c in range(3)], axis=1).astype(np.uint8)


def spectrogram_png(samples: np.ndarray, sample_rate: int, *, width: int = 480, height: int = 200,
                    floor_db: float = -80.0) -> bytes:
    """A spectrogram image (time left to right, low frequencies at the bottom) as PNG bytes."""
    from PIL import Image

    n_fft = 512 if sample_rate >= 16_000 else 256
    db = stft_db(samples, n_fft=n_fft, hop=max(1, n_fft // 4))
    level = np.clip((db - floor_db) / -floor_db, 0.0, 1.0)
    pixels = _PALETTE[(level[::-1] * 255).astype(np.uint8)]
    image = Image.fromarray(pixels).resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def spectrogram_of_file(path: Path, **options) -> bytes:
    rate, samples = read_wav(path)
    return spectrogram_png(samples, rate, **options)
