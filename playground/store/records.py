"""The records the run log holds: one run (a cell's reproducibility record), a comparison, an import report."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import sqlite3
from dataclasses import dataclass, field

_JSON_FIELDS = ("params", "variables", "versions", "metrics")


@dataclass
class RunRecord:
    """The reproducibility record of one output cell."""

    modality: str
    model_id: str
    prompt: str
    seed: int
    params: dict
    status: str = "ok"
    comparison_id: int | None = None
    row: int = 0
    col: int = 0
    template_name: str | None = None
    template_hash: str | None = None
    variant: str | None = None
    variables: dict = field(default_factory=dict)
    system: str | None = None
    negative_prompt: str | None = None
    model_revision: str | None = None
    backend: str | None = None
    device: str | None = None
    dtype: str | None = None
    versions: dict = field(default_factory=dict)
    wall_s: float | None = None
    load_s: float | None = None
    tokens_per_s: float | None = None
    realtime_factor: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    output_text: str | None = None
    artifact: str | None = None
    error: str | None = None
    cached_from: int | None = None
    endpoint: str | None = None              # remote engines: scheme://host:port, never a key
    formatted_prompt: str | None = None      # the exact text (or chat messages) the model saw
    ttft_s: float | None = None              # time to the first streamed token
    metrics: dict = field(default_factory=dict)   # what else the engine measured (steps/s, finish reason, ...)
    id: int | None = None
    created_at: str | None = None
    stars: int | None = None
    thumbs: int | None = None
    note: str | None = None


_FIELD_NAMES = {f.name for f in dataclasses.fields(RunRecord)}
_RATING_FIELDS = ("stars", "thumbs", "note")
_RUN_COLUMNS = [f.name for f in dataclasses.fields(RunRecord) if f.name not in {"id", *_RATING_FIELDS}]


@dataclass
class Comparison:
    id: int
    modality: str
    title: str
    template_name: str | None
    spec: dict
    created_at: str
    status: str
    winner_run_id: int | None
    runs: list[RunRecord] = field(default_factory=list)
    run_count: int | None = None      # number of cells logged, filled in even where `runs` is left empty


@dataclass
class ImportReport:
    imported: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def cache_key(record: RunRecord) -> str:
    """Identifies an output by everything that determines it: same key, same output."""
    payload = {"modality": record.modality, "model_id": record.model_id, "revision": record.model_revision,
               "prompt": record.prompt, "system": record.system, "negative_prompt": record.negative_prompt,
               "params": record.params, "seed": record.seed}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _now() -> str:
    """UTC, millisecond precision, sortable as text: 2025-01-31T12:00:00.123Z."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_rating(stars, thumbs, note) -> None:
    if stars is not None and (not isinstance(stars, int) or isinstance(stars, bool) or not 1 <= stars <= 5):
        raise ValueError(f"stars must be a whole number from 1 to 5, got {stars!r}")
    if thumbs is not None and (not isinstance(thumbs, int) or isinstance(thumbs, bool) or thumbs not in (-1, 0, 1)):
        raise ValueError(f"thumbs must be -1, 0 or 1, got {thumbs!r}")
    if note is not None and (not isinstance(note, str) or len(note) > 10_000):
        raise ValueError("note must be text of at most 10,000 characters")


def _record(row: sqlite3.Row) -> RunRecord:
    data = {name: row[name] for name in row.keys() if name in _FIELD_NAMES}
    for name in _JSON_FIELDS:
        data[name] = json.loads(data[name] or "{}")
    return RunRecord(**data)


def _comparison(row: sqlite3.Row) -> Comparison:
    return Comparison(id=row["id"], modality=row["modality"], title=row["title"], template_name=row["template_name"],
                      spec=json.loads(row["spec"] or "{}"), created_at=row["created_at"], status=row["status"],
                      winner_run_id=row["winner_run_id"], run_count=row["run_count"])

