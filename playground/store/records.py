"""The records the run log holds: one run (a cell's reproducibility record), a comparison, an import report."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import numbers
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
    replaces: int | None = None              # the run this one re-ran in its cell (that run is no longer live)
    cell_key: str | None = None              # an experiment's cell (dataset row, variant, seed, model); one run each
    reference: str | None = None             # the answer this cell's checks compared against (a dataset column)
    reference_file: str | None = None        # or the image / audio it was compared with (under the data dir)
    id: int | None = None
    created_at: str | None = None
    stars: int | None = None
    thumbs: int | None = None
    note: str | None = None
    uid: str | None = None           # stable across data dirs: an import skips the runs it already holds
    imported: bool = False           # came from an export, not generated here: never served as a cache hit


_FIELD_NAMES = {f.name for f in dataclasses.fields(RunRecord)}
_RATING_FIELDS = ("stars", "thumbs", "note")
_RUN_COLUMNS = [f.name for f in dataclasses.fields(RunRecord) if f.name not in {"id", *_RATING_FIELDS}]
SQLITE_MAX_INT = 2**63 - 1


class StoreInputError(ValueError):
    """Input the run log refuses (a malformed id, a value out of range); the message says what to change."""


class InvalidId(StoreInputError):
    """An id that cannot name a row: not a whole number, a bool, or outside SQLite's integer range."""


class AlreadyLogged(Exception):
    """A cell of an experiment that already has its run in the comparison (a cell is logged once)."""

    def __init__(self, run_id: int, cell_key: str):
        super().__init__(f"cell {cell_key} is already logged as run #{run_id}")
        self.run_id = run_id
        self.cell_key = cell_key


class NotFound(KeyError):
    """A well-formed id with no row behind it."""

    def __str__(self) -> str:                # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


def check_id(value, what: str = "run") -> int:
    """A row id as an int, or InvalidId saying what was wrong; the request layer's rule for ids (3 or 3.0; not True,
    1.5, "3" or 'abc'), held at the log's own door too."""
    from ..requests import RequestError
    from ..requests.records import row_id

    try:
        return row_id(value)
    except RequestError as error:
        raise InvalidId(f"{what} id {error.message}") from None


def check_count(value, what: str, low: int = 0, high: int = SQLITE_MAX_INT) -> int:
    """A limit/offset style number within bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= int(value) <= high:
        raise StoreInputError(f"{what} must be a whole number from {low} to {high}, got {repr(value)[:40]}")
    return int(value)





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
    run_count: int | None = None      # number of live cells, filled in even where `runs` is left empty
    uid: str | None = None            # stable across data dirs (export/import)


@dataclass
class ImportReport:
    imported: int = 0                 # runs added
    skipped: int = 0                  # runs already in the log (same uid): left as they are
    errors: list[tuple[int, str]] = field(default_factory=list)     # (line, reason); line 0: the whole file

    def summary(self) -> str:
        return (f"added {self.imported} runs, skipped {self.skipped} already in the log, "
                f"{len(self.errors)} problems")


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
    """The request layer's rules for a rating, held at the log's own door too."""
    from ..requests.votes import check_rating

    check_rating(stars, thumbs, note)


def _record(row: sqlite3.Row) -> RunRecord:
    data = {name: row[name] for name in row.keys() if name in _FIELD_NAMES}
    for name in _JSON_FIELDS:
        data[name] = json.loads(data[name] or "{}")
    if "imported" in data:
        data["imported"] = bool(data["imported"])
    return RunRecord(**data)


def _comparison(row: sqlite3.Row) -> Comparison:
    return Comparison(id=row["id"], modality=row["modality"], title=row["title"], template_name=row["template_name"],
                      spec=json.loads(row["spec"] or "{}"), created_at=row["created_at"], status=row["status"],
                      winner_run_id=row["winner_run_id"], run_count=row["run_count"],
                      uid=row["uid"] if "uid" in row.keys() else None)

