"""Which rows of a dataset an experiment runs on: a named split, a filter on columns, a range, the first N, a random
N with a seed, or exactly the rows given. Every choice is deterministic, so a job resumed after a restart (or the
same spec run on another machine) selects the very same rows.

Splits: a dataset with a `split` column (or the column named by `split_column`) splits by its values; one without
it splits by a hash of each row's content into shares (by default half `dev`, half `test`), so a row stays in its
split whatever else the file holds.
"""

from __future__ import annotations

import hashlib
import json
import random as _random

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import DatasetError, did_you_mean

DEFAULT_SHARES = {"dev": 0.5, "test": 0.5}
Plain = str | int | float | bool


class Sample(BaseModel):
    """A deterministic choice of rows. Applied in this order: split, where, range (start/stop), first, random."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    split: str | None = Field(None, max_length=100)
    split_column: str = Field("split", min_length=1, max_length=200)
    split_shares: dict[str, float] | None = None      # name -> share; used when the split column is absent
    where: dict[str, Plain | list[Plain]] = Field(default_factory=dict)
    start: int | None = Field(None, ge=0)
    stop: int | None = Field(None, ge=0)
    first: int | None = Field(None, ge=1)
    random: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    rows: list[int] | None = Field(None, min_length=1)  # exactly these dataset rows (e.g. a re-run of a few)

    @model_validator(mode="after")
    def _consistent(self):
        if self.start is not None and self.stop is not None and self.stop <= self.start:
            raise ValueError("stop must be greater than start")
        if self.split_shares is not None:
            if not self.split_shares or any(not 0 < v <= 1 for v in self.split_shares.values()):
                raise ValueError("split_shares are shares between 0 and 1, like {dev: 0.2, test: 0.8}")
            if abs(sum(self.split_shares.values()) - 1) > 1e-6:
                raise ValueError("split_shares must add up to 1")
        if self.rows is not None and any(r < 0 for r in self.rows):
            raise ValueError("rows are row numbers from 0")
        return self

    def describe(self) -> str:
        parts = []
        if self.rows is not None:
            return f"{len(self.rows)} chosen rows"
        if self.split:
            parts.append(f"split {self.split}")
        parts += [f"{k}={v}" for k, v in self.where.items()]
        if self.start is not None or self.stop is not None:
            parts.append(f"rows {self.start or 0}..{self.stop if self.stop is not None else 'end'}")
        if self.first:
            parts.append(f"first {self.first}")
        if self.random:
            parts.append(f"random {self.random} (seed {self.seed})")
        return ", ".join(parts) or "all rows"


def select_rows(table, sample: Sample, label: str = "the dataset") -> list[int]:
    """The dataset row numbers `sample` picks from `table` (a pyarrow Table), in dataset order."""
    count = table.num_rows
    if sample.rows is not None:
        outside = [r for r in sample.rows if r >= count]
        if outside:
            raise DatasetError(f"row {outside[0]} is not in {label} (rows 0 to {count - 1})")
        return sorted(set(sample.rows))
    rows = list(range(count))
    if sample.split:
        rows = _split(table, sample, rows, label)
    for column, wanted in sample.where.items():
        rows = _where(table, column, wanted, rows, label)
    rows = rows[sample.start or 0:sample.stop]
    if sample.first:
        rows = rows[:sample.first]
    if sample.random and sample.random < len(rows):
        rows = sorted(_random.Random(sample.seed).sample(rows, sample.random))
    if not rows:
        raise DatasetError(f"the sample of {label} is empty ({sample.describe()}): loosen the filter, pick "
                           "another split or widen the range")
    return rows


def _values(table, column: str, label: str) -> list:
    if column not in table.column_names:
        raise DatasetError(f"{label}: " + did_you_mean(column, table.column_names))
    return table.column(column).to_pylist()


def _split(table, sample: Sample, rows: list[int], label: str) -> list[int]:
    if sample.split_column in table.column_names and sample.split_shares is None:
        values = table.column(sample.split_column).to_pylist()
        chosen = [r for r in rows if str(values[r]) == sample.split]
        if not chosen:
            held = sorted({str(v) for v in values})[:20]
            raise DatasetError(f"{label} has no rows in split {sample.split!r}; its column {sample.split_column!r} "
                               f"holds: {', '.join(held)}")
        return chosen
    shares = sample.split_shares or DEFAULT_SHARES
    if sample.split not in shares:
        raise DatasetError(f"{label} has no column {sample.split_column!r} to split by, and {sample.split!r} is not "
                           f"one of the hash splits {', '.join(shares)}: add a split column or give split_shares")
    splits = hash_splits(table, shares)
    return [r for r in rows if splits[r] == sample.split]


def hash_splits(table, shares: dict[str, float]) -> list[str]:
    """Each row's split by the hash of its content: the same row, the same split, in any file."""
    names, bounds, total = list(shares), [], 0.0
    for share in shares.values():
        total += share
        bounds.append(total)
    splits = []
    for batch in table.to_batches(max_chunksize=4096):
        for row in batch.to_pylist():
            content = json.dumps(row, ensure_ascii=False, default=str).encode("utf-8")
            point = int.from_bytes(hashlib.sha256(content).digest()[:8], "big") / 2**64
            splits.append(next((n for n, b in zip(names, bounds) if point < b), names[-1]))
    return splits


def _where(table, column: str, wanted, rows: list[int], label: str) -> list[int]:
    values = _values(table, column, label)
    accepted = {str(v) for v in (wanted if isinstance(wanted, list) else [wanted])}
    return [r for r in rows if str(values[r]) in accepted or (isinstance(values[r], bool) and
                                                               str(values[r]).lower() in accepted)]
