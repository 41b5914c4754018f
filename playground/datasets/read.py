"""Reading rows from where they live, all through one call, `datasets.load_dataset`: a CSV, TSV, JSONL, JSON or
Parquet file, rows pasted as text, a local folder of data files (an image or audio folder with a metadata.csv
naming each file's row, as the library's imagefolder / audiofolder read it), or a Hugging Face dataset id with its
config and split (offline, a dataset already in the local cache still loads). Every failure becomes a DatasetError that says
what to change. `datasets` (and pyarrow) are imported inside functions: importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from .errors import DatasetError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "json", ".ndjson": "json", ".json": "json",
           ".parquet": "parquet", ".pq": "parquet"}
LABELS = {"csv": "CSV", "tsv": "TSV", "json": "JSON", "parquet": "Parquet"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
MAX_COLUMNS = 500


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n < 2**30 else f"{n / 2**30:,.2f} GB"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def check_size(size: int, max_bytes: int, what: str) -> None:
    """Refused before a byte is parsed: the size alone decides."""
    if size > max_bytes:
        raise DatasetError(f"{what} is {_mb(size)}; the limit is {_mb(max_bytes)} (setting max_dataset_bytes): "
                           "use a sample of it, or raise PLAYGROUND_MAX_DATASET_BYTES")


def format_of(path: Path, given: str | None = None) -> str:
    """csv, tsv, json or parquet, from `given` or the file's extension."""
    if given:
        fmt = given.lower().lstrip(".")
        fmt = {"jsonl": "json", "ndjson": "json"}.get(fmt, fmt)
        if fmt not in LABELS:
            raise DatasetError(f"format {given!r} is not one of csv, tsv, jsonl, json, parquet")
        return fmt
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DatasetError(f"{path.name}: cannot tell its format from the extension {path.suffix or '(none)'}; "
                           "name it .csv, .tsv, .jsonl, .json or .parquet, or say the format")
    return fmt


def guess_text_format(text: str) -> str:
    """Pasted rows: a JSON array or JSON lines, tab-separated when the first line has a tab, else CSV."""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        return "json"
    first = stripped.split("\n", 1)[0]
    return "tsv" if "\t" in first else "csv"


def looks_like_hub_id(source: str) -> bool:
    return bool(_HUB_ID.match(source)) and not source.startswith(".")


