"""Errors at the edge of the app: what a person or API client reads instead of a traceback.

Disk and database failures become a message that names the data dir and what to do; bad input keeps its own
message; absolute server paths are taken out of every message (the full detail goes to the server log).
"""

from __future__ import annotations

import errno
import functools
import html
import inspect
import logging
import os
import re
import sqlite3
from pathlib import Path

import gradio as gr

from ..registry import InvalidInput
from ..templates import TemplateError

logger = logging.getLogger("playground.ui")

_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space, or start the app with --data-dir on a disk with room",
    errno.EDQUOT: "the disk quota is used up: free some space, or start the app with --data-dir elsewhere",
    errno.EROFS: "it is on a read-only file system: start the app with --data-dir pointing to a writable folder",
    errno.EACCES: "the app may not write there: fix the folder's permissions or start with --data-dir elsewhere",
    errno.EPERM: "the app may not write there: fix the folder's permissions or start with --data-dir elsewhere",
    errno.EFBIG: "a file grew past the file system's size limit: export and trim the log, or use another disk",
    errno.ENOTDIR: "a file stands where a folder should be: move it away or start with --data-dir elsewhere",
    errno.EEXIST: "a file stands where a folder should be: move it away or start with --data-dir elsewhere",
    errno.EISDIR: "a folder stands where a file should be: move it away or start with --data-dir elsewhere",
    errno.ENOENT: "a file or folder it needs is missing and cannot be made there (as under /proc): start with "
                  "--data-dir pointing to a writable folder",
    errno.EMFILE: "too many files are open: restart the app",
    errno.EIO: "the disk reported an input/output error: check the disk, then restart the app",
}

_SQLITE_ADVICE = (
    ("disk is full", _OS_ADVICE[errno.ENOSPC]),
    ("readonly", "the run log is read-only: make the data dir writable or start with --data-dir elsewhere"),
    ("unable to open", "the run log cannot be opened: check that the data dir exists and is writable"),
    ("locked", "another process holds the run log: wait a moment and try again"),
    ("malformed", "the run log is damaged: restore it from an export, or start with a fresh --data-dir"),
    ("not a database", "runs.db is not a run log: move it away or start with --data-dir elsewhere"),
    ("disk i/o", _OS_ADVICE[errno.EIO]),
    ("too big", _OS_ADVICE[errno.EFBIG]),
    ("no such table", "the run log is missing part of its schema: restore runs.db from a backup or an export, or "
                      "start with a fresh --data-dir"),
    ("no such column", "the run log is missing part of its schema: restore runs.db from a backup or an export, or "
                       "start with a fresh --data-dir"),
)


def data_dir_label(data_dir: Path) -> str:
    """How messages name the data dir without giving away the server's layout: its folder name and the flag."""
    return f"the data dir '{Path(data_dir).name}' (--data-dir / PLAYGROUND_DATA_DIR)"


def storage_message(error: BaseException, data_dir: Path, *, full_path: bool = False) -> str:
    """One sentence for a disk or database failure: where (the data dir) and what to do. `full_path` names the
    folder in full (for the person starting the server, not for web clients)."""
    advice = None
    if isinstance(error, OSError):
        advice = getattr(error, "advice", None) or _OS_ADVICE.get(error.errno or 0)
        if advice is None and isinstance(error, PermissionError):
            advice = _OS_ADVICE[errno.EACCES]
    elif isinstance(error, sqlite3.Error):
        text = str(error).lower()
        advice = next((a for key, a in _SQLITE_ADVICE if key in text), None)
    if advice is None:
        advice = f"{type(error).__name__}: {scrub(str(error), data_dir)}"
    where = f"the data dir {data_dir}" if full_path else data_dir_label(data_dir)
    return f"Could not read or write {where}: {advice}."


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/>])(/(?:[\w.@+-]+/)+)([\w.@+-]*)")


def scrub(message: str, data_dir: Path | None = None) -> str:
    """The message without absolute server paths: the data dir reads `<data dir>`, any other absolute path keeps
    only its last part."""
    if data_dir is not None:
        for root in {str(Path(data_dir)), os.path.realpath(data_dir)}:
            message = message.replace(root, "<data dir>")
    return _ABSOLUTE_PATH.sub(lambda m: m.group(2) or "<folder>", message)


def toast_text(message: str) -> str:
    """A message for gr.Error / gr.Warning, which the page shows as HTML: what it quotes of the user's input (a
    value, a name, a template's default) stays text and can load nothing."""
    return html.escape(str(message), quote=False)


def user_error(error: BaseException, data_dir: Path, where: str = "request") -> gr.Error:
    """The gr.Error a caller sees for an exception raised while serving them. The server log gets one line for a
    request it refused (bad input, a missing id) and the traceback only for its own faults; Gradio prints none."""
    answer = _answer(error, data_dir)
    if answer is None:
        logger.error("unexpected error in %s", where, exc_info=error)
        answer = gr.Error(f"Something went wrong ({type(error).__name__}); the details are in the server log.")
    elif not isinstance(error, (OSError, sqlite3.Error)):
        logger.info("%s refused: %s", where, " ".join(html.unescape(str(answer.message)).split())[:300])
    answer.print_exception = False
    return answer


def _answer(error: BaseException, data_dir: Path) -> gr.Error | None:
    """What to tell the caller (quoting input as text), or None for a fault of the server's own."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, (OSError, sqlite3.Error)):
        logger.error("storage error in %s: %r", data_dir, error)
        return gr.Error(toast_text(storage_message(error, data_dir)), title="Storage problem")
    if isinstance(error, TemplateError):
        return gr.Error(toast_text(scrub(error.public, data_dir)), title="Fix the template")
    if isinstance(error, (InvalidInput, ValueError)):
        return gr.Error(toast_text(scrub(str(error), data_dir)), title="Fix the input")
    if isinstance(error, (KeyError, LookupError)):
        message = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
        return gr.Error(toast_text(scrub(message, data_dir)), title="Not found")
    return None


def at_boundary(data_dir: Path):
    """Decorator: every exception of the wrapped handler (plain or generator) reaches the caller as a clear
    gr.Error. The wrapper keeps the handler's name, signature and docstring (the API docs and MCP use them)."""

    def decorate(fn):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator(*args, **kwargs):
                try:
                    yield from fn(*args, **kwargs)
                except Exception as error:            # the boundary: every failure gets a readable message
                    raise user_error(error, data_dir, fn.__name__) from None
            return generator

        @functools.wraps(fn)
        def plain(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as error:                # the boundary: every failure gets a readable message
                raise user_error(error, data_dir, fn.__name__) from None
        return plain

    return decorate
