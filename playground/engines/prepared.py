"""Prepared weights: a text model's linear layers packed for oneDNN once, kept in the data dir, and mapped straight
from disk by the next process.

Packing (linears.py) re-lays every weight out for the CPU's matrix kernels: on SmolLM2-360M it is most of the time
a load takes. The packed bytes are written once, with each weight's oneDNN memory descriptor, under
`<data dir>/prepared/<key>/`, keyed by the model's revision (a hub commit, or a hash of a built model's files), the
dtype and the kernels (torch version, CPU capability, packing scheme). A later load maps that file into memory and
wraps each weight in place, without copying or re-laying anything: the kernels read the page cache directly.

A write goes to a scratch file renamed into place, and a file whose size or layout does not match is packed again;
a prepared folder holds raw weights and a JSON index, nothing that runs. The folder also keeps the measured rows
per step of the model on this machine (continuous.measure_width), so a second process does not measure again.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import mmap
import os
import shutil
import threading
from pathlib import Path

import torch

from . import linears

log = logging.getLogger(__name__)

ALIGN = 4096         # each weight starts on a page: what oneDNN's kernels expect of their weights' addresses
FORMAT = 1


def kernels() -> str:
    """What the packed bytes depend on besides the weights: the packing scheme, torch (oneDNN) and the CPU."""
    return f"{linears.PACKED}-{FORMAT}/torch-{torch.__version__}/{torch.backends.cpu.get_cpu_capability()}"


def folder_for(prepared_dir: Path | None, revision: str | None, source: str, dtype) -> Path | None:
    if prepared_dir is None or not revision:
        return None
    dtype = str(dtype).removeprefix("torch.")
    key = hashlib.sha256(f"{source}\0{revision}\0{dtype}\0{kernels()}".encode()).hexdigest()[:20]
    return Path(prepared_dir) / f"{Path(source).name[:40]}-{key}"


def pack(model, prepared_dir: Path | None, revision: str | None, source: str) -> str:
    """linears.pack, from the prepared file when there is one for this model, else packing and writing it."""
    folder = folder_for(prepared_dir, revision, source, next(model.parameters()).dtype)
    if folder is not None and (folder / "index.json").exists():
        try:
            weights = _read(folder)
            kind = linears.pack(model, weights)
            os.utime(folder / "index.json")          # recently used: kept longest when the cache is trimmed
            return kind
        except (OSError, ValueError, KeyError) as error:
            log.warning("prepared weights in %s unusable (%s); packing again", folder, error)
            shutil.rmtree(folder, ignore_errors=True)
    kind = linears.pack(model)
    if folder is not None and kind == linears.PACKED:
        write_later(folder, linears.packed_weights(model))
    return kind


def write_later(folder: Path, weights: dict[str, torch.Tensor]) -> threading.Thread:
    """Write the packed weights on a thread of their own while the model already runs (a file write needs no torch,
    so the compute thread's cores are shared only for the copy into the page cache). The thread holds the weights
    until it is done, and the process waits for it at exit."""
    pieces = [(name, weight, torch.ops.mkldnn.data_ptr(weight), torch.ops.mkldnn._nbytes(weight),
               bytes(torch.ops.mkldnn._get_mkldnn_serialized_md(weight).tolist()).hex())
              for name, weight in weights.items()]
    writer = threading.Thread(target=_write, args=(folder, pieces), name="prepared-weights-writer")
    writer.start()
    _writers.append(writer)
    return writer


_writers: list[threading.Thread] = []


def flush() -> None:
    """Wait until every prepared file this process started writing is written."""
    while _writers:
        _writers.pop().join()


def _write(folder: Path, pieces: list) -> None:
    """weights.bin, then index.json: each written to a scratch file and renamed into place, the index last, so a
    reader sees a complete pair or none (a reader that mapped an older file keeps its own copy)."""
    index, offset = {}, 0
    scratch = folder / f".weights-{os.getpid()}-{threading.get_ident()}.bin"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(scratch, "wb") as out:
            for name, weight, address, size, layout in pieces:
                out.write(b"\0" * (-offset % ALIGN))
                offset += -offset % ALIGN
                out.write(memoryview((ctypes.c_char * size).from_address(address)))      # no copy in between
                index[name] = {"offset": offset, "bytes": size, "shape": list(weight.shape),
                               "dtype": str(weight.dtype).removeprefix("torch."), "layout": layout}
                offset += size
        os.replace(scratch, folder / "weights.bin")
        _replace_text(folder / "index.json", json.dumps({"kernels": kernels(), "bytes": offset, "weights": index}))
    except OSError as error:           # a full or read-only data dir: the model still runs, packed in memory
        log.warning("could not keep the prepared weights in %s: %s", folder, error)
    finally:
        scratch.unlink(missing_ok=True)


def _replace_text(path: Path, text: str) -> None:
    scratch = path.with_name(f".{path.name}-{os.getpid()}")
    scratch.write_text(text)
    os.replace(scratch, path)


def _read(folder: Path) -> dict[str, torch.Tensor]:
    index = json.loads((folder / "index.json").read_text())
    if index.get("kernels") != kernels():
        raise ValueError(f"packed for {index.get('kernels')}, this process packs for {kernels()}")
    with open(folder / "weights.bin", "rb") as source:
        if os.fstat(source.fileno()).st_size != index["bytes"]:
            raise ValueError("the weights file is not the size its index says")
        # A private mapping: pages come from the page cache and are shared with every process mapping this file.
        backing = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_COPY)
    base = ctypes.addressof(ctypes.c_char.from_buffer(backing))
    weights = {name: _wrap(base + entry["offset"], entry) for name, entry in index["weights"].items()}
    for weight in weights.values():
        weight._backing = backing        # each weight keeps the mapping its bytes live in
    return weights


def _wrap(address: int, entry: dict) -> torch.Tensor:
    """A packed oneDNN weight over bytes already in memory (no copy): what AOTInductor does with the weights it
    embeds, through the same C entry point of libtorch."""
    shim = _shim()
    handle = ctypes.c_void_p()
    layout = bytes.fromhex(entry["layout"])
    sizes = (ctypes.c_int64 * 2)(*entry["shape"])
    strides = (ctypes.c_int64 * 2)(entry["shape"][1], 1)
    dtype = getattr(shim, f"aoti_torch_dtype_{entry['dtype']}")()
    status = shim.aoti_torch_create_tensor_from_blob_v2(
        ctypes.c_void_p(address), 2, sizes, strides, 0, dtype, shim.aoti_torch_device_type_cpu(), 0,
        ctypes.byref(handle), shim.aoti_torch_layout__mkldnn(), (ctypes.c_uint8 * len(layout)).from_buffer_copy(layout),
        len(layout))
    if status != 0 or not handle.value:
        raise ValueError("libtorch refused a prepared weight")
    capsule = ctypes.pythonapi.PyCapsule_New
    capsule.restype, capsule.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    return torch._C._aoti.alloc_tensor_by_stealing_from_void_ptr(capsule(handle.value, None, None))


_library = None


def _shim():
    global _library
    if _library is None:
        library = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        create = library.aoti_torch_create_tensor_from_blob_v2
        create.restype = ctypes.c_int32
        create.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(ctypes.c_int64),
                           ctypes.POINTER(ctypes.c_int64), ctypes.c_int64, ctypes.c_int32, ctypes.c_int32,
                           ctypes.c_int32, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int32,
                           ctypes.POINTER(ctypes.c_uint8), ctypes.c_int64]
        for name in ("aoti_torch_device_type_cpu", "aoti_torch_layout__mkldnn", "aoti_torch_dtype_bfloat16",
                     "aoti_torch_dtype_float32"):
            getattr(library, name).restype = ctypes.c_int32
        _library = library
    return _library


# ---- the measured width ---------------------------------------------------------------------------------------------

def remembered_width(prepared_dir: Path | None, revision: str | None, source: str,
                     dtype: str) -> tuple[int | None, dict[int, float]]:
    """The rows per step measured for this model here before, and the seconds per step it measured; (None, {})."""
    folder = folder_for(prepared_dir, revision, source, dtype)
    try:
        kept = json.loads((folder / "width.json").read_text())
        return int(kept["rows"]), {int(k): float(v) for k, v in kept["seconds_per_step"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, {}


def remember_width(prepared_dir: Path | None, revision: str | None, source: str, dtype: str, rows: int,
                   seconds: dict[int, float]) -> None:
    folder = folder_for(prepared_dir, revision, source, dtype)
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _replace_text(folder / "width.json",
                      json.dumps({"rows": rows, "seconds_per_step": {str(k): v for k, v in seconds.items()}}))
    except OSError as error:
        log.warning("could not keep the measured width in %s: %s", folder, error)


# ---- the cache's size ---------------------------------------------------------------------------------------------

def trim(prepared_dir: Path, keep_bytes: int) -> None:
    """Remove the least recently used prepared models until the rest take at most `keep_bytes`."""
    if not Path(prepared_dir).is_dir():
        return
    entries = []
    for folder in Path(prepared_dir).iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            used = max((p.stat().st_mtime for p in folder.iterdir() if p.is_file()), default=0)
            entries.append((used, size, folder))
    total = sum(size for _, size, _ in entries)
    for _, size, folder in sorted(entries):
        if total <= keep_bytes:
            break
        shutil.rmtree(folder, ignore_errors=True)
        total -= size
