"""Export files handed to one client: written to a private temporary folder and returned through a File output.

Gradio copies a returned file into its own per-request cache under a content hash and serves it from there, so an
export is reachable only through the link given to the client that asked for it. Nothing is written to a folder
the app serves by name; each export's folder is removed after an hour.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

EXPORT_ROOT = Path(tempfile.gettempdir()) / "prompt-playground-exports"
KEEP_S = 3600
FORMATS = ("jsonl", "csv", "zip")


def _sweep(now: float) -> None:
    if not EXPORT_ROOT.is_dir():
        return
    for folder in EXPORT_ROOT.iterdir():
        try:
            if now - folder.stat().st_mtime > KEEP_S:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def export_path(stem: str, ext: str) -> Path:
    """A fresh, unguessable folder for one export; the file name stays readable for the person downloading it."""
    _sweep(time.time())
    EXPORT_ROOT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="export-", dir=EXPORT_ROOT))
    safe_stem = re.sub(r"[^\w.-]+", "-", stem).strip("-.") or "export"
    return folder / f"{safe_stem}-{time.strftime('%Y%m%d-%H%M%S')}.{ext}"


def export_runs(log, runs, stem: str, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r:.40}")
    return str(log.export(export_path(stem, fmt), fmt, runs=runs))


def export_text(text: str, stem: str, ext: str) -> str:
    path = export_path(stem, ext)
    path.write_text(text, encoding="utf-8")
    return str(path)
