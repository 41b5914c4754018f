"""The Image tab: compare prompt variants on text-to-image pipelines; one image per cell."""

from __future__ import annotations

from .compare import CompareTab, build_compare_tab
from .params import param_controls


def build_image_tab(services, browser_state) -> CompareTab:
    return build_compare_tab("image", services, lambda: param_controls("image", services.settings, "image"),
                             browser_state, prompt_boxes=("negative_prompt",))
