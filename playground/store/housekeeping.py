"""Keeping the run log honest over time: comparisons whose writer died, and media files no row points at."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path


class HousekeepingMixin:
    """The housekeeping half of RunLog (mixed into it; uses its connection, data dir and intervals)."""

    def interrupt_stale(self) -> int:
        """Mark comparisons left `running` by a process that is gone (killed server or CLI) as `interrupted`."""
        stale = []
        for row in self._db().execute("SELECT id, spec FROM comparisons WHERE status = 'running'"):
            try:
                spec = json.loads(row["spec"] or "{}")
            except ValueError:
                spec = {}
            if isinstance(spec, dict) and "experiment" in spec:
                continue            # an experiment's status follows its job (playground/jobs), not a pid
            pid = spec.get("pid") if isinstance(spec, dict) else None
            if not isinstance(pid, int) or not _process_alive(pid):
                stale.append(row["id"])
        if stale:
            with self._write() as tx:
                tx.executemany("UPDATE comparisons SET status = 'interrupted' WHERE id = ? AND status = 'running'",
                               [(cid,) for cid in stale])
        return len(stale)

    def _interrupt_stale_now_and_then(self) -> None:
        """interrupt_stale at most every stale_check_every_s, from the reads that show a status: a CLI run killed
        while the app is up reads as interrupted within seconds, not only after the app restarts."""
        now = time.monotonic()
        if now - self._stale_checked < self.stale_check_every_s:
            return
        self._stale_checked = now
        try:
            self.interrupt_stale()
        except sqlite3.OperationalError:       # the log busy with a long write: the next read checks again
            self._stale_checked = 0.0

    def sweep_orphans(self) -> int:
        """Delete artifact files no row points at (and leftover temp files) older than orphan_age_s.

        Younger files are left alone: another process may have written one and not yet committed its row."""
        referenced = {row[0] for row in self._db().execute("SELECT artifact FROM runs WHERE artifact IS NOT NULL")}
        cutoff = time.time() - self.orphan_age_s
        removed = 0
        for folder, _, names in os.walk(self.artifacts_dir):
            for name in names:
                path = Path(folder) / name
                if path.relative_to(self.data_dir).as_posix() in referenced:
                    continue
                try:
                    if path.is_file() and path.stat().st_mtime <= cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0          # exists, owned by someone else
    return True
