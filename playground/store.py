"""The run log: SQLite (WAL, numbered migrations) for records, plain files for images and audio.

Every output is kept with what is needed to reproduce it. An artifact file is written atomically and made durable
before the row that points at it commits, so a crash leaves at worst an orphan file (swept at start-up), never a
row without its file. No gradio and no model library here.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import os
import sqlite3
import threading
import time
import typing
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

# Numbered migrations: each runs once, in order, inside a transaction; the applied ones are recorded in _migrations.
# Never edit a released migration: add the next number.
MIGRATIONS: list[tuple[int, str]] = [
    (1, """
    CREATE TABLE comparisons (
        id INTEGER PRIMARY KEY,
        modality TEXT NOT NULL,
        title TEXT NOT NULL,
        template_name TEXT,
        spec TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'running',
        winner_run_id INTEGER,
        created_at TEXT NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        comparison_id INTEGER REFERENCES comparisons(id) ON DELETE CASCADE,
        row INTEGER NOT NULL DEFAULT 0,
        col INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        modality TEXT NOT NULL,
        model_id TEXT NOT NULL,
        model_revision TEXT,
        backend TEXT,
        template_name TEXT,
        template_hash TEXT,
        variant TEXT,
        variables TEXT NOT NULL DEFAULT '{}',
        prompt TEXT NOT NULL,
        system TEXT,
        negative_prompt TEXT,
        params TEXT NOT NULL DEFAULT '{}',
        seed INTEGER NOT NULL,
        device TEXT,
        dtype TEXT,
        versions TEXT NOT NULL DEFAULT '{}',
        wall_s REAL, load_s REAL, tokens_per_s REAL, realtime_factor REAL,
        prompt_tokens INTEGER, completion_tokens INTEGER,
        output_text TEXT,
        artifact TEXT,
        error TEXT,
        cached_from INTEGER,
        cache_key TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX runs_comparison ON runs(comparison_id, row, col);
    CREATE INDEX runs_cache_key ON runs(cache_key);
    CREATE INDEX runs_created ON runs(created_at);
    CREATE TABLE ratings (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        stars INTEGER CHECK (stars BETWEEN 1 AND 5),
        thumbs INTEGER CHECK (thumbs IN (-1, 0, 1)),
        note TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX ratings_run ON ratings(run_id, id);
    """),
    (2, """
    CREATE VIRTUAL TABLE runs_fts USING fts5(prompt, output_text, content='runs', content_rowid='id');
    CREATE TRIGGER runs_fts_insert AFTER INSERT ON runs BEGIN
        INSERT INTO runs_fts(rowid, prompt, output_text) VALUES (new.id, new.prompt, coalesce(new.output_text, ''));
    END;
    CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN
        INSERT INTO runs_fts(runs_fts, rowid, prompt, output_text)
        VALUES ('delete', old.id, old.prompt, coalesce(old.output_text, ''));
    END;
    INSERT INTO runs_fts(rowid, prompt, output_text) SELECT id, prompt, coalesce(output_text, '') FROM runs;
    """),
    (3, """
    CREATE TRIGGER runs_fts_update AFTER UPDATE OF prompt, output_text ON runs BEGIN
        INSERT INTO runs_fts(runs_fts, rowid, prompt, output_text)
        VALUES ('delete', old.id, old.prompt, coalesce(old.output_text, ''));
        INSERT INTO runs_fts(rowid, prompt, output_text) VALUES (new.id, new.prompt, coalesce(new.output_text, ''));
    END;
    CREATE INDEX runs_template_variant ON runs(template_name, variant);
    CREATE INDEX runs_modality ON runs(modality, id);
    """),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
STATUSES = ("ok", "error", "cancelled")
COMPARISON_STATUSES = ("running", "done", "cancelled", "failed")
_JSON_FIELDS = ("params", "variables", "versions")


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


def _bound(value, *, end: bool) -> str:
    """A since/until filter as comparable text; a bare date as `until` includes that whole day."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds")
    text = value.isoformat() if isinstance(value, _dt.date) else str(value).strip()
    if end and len(text) == 10:          # YYYY-MM-DD
        return text + "T99"               # sorts after every time of that day
    return text


def _fts_query(text: str) -> str:
    """User text as FTS5 terms: each word quoted, so operators and stray quotes are plain words (all must match)."""
    words = [w.replace('"', '""') for w in text.replace("\x00", " ").split()]
    return " ".join(f'"{w}"' for w in words if w.strip('"'))


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class RunLog:
    """The run log of one data dir. Safe to share across threads; several processes may open the same dir."""

    def __init__(self, data_dir: Path, *, orphan_age_s: float = 60.0):
        self.data_dir = Path(data_dir)
        self.artifacts_dir = self.data_dir / "artifacts"
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "runs.db"
        self.orphan_age_s = orphan_age_s
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._connections_lock = threading.Lock()
        self._migrate()
        self.sweep_orphans()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- connections and migrations -------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        """One connection per thread; connections of threads that have ended are closed as new ones open."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: never corrupt; a power cut may lose
            connection.execute("PRAGMA foreign_keys=ON")      # the last commits, leaving orphan files (swept)
            self._local.connection = connection
            with self._connections_lock:
                alive = []
                for thread, other in self._connections:
                    if thread.is_alive():
                        alive.append((thread, other))
                    else:
                        other.close()
                alive.append((threading.current_thread(), connection))
                self._connections = alive
        return connection

    def _write(self) -> _Transaction:
        return _Transaction(self._db())

    def _migrate(self) -> None:
        db = self._db()
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        with self._write() as tx:            # one process migrates; the others wait, then find nothing to do
            applied = {row[0] for row in tx.execute("SELECT id FROM _migrations")}
            for number, sql in MIGRATIONS:
                if number in applied:
                    continue
                for statement in _statements(sql):
                    tx.execute(statement)
                tx.execute("INSERT INTO _migrations (id, applied_at) VALUES (?, ?)", (number, _now()))

    def schema_version(self) -> int:
        row = self._db().execute("SELECT max(id) FROM _migrations").fetchone()
        return row[0] or 0

    def integrity_check(self) -> str:
        return self._db().execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        with self._connections_lock:
            for _, connection in self._connections:
                try:
                    connection.close()
                except sqlite3.Error:
                    pass
            self._connections = []
        self._local = threading.local()

    # ---- comparisons ----------------------------------------------------------------------------------------------

    def start_comparison(self, modality: str, title: str, template_name: str | None = None,
                         spec: dict | None = None) -> int:
        with self._write() as tx:
            cursor = tx.execute("INSERT INTO comparisons (modality, title, template_name, spec, created_at) "
                                "VALUES (?, ?, ?, ?, ?)",
                                (modality, title, template_name, json.dumps(spec or {}, default=str), _now()))
            return cursor.lastrowid

    def finish_comparison(self, comparison_id: int, status: str = "done") -> None:
        if status not in COMPARISON_STATUSES[1:]:
            raise ValueError(f"status must be done, cancelled or failed, got {status!r}")
        with self._write() as tx:
            cursor = tx.execute("UPDATE comparisons SET status = ? WHERE id = ?", (status, int(comparison_id)))
        if cursor.rowcount == 0:
            raise KeyError(f"no comparison #{comparison_id} in the log")

    def get_comparison(self, comparison_id: int) -> Comparison:
        row = self._db().execute(f"{_COMPARISON_SELECT} WHERE c.id = ?", (int(comparison_id),)).fetchone()
        if row is None:
            raise KeyError(f"no comparison #{comparison_id} in the log")
        comparison = _comparison(row)
        comparison.runs = self.list_runs(comparison_id=comparison.id, limit=1_000_000, newest_first=False)
        return comparison

    def list_comparisons(self, modality: str | None = None, template: str | None = None, limit: int = 50,
                         offset: int = 0) -> list[Comparison]:
        """Newest first; `runs` is left empty (run_count says how many there are)."""
        where, args = [], []
        if modality:
            where.append("c.modality = ?")
            args.append(modality)
        if template:
            where.append("c.template_name = ?")
            args.append(template)
        sql = _COMPARISON_SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
        rows = self._db().execute(sql + " ORDER BY c.id DESC LIMIT ? OFFSET ?",
                                  (*args, int(limit), int(offset))).fetchall()
        return [_comparison(r) for r in rows]

    def set_winner(self, comparison_id: int, run_id: int) -> None:
        run = self.get_run(run_id)
        if run.comparison_id != comparison_id:
            raise ValueError(f"run #{run_id} is not part of comparison #{comparison_id}")
        with self._write() as tx:
            tx.execute("UPDATE comparisons SET winner_run_id = ? WHERE id = ?", (run_id, comparison_id))

    # ---- runs -----------------------------------------------------------------------------------------------------

    def add_run(self, record: RunRecord, artifact: bytes | None = None, artifact_ext: str | None = None) -> int:
        """Write the artifact (if any) durably, then the row; returns the run id and fills in the record.

        Without `artifact` bytes, `record.artifact` may name a file already in the log (a cached cell shares it).
        """
        if record.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {record.status!r}")
        if artifact is None and record.artifact is not None and self.artifact_path(record) is None:
            raise ValueError(f"artifact {record.artifact!r} is not a path inside the data dir")
        written = None
        if artifact is not None:
            written = self._write_artifact(artifact, artifact_ext or "bin")
            record.artifact = written.relative_to(self.data_dir).as_posix()
        created_at = record.created_at or _now()
        values = {name: getattr(record, name) for name in _RUN_COLUMNS}
        values["created_at"] = created_at
        for name in _JSON_FIELDS:
            values[name] = json.dumps(values[name] or {}, sort_keys=True, ensure_ascii=False, default=str)
        values["cache_key"] = cache_key(record)
        columns = list(values)
        try:
            with self._write() as tx:
                cursor = tx.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES "
                                    f"({', '.join('?' for _ in columns)})", [values[c] for c in columns])
        except BaseException:
            if written is not None:          # no row will point at it
                written.unlink(missing_ok=True)
                record.artifact = None
            raise
        record.id, record.created_at = cursor.lastrowid, created_at
        return record.id

    def _write_artifact(self, data: bytes, ext: str) -> Path:
        """temp file in the target dir -> flush -> fsync -> rename -> fsync the dir."""
        ext = "".join(ch for ch in ext.lower() if ch.isalnum())[:8] or "bin"
        folder = self.artifacts_dir / time.strftime("%Y-%m", time.gmtime())
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self.artifacts_dir)
        final = folder / f"{uuid.uuid4().hex}.{ext}"
        temporary = folder / f".{final.name}.tmp"
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_dir(folder)
        return final

    def artifact_path(self, record: RunRecord) -> Path | None:
        """The absolute path of a record's file, or None (no file, or a path that leads outside the data dir)."""
        if not record.artifact:
            return None
        root = self.data_dir.resolve()
        path = (root / record.artifact).resolve()
        if root not in path.parents:
            return None
        return path

    def get_run(self, run_id: int) -> RunRecord:
        rows = self._select_runs("r.id = ?", [int(run_id)], limit=1)
        if not rows:
            raise KeyError(f"no run #{run_id} in the log")
        return rows[0]

    def find_cached(self, record: RunRecord) -> RunRecord | None:
        """The latest OK run with the same cache key that still has its output (its file, if it had one)."""
        for candidate in self._select_runs("r.cache_key = ? AND r.status = 'ok'", [cache_key(record)], limit=1000):
            if candidate.artifact is None:
                if candidate.output_text is not None:
                    return candidate
                continue                     # e.g. imported without its media: nothing to show
            path = self.artifact_path(candidate)
            if path is not None and path.is_file():
                return candidate
        return None

    def list_runs(self, *, modality=None, template=None, model=None, min_stars=None, rated=None, since=None,
                  until=None, query=None, comparison_id=None, limit=100, offset=0,
                  newest_first: bool = True) -> list[RunRecord]:
        """Runs matching every filter given. `model` matches part of the id; `query` searches prompts and outputs
        (every word must appear; FTS syntax in it is taken literally); `since`/`until` take ISO text or datetimes."""
        where, args = [], []
        for column, value in (("r.modality", modality), ("r.template_name", template),
                              ("r.comparison_id", comparison_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if model:
            where.append("r.model_id LIKE ? ESCAPE '\\'")
            args.append(_like(str(model)))
        if since:
            where.append("r.created_at >= ?")
            args.append(_bound(since, end=False))
        if until:
            where.append("r.created_at <= ?")
            args.append(_bound(until, end=True))
        if min_stars:
            where.append("g.stars >= ?")
            args.append(int(min_stars))
        if rated is not None:
            where.append("(g.stars IS NOT NULL OR g.thumbs IS NOT NULL)" if rated else
                         "(g.stars IS NULL AND g.thumbs IS NULL)")
        if query and query.strip():
            terms = _fts_query(query)
            if terms:
                where.append("r.id IN (SELECT rowid FROM runs_fts WHERE runs_fts MATCH ?)")
                args.append(terms)
        order = "r.id DESC" if newest_first else "r.row, r.col, r.id"
        return self._select_runs(" AND ".join(where) or "1", args, limit=limit, offset=offset, order=order)

    def _select_runs(self, where: str, args: list, limit: int = 100, offset: int = 0,
                     order: str = "r.id DESC") -> list[RunRecord]:
        sql = f"""
            SELECT r.*, g.stars AS stars, g.thumbs AS thumbs, g.note AS note
            FROM runs r LEFT JOIN ratings g ON g.id = (SELECT max(id) FROM ratings WHERE run_id = r.id)
            WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"""
        rows = self._db().execute(sql, (*args, int(limit), int(offset))).fetchall()
        return [_record(row) for row in rows]

    # ---- ratings --------------------------------------------------------------------------------------------------

    def rate(self, run_id: int, *, stars: int | None = None, thumbs: int | None = None,
             note: str | None = None) -> None:
        """Add a rating; fields left out keep their current value (the latest rating row is the current one)."""
        _check_rating(stars, thumbs, note)
        with self._write() as tx:            # read and write in one transaction: concurrent raters merge
            if tx.execute("SELECT 1 FROM runs WHERE id = ?", (int(run_id),)).fetchone() is None:
                raise KeyError(f"no run #{run_id} in the log")
            current = tx.execute("SELECT stars, thumbs, note FROM ratings WHERE run_id = ? ORDER BY id DESC LIMIT 1",
                                 (int(run_id),)).fetchone() or (None, None, None)
            merged = (current[0] if stars is None else stars, current[1] if thumbs is None else thumbs,
                      current[2] if note is None else note)
            tx.execute("INSERT INTO ratings (run_id, stars, thumbs, note, created_at) VALUES (?, ?, ?, ?, ?)",
                       (int(run_id), *merged, _now()))

    def variant_summary(self, template_name: str | None = None) -> list[dict]:
        """Per (template, variant) over OK runs: runs, rated, avg_stars (None if unrated), thumbs up/down, wins."""
        sql = """
            SELECT r.template_name AS template, r.variant AS variant, count(*) AS runs,
                   sum(g.stars IS NOT NULL OR g.thumbs IS NOT NULL) AS rated, avg(g.stars) AS avg_stars,
                   sum(g.thumbs = 1) AS thumbs_up, sum(g.thumbs = -1) AS thumbs_down,
                   sum(c.winner_run_id = r.id) AS wins
            FROM runs r
            LEFT JOIN ratings g ON g.id = (SELECT max(id) FROM ratings WHERE run_id = r.id)
            LEFT JOIN comparisons c ON c.id = r.comparison_id
            WHERE r.status = 'ok' AND (? IS NULL OR r.template_name = ?)
            GROUP BY r.template_name, r.variant
            ORDER BY r.template_name, wins DESC, avg_stars DESC"""
        rows = self._db().execute(sql, (template_name, template_name)).fetchall()
        return [{k: (row[k] or 0) if k in ("rated", "thumbs_up", "thumbs_down", "wins") else row[k]
                 for k in row.keys()} for row in rows]

    # ---- export and import ----------------------------------------------------------------------------------------

    def export(self, dest: Path, fmt: str, *, runs: list[RunRecord]) -> Path:
        """jsonl (one record a line, with its comparison), csv (one run a row), or zip (both + the media files).
        The file appears at `dest` only once complete."""
        if fmt not in ("jsonl", "csv", "zip"):
            raise ValueError(f"format must be jsonl, csv or zip, got {fmt!r}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        rows = self._export_rows(runs)
        temporary = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            if fmt == "jsonl":
                temporary.write_text(_jsonl(rows), encoding="utf-8")
            elif fmt == "csv":
                temporary.write_text(_csv(rows), encoding="utf-8", newline="")
            else:
                with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
                    archive.writestr("runs.jsonl", _jsonl(rows))
                    archive.writestr("runs.csv", _csv(rows))
                    added = set()
                    for run in runs:
                        path = self.artifact_path(run)
                        if path is not None and run.artifact not in added and path.is_file():
                            archive.write(path, f"media/{run.artifact}")
                            added.add(run.artifact)
            os.replace(temporary, dest)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return dest

    def _export_rows(self, runs: list[RunRecord]) -> list[dict]:
        comparisons: dict[int, dict | None] = {}
        rows = []
        for run in runs:
            row = dataclasses.asdict(run)
            cid = run.comparison_id
            if cid is not None and cid not in comparisons:
                try:
                    c = self.get_comparison_header(cid)
                    comparisons[cid] = {"title": c.title, "modality": c.modality, "template_name": c.template_name,
                                        "spec": c.spec, "status": c.status, "winner_run_id": c.winner_run_id,
                                        "created_at": c.created_at}
                except KeyError:
                    comparisons[cid] = None
            if cid is not None and comparisons[cid] is not None:
                row["comparison"] = comparisons[cid]
            rows.append(row)
        return rows

    def get_comparison_header(self, comparison_id: int) -> Comparison:
        """A comparison without its runs (run_count is filled in)."""
        row = self._db().execute(f"{_COMPARISON_SELECT} WHERE c.id = ?", (int(comparison_id),)).fetchone()
        if row is None:
            raise KeyError(f"no comparison #{comparison_id} in the log")
        return _comparison(row)

    def import_jsonl(self, path: Path) -> ImportReport:
        """Add the runs of an export (.jsonl, or a .zip with its media); good rows are kept, bad ones reported with
        their line number. Comparisons are re-created (old id -> new id), with their title, status and winner."""
        path = Path(path)
        report = ImportReport()
        archive = None
        try:
            if zipfile.is_zipfile(path):
                archive = zipfile.ZipFile(path)
                text = archive.read("runs.jsonl").decode("utf-8-sig")
            else:
                text = path.read_text(encoding="utf-8-sig")
        except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as error:
            if archive is not None:
                archive.close()
            report.errors.append((0, f"cannot read {path.name}: {error}"))
            return report
        media = set(archive.namelist()) if archive else set()
        comparisons: dict[int, int] = {}
        winners: dict[int, int] = {}          # new comparison id -> new winner run id
        copied: dict[str, str] = {}           # artifact in the export -> artifact here (shared files stay shared)
        try:
            # Split on newlines only: str.splitlines() would also split inside text holding U+2028 and kin.
            for number, line in enumerate(text.split("\n"), start=1):
                if not line.strip():
                    continue
                try:
                    record, ratings, comparison = _parse_export_row(line)
                    old_id, old_artifact = record.id, record.artifact
                    record.id = record.cached_from = record.artifact = None
                    data, ext = None, None
                    if old_artifact in copied:
                        record.artifact = copied[old_artifact]
                    elif old_artifact and f"media/{old_artifact}" in media:
                        data = archive.read(f"media/{old_artifact}")
                        ext = Path(old_artifact).suffix.lstrip(".")
                    old_comparison = record.comparison_id
                    if old_comparison is not None:
                        if old_comparison not in comparisons:
                            comparisons[old_comparison] = self._import_comparison(old_comparison, comparison, record)
                        record.comparison_id = comparisons[old_comparison]
                    self.add_run(record, artifact=data, artifact_ext=ext)
                    if data is not None:
                        copied[old_artifact] = record.artifact
                    if any(v is not None for v in ratings.values()):
                        self.rate(record.id, **ratings)
                    if old_id is not None and comparison.get("winner_run_id") == old_id \
                            and record.comparison_id is not None:
                        winners[record.comparison_id] = record.id
                    report.imported += 1
                except (ValueError, TypeError, KeyError, sqlite3.Error, zipfile.BadZipFile) as error:
                    report.errors.append((number, str(error)))
        finally:
            if archive is not None:
                archive.close()
        for comparison_id, run_id in winners.items():
            self.set_winner(comparison_id, run_id)
        return report

    def _import_comparison(self, old_id: int, info: dict, record: RunRecord) -> int:
        spec = info.get("spec") if isinstance(info.get("spec"), dict) else {}
        title = info.get("title") if isinstance(info.get("title"), str) and info.get("title") else None
        new_id = self.start_comparison(str(info.get("modality") or record.modality), title or f"imported #{old_id}",
                                       info.get("template_name") if isinstance(info.get("template_name"), str)
                                       else record.template_name, {**spec, "imported_from": old_id})
        status = info.get("status")
        self.finish_comparison(new_id, status if status in COMPARISON_STATUSES[1:] else "done")
        return new_id

    # ---- housekeeping ---------------------------------------------------------------------------------------------

    def sweep_orphans(self) -> int:
        """Delete artifact files no row points at (and leftover temp files) older than orphan_age_s.

        Younger files are left alone: another process may have written one and not yet committed its row."""
        referenced = {row[0] for row in self._db().execute("SELECT artifact FROM runs WHERE artifact IS NOT NULL")}
        cutoff = time.time() - self.orphan_age_s
        removed = 0
        for folder, _, names in os.walk(self.artifacts_dir):
            for name in names:
                path = Path(folder) / name
                if path.relative_to(self.data_dir).as_posix() in referenced:
                    continue
                try:
                    if path.is_file() and path.stat().st_mtime <= cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed


_COMPARISON_SELECT = ("SELECT c.*, (SELECT count(*) FROM runs WHERE comparison_id = c.id) AS run_count "
                      "FROM comparisons c")


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


def _statements(sql: str) -> Iterable[str]:
    """Split a migration into statements (triggers contain ';' inside BEGIN ... END)."""
    buffer = ""
    for line in sql.strip().splitlines():
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


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


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)


_CSV_COLUMNS = [f.name for f in dataclasses.fields(RunRecord)] + ["comparison_title"]


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        row = dict(row, comparison_title=(row.get("comparison") or {}).get("title"))
        for name in _JSON_FIELDS:
            row[name] = json.dumps(row[name], ensure_ascii=False, sort_keys=True)
        writer.writerow(row)
    return buffer.getvalue()


# Import checks: the expected type of every field, from RunRecord's annotations.
_HINTS = typing.get_type_hints(RunRecord)
_REQUIRED = [f.name for f in dataclasses.fields(RunRecord) if f.default is dataclasses.MISSING
             and f.default_factory is dataclasses.MISSING]


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


def _parse_export_row(line: str) -> tuple[RunRecord, dict, dict]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg} (column {error.colno})") from None
    if not isinstance(data, dict):
        raise ValueError("a row must be a JSON object")
    for name in _REQUIRED:
        if name not in data:
            raise ValueError(f"missing required field {name!r}")
    known = {k: v for k, v in data.items() if k in _FIELD_NAMES}
    for name, value in known.items():
        _check_type(name, value)
    if known.get("status", "ok") not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    ratings = {k: known.pop(k, None) for k in _RATING_FIELDS}
    _check_rating(**ratings)
    comparison = data.get("comparison") if isinstance(data.get("comparison"), dict) else {}
    return RunRecord(**known), ratings, comparison
