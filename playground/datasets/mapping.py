"""Which column fills which template variable, and which column is the reference answer checks read.

By name first: a variable whose name is a column takes that column. An explicit mapping (`{variable: column}`)
adds to or overrides that. A variable no column fills keeps its default. Every name is checked, with "did you
mean" for a near miss.
"""

from __future__ import annotations

import json

from .errors import DatasetError, did_you_mean

MEDIA_TYPES = ("image", "audio", "video", "bytes")


def map_columns(variables, columns: dict[str, str], mapping: dict[str, str] | None = None,
                expected: str | None = None, template: str = "the template") -> dict[str, str]:
    """variable -> column for the template's `variables` over a dataset's `columns` (name -> type)."""
    variables = list(variables)
    mapped: dict[str, str] = {}
    for name in variables:
        if name in columns:
            mapped[name] = name
    for variable, column in (mapping or {}).items():
        if variable not in variables:
            raise DatasetError(f"--map {variable}={column}: {template} " +
                               did_you_mean(variable, variables, "variable").replace("no variable", "has no variable",
                                                                                      1))
        if column not in columns:
            raise DatasetError(f"--map {variable}={column}: the dataset has " +
                               did_you_mean(column, columns).replace("no column ", "no column ", 1))
        mapped[variable] = column
    for variable, column in mapped.items():
        if columns[column] in MEDIA_TYPES:
            raise DatasetError(f"column {column!r} holds {columns[column]} data; variable {variable!r} needs text: "
                               "map a text column to it")
    if expected is not None and expected not in columns:
        raise DatasetError("--expected: the dataset has " + did_you_mean(expected, columns))
    if variables and not mapped:
        raise DatasetError(f"no column of the dataset is named like a variable of {template} "
                           f"({', '.join(variables)}); its columns are {', '.join(list(columns)[:30])}: "
                           "map one with --map variable=column")
    return mapped


def as_value(value) -> str:
    """A cell of the dataset as a template value: text as it is, numbers as written, lists and objects as JSON,
    an empty cell as empty text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def as_reference(value) -> str | None:
    """The reference answer of a row as the checks read it (text); None when the row has none, or when it is an
    image or audio clip (see `reference_media`)."""
    if value is None:
        return None
    if isinstance(value, dict) and "bytes" in value:
        return None
    return as_value(value)


# What a reference file is, from its first bytes: the suffix it is kept under (checks open it by its content).
_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"GIF8", ".gif"), (b"BM", ".bmp"),
          (b"fLaC", ".flac"), (b"OggS", ".ogg"), (b"ID3", ".mp3"), (b"\xff\xfb", ".mp3"))


def reference_media(value) -> tuple[bytes, str] | None:
    """(bytes, suffix) of a row's reference image or audio clip (a media column as the expected answer); None when
    the row has none."""
    if not isinstance(value, dict) or not value.get("bytes"):
        return None
    data = bytes(value["bytes"])
    if data[:4] == b"RIFF":
        return data, {b"WAVE": ".wav", b"WEBP": ".webp"}.get(data[8:12], ".bin")
    return data, next((suffix for magic, suffix in _MAGIC if data.startswith(magic)), ".bin")
