"""The image toy world: flat shapes drawn procedurally at 32x32, described in words.

A scene is a colour, a shape, a background, a size, a position and a count; its prompt names them ("two small
blue squares on the left on a black background"), leaving out what is default (medium, centre, one, white).
`describe` reads a picture back (colour by hue, background from the border, shape by overlap with drawn shapes,
position from the centre of mass, count by connected regions), which both the build's evaluation and the tests use.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

SIZE = 32
COLOURS = {"red": (220, 38, 38), "orange": (245, 140, 20), "yellow": (236, 206, 28), "green": (34, 160, 60),
           "blue": (37, 84, 222), "purple": (140, 56, 200)}
BACKGROUNDS = {"white": (245, 245, 245), "black": (18, 18, 18), "gray": (128, 128, 128)}
SHAPES = ("circle", "square", "triangle", "star")
SIZES = {"small": 0.55, "medium": 0.8, "large": 1.0}
POSITIONS = {"center": (0.5, 0.5), "left": (0.28, 0.5), "right": (0.72, 0.5), "top": (0.5, 0.28),
             "bottom": (0.5, 0.72)}
POSITION_WORDS = {"center": "in the center", "left": "on the left", "right": "on the right", "top": "at the top",
                  "bottom": "at the bottom"}
COUNT_WORDS = {1: "a", 2: "two", 3: "three"}
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars"}


@dataclass(frozen=True)
class Scene:
    colour: str
    shape: str
    background: str = "white"
    size: str = "medium"
    position: str = "center"
    count: int = 1


def random_scene(rng: random.Random) -> Scene:
    """Colour, shape and background always vary; size, position and count now and then."""
    count = rng.choice([1, 1, 1, 1, 2, 3])
    return Scene(colour=rng.choice(list(COLOURS)), shape=rng.choice(SHAPES),
                 background=rng.choice(list(BACKGROUNDS)),
                 size="small" if count > 1 else rng.choice(["small", "medium", "medium", "large"]),
                 position="center" if count > 1 else rng.choice(["center"] * 4 + list(POSITIONS)[1:]),
                 count=count)


def prompt(scene: Scene, rng: random.Random | None = None) -> str:
    """The scene in words; with `rng`, defaults are sometimes said and sometimes left out."""
    say = (lambda: rng.random() < 0.5) if rng else (lambda: False)
    size = f"{scene.size} " if scene.size != "medium" and scene.count == 1 else ""
    noun = PLURALS[scene.shape] if scene.count > 1 else scene.shape
    article = COUNT_WORDS[scene.count]
    text = f"{article} {size}{scene.colour} {noun}"
    if scene.position != "center" or say():
        text += f" {POSITION_WORDS[scene.position]}"
    if scene.background != "white" or say():
        text += f" on a {scene.background} background"
    return text


def _shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        return [(cx + r * math.cos(a), cy + 0.15 * r + r * math.sin(a))
                for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    if shape == "star":
        return [(cx + (r if k % 2 == 0 else 0.45 * r) * math.cos(-math.pi / 2 + k * math.pi / 5),
                 cy + (r if k % 2 == 0 else 0.45 * r) * math.sin(-math.pi / 2 + k * math.pi / 5)) for k in range(10)]
    return []


def _draw(draw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        side = r * 0.85
        draw.rectangle([cx - side, cy - side, cx + side, cy + side], fill=fill)
    else:
        draw.polygon(_shape_points(shape, cx, cy, r), fill=fill)


def centres(scene: Scene, scale: float) -> list[tuple[float, float, float]]:
    """(x, y, radius) of each shape, in pixels of a canvas `scale` pixels wide."""
    if scene.count > 1:
        radius = 0.13 * scale
        xs = np.linspace(0.3, 0.7, scene.count) if scene.count == 2 else np.linspace(0.2, 0.8, scene.count)
        return [(float(x) * scale, 0.5 * scale, radius) for x in xs]
    x, y = POSITIONS[scene.position]
    return [(x * scale, y * scale, 0.3 * SIZES[scene.size] * scale)]


def render(scene: Scene, size: int = SIZE, supersample: int = 4):
    """The scene as an RGB PIL image, drawn large and shrunk for smooth edges."""
    from PIL import Image, ImageDraw

    big = size * supersample
    image = Image.new("RGB", (big, big), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    for cx, cy, r in centres(scene, big):
        _draw(draw, scene.shape, cx, cy, r, COLOURS[scene.colour])
    return image.resize((size, size), Image.Resampling.BOX)


# ---- reading a picture back ---------------------------------------------------------------------------------------

# Hue in degrees of each colour name the reader knows (the HSV colour wheel).
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


def describe(image) -> dict:
    """What a 32x32 picture shows, read with simple rules: colour, background, shape, position, count."""
    from scipy import ndimage

    image = image.convert("RGB").resize((SIZE, SIZE))
    pixels = np.asarray(image, dtype=np.float64)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    ground = np.median(border, axis=0)
    background = min(BACKGROUNDS, key=lambda k: float(np.sum((np.array(BACKGROUNDS[k]) - ground) ** 2)))
    mask = np.sqrt(np.sum((pixels - ground) ** 2, axis=2)) > 60
    hue, _ = hue_of(image)
    colour = None if hue is None else min(COLOURS, key=lambda name: hue_distance(hue, HUES[name]))
    found = {"colour": colour, "hue": hue, "background": background, "shape": None, "position": None, "count": 0}
    labels, count = ndimage.label(mask)
    sizes = ndimage.sum(mask, labels, range(1, count + 1)) if count else []
    found["count"] = int(sum(1 for s in sizes if s >= 6))
    if not mask.any():
        return found
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean() / SIZE, ys.mean() / SIZE
    found["position"] = min(POSITIONS, key=lambda k: (POSITIONS[k][0] - cx) ** 2 + (POSITIONS[k][1] - cy) ** 2)
    if found["count"] == 1:
        found["shape"] = _best_shape(mask, xs, ys)
    return found


def _best_shape(mask: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> str:
    """The drawn shape, centred and sized like the mask, that overlaps it best (intersection over union)."""
    from PIL import Image, ImageDraw

    cx, cy = (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2
    extent = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) / 2
    scores = {}
    for shape in SHAPES:
        best = 0.0
        for stretch in (0.9, 1.0, 1.1, 1.2):
            canvas = Image.new("L", (SIZE, SIZE), 0)
            r = extent * stretch / (0.85 if shape == "square" else 1.0)
            _draw(ImageDraw.Draw(canvas), shape, cx, cy + (-0.08 * r if shape == "triangle" else 0.0), r, 255)
            drawn = np.asarray(canvas) > 127
            best = max(best, float((drawn & mask).sum() / max((drawn | mask).sum(), 1)))
        scores[shape] = best
    return max(scores, key=scores.get)
