"""Datasets kept in the data dir: each one's rows in `datasets/<version>/data.parquet`, where the version is the
SHA-256 of its content (column names and types, then every row), and a row in the run log's `datasets` table
(name, where it came from, columns, row count, owner). The same rows added twice are one version; an experiment
names the version it ran on, so it always says exactly which rows it used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..store.records import _now
from .errors import DatasetError, did_you_mean
from .read import check_size, format_of, loaded, write_text

_VERSION = re.compile(r"^[0-9a-f]{64}$")
PREVIEW_CHARS = 300            # a text value in a preview


@dataclass(frozen=True)
class Column:
    name: str
    type: str                   # text, integer, number, bool, image, audio, list, label, date, bytes, object


@dataclass
class DatasetInfo:
    id: int
    name: str
    version: str                # sha256 of the content: the dataset's identity
    source: dict                # where it was read from (file name and format, or hub id, config and split)
    columns: list[Column]
    rows: int
    bytes: int
    owner: str | None = None
    created_at: str = ""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """The column called `name`, or a DatasetError with the closest names."""
        for column in self.columns:
            if column.name == name:
                return column
        raise DatasetError(f"dataset {self.name!r}: " + did_you_mean(str(name), self.column_names))

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "version": self.version, "source": self.source,
                "columns": [vars(c) for c in self.columns], "rows": self.rows, "bytes": self.bytes,
                "owner": self.owner, "created_at": self.created_at}


@dataclass
class Preview:
    dataset: DatasetInfo
    rows: list[dict] = field(default_factory=list)   # the first rows, each value shown as short text


def content_hash(table, kinds: dict[str, str] | None = None) -> str:
    """SHA-256 of the column names and kinds (text, integer, ...: not how a file stored them), then each row as
    canonical JSON (bytes by their own hash). The same rows from a CSV and a Parquet file are one version."""
    digest = hashlib.sha256()
    kinds = kinds or {}
    digest.update(json.dumps([[f.name, kinds.get(f.name, str(f.type))] for f in table.schema],
                             ensure_ascii=False).encode())
    for batch in table.to_batches(max_chunksize=4096):
        for row in batch.to_pylist():
            digest.update(json.dumps(row, ensure_ascii=False, sort_keys=False, default=_canonical).encode())
            digest.update(b"\n")
    return digest.hexdigest()


def _canonical(value):
    if isinstance(value, (bytes, bytearray)):
        return {"sha256": hashlib.sha256(value).hexdigest()}
    return str(value)


class Datasets:
    """The datasets of one data dir (rows in parquet files, their records in the run log)."""

    def __init__(self, log, settings):
        self.log = log
        self.settings = settings
        self.root = Path(settings.data_dir) / "datasets"

    # ---- adding -------------------------------------------------------------------------------------------------

    def add(self, source: str | Path, *, name: str | None = None, fmt: str | None = None, config: str | None = None,
            split: str | None = None, owner: str | None = None) -> DatasetInfo:
        """A file (csv, tsv, jsonl, json, parquet), a folder of data files, or a Hugging Face dataset id (with
        `config` and `split`). The same content added again returns the dataset already here; the very same file
        (by the hash of its bytes) is found without reading it again."""
        path = Path(str(source)).expanduser()
        digest = None
        if path.is_file():
            check_size(path.stat().st_size, self.settings.max_dataset_bytes, path.name)   # before a byte is read
            digest = file_digest(path)
            known = self._by_file(digest, format_of(path, fmt), owner)
            if known is not None:
                return known
        with loaded(source, fmt=fmt, config=config, split=split, max_bytes=self.settings.max_dataset_bytes,
                    max_rows=self.settings.max_dataset_rows, offline=self.settings.offline) as (table, origin):
            if digest is not None:
                origin["file_sha256"] = digest
            return self._store(table, origin, name or _default_name(origin), owner)

    def _by_file(self, digest: str, fmt: str, owner: str | None) -> DatasetInfo | None:
        row = self.log._db().execute(
            "SELECT * FROM datasets WHERE json_extract(source, '$.file_sha256') = ? AND json_extract(source, "
            "'$.format') = ? AND owner IS ? ORDER BY id DESC LIMIT 1", (digest, fmt, owner)).fetchone()
        if row is None or not (self.root / row["version"] / "data.parquet").is_file():
            return None
        return _info(row)

    def add_text(self, text: str, *, name: str, fmt: str | None = None, owner: str | None = None) -> DatasetInfo:
        """Rows pasted as text: CSV (a header line first), TSV, JSON lines or a JSON list of objects."""
        if not isinstance(text, str) or not text.strip():
            raise DatasetError("no rows pasted: paste CSV with a header line, or JSON lines")
        if len(text.encode("utf-8")) > self.settings.max_dataset_bytes:
            raise DatasetError("the pasted rows are larger than max_dataset_bytes; add them as a file")
        with tempfile.TemporaryDirectory(prefix="playground-pasted-") as folder:
            path = write_text(text, Path(folder), fmt)
            info = self.add(path, name=name, owner=owner)
        return info

    def add_rows(self, rows: list[dict], *, name: str, owner: str | None = None) -> DatasetInfo:
        """Rows given as a list of objects (what an API caller sends)."""
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise DatasetError("rows must be a non-empty list of objects like {\"product\": \"a lantern\"}")
        return self.add_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), name=name, fmt="json",
                             owner=owner)

    def _store(self, table, origin: dict, name: str, owner: str | None) -> DatasetInfo:
        import pyarrow.parquet as pq

        types = origin.pop("features", {})
        version = content_hash(table, types)
        folder = self.root / version
        final = folder / "data.parquet"
        if not final.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            temporary = folder / f".data.{uuid.uuid4().hex}.tmp"
            try:
                pq.write_table(table, temporary)
                os.replace(temporary, final)
            finally:
                temporary.unlink(missing_ok=True)
        columns = [{"name": n, "type": types.get(n, "object")} for n in table.column_names]
        origin.pop("label", None)
        with self.log._write() as tx:
            tx.execute("INSERT INTO datasets (name, version, source, columns, row_count, bytes, owner, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       (_clean_name(name), version, json.dumps(origin), json.dumps(columns), table.num_rows,
                        final.stat().st_size, owner, _now()))
            if origin.get("file_sha256"):       # the next add of this very file is found by its bytes
                tx.execute("UPDATE datasets SET source = json_set(source, '$.file_sha256', ?, '$.format', ?) WHERE "
                           "version = ? AND owner IS ? AND json_extract(source, '$.file_sha256') IS NULL",
                           (origin["file_sha256"], origin.get("format"), version, owner))
        return self.get(version, owner=owner)

    # ---- reading ------------------------------------------------------------------------------------------------

    def get(self, ref, owner: str | None = None) -> DatasetInfo:
        """A dataset by id, version (its hash) or name (the newest of that name). Another owner's reads as
        missing. Raises DatasetError saying which datasets there are."""
        where, args = self._where(ref)
        if owner is not None:
            where, args = f"({where}) AND owner = ?", [*args, owner]
        row = self.log._db().execute(f"SELECT * FROM datasets WHERE {where} ORDER BY id DESC LIMIT 1",
                                     args).fetchone()
        if row is None:
            names = [d.name for d in self.list(owner=owner)]
            raise DatasetError(did_you_mean(str(ref), names, "dataset") + ": add it first")
        return _info(row)

    @staticmethod
    def _where(ref) -> tuple[str, list]:
        if isinstance(ref, int) and not isinstance(ref, bool):
            return "id = ?", [ref]
        text = str(ref).strip()
        if _VERSION.match(text):
            return "version = ?", [text]
        if text.isdecimal() and len(text) < 19:
            return "id = ? OR name = ?", [int(text), text]
        return "name = ?", [text]

    def list(self, owner: str | None = None, limit: int = 200) -> list[DatasetInfo]:
        where, args = ("owner = ?", [owner]) if owner is not None else ("1", [])
        rows = self.log._db().execute(f"SELECT * FROM datasets WHERE {where} ORDER BY id DESC LIMIT ?",
                                      [*args, int(limit)]).fetchall()
        return [_info(row) for row in rows]

    def path(self, info: DatasetInfo) -> Path:
        path = self.root / info.version / "data.parquet"
        if not path.is_file():
            raise DatasetError(f"the rows of dataset {info.name!r} ({info.version[:12]}) are missing from "
                               f"{self.root}: add the dataset again")
        return path

    def table(self, info: DatasetInfo, columns: list[str] | None = None):
        """The rows as a pyarrow Table, memory-mapped (reading a few rows of a big file costs little)."""
        import pyarrow.parquet as pq

        for name in columns or []:
            info.column(name)
        # ParquetFile, not read_table: read_table loads pyarrow.dataset, and with it pandas (~30 MB) for nothing
        return pq.ParquetFile(self.path(info), memory_map=True).read(columns=columns)

    def keep_reference(self, media: tuple[bytes, str]) -> str:
        """A row's reference image or audio kept in the data dir by its content hash (once, however many cells
        and experiments compare with it); the path the run log records, relative to the data dir."""
        data, suffix = media
        digest = hashlib.sha256(data).hexdigest()
        path = self.settings.references_dir / digest[:2] / f"{digest}{suffix}"
        relative = path.relative_to(self.settings.data_dir).as_posix()
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{uuid.uuid4().hex}.tmp")
            try:
                temporary.write_bytes(data)
                os.replace(temporary, path)
            finally:
                temporary.unlink(missing_ok=True)
        return relative

    def preview(self, ref, n: int = 20, owner: str | None = None) -> Preview:
        """Columns with their types, the row count and the first `n` rows (long text cut, media named)."""
        info = ref if isinstance(ref, DatasetInfo) else self.get(ref, owner=owner)
        import pyarrow.parquet as pq

        first = next(pq.ParquetFile(self.path(info)).iter_batches(batch_size=max(1, min(n, 1000))), None)
        rows = [] if first is None else first.to_pylist()[:n]
        return Preview(info, [{k: shown(v) for k, v in row.items()} for row in rows])


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shown(value) -> str:
    """A value as a preview shows it: text cut to PREVIEW_CHARS, images and audio named with their size."""
    if isinstance(value, dict) and "bytes" in value:
        data = value.get("bytes") or b""
        return f"<file {len(data):,} bytes>"
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value):,} bytes>"
    text = value if isinstance(value, str) else "" if value is None else json.dumps(value, default=str)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"


def _default_name(origin: dict) -> str:
    if origin["kind"] == "hub":
        return origin["id"] + (f":{origin['config']}" if origin.get("config") else "") + \
            (f"[{origin['split']}]" if origin.get("split") else "")
    return Path(origin["name"]).stem if origin["kind"] == "file" else origin["name"]


def _clean_name(name: str) -> str:
    name = " ".join(str(name).split())[:100]
    if not name:
        raise DatasetError("a dataset needs a name")
    return name


def _info(row) -> DatasetInfo:
    return DatasetInfo(id=row["id"], name=row["name"], version=row["version"], source=json.loads(row["source"]),
                       columns=[Column(**c) for c in json.loads(row["columns"])], rows=row["row_count"],
                       bytes=row["bytes"], owner=row["owner"], created_at=row["created_at"])
