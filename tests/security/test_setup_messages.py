"""A broken set-up gets a sentence that says what to do, never raw exception text: a run log missing its runs
table, a data dir where no folder can be made (/proc), a browser-secret that is a folder."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(data_dir: Path) -> str:
    """What `python app.py` says when it cannot start (it exits before serving anything)."""
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "--offline", "--data-dir", str(data_dir),
                           "--port", "7939"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode != 0, done.stdout
    return done.stderr.strip().splitlines()[-1]


def assert_readable(message: str) -> None:
    assert message.startswith("error: ") and "Errno" not in message and "Error:" not in message, message


@pytest.mark.slow
def test_a_run_log_without_its_runs_table(tmp_path):
    from playground.store import RunLog

    RunLog(tmp_path).close()
    with sqlite3.connect(tmp_path / "runs.db") as db:
        db.execute("DROP TABLE runs")
    message = start(tmp_path)
    assert_readable(message)
    assert "missing part of its schema" in message and "--data-dir" in message


@pytest.mark.slow
def test_a_data_dir_under_proc():
    message = start(Path("/proc/playground-data"))
    assert_readable(message)
    assert "cannot be made there" in message


@pytest.mark.slow
def test_a_browser_secret_that_is_a_folder(tmp_path):
    (tmp_path / "browser-secret").mkdir()
    message = start(tmp_path)
    assert_readable(message)
    assert "browser-secret is a folder" in message and "PLAYGROUND_BROWSER_SECRET" in message


def test_the_same_messages_reach_a_web_client(tmp_path):
    from playground.ui.errors import user_error

    missing = user_error(sqlite3.OperationalError("no such table: runs"), tmp_path)
    assert "missing part of its schema" in str(missing) and "OperationalError" not in str(missing)
