"""Export (JSONL, CSV, zip with media) and import of the run log."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import sqlite3
import tempfile
import uuid
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

from .archive import ExportFile, ImportRefused
from .limits import ImportLimits
from .records import _JSON_FIELDS, ImportReport, RunRecord, _now
from .rows import insert_rating, insert_run
from .scores import add_score_columns, insert_scores, scores_from_export_row
from .schema import COMPARISON_STATUSES
from .validate import MODALITIES, derived_uid, parse_row


logger = logging.getLogger(__name__)

RUNS_PER_CELL = 16                     # re-runs of one cell kept in an imported comparison
EXPORT_FORMATS = ("jsonl", "csv", "parquet", "zip")
_NESTED = ("params", "variables", "versions", "metrics", "scores", "comparison")


class TransferMixin:
    """The export/import half of RunLog (mixed into it; uses its comparisons, runs and ratings methods)."""

    # ---- export and import ----------------------------------------------------------------------------------------

    def export(self, dest: Path, fmt: str, *, runs: list[RunRecord]) -> Path:
        """jsonl (one run a line; the first line of each comparison carries its spec, later ones name it by uid),
        csv (one run a row), parquet (the JSONL rows as a table, nested fields as JSON text), or zip (jsonl and csv
        + the media files). The file appears at `dest` only once complete."""
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"format must be {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        rows = self._export_rows(runs)
        score_columns = add_score_columns(self, rows)      # every check's value (and pass/fail) per run
        temporary = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            if fmt == "jsonl":
                temporary.write_text(_jsonl(rows), encoding="utf-8")
            elif fmt == "csv":
                temporary.write_text(_csv(rows, score_columns), encoding="utf-8", newline="")
            elif fmt == "parquet":
                _parquet(rows, temporary)
            else:
                with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
                    archive.writestr("runs.jsonl", _jsonl(rows))
                    archive.writestr("runs.csv", _csv(rows, score_columns))
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
        """Each run as a row with its comparison: the comparison's spec (most of its bytes on a big grid) on the
        comparison's first row only; the rest name it by uid, and the importer takes the spec from whichever row
        of the comparison has it."""
        comparisons: dict[int, dict | None] = {}
        rows = []
        for run in runs:
            row = dataclasses.asdict(run)
            cid = run.comparison_id
            if cid is not None and cid not in comparisons:
                try:
                    c = self.get_comparison_header(cid)
                    comparisons[cid] = {"title": c.title, "modality": c.modality, "template_name": c.template_name,
                                        "status": c.status, "winner_run_id": c.winner_run_id,
                                        "created_at": c.created_at, "uid": c.uid}
                    row["comparison"] = {**comparisons[cid], "spec": c.spec}
                except KeyError:
                    comparisons[cid] = None
            elif cid is not None and comparisons[cid] is not None:
                row["comparison"] = comparisons[cid]
            rows.append(row)
        return rows

    def import_jsonl(self, path: Path, limits: ImportLimits | None = None, owner: str | None = None) -> ImportReport:
        """Add the runs of an export (.jsonl, or a .zip with its media). The file is untrusted: it is held to
        `limits` while it is read, and every field to the limits of a new comparison; bad lines are reported with
        their number, good ones kept. Each comparison is added in one transaction (an interrupted import leaves
        none half-added); runs already here (same uid) are skipped, so importing a file twice adds nothing.
        Imported runs are marked imported and never served as a cache hit. New comparisons belong to `owner`
        (the importing visitor on a public deployment)."""
        limits = limits or ImportLimits()
        if Path(path).suffix.lower() == ".parquet":
            return self._import_parquet(Path(path), limits, owner)
        report = ImportReport()
        try:
            source = ExportFile(Path(path), limits)
        except ImportRefused as error:
            report.errors.append((0, str(error)))
            return report
        except (OSError, zipfile.BadZipFile, zlib.error) as error:
            report.errors.append((0, f"cannot read {Path(path).name}: {getattr(error, 'strerror', None) or error}"))
            return report
        with source:
            groups: dict[object, list[_Row]] = {}
            cells: dict[object, set] = {}
            lines_of: dict[str, tuple] = {}          # uid -> (the line that brought it, its hash)
            for number, line in source.lines(report.errors):
                try:
                    record, ratings, info, data = parse_row(line, limits)
                    scores = scores_from_export_row(data)     # scores travel with their run
                    digest = hashlib.sha256(line.encode("utf-8", "surrogatepass")).digest()
                    if record.uid in lines_of:
                        first, first_digest = lines_of[record.uid]
                        if digest == first_digest:         # the very same line again: the run is taken once
                            report.skipped += 1
                            continue
                        raise ValueError(f"uid {record.uid} is also the uid of line {first}, a different run: each "
                                         "run needs its own uid; this line was left out")
                    if owner is not None and record.comparison_id is None:
                        raise ValueError("a run without its comparison (no comparison_id): here each visitor sees "
                                         "their own comparisons, so it would belong to nobody; export whole "
                                         "comparisons")
                    lines_of[record.uid] = (number, digest)
                    key = ("c", record.comparison_id) if record.comparison_id is not None else ("r", number)
                    group, taken = groups.setdefault(key, []), cells.setdefault(key, set())
                    cell = (record.row, record.col)
                    if cell not in taken and len(taken) >= limits.max_cells:
                        raise ValueError(f"comparison #{record.comparison_id} has more than {limits.max_cells} "
                                         "cells, the limit of one comparison")
                    if len(group) >= limits.max_cells * RUNS_PER_CELL:
                        raise ValueError(f"comparison #{record.comparison_id} has more than "
                                         f"{limits.max_cells * RUNS_PER_CELL} runs ({RUNS_PER_CELL} per cell)")
                    taken.add(cell)
                    group.append(_Row(number, record, ratings, info, scores=scores,
                                      names_replaced="replaces" in data))
                except ValueError as error:
                    report.errors.append((number, str(error)))
            copied: dict[str, str] = {}        # artifact in the export -> artifact here (shared files stay shared)
            for rows in groups.values():
                self._import_group(source, rows, copied, report, owner)
        report.errors.sort(key=lambda item: item[0])
        return report

    def _import_parquet(self, path: Path, limits: ImportLimits, owner: str | None) -> ImportReport:
        """A parquet export is imported as the JSONL rows it holds."""
        report = ImportReport()
        try:
            if path.stat().st_size > limits.max_bytes:
                raise ImportRefused(f"{path.name} is larger than the import limit (setting max_import_bytes)")
            lines = _parquet_lines(path, limits.max_rows)
        except (ImportRefused, OSError, ValueError) as error:
            report.errors.append((0, f"cannot read {path.name}: {error}"))
            return report
        with tempfile.TemporaryDirectory(prefix="playground-import-") as folder:
            converted = Path(folder) / "runs.jsonl"
            converted.write_text(lines, encoding="utf-8")
            return self.import_jsonl(converted, replace(limits, max_bytes=max(limits.max_bytes,
                                                                              converted.stat().st_size)), owner)

    def _import_group(self, source: ExportFile, rows: list[_Row], copied: dict, report: ImportReport,
                      owner: str | None = None) -> None:
        """One comparison (or one loose run): media first, then every row in one transaction."""
        spec = next((row.info["spec"] for row in rows if isinstance(row.info.get("spec"), dict)), None)
        rows = self._claim_uids(rows, owner)
        report.skipped += len([row for row in rows if row is None])
        rows = [row for row in rows if row is not None]
        if not rows:
            return
        stored: list[Path] = []
        ready = []
        for row in rows:
            old_artifact = row.record.artifact
            row.old_id, row.record.id, row.record.cached_from, row.record.artifact = row.record.id, None, None, None
            row.old_replaces, row.record.replaces = row.record.replaces, None
            try:
                if old_artifact in copied:
                    row.record.artifact = copied[old_artifact]
                elif old_artifact:
                    final = source.store_media(old_artifact, row.record.modality, self.artifacts_dir)
                    if final is not None:
                        stored.append(final)
                        row.record.artifact = copied[old_artifact] = final.relative_to(self.data_dir).as_posix()
                ready.append(row)
            except ValueError as error:
                report.errors.append((row.number, str(error)))
        if not ready:
            return
        try:
            with self._write() as tx:
                comparison_id, created = self._import_comparison(tx, ready[0].record.comparison_id,
                                                                 {**ready[0].info, "spec": spec}, ready[0].record,
                                                                 owner)
                added, count, in_cell = {}, 0, {}
                for row in ready:
                    row.record.comparison_id = comparison_id
                    row.record.replaces = _replaced(row, added, in_cell) if comparison_id is not None else None
                    tx.execute("SAVEPOINT import_row")
                    try:
                        insert_run(tx, row.record)
                        if any(v is not None for v in row.ratings.values()):
                            insert_rating(tx, row.record.id, **row.ratings)
                        insert_scores(tx, row.record.id, row.scores)
                        tx.execute("RELEASE import_row")
                    except sqlite3.Error as error:
                        tx.execute("ROLLBACK TO import_row")
                        tx.execute("RELEASE import_row")
                        if "runs.uid" in str(error):        # another import of the same file got there first
                            report.skipped += 1
                        else:
                            report.errors.append((row.number, f"not stored: {_stored_error(error)}"))
                        continue
                    count += 1
                    in_cell[(row.record.row, row.record.col)] = row.record.id
                    if row.old_id is not None:
                        added[row.old_id] = row.record.id
                winner = ready[0].info.get("winner_run_id")
                if comparison_id is not None and winner in added and created:
                    tx.execute("UPDATE comparisons SET winner_run_id = ? WHERE id = ?", (added[winner], comparison_id))
            report.imported += count
        except sqlite3.Error as error:
            for path in stored:                 # no row points at them
                path.unlink(missing_ok=True)
            for artifact in [k for k, v in copied.items() if self.data_dir / v in stored]:
                del copied[artifact]
            report.errors.extend((row.number, f"not stored: {_stored_error(error)}") for row in ready)

    def _claim_uids(self, rows: list[_Row], owner: str | None) -> list[_Row | None]:
        """The rows to add, None for each one already in the log. Where visitors are kept apart a uid is unique per
        owner: a run counts as present only when the importer holds it, and one another visitor holds under the same
        uid (a forged copy of a shared export, say) is stored under a uid derived from the importer's id. So no
        import can block another visitor's, or tell them that someone else holds those runs."""
        db = self._db()

        def held(uids, join: str = "", where: str = "", args=()) -> set[str]:
            if not uids:
                return set()
            marks = ", ".join("?" * len(uids))
            return {r[0] for r in db.execute(f"SELECT r.uid FROM runs r {join} WHERE r.uid IN ({marks}) {where}",
                                             (*uids, *args))}

        uids = [row.record.uid for row in rows]
        if owner is None:
            present = held(uids)
            return [None if row.record.uid in present else row for row in rows]
        mine = held(uids, "JOIN comparisons c ON c.id = r.comparison_id", "AND c.owner = ?", (owner,))
        derived = {uid: derived_uid("owner", owner, uid) for uid in uids}
        held_derived = held(list(derived.values()))
        mine |= {uid for uid, other in derived.items() if other in held_derived}
        taken = held(uids)
        claimed = []
        for row in rows:
            if row.record.uid in mine:
                claimed.append(None)
                continue
            if row.record.uid in taken:
                row.record.uid = derived[row.record.uid]
            claimed.append(row)
        return claimed

    def _import_comparison(self, tx: sqlite3.Connection, old_id: int | None, info: dict, record: RunRecord,
                           owner: str | None = None) -> tuple[int | None, bool]:
        """The comparison here for a comparison of the export (`info`, as its rows describe it), found by uid or
        created; and whether it was created now."""
        if old_id is None:
            return None, False
        uid = info.get("uid") or derived_uid("comparison", old_id, info.get("title"), info.get("created_at"))
        found = tx.execute("SELECT id FROM comparisons WHERE uid = ? AND owner IS ?", (uid, owner)).fetchone()
        if found is None and tx.execute("SELECT 1 FROM comparisons WHERE uid = ?", (uid,)).fetchone():
            uid = derived_uid("comparison", uid, owner)     # another visitor's copy: this one gets its own
        if found is not None:
            return found[0], False
        spec = info.get("spec") if isinstance(info.get("spec"), dict) else {}
        title = info.get("title") or f"imported #{old_id}"
        modality = info.get("modality") if info.get("modality") in MODALITIES else record.modality
        template = info.get("template_name") if isinstance(info.get("template_name"), str) \
            else record.template_name
        status = info.get("status") if info.get("status") in COMPARISON_STATUSES[1:] else "done"
        cursor = tx.execute("INSERT INTO comparisons (modality, title, template_name, spec, status, created_at, uid, "
                            "owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (modality, title, template, json.dumps({**spec, "imported_from": old_id}, default=str),
                             status, _now(), uid, owner))
        return cursor.lastrowid, True