@contextlib.contextmanager
def loaded(source: str | Path, *, fmt: str | None = None, config: str | None = None, split: str | None = None,
           max_bytes: int, max_rows: int, offline: bool = False) -> Iterator[tuple["object", dict]]:
    """(a pyarrow Table, what it was read from) for a file, a folder or a hub id; valid inside the `with` only
    (a file's cache lives in a temporary folder that goes with it; a hub dataset uses the Hugging Face cache, so
    one downloaded before loads offline). `offline`: never reach for the network."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)     # failures come back as DatasetError
    cache = Path(tempfile.mkdtemp(prefix="playground-dataset-"))
    try:
        with _offline(datasets, offline):
            dataset, origin = _load(datasets, source, fmt, config, split, cache, max_bytes)
        if dataset.num_rows > max_rows:
            raise DatasetError(f"{origin['label']} has {dataset.num_rows:,} rows; the limit is {max_rows:,} "
                               "(setting max_dataset_rows): use a split or a slice such as train[:10000]")
        origin["features"] = {name: _kind(feature) for name, feature in dataset.features.items()}
        table = dataset.data.table
        if set(origin["features"].values()) & {"image", "audio"}:
            # An image or audio folder names its files; the bytes go into the rows, so the stored dataset holds
            # them (and its version hashes them), whatever happens to the files later. Only names stay as paths.
            from datasets.table import embed_table_storage

            table = embed_table_storage(table)
        check_size(table.nbytes, max_bytes, origin["label"])
        check_columns(table, origin["label"])
        yield table, origin
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _load(datasets, source, fmt, config, split, cache: Path, max_bytes: int):
    path = Path(str(source)).expanduser()
    if path.is_file():
        check_size(path.stat().st_size, max_bytes, path.name)
        fmt = format_of(path, fmt)
        builder, extra = ("csv", {"sep": "\t"}) if fmt == "tsv" else (fmt, {})
        origin = {"kind": "file", "name": path.name, "format": fmt, "label": path.name}
        dataset = _call(datasets, origin, builder, data_files=str(path), split="train", cache_dir=str(cache),
                        **extra)
        return dataset, origin
    if path.is_dir():
        check_size(folder_bytes(path), max_bytes, f"folder {path.name}")
        origin = {"kind": "folder", "name": path.name, "split": split, "label": f"folder {path.name}"}
        return _one_split(_call(datasets, origin, str(path), split=split, cache_dir=str(cache)), origin), origin
    text = str(source)
    if text.startswith(("/", "~", ".")) or path.suffix.lower() in FORMATS or not looks_like_hub_id(text):
        raise DatasetError(f"no file or folder {text[:200]!r} here, and it is not a Hugging Face dataset id "
                           "like 'owner/name': check the path")
    origin = {"kind": "hub", "id": text, "config": config, "split": split, "label": f"dataset {text}"}
    return _one_split(_call(datasets, origin, text, config, split=split), origin), origin


_offline_lock = threading.Lock()


@contextlib.contextmanager
def _offline(datasets, offline: bool):
    """The library reads its offline switch from the environment at import; an offline app sets it per call."""
    if not offline or datasets.config.HF_HUB_OFFLINE:
        yield
        return
    with _offline_lock:
        datasets.config.HF_HUB_OFFLINE = True
        try:
            yield
        finally:
            datasets.config.HF_HUB_OFFLINE = False


def _one_split(dataset, origin: dict):
    """load_dataset without a split gives every split: one is taken when there is only one."""
    if hasattr(dataset, "num_rows") and not isinstance(dataset.num_rows, dict):
        return dataset
    names = list(dataset)
    if len(names) == 1:
        origin["split"] = names[0]
        return dataset[names[0]]
    raise DatasetError(f"{origin['label']} has the splits {', '.join(names)}: pick one (--hf-split {names[0]})")


def _call(datasets, origin: dict, *args, **kwargs):
    """load_dataset, with its errors turned into messages that say what to change."""
    try:
        return datasets.load_dataset(*args, **kwargs)
    except DatasetError:
        raise
    except Exception as error:            # the library raises many kinds; each becomes one clear message
        raise DatasetError(explain(error, origin)) from None


def _root(error: BaseException) -> BaseException:
    seen = error
    while (seen.__cause__ or seen.__context__) is not None and seen.__cause__ is not seen:
        seen = seen.__cause__ or seen.__context__
    return seen


def explain(error: BaseException, origin: dict) -> str:
    label, root = origin["label"], _root(error)
    detail = " ".join(str(root).split())[:300]
    name = type(error).__name__ + " " + type(root).__name__
    if origin["kind"] == "hub":
        if "Offline" in detail or "ConnectionError" in name or "Couldn't reach" in str(error) or \
                "not cached" in detail:
            return (f"cannot reach {origin['id']!r} on the Hugging Face Hub: this machine is offline or the id is "
                    "wrong; download it where there is a network and add its folder or a file instead")
        if "DatasetNotFound" in name or "FileNotFound" in name or "doesn't exist" in detail:
            return f"no dataset {origin['id']!r} on the Hugging Face Hub; check the id (owner/name)"
        if "config" in detail.lower() or "split" in detail.lower():
            return f"{label}: {detail}"
        return f"cannot load {label}: {detail}"
    kind = LABELS.get(origin.get("format", ""), "data")
    if "torchcodec" in detail:
        return (f"{label} has audio files, and the datasets library reads an audio folder only with torchcodec "
                "(pip install torchcodec, which needs FFmpeg); or add a Parquet file whose audio column holds the "
                "clips' bytes, as Hugging Face datasets keep them")
    if "corresponds to no data" in detail:
        return f"{label} has no rows: add rows under its header"
    if kind == "Parquet" and ("magic bytes" in detail or "Parquet" in detail):
        return f"{label} is not a Parquet file, or it is damaged ({detail}); export it again"
    if kind in ("CSV", "TSV"):
        return (f"cannot read {label} as {kind}: {detail}. Every row needs as many fields as the header; quote "
                "fields that contain the separator or a line break")
    if kind == "JSON":
        return (f"cannot read {label} as JSON: {detail}. Use one JSON object per line (JSONL) or one list of "
                "objects")
    return f"cannot read {label}: {detail}"


def check_columns(table, label: str) -> None:
    names = table.column_names
    if not names:
        raise DatasetError(f"{label} has no columns")
    if len(names) > MAX_COLUMNS:
        raise DatasetError(f"{label} has {len(names)} columns; at most {MAX_COLUMNS}")
    if table.num_rows == 0:
        raise DatasetError(f"{label} has no rows")
    for name in names:
        if not name.strip() or len(name) > 200:
            raise DatasetError(f"{label}: column names must be 1 to 200 characters, got {name[:40]!r}")


def write_text(text: str, folder: Path, fmt: str | None) -> Path:
    """Pasted rows as a file the loader reads (the format guessed when not given)."""
    fmt = format_of(Path("pasted"), fmt) if fmt else guess_text_format(text)
    if fmt == "parquet":
        raise DatasetError("pasted rows are text: CSV, TSV, JSON lines or a JSON list")
    path = folder / f"pasted.{fmt}"
    path.write_text(text, encoding="utf-8")
    return path


def _kind(feature) -> str:
    """What a column holds, in words a person reads: text, integer, number, bool, image, audio, list, object."""
    kind = type(feature).__name__
    if kind in ("Image", "Audio", "Video"):
        return kind.lower()
    if kind in ("Sequence", "List", "LargeList"):
        return "list"
    if kind == "ClassLabel":
        return "label"
    if kind == "Value":
        dtype = str(feature.dtype)
        if "string" in dtype:
            return "text"
        if dtype.startswith(("int", "uint")):
            return "integer"
        if dtype.startswith("float"):
            return "number"
        if dtype == "bool":
            return "bool"
        if "timestamp" in dtype or "date" in dtype:
            return "date"
        if "binary" in dtype:
            return "bytes"
        return dtype
    return "object"

