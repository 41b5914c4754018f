"""One line of an export, checked field by field against the same limits as a new comparison.

The fields are checked by the request layer (playground.requests.records); every problem is a ValueError whose
message names the field and the limit, reported against its line number. Nothing here touches the database.
"""

from __future__ import annotations

import hashlib
import json

from ..registry import MODALITIES
from ..requests.records import comparison_info, run_fields
from .limits import ImportLimits
from .records import _RATING_FIELDS, RunRecord

__all__ = ["MODALITIES", "derived_uid", "parse_row"]


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
    known = run_fields(data, limits)
    ratings = {k: known.pop(k, None) for k in _RATING_FIELDS}
    comparison = comparison_info(data.get("comparison"), limits)
    if known.get("uid") is None:
        known["uid"] = derived_uid(line)
    known["imported"] = True                 # whatever the file says
    return RunRecord(**known), ratings, comparison, data
