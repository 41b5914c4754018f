"""Rows written inside a transaction, shared by the log and by import, and the transaction itself."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from pathlib import Path

from .records import _JSON_FIELDS, _RUN_COLUMNS, AlreadyLogged, RunRecord, _now, cache_key


def insert_run(tx: sqlite3.Connection, record: RunRecord) -> int:
    """Insert one run inside an open transaction; fills in the record's id, uid and created_at."""
    record.created_at = record.created_at or _now()
    record.uid = record.uid or uuid.uuid4().hex
    if record.replaces is not None:
        record.replaces = live_in_cell(tx, record.replaces, record.comparison_id)
    values = {name: getattr(record, name) for name in _RUN_COLUMNS}
    for name in _JSON_FIELDS:
        values[name] = json.dumps(values[name] or {}, sort_keys=True, ensure_ascii=False, default=str)
    values["imported"] = int(bool(values["imported"]))
    values["cache_key"] = cache_key(record)
    columns = list(values)
    cursor = tx.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                        [values[c] for c in columns])
    record.id = cursor.lastrowid
    return record.id


def live_in_cell(tx: sqlite3.Connection, run_id: int, comparison_id: int | None) -> int:
    """The live run of the cell `run_id` was run in: itself, or the last re-run that replaced it (two re-runs of one
    cell started from the same page replace one another in turn, so a cell never has two live runs)."""
    found = tx.execute("SELECT comparison_id FROM runs WHERE id = ?", (run_id,)).fetchone()
    if found is None or comparison_id is None or found[0] != comparison_id:
        raise ValueError(f"run #{run_id} is not a run of comparison #{comparison_id}: a re-run replaces a run of "
                         "its own comparison")
    while (successor := tx.execute("SELECT id FROM runs WHERE replaces = ?", (run_id,)).fetchone()) is not None:
        run_id = successor[0]
    return run_id


def take_cell(tx: sqlite3.Connection, record: RunRecord) -> None:
    """Make room for an experiment cell's run inside an open transaction: a failed earlier attempt of the cell is
    replaced (its attempt count carried on); an OK run of it raises AlreadyLogged, so a cell is never logged twice."""
    if record.cell_key is None or record.comparison_id is None:
        return
    found = tx.execute("SELECT id, status, metrics FROM runs WHERE comparison_id = ? AND cell_key = ?",
                       (record.comparison_id, record.cell_key)).fetchone()
    if found is None:
        return
    if found[1] != "error":
        raise AlreadyLogged(found[0], record.cell_key)
    attempts = json.loads(found[2] or "{}").get("attempt", 1)
    record.metrics = {**(record.metrics or {}), "attempt": int(attempts) + 1}
    tx.execute("DELETE FROM runs WHERE id = ?", (found[0],))


def insert_rating(tx: sqlite3.Connection, run_id: int, stars=None, thumbs=None, note=None) -> None:
    """A rating row merged with the current one (fields left None keep their value), inside a transaction."""
    current = tx.execute("SELECT stars, thumbs, note FROM ratings WHERE run_id = ? ORDER BY id DESC LIMIT 1",
                         (run_id,)).fetchone() or (None, None, None)
    merged = (current[0] if stars is None else stars, current[1] if thumbs is None else thumbs,
              current[2] if note is None else note)
    tx.execute("INSERT INTO ratings (run_id, stars, thumbs, note, created_at) VALUES (?, ?, ?, ?, ?)",
               (run_id, *merged, _now()))


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so concurrent writers queue instead of failing."""

    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self.connection.execute("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            try:
                self.connection.execute("COMMIT")
                return
            except BaseException:
                if self.connection.in_transaction:
                    self.connection.execute("ROLLBACK")
                raise
        if self.connection.in_transaction:   # some errors have already rolled it back
            self.connection.execute("ROLLBACK")


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


