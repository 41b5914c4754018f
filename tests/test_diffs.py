"""Word-level diffs on known strings, and spectrograms of known signals."""

from __future__ import annotations

import io
import re
import wave
from html.parser import HTMLParser

import numpy as np
from PIL import Image

from playground.stakeholders.diffs import (diff_stats, read_wav, spectrogram_of_file, spectrogram_png, stft_db,
                                           word_diff, word_diff_html)


def test_word_diff_marks_whole_words():
    assert word_diff("the quick brown fox", "the slow brown fox jumps") == [
        ("equal", "the "), ("delete", "quick"), ("insert", "slow"), ("equal", " brown fox"), ("insert", " jumps")]
    assert word_diff("same text", "same text") == [("equal", "same text")]
    assert word_diff("", "new words") == [("insert", "new words")]
    assert word_diff("old words", "") == [("delete", "old words")]


def test_word_diff_html_escapes_and_keeps_line_breaks():
    styled = word_diff_html("Write a <b>tagline</b>\nfor it.", "Write one <b>tagline</b>\nfor it & more.")
    assert 'style="background' in styled                             # readable without the page's stylesheet
    out = re.sub(r'<(del|ins) style="[^"]*">', r"<\1>", styled)
    assert out.count("<del>") == 2 and out.count("<ins>") == 2
    assert "<del>a</del><ins>one</ins>" in out
    assert "&lt;b&gt;tagline&lt;/b&gt;\nfor" in out
    assert "<del>it.</del><ins>it &amp; more.</ins>" in out

    class Tags(HTMLParser):
        seen: list = []

        def handle_starttag(self, tag, attrs):
            self.seen.append(tag)
    parser = Tags()
    parser.feed(styled)
    assert set(parser.seen) == {"div", "del", "ins"}                # the user's <b> is text, not markup


def test_diff_stats():
    assert diff_stats("a b c d", "a b x d") == {"kept": 3, "removed": 1, "added": 1, "similarity": 0.75}
    assert diff_stats("", "")["similarity"] == 1.0


def test_spectrogram_of_a_tone_peaks_at_its_frequency():
    rate = 16_000
    t = np.arange(rate) / rate
    db = stft_db(np.sin(2 * np.pi * 1000 * t), n_fft=512, hop=128)
    assert db.shape[0] == 257
    peak_bin = int(np.argmax(db.mean(axis=1)))
    assert peak_bin == round(1000 / (rate / 512))                   # bin width 31.25 Hz -> bin 32
    png = spectrogram_png(np.sin(2 * np.pi * 1000 * t), rate, width=300, height=100)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (300, 100)
    pixels = np.asarray(image.convert("L"), dtype=float)
    row = int(round((1 - 1000 / 8000) * 99))                         # low frequencies at the bottom
    assert pixels[row - 1: row + 2].mean() > pixels[5:20].mean() + 50


def test_spectrogram_of_a_wav_file_and_short_clips(tmp_path):
    path = tmp_path / "tone.wav"
    samples = (np.sin(np.arange(8000) * 0.2) * 20000).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(np.repeat(samples, 2).tobytes())
    rate, mono = read_wav(path)
    assert rate == 8000 and mono.shape == (8000,) and abs(mono.max() - 20000 / 32768) < 1e-3
    assert Image.open(io.BytesIO(spectrogram_of_file(path))).size == (480, 200)
    assert Image.open(io.BytesIO(spectrogram_png(np.zeros(10), 8000))).size == (480, 200)   # shorter than a frame


def test_24_bit_wav_is_read_too(tmp_path):
    path = tmp_path / "x.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(3)
        out.setframerate(8000)
        out.writeframes(b"\0\0\x40" * 10)          # +0.5 in 24-bit little-endian
    rate, samples = read_wav(path)
    assert rate == 8000 and samples.shape == (10,) and np.allclose(samples, 0.5)
