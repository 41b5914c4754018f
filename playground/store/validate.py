"""One line of an export, checked field by field against the same limits as a new comparison.

Every problem is a ValueError whose message names the field and the limit, reported against its line number;
nothing here touches the database.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import typing

from .limits import ImportLimits
from ..registry import MODALITIES
from .records import _FIELD_NAMES, _JSON_FIELDS, _RATING_FIELDS, SQLITE_MAX_INT, RunRecord, _check_rating
from .schema import STATUSES

UID_RULE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_HINTS = typing.get_type_hints(RunRecord)
_REQUIRED = [f.name for f in dataclasses.fields(RunRecord) if f.default is dataclasses.MISSING
             and f.default_factory is dataclasses.MISSING]
_SHORT_TEXT = {"model_id": 300, "template_name": 100, "template_hash": 128, "variant": 100, "model_revision": 300,
               "backend": 200, "device": 64, "dtype": 64, "artifact": 300, "created_at": 40, "error": 10_000,
               "endpoint": 300, "cell_key": 200}
_DICT_CHARS = 20_000               # params, variables, versions, metrics: their JSON form
_DICT_KEYS = 64


def _check_type(name: str, value) -> None:
    hint = _HINTS[name]
    allowed = typing.get_args(hint) or (hint,)
    if value is None and type(None) in allowed:
        return
    if isinstance(value, bool) and bool not in allowed:
        ok = False
    elif float in allowed and isinstance(value, int):
        ok = True                            # 2 is a fine float
    else:
        ok = any(isinstance(value, kind) for kind in allowed if isinstance(kind, type))
    if not ok:
        expected = " or ".join(k.__name__ for k in allowed if k is not type(None))
        raise ValueError(f"field {name!r} must be {expected}, got {type(value).__name__}")


def _text(name: str, value, limit: int) -> None:
    if value is None:
        return
    if len(value) > limit:
        raise ValueError(f"field {name!r} is {len(value)} characters; at most {limit}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"field {name!r} holds characters that are not valid Unicode text") from None


def _int(name: str, value, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise ValueError(f"field {name!r} is {value}; it must be from {low} to {high}")


def _number(name: str, value) -> None:
    if value is not None and (not math.isfinite(value) or not 0 <= value <= 1e9):
        raise ValueError(f"field {name!r} must be a finite number from 0 to 1e9, got {value!r}")


def _plain_dict(name: str, value: dict) -> None:
    if len(value) > _DICT_KEYS:
        raise ValueError(f"field {name!r} has {len(value)} keys; at most {_DICT_KEYS}")
    for key, item in value.items():
        if not isinstance(item, (str, int, float, bool)) and item is not None:
            raise ValueError(f"field {name!r}: {str(key)[:40]!r} must be a plain value, not {type(item).__name__}")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"field {name!r}: {str(key)[:40]!r} must be a finite number")
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > SQLITE_MAX_INT:
            raise ValueError(f"field {name!r}: {str(key)[:40]!r} is out of range")
    text = json.dumps(value, ensure_ascii=False)
    _text(name, text, _DICT_CHARS)


def check_record(known: dict, limits: ImportLimits) -> None:
    """The fields of one run, against the limits a new comparison has."""
    if known.get("modality") not in MODALITIES:
        raise ValueError(f"field 'modality' must be one of {', '.join(MODALITIES)}")
    if known.get("status", "ok") not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    _int("seed", known.get("seed"), 0, limits.max_seed)
    for name in ("row", "col"):
        _int(name, known.get(name), 0, limits.max_cells - 1)
    _int("comparison_id", known.get("comparison_id"), 1, SQLITE_MAX_INT)
    for name in ("prompt_tokens", "completion_tokens"):
        _int(name, known.get(name), 0, 10**9)
    for name in ("wall_s", "load_s", "tokens_per_s", "realtime_factor", "ttft_s"):
        _number(name, known.get(name))
    for name in ("prompt", "system", "negative_prompt"):
        _text(name, known.get(name), limits.max_prompt_chars)
    # The text the model saw: the prompt and the system prompt inside a chat template.
    _text("formatted_prompt", known.get("formatted_prompt"), 2 * limits.max_prompt_chars + 10_000)
    _text("output_text", known.get("output_text"), limits.max_output_chars)
    _text("reference", known.get("reference"), limits.max_output_chars)
    for name, limit in _SHORT_TEXT.items():
        _text(name, known.get(name), limit)
    for name in _JSON_FIELDS:
        _plain_dict(name, known.get(name) or {})
    uid = known.get("uid")
    if uid is not None and not UID_RULE.match(uid):
        raise ValueError("field 'uid' must be 8-64 letters, digits, '-' or '_'")


def check_comparison(info: dict, limits: ImportLimits) -> dict:
    """The comparison a row belongs to (title, spec, status, winner), cleaned; bad parts are errors."""
    if not isinstance(info, dict):
        return {}
    title, spec = info.get("title"), info.get("spec")
    if title is not None and (not isinstance(title, str) or len(title) > 500):
        raise ValueError("comparison title must be text of at most 500 characters")
    if spec is not None:
        if not isinstance(spec, dict):
            raise ValueError("comparison spec must be a JSON object")
        _text("comparison spec", json.dumps(spec, ensure_ascii=False, default=str), 100_000)
    for key in ("template_name", "status", "created_at", "modality"):
        if info.get(key) is not None and (not isinstance(info[key], str) or len(info[key]) > 200):
            raise ValueError(f"comparison {key} must be short text")
    winner = info.get("winner_run_id")
    if winner is not None and (isinstance(winner, bool) or not isinstance(winner, int)
                               or not 0 < winner <= SQLITE_MAX_INT):
        raise ValueError("comparison winner_run_id must be a run id")
    uid = info.get("uid")
    if uid is not None and (not isinstance(uid, str) or not UID_RULE.match(uid)):
        raise ValueError("comparison uid must be 8-64 letters, digits, '-' or '_'")
    _text("comparison title", title, 500)
    return info


def derived_uid(*parts) -> str:
    """A stable id for rows of older exports that carry none: the same line gets the same id on every import."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode(
        "utf-8", "surrogatepass")).hexdigest()
    return "h" + digest[:31]


def parse_row(line: str, limits: ImportLimits) -> tuple[RunRecord, dict, dict, dict]:
    """(record, ratings, comparison info, the whole row as parsed) from one JSONL line, or a ValueError naming
    what is wrong."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg} (column {error.colno})") from None
    except RecursionError:
        raise ValueError("not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("a row must be a JSON object")
    for name in _REQUIRED:
        if name not in data:
            raise ValueError(f"missing required field {name!r}")
    known = {k: v for k, v in data.items() if k in _FIELD_NAMES}
    for name, value in known.items():
        _check_type(name, value)
    check_record(known, limits)
    ratings = {k: known.pop(k, None) for k in _RATING_FIELDS}
    _check_rating(**ratings)
    comparison = check_comparison(data.get("comparison") if isinstance(data.get("comparison"), dict) else {},
                                  limits)
    if known.get("uid") is None:
        known["uid"] = derived_uid(line)
    known["imported"] = True                 # whatever the file says
    return RunRecord(**known), ratings, comparison, data
