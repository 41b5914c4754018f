"""Checks on what API and page callers send, before it reaches the runner or the log.

JSON clients can send anything: booleans where numbers belong, 1.5 as a seed, a string where a list belongs, ids
past SQLite's 64-bit range, NaN, lone surrogates, megabytes of text. Python would quietly coerce most of these
(`int(True) == 1`, `int(1.5) == 1`, `list("abc")`); here each one is refused with a message that says what to send.
"""

from __future__ import annotations

import math

MAX_ID = 2**63 - 1                 # SQLite INTEGER
MAX_SEED = 2**32 - 1
MAX_NAME_CHARS = 200               # template, variant and variable names
MAX_MODEL_ID_CHARS = 300           # hub ids are at most 96; local folders a little longer
MAX_MODELS = 8
MAX_SEEDS = 64
MAX_NOTE_CHARS = 5000
MAX_QUERY_CHARS = 500


class BadInput(ValueError):
    """A caller sent a value of the wrong type or range; the message says what to send instead."""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def whole_number(value, what: str, *, low: int = 0, high: int = MAX_ID) -> int:
    """An integer in [low, high]. Integral floats (3.0, from JSON number parsers) pass; 1.5, True, NaN, "3" do not."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not _is_int(value):
        shown = repr(value) if not isinstance(value, str) else repr(value[:40])
        raise BadInput(f"{what} must be a whole number, got {shown}")
    if not low <= value <= high:
        raise BadInput(f"{what} must be between {low} and {high}, got {_short_number(value)}")
    return value


def _short_number(value: int) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"a {len(text)}-digit number"


def record_id(value, what: str = "id") -> int:
    """A comparison or run id: 1 .. 2**63-1."""
    return whole_number(value, what, low=1)


def optional_int(value, what: str, *, low: int, high: int) -> int | None:
    return None if value is None else whole_number(value, what, low=low, high=high)


def text(value, what: str, *, max_chars: int, allow_empty: bool = True) -> str:
    """A string of at most `max_chars` that can be stored as UTF-8 (no lone surrogates)."""
    if not isinstance(value, str):
        raise BadInput(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > max_chars:
        raise BadInput(f"{what} is {len(value):,} characters long; the limit is {max_chars:,}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{what} holds characters that are not valid Unicode (a lone surrogate)") from None
    if "\x00" in value:
        raise BadInput(f"{what} holds a NUL character")
    if not allow_empty and not value.strip():
        raise BadInput(f"{what} is empty")
    return value


def optional_text(value, what: str, *, max_chars: int) -> str | None:
    return None if value is None else text(value, what, max_chars=max_chars)


def text_list(value, what: str, *, max_items: int, max_chars: int) -> list[str]:
    """A list of strings. A single string is refused rather than split into characters."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise BadInput(f"{what} must be a list of strings, e.g. [\"a\", \"b\"], got {type(value).__name__}")
    if len(value) > max_items:
        raise BadInput(f"{what} has {len(value)} items; the limit is {max_items}")
    return [text(item, f"{what}[{i}]", max_chars=max_chars, allow_empty=False) for i, item in enumerate(value)]


def seeds(value) -> list[int]:
    """A list of seeds 0 .. 2**32-1 (a single seed is accepted as a list of one)."""
    if _is_int(value) or isinstance(value, float):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise BadInput(f"seeds must be a list of whole numbers, e.g. [1, 2, 3], got {value!r:.60}")
    if len(value) > MAX_SEEDS:
        raise BadInput(f"seeds has {len(value)} items; the limit is {MAX_SEEDS}")
    return [whole_number(s, f"seeds[{i}]", high=MAX_SEED) for i, s in enumerate(value)]


def mapping(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInput(f"{what} must be an object (name -> value), got {type(value).__name__}")
    for key in value:
        text(key, f"a key of {what}", max_chars=MAX_NAME_CHARS, allow_empty=False)
    return value


def variable_values(value) -> dict:
    """name -> a string or a list of strings (each list multiplies the grid); numbers are taken as their text."""
    checked = {}
    for name, item in mapping(value, "values").items():
        items = item if isinstance(item, list) else [item]
        if not items:
            raise BadInput(f"values.{name} is an empty list; give at least one value")
        out = []
        for i, entry in enumerate(items):
            if isinstance(entry, bool) or not isinstance(entry, (str, int, float)) or (
                    isinstance(entry, float) and not math.isfinite(entry)):
                raise BadInput(f"values.{name} must be text or a list of texts, got {entry!r:.60}")
            out.append(text(str(entry), f"values.{name}[{i}]", max_chars=100_000))
        checked[name] = out if isinstance(item, list) else out[0]
    return checked


def variants(value) -> dict[str, str] | None:
    if value is None:
        return None
    checked = {}
    for name, prompt in mapping(value, "variants").items():
        checked[name] = text(prompt, f"variants.{name}", max_chars=100_000)
    if not checked:
        raise BadInput("variants is empty; give at least one, or leave it out to use the template's")
    return checked


def params(value) -> dict:
    """Generation parameters: numbers, booleans and short strings only; the engines check names and ranges."""
    checked = {}
    for name, item in mapping(value, "params").items():
        if isinstance(item, float) and not math.isfinite(item):
            raise BadInput(f"params.{name} must be a finite number, got {item!r}")
        if isinstance(item, str):
            text(item, f"params.{name}", max_chars=MAX_NAME_CHARS)
        elif not isinstance(item, (bool, int, float)) and item is not None:
            raise BadInput(f"params.{name} must be a number, true/false or text, got {type(item).__name__}")
        checked[name] = item
    return checked


def flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise BadInput(f"{what} must be true or false, got {value!r:.40}")
    return value


def choice(value, what: str, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in options:
        raise BadInput(f"{what} must be one of {', '.join(options)}, got {value!r:.40}")
    return value
