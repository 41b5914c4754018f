"""Checks on image outputs that need no model: the hue of the image's colourful pixels against a named colour."""

from __future__ import annotations

import math

import numpy as np

from pydantic import Field, field_validator

from .base import Check
from ..requests.checks import CheckArgs

# Hue in degrees of each colour name the check knows (the HSV colour wheel).
HUES = {"red": 0.0, "orange": 30.0, "yellow": 55.0, "green": 120.0, "cyan": 180.0, "blue": 225.0, "purple": 275.0,
        "pink": 330.0}


def hue_of(image, min_saturation: float = 0.35, min_value: float = 0.25) -> tuple[float | None, float]:
    """(mean hue in degrees of the colourful pixels, their share of the image); (None, 0) for an image without
    colour. The mean is circular (red at 350 and 10 degrees averages to 0, not 180), weighted by saturation."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3) / 255.0
    high, low = rgb.max(axis=1), rgb.min(axis=1)
    chroma = high - low
    saturation = np.where(high > 0, chroma / np.maximum(high, 1e-9), 0.0)
    colourful = (saturation >= min_saturation) & (high >= min_value)
    if not colourful.any():
        return None, 0.0
    r, g, b = rgb[colourful].T
    c, top = chroma[colourful], high[colourful]
    sector = np.where(top == r, ((g - b) / c) % 6, np.where(top == g, (b - r) / c + 2, (r - g) / c + 4))
    angles = sector * (math.pi / 3)
    weights = saturation[colourful]
    angle = math.atan2(float(np.sum(weights * np.sin(angles))), float(np.sum(weights * np.cos(angles))))
    return math.degrees(angle) % 360.0, float(colourful.mean())


def hue_distance(a: float, b: float) -> float:
    """Degrees between two hues on the colour wheel (0 to 180)."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


def colour_name(hue: float | None) -> str | None:
    """The named colour nearest a hue."""
    return None if hue is None else min(HUES, key=lambda name: hue_distance(hue, HUES[name]))


def target_hue(colour: str) -> float:
    """A colour name's hue, or a hue given in degrees (0 to 360)."""
    name = colour.strip().lower()
    if name in HUES:
        return HUES[name]
    try:
        degrees = float(name)
    except ValueError:
        raise ValueError(f"must be one of {', '.join(HUES)} or a hue in degrees, got {colour!r}") from None
    if not 0 <= degrees <= 360:
        raise ValueError(f"a hue in degrees is between 0 and 360, got {colour!r}")
    return degrees


class Hue(Check):
    type, modalities, main_arg = "hue", ("image",), "colour"
    description = ("how close the mean hue of the image's colourful pixels is to a colour: 1 the same hue, 0 the "
                   "opposite one or no colour at all; passes within `tolerance` degrees")

    class Args(CheckArgs):
        colour: str = Field(max_length=40, description=f"{', '.join(HUES)}, or a hue in degrees (0 red, 120 green)")
        tolerance: float = Field(30.0, gt=0, le=180, description="the most degrees away from the colour that still "
                                                                  "pass")
        min_saturation: float = Field(0.35, ge=0, lt=1, description="pixels less saturated than this (0-1) are "
                                                                     "ignored as grey")

        @field_validator("colour")
        @classmethod
        def _known(cls, colour: str) -> str:
            target_hue(colour)
            return colour

    def score(self, cell, context):
        if cell.image is None:
            raise ValueError("this cell has no image to check")
        hue, share = hue_of(cell.image, self.options["min_saturation"])
        if hue is None:
            return self.make(0.0, False, hue=None, colour=None, colourful_share=0.0,
                             note="no colourful pixels: the image is grey, black or white")
        distance = hue_distance(hue, target_hue(self.options["colour"]))
        return self.make(round(1.0 - distance / 180.0, 6), distance <= self.options["tolerance"],
                         hue=round(hue, 2), colour=colour_name(hue), colourful_share=round(share, 4))