@dataclasses.dataclass
class _Row:
    number: int
    record: RunRecord
    ratings: dict
    info: dict
    old_id: int | None = None
    scores: list = dataclasses.field(default_factory=list)
    names_replaced: bool = True       # the row says which run it replaced (None: none); older exports do not
    old_replaces: int | None = None


def _replaced(row: _Row, added: dict[int, int], in_cell: dict[tuple[int, int], int]) -> int | None:
    """The run here that an imported re-run replaces: the one its export named, once imported too; for rows of
    older exports, which do not say, the run imported before it in the same cell."""
    if not row.names_replaced:
        return in_cell.get((row.record.row, row.record.col))
    return added.get(row.old_replaces) if row.old_replaces is not None else None


def _stored_error(error: sqlite3.Error) -> str:
    """What a failed insert means for the person importing, not SQLite's own words."""
    text = str(error)
    logger.warning("an imported row was not stored: %s", text)
    if "no such table" in text or "no such column" in text:
        return ("the run log is missing part of its schema: restore runs.db from a backup or an export, or start "
                "with a fresh --data-dir")
    if "UNIQUE" in text or "constraint" in text.lower():
        return "the run log refused this row as inconsistent with what it holds; check the row's ids"
    return f"the run log could not store it ({type(error).__name__}); the details are in the server log"


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)


