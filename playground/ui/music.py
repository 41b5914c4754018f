"""The Music tab: compare descriptions on MusicGen; an audio player with its waveform per cell."""

from __future__ import annotations

from .compare import CompareTab, build_compare_tab
from .params import param_controls


def build_music_tab(services, browser_state) -> CompareTab:
    return build_compare_tab("music", services, lambda: param_controls("music", services.settings, "music"),
                             browser_state)
