"""The Text tab: compare prompt variants on causal language models; outputs stream in."""

from __future__ import annotations

from .compare import CompareTab, build_compare_tab
from .params import param_controls


def build_text_tab(services, browser_state) -> CompareTab:
    return build_compare_tab("text", services, lambda: param_controls("text", services.settings, "text"),
                             browser_state, prompt_boxes=("system",))
