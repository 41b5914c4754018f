"""The run log: SQLite (WAL, numbered migrations) for records, plain files for images and audio.

Every output is kept with what is needed to reproduce it. An artifact file is written atomically and made durable
before the row that points at it commits, so a crash leaves at worst an orphan file (swept at start-up), never a
row without its file. No gradio and no model library here.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import sqlite3
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

# Numbered migrations: each runs once, in order, inside a transaction; the applied ones are recorded.
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
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
STATUSES = ("ok", "error", "cancelled")
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


_RUN_COLUMNS = [f.name for f in dataclasses.fields(RunRecord) if f.name not in {"id", "stars", "thumbs", "note"}]
_RATING_FIELDS = ("stars", "thumbs", "note")


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


@dataclass
class ImportReport:
    imported: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def cache_key(record: RunRecord) -> str:
    """Identifies an output by everything that determines it: same key, same output."""
    payload = {"modality": record.modality, "model_id": record.model_id, "revision": record.model_revision,
               "prompt": record.prompt, "system": record.system, "negative_prompt": record.negative_prompt,
               "params": record.params, "seed": record.seed}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"


def _fts_query(text: str) -> str:
    """User text as FTS5 terms: each word quoted, so operators and stray quotes are plain words."""
    words = [w.replace('"', '""') for w in text.split()]
    return " ".join(f'"{w}"' for w in words if w.strip('"'))


class RunLog:
    def __init__(self, data_dir: Path, *, orphan_age_s: float = 60.0):
        self.data_dir = Path(data_dir)
        self.artifacts_dir = self.data_dir / "artifacts"
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "runs.db"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self.orphan_age_s = orphan_age_s
        self._migrate()
        self.sweep_orphans()

    # ---- connections and migrations -------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        """One connection per thread (sqlite3 connections must not be shared across threads)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: durable at checkpoints, never corrupt
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=30000")
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def _write(self):
        return _Transaction(self._db())

    def _migrate(self) -> None:
        db = self._db()
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        with self._write() as tx:
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

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                try:
                    connection.close()
                except sqlite3.Error:
                    pass
            self._connections.clear()
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
        if status not in ("done", "cancelled", "failed"):
            raise ValueError(f"status must be done, cancelled or failed, got {status!r}")
        with self._write() as tx:
            tx.execute("UPDATE comparisons SET status = ? WHERE id = ?", (status, comparison_id))

    def get_comparison(self, comparison_id: int) -> Comparison:
        row = self._db().execute("SELECT * FROM comparisons WHERE id = ?", (int(comparison_id),)).fetchone()
        if row is None:
            raise KeyError(f"no comparison #{comparison_id} in the log")
        comparison = _comparison(row)
        comparison.runs = self.list_runs(comparison_id=comparison.id, limit=100_000, newest_first=False)
        return comparison

    def list_comparisons(self, modality: str | None = None, template: str | None = None, limit: int = 50,
                         offset: int = 0) -> list[Comparison]:
        where, args = [], []
        if modality:
            where.append("modality = ?")
            args.append(modality)
        if template:
            where.append("template_name = ?")
            args.append(template)
        sql = "SELECT * FROM comparisons" + (f" WHERE {' AND '.join(where)}" if where else "")
        rows = self._db().execute(sql + " ORDER BY id DESC LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        return [_comparison(r) for r in rows]

    def set_winner(self, comparison_id: int, run_id: int) -> None:
        run = self.get_run(run_id)
        if run.comparison_id != comparison_id:
            raise ValueError(f"run #{run_id} is not part of comparison #{comparison_id}")
        with self._write() as tx:
            tx.execute("UPDATE comparisons SET winner_run_id = ? WHERE id = ?", (run_id, comparison_id))

    # ---- runs -----------------------------------------------------------------------------------------------------

    def add_run(self, record: RunRecord, artifact: bytes | None = None, artifact_ext: str | None = None) -> int:
        """Write the artifact (if any) durably, then the row; returns the run id and fills in the record."""
        if record.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {record.status!r}")
        if artifact is not None:
            record.artifact = self._write_artifact(artifact, artifact_ext or "bin")
        record.created_at = record.created_at or _now()
        values = {name: getattr(record, name) for name in _RUN_COLUMNS}
        for name in _JSON_FIELDS:
            values[name] = json.dumps(values[name] or {}, sort_keys=True, default=str)
        values["cache_key"] = cache_key(record)
        columns = list(values)
        with self._write() as tx:
            cursor = tx.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES "
                                f"({', '.join('?' for _ in columns)})", [values[c] for c in columns])
            record.id = cursor.lastrowid
        return record.id

    def _write_artifact(self, data: bytes, ext: str) -> str:
        ext = "".join(ch for ch in ext.lower() if ch.isalnum())[:8] or "bin"
        folder = self.artifacts_dir / time.strftime("%Y-%m", time.gmtime())
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{uuid.uuid4().hex}.{ext}"
        temporary = folder / f".{final.name}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return final.relative_to(self.data_dir).as_posix()

    def artifact_path(self, record: RunRecord) -> Path | None:
        if not record.artifact:
            return None
        path = (self.data_dir / record.artifact).resolve()
        if self.data_dir.resolve() not in path.parents:
            return None                 # a record from elsewhere must not point outside the data dir
        return path

    def get_run(self, run_id: int) -> RunRecord:
        rows = self._select_runs("r.id = ?", [int(run_id)], limit=1)
        if not rows:
            raise KeyError(f"no run #{run_id} in the log")
        return rows[0]

    def find_cached(self, record: RunRecord) -> RunRecord | None:
        for candidate in self._select_runs("r.cache_key = ? AND r.status = 'ok'", [cache_key(record)], limit=5):
            path = self.artifact_path(candidate)
            if candidate.artifact is None or (path is not None and path.exists()):
                return candidate
        return None

    def list_runs(self, *, modality=None, template=None, model=None, min_stars=None, rated=None, since=None,
                  until=None, query=None, comparison_id=None, limit=100, offset=0,
                  newest_first: bool = True) -> list[RunRecord]:
        where, args = [], []
        for column, value in (("r.modality", modality), ("r.template_name", template),
                              ("r.comparison_id", comparison_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if model:
            where.append("r.model_id LIKE ?")
            args.append(f"%{model}%")
        if since:
            where.append("r.created_at >= ?")
            args.append(str(since))
        if until:
            where.append("r.created_at <= ?")
            args.append(str(until))
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
        if stars is not None and (not isinstance(stars, int) or isinstance(stars, bool) or not 1 <= stars <= 5):
            raise ValueError(f"stars must be a whole number from 1 to 5, got {stars!r}")
        if thumbs is not None and thumbs not in (-1, 0, 1):
            raise ValueError(f"thumbs must be -1, 0 or 1, got {thumbs!r}")
        if note is not None and len(note) > 10_000:
            raise ValueError("note is longer than 10,000 characters")
        current = self.get_run(run_id)
        merged = {"stars": current.stars if stars is None else stars,
                  "thumbs": current.thumbs if thumbs is None else thumbs,
                  "note": current.note if note is None else note}
        with self._write() as tx:
            tx.execute("INSERT INTO ratings (run_id, stars, thumbs, note, created_at) VALUES (?, ?, ?, ?, ?)",
                       (run_id, merged["stars"], merged["thumbs"], merged["note"], _now()))

    def variant_summary(self, template_name: str | None = None) -> list[dict]:
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
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "jsonl":
            dest.write_text(_jsonl(runs), encoding="utf-8")
        elif fmt == "csv":
            dest.write_text(_csv(runs), encoding="utf-8")
        elif fmt == "zip":
            with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("runs.jsonl", _jsonl(runs))
                archive.writestr("runs.csv", _csv(runs))
                for run in runs:
                    path = self.artifact_path(run)
                    if path and path.exists():
                        archive.write(path, f"media/{run.artifact}")
        else:
            raise ValueError(f"format must be jsonl, csv or zip, got {fmt!r}")
        return dest

    def import_jsonl(self, path: Path) -> ImportReport:
        """Add the runs of an export (.jsonl, or a .zip with its media); good rows are kept, bad ones reported."""
        path = Path(path)
        report = ImportReport()
        media: dict[str, bytes] = {}
        try:
            if path.suffix.lower() == ".zip":
                with zipfile.ZipFile(path) as archive:
                    text = archive.read("runs.jsonl").decode("utf-8")
                    media = {n[len("media/"):]: archive.read(n) for n in archive.namelist() if n.startswith("media/")}
            else:
                text = path.read_text(encoding="utf-8")
        except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as error:
            report.errors.append((0, f"cannot read {path.name}: {error}"))
            return report
        comparisons: dict[int, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record, ratings, comparison = _parse_export_row(line)
                old_comparison = record.comparison_id
                if old_comparison is not None:
                    if old_comparison not in comparisons:
                        comparisons[old_comparison] = self.start_comparison(
                            comparison.get("modality", record.modality),
                            comparison.get("title") or f"imported #{old_comparison}",
                            comparison.get("template_name", record.template_name), {"imported_from": old_comparison})
                        self.finish_comparison(comparisons[old_comparison], "done")
                    record.comparison_id = comparisons[old_comparison]
                data = media.get(record.artifact) if record.artifact else None
                ext = Path(record.artifact).suffix.lstrip(".") if record.artifact else None
                record.artifact = None
                record.id = None
                record.cached_from = None
                self.add_run(record, artifact=data, artifact_ext=ext)
                if any(v is not None for v in ratings.values()):
                    self.rate(record.id, **ratings)
                report.imported += 1
            except (ValueError, TypeError, KeyError) as error:
                report.errors.append((number, str(error)))
        return report

    # ---- housekeeping ---------------------------------------------------------------------------------------------

    def sweep_orphans(self) -> int:
        """Delete artifact files no row points at (and leftover temp files) older than orphan_age_s."""
        referenced = {row[0] for row in self._db().execute("SELECT artifact FROM runs WHERE artifact IS NOT NULL")}
        cutoff = time.time() - self.orphan_age_s
        removed = 0
        for path in self.artifacts_dir.rglob("*"):
            if not path.is_file():
                continue
            relative = path.relative_to(self.data_dir).as_posix()
            if relative in referenced:
                continue
            try:
                if path.stat().st_mtime <= cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def integrity_check(self) -> str:
        return self._db().execute("PRAGMA integrity_check").fetchone()[0]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so concurrent writers queue instead of failing."""

    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self.connection.execute("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, kind, error, trace) -> None:
        self.connection.execute("COMMIT" if kind is None else "ROLLBACK")


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


def _record(row: sqlite3.Row) -> RunRecord:
    data = {name: row[name] for name in row.keys() if name in _FIELD_NAMES}
    for name in _JSON_FIELDS:
        data[name] = json.loads(data[name] or "{}")
    return RunRecord(**data)


_FIELD_NAMES = {f.name for f in dataclasses.fields(RunRecord)}


def _comparison(row: sqlite3.Row) -> Comparison:
    return Comparison(id=row["id"], modality=row["modality"], title=row["title"], template_name=row["template_name"],
                      spec=json.loads(row["spec"] or "{}"), created_at=row["created_at"], status=row["status"],
                      winner_run_id=row["winner_run_id"])


def _export_row(run: RunRecord) -> dict:
    return dataclasses.asdict(run)


def _jsonl(runs: list[RunRecord]) -> str:
    return "".join(json.dumps(_export_row(r), ensure_ascii=False, default=str) + "\n" for r in runs)


def _csv(runs: list[RunRecord]) -> str:
    buffer = io.StringIO()
    names = [f.name for f in dataclasses.fields(RunRecord)]
    writer = csv.DictWriter(buffer, fieldnames=names)
    writer.writeheader()
    for run in runs:
        row = _export_row(run)
        for name in _JSON_FIELDS:
            row[name] = json.dumps(row[name], ensure_ascii=False, sort_keys=True)
        writer.writerow(row)
    return buffer.getvalue()


_REQUIRED = {"modality": str, "model_id": str, "prompt": str, "seed": int, "params": dict}
_TYPES = {"variables": dict, "versions": dict, "row": int, "col": int, "status": str}


def _parse_export_row(line: str) -> tuple[RunRecord, dict, dict]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg} (column {error.colno})") from None
    if not isinstance(data, dict):
        raise ValueError("a row must be a JSON object")
    for name, kind in {**_REQUIRED, **_TYPES}.items():
        if name in _REQUIRED and name not in data:
            raise ValueError(f"missing required field {name!r}")
        if name in data and data[name] is not None and not (isinstance(data[name], kind)
                                                               and not isinstance(data[name], bool)):
            raise ValueError(f"field {name!r} must be {kind.__name__}, got {type(data[name]).__name__}")
    if data.get("status", "ok") not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    ratings = {k: data.pop(k, None) for k in _RATING_FIELDS}
    comparison = data.pop("comparison", None) or {}
    known = {k: v for k, v in data.items() if k in _FIELD_NAMES}
    return RunRecord(**known), ratings, comparison
