"""The run log: SQLite (WAL, numbered migrations) for records, plain files for images and audio.

Every output is kept with what is needed to reproduce it. An artifact file is written atomically and made durable
before the row that points at it commits, so a crash leaves at worst an orphan file (swept at start-up), never a
row without its file. No gradio and no model library here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from .records import (Comparison, NotFound, RunRecord, _check_rating, _comparison, _now, _record, cache_key,
                      check_count, check_id)
from .rows import _fsync_dir, _Transaction, insert_rating, insert_run, take_cell
from .queries import CURRENT_RATING, LIVE, row_seeds, run_filters
from .schema import COMPARISON_STATUSES, MIGRATIONS, STATUSES, _statements
from .housekeeping import HousekeepingMixin
from .transfer import TransferMixin


class RunLog(TransferMixin, HousekeepingMixin):
    """The run log of one data dir. Safe to share across threads; several processes may open the same dir."""

    def __init__(self, data_dir: Path, *, orphan_age_s: float = 60.0, stale_check_every_s: float = 10.0):
        self.data_dir = Path(data_dir)
        self.artifacts_dir = self.data_dir / "artifacts"
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "runs.db"
        self.orphan_age_s = orphan_age_s
        self.stale_check_every_s = stale_check_every_s
        self._stale_checked = time.monotonic()        # start-up runs interrupt_stale itself (Services.create)
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
                         spec: dict | None = None, owner: str | None = None) -> int:
        """`owner`: the visitor it belongs to on a public Space; None for a local or shared log."""
        with self._write() as tx:
            cursor = tx.execute("INSERT INTO comparisons (modality, title, template_name, spec, created_at, owner, uid) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                                (modality, title, template_name, json.dumps(spec or {}, default=str), _now(), owner,
                                 uuid.uuid4().hex))
            return cursor.lastrowid

    def finish_comparison(self, comparison_id: int, status: str = "done") -> None:
        if status not in COMPARISON_STATUSES[1:]:
            raise ValueError(f"status must be one of {', '.join(COMPARISON_STATUSES[1:])}, got {status!r}")
        comparison_id = check_id(comparison_id, "comparison")
        with self._write() as tx:
            cursor = tx.execute("UPDATE comparisons SET status = ? WHERE id = ?", (status, comparison_id))
        if cursor.rowcount == 0:
            raise NotFound(f"no comparison #{comparison_id} in the log")

    def get_comparison(self, comparison_id: int, owner: str | None = None, *, live_only: bool = True) -> Comparison:
        """A comparison with its live runs in grid order (`live_only=False`: with the runs re-runs replaced too, as
        exports keep them)."""
        comparison = self.get_comparison_header(comparison_id, owner=owner)
        comparison.runs = self.list_runs(comparison_id=comparison.id, limit=1_000_000, newest_first=False,
                                         live_only=live_only)
        return comparison

    def get_comparison_header(self, comparison_id: int, owner: str | None = None) -> Comparison:
        """A comparison without its runs (run_count is filled in). Another owner's reads as missing."""
        comparison_id = check_id(comparison_id, "comparison")
        self._interrupt_stale_now_and_then()
        where, args = _owned("c.id = ?", [comparison_id], owner, column="c.owner")
        row = self._db().execute(f"{_COMPARISON_SELECT} WHERE {where}", args).fetchone()
        if row is None:
            raise NotFound(f"no comparison #{comparison_id} in the log")
        return _comparison(row)

    def comparison_id_for_uid(self, uid: str) -> int | None:
        """The comparison with this uid (what a share link carries), or None."""
        row = self._db().execute("SELECT id FROM comparisons WHERE uid = ?", (str(uid),)).fetchone()
        return row[0] if row else None

    def list_comparisons(self, modality: str | None = None, template: str | None = None, limit: int = 50,
                         offset: int = 0, owner: str | None = None, runs_matching: dict | None = None
                         ) -> list[Comparison]:
        """Newest first; `runs` is left empty (run_count says how many there are). `owner`: that visitor's only.
        `runs_matching`: run filters (as list_runs takes them); only comparisons with a live run that matches."""
        self._interrupt_stale_now_and_then()
        where, args = [], []
        if runs_matching:
            conditions, matching_args = run_filters(**runs_matching, live_only=True)
            where.append(f"c.id IN (SELECT r.comparison_id FROM runs r {CURRENT_RATING} "
                         f"WHERE {' AND '.join(conditions)})")
            args.extend(matching_args)
        if owner is not None:
            where.append("c.owner = ?")
            args.append(owner)
        if modality:
            where.append("c.modality = ?")
            args.append(modality)
        if template:
            where.append("c.template_name = ?")
            args.append(template)
        sql = _COMPARISON_SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
        rows = self._db().execute(sql + " ORDER BY c.id DESC LIMIT ? OFFSET ?",
                                  (*args, check_count(limit, "limit"), check_count(offset, "offset"))).fetchall()
        return [_comparison(r) for r in rows]

    def set_winner(self, comparison_id: int, run_id: int, owner: str | None = None) -> None:
        comparison_id = check_id(comparison_id, "comparison")
        run = self.get_run(run_id, owner=owner)
        run_id = run.id
        if run.comparison_id != comparison_id:
            raise ValueError(f"run #{run_id} is not part of comparison #{comparison_id}")
        with self._write() as tx:
            tx.execute("UPDATE comparisons SET winner_run_id = ? WHERE id = ?", (run_id, comparison_id))

    # ---- runs -----------------------------------------------------------------------------------------------------

    def add_run(self, record: RunRecord, artifact: bytes | None = None, artifact_ext: str | None = None) -> int:
        """Write the artifact (if any) durably, then the row; returns the run id and fills in the record.

        Without `artifact` bytes, `record.artifact` may name a file already in the log (a cached cell shares it).
        A record with a `cell_key` replaces a failed run of the same cell and raises AlreadyLogged when the cell
        already has an OK run.
        """
        if record.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {record.status!r}")
        if artifact is None and record.artifact is not None and self.artifact_path(record) is None:
            raise ValueError(f"artifact {record.artifact!r} is not a path inside the data dir")
        written = None
        if artifact is not None:
            written = self._write_artifact(artifact, artifact_ext or "bin")
            record.artifact = written.relative_to(self.data_dir).as_posix()
        try:
            with self._write() as tx:
                take_cell(tx, record)
                insert_run(tx, record)
        except BaseException:
            if written is not None:          # no row will point at it
                written.unlink(missing_ok=True)
                record.artifact = None
            raise
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
        return self.inside(record.artifact)

    def reference_path(self, record: RunRecord) -> Path | None:
        """The absolute path of the reference image or audio a record's checks compare with, or None."""
        return self.inside(getattr(record, "reference_file", None))

    def inside(self, relative: str | None) -> Path | None:
        """A path the log keeps relative to the data dir, made absolute; None for none, or for one that leads
        outside the data dir (an imported record cannot point anywhere else)."""
        if not relative:
            return None
        root = self.data_dir.resolve()
        path = (root / relative).resolve()
        if root not in path.parents:
            return None
        return path

    def get_run(self, run_id: int, owner: str | None = None) -> RunRecord:
        """Another owner's run reads as missing: the same error, so ids cannot be probed."""
        run_id = check_id(run_id, "run")
        rows = self._select_runs(*_owned("r.id = ?", [run_id], owner), limit=1)
        if not rows:
            raise NotFound(f"no run #{run_id} in the log")
        return rows[0]

    def find_cached(self, record: RunRecord, *, include_imported: bool = False,
                    owner: str | None = None) -> RunRecord | None:
        """The latest OK run with the same cache key that still has its output (its file, if it had one).

        Imported runs are left out unless asked for: their outputs were not generated here and may be forged.
        With `owner`, only that visitor's runs: another visitor's output is never served (nor its run id shown),
        so a cache hit cannot tell one visitor what another has run."""
        where = "r.cache_key = ? AND r.status = 'ok'" + ("" if include_imported else " AND r.imported = 0")
        where, args = _owned(where, [cache_key(record)], owner)
        page = 8                             # the newest almost always has its output: read a few rows at a time
        for offset in range(0, 1000, page):
            candidates = self._select_runs(where, args, limit=page, offset=offset)
            for candidate in candidates:
                if candidate.artifact is None:
                    if candidate.output_text is not None:
                        return candidate
                    continue                     # e.g. imported without its media: nothing to show
                path = self.artifact_path(candidate)
                if path is not None and path.is_file():
                    return candidate
            if len(candidates) < page:
                return None
        return None

    def list_runs(self, *, modality=None, template=None, model=None, min_stars=None, rated=None, since=None,
                  until=None, query=None, comparison_id=None, limit=100, offset=0, newest_first: bool = True,
                  owner: str | None = None, live_only: bool = False) -> list[RunRecord]:
        """Runs matching every filter given (see queries.run_filters); `live_only` leaves out replaced runs."""
        where, args = run_filters(modality=modality, template=template, model=model, min_stars=min_stars,
                                  rated=rated, since=since, until=until, query=query, comparison_id=comparison_id,
                                  live_only=live_only)
        order = "r.id DESC" if newest_first else "r.row, r.col, r.id"
        return self._select_runs(*_owned(" AND ".join(where) or "1", args, owner), limit=limit, offset=offset,
                                 order=order)

    def row_seeds(self, comparison_id: int) -> dict[int, int]:
        """Row -> the seed its cells were first run with (a cell re-run with a new seed still sits in that row)."""
        return row_seeds(self._db(), check_id(comparison_id, "comparison"))

    def _select_runs(self, where: str, args: list, limit: int = 100, offset: int = 0,
                     order: str = "r.id DESC") -> list[RunRecord]:
        sql = f"""
            SELECT r.*, g.stars AS stars, g.thumbs AS thumbs, g.note AS note
            FROM runs r {CURRENT_RATING}
            WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"""
        rows = self._db().execute(sql, (*args, check_count(limit, "limit"), check_count(offset, "offset"))).fetchall()
        return [_record(row) for row in rows]

    # ---- ratings --------------------------------------------------------------------------------------------------

    def rate(self, run_id: int, *, stars: int | None = None, thumbs: int | None = None,
             note: str | None = None, owner: str | None = None) -> None:
        """Add a rating; fields left out keep their current value (the latest rating row is the current one).
        With `owner`, another owner's run is "not found", exactly like a missing one."""
        run_id = check_id(run_id, "run")
        _check_rating(stars, thumbs, note)
        where, args = _owned("r.id = ?", [run_id], owner)
        with self._write() as tx:            # read and write in one transaction: concurrent raters merge
            if tx.execute(f"SELECT 1 FROM runs r WHERE {where}", args).fetchone() is None:
                raise NotFound(f"no run #{run_id} in the log")
            insert_rating(tx, run_id, stars, thumbs, note)

    def variant_summary(self, template_name: str | None = None, owner: str | None = None) -> list[dict]:
        """Per (template, variant) over live OK runs: runs, rated, avg_stars (None if unrated), thumbs up/down, wins."""
        sql = f"""
            SELECT r.template_name AS template, r.variant AS variant, count(*) AS runs,
                   sum(g.stars IS NOT NULL OR g.thumbs IS NOT NULL) AS rated, avg(g.stars) AS avg_stars,
                   sum(g.thumbs = 1) AS thumbs_up, sum(g.thumbs = -1) AS thumbs_down,
                   sum(c.winner_run_id = r.id) AS wins
            FROM runs r {CURRENT_RATING}
            LEFT JOIN comparisons c ON c.id = r.comparison_id
            WHERE r.status = 'ok' AND (? IS NULL OR r.template_name = ?) AND (? IS NULL OR c.owner = ?) AND {LIVE}
            GROUP BY r.template_name, r.variant
            ORDER BY r.template_name, wins DESC, avg_stars DESC"""
        rows = self._db().execute(sql, (template_name, template_name, owner, owner)).fetchall()
        return [{k: (row[k] or 0) if k in ("rated", "thumbs_up", "thumbs_down", "wins") else row[k]
                 for k in row.keys()} for row in rows]


def _owned(where: str, args: list, owner: str | None, column: str | None = None) -> tuple[str, list]:
    """Narrow a runs query (or, with `column`, a comparisons query) to one owner's comparisons; None: no filter."""
    if owner is None:
        return where, args
    if column:
        return f"({where}) AND {column} = ?", [*args, owner]
    return f"({where}) AND r.comparison_id IN (SELECT id FROM comparisons WHERE owner = ?)", [*args, owner]


_COMPARISON_SELECT = (f"SELECT c.*, (SELECT count(*) FROM runs r WHERE r.comparison_id = c.id AND {LIVE}) "
                      "AS run_count FROM comparisons c")
