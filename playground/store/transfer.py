"""Export (JSONL, CSV, zip with media) and import of the run log."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import sqlite3
import typing
import uuid
import zipfile
from pathlib import Path

from .records import _FIELD_NAMES, _JSON_FIELDS, _RATING_FIELDS, ImportReport, RunRecord, _check_rating
from .schema import COMPARISON_STATUSES, STATUSES


class TransferMixin:
    """The export/import half of RunLog (mixed into it; uses its comparisons, runs and ratings methods)."""

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