_CSV_COLUMNS = [f.name for f in dataclasses.fields(RunRecord)] + ["comparison_title"]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """A cell a spreadsheet will not run: text starting with = + - @ tab or CR gets a leading ' (OWASP)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv(rows: list[dict], score_columns: list[str] = ()) -> str:
    columns = _CSV_COLUMNS + list(score_columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        row = dict(row, comparison_title=(row.get("comparison") or {}).get("title"))
        for name in _JSON_FIELDS:
            row[name] = json.dumps(row[name], ensure_ascii=False, sort_keys=True)
        writer.writerow({name: csv_safe(row.get(name)) for name in columns})
    return buffer.getvalue()


def _parquet(rows: list[dict], dest: Path) -> None:
    """The export rows as a parquet table; nested fields (params, variables, scores, the comparison) as JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(dict.fromkeys(name for row in rows for name in row))
    data = {name: [json.dumps(row.get(name), ensure_ascii=False, default=str)
                   if name in _NESTED or isinstance(row.get(name), (dict, list)) else row.get(name) for row in rows]
            for name in columns}
    pq.write_table(pa.table(data), dest)


def _parquet_lines(path: Path, max_rows: int) -> str:
    """A parquet export back into the JSONL lines it was made from."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:            # pyarrow raises several kinds for a damaged file
        raise ValueError(f"not a Parquet export ({error})") from None
    if table.num_rows > max_rows:
        raise ValueError(f"{table.num_rows} rows; the limit is {max_rows} (setting max_import_rows)")
    lines = []
    for row in table.to_pylist():
        for name in _NESTED:
            if isinstance(row.get(name), str):
                try:
                    row[name] = json.loads(row[name])
                except json.JSONDecodeError:
                    pass                 # left as text: the row's own check reports it
        lines.append(json.dumps(row, ensure_ascii=False, default=str))
    return "\n".join(lines) + "\n"
