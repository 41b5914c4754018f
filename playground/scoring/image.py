"""Checks on images that need no model: how close the image's main colour is to a colour asked for. A reward that
means something even with the tiny offline models, and one a prompt can move by the colour words it uses."""

from __future__ import annotations

import colorsys
import math

from pydantic import Field

from ..requests.checks import CheckArgs, CheckText
from .base import CellInput, Check

SIDE = 64                       # pixels per side the image is reduced to before its colours are read


def color_hue(name: str) -> float | None:
    """A CSS colour name or #hex as a hue in degrees (0 red, 120 green, 240 blue); None for a grey or unknown."""
    from PIL import ImageColor

    try:
        red, green, blue = ImageColor.getrgb(name.strip())[:3]
    except ValueError:
        return None
    hue, saturation, value = colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)
    return None if saturation * value < 0.15 else hue * 360       # a grey, white or black has no hue


def main_hue(image) -> float | None:
    """The image's main hue in degrees: the circular mean of every pixel's hue, weighted by how colourful it is
    (saturation x value); None for an image without colour."""
    import numpy as np

    hsv = np.asarray(image.convert("RGB").resize((SIDE, SIDE)).convert("HSV"), dtype=np.float64) / 255.0
    angle, weight = hsv[..., 0] * 2 * math.pi, hsv[..., 1] * hsv[..., 2]
    x, y = float((weight * np.cos(angle)).sum()), float((weight * np.sin(angle)).sum())
    if math.hypot(x, y) < 1e-6 * SIDE * SIDE:
        return None
    return math.degrees(math.atan2(y, x)) % 360


def _words(cell: CellInput) -> list[str]:
    return [w.strip(".,;:!?()\"'").lower() for w in cell.prompt.split()]


class Hue(Check):
    type, modalities, main_arg = "hue", ("image",), "color"
    description = ("how close the image's main colour is to a colour (1: the same hue, 0: the opposite); "
                   "passes at min or more if given")
    from_reference = {"color": "red"}

    class Args(CheckArgs):
        color: CheckText | None = Field(None, description="a colour name or #hex (in an experiment: the row's "
                                        "expected answer when left out; else the first colour word of the prompt)")
        min: float | None = Field(None, ge=0, le=1, description="the closeness a pass needs, e.g. 0.8")

    def _target(self, cell: CellInput) -> tuple[str | None, float | None]:
        given = self.argument("color", cell)
        if given:
            return given, color_hue(given)
        for word in _words(cell):
            hue = color_hue(word)
            if hue is not None:
                return word, hue
        return None, None

    def score(self, cell, context):
        if cell.image is None:
            raise ValueError("this cell has no image to check")
        name, target = self._target(cell)
        if target is None:
            return self.make(None, None, error=f"{name!r} is not a colour name or #hex" if name else
                             "no colour to compare with: give the check a colour, or name one in the prompt")
        found = main_hue(cell.image)
        if found is None:
            return self.make(0.0, False if self.options["min"] is not None else None, color=name,
                             note="the image has no colour")
        distance = abs((found - target + 180) % 360 - 180)
        closeness = round(1 - distance / 180, 6)
        low = self.options["min"]
        return self.make(closeness, None if low is None else closeness >= low, color=name,
                         hue=round(found, 1), target_hue=round(target, 1))
