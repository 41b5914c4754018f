"""The queues the app's events wait in, and a per-visitor limit for work a page asks for on its own."""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

MODEL_QUEUE = "models"     # comparisons, `concurrency` at once; local model work takes turns inside (runner.py)
PREVIEW_QUEUE = "previews"  # template renders for the preview: bounded like the render workers


class VisitorGate:
    """At most `limit` calls at once per visitor: a page (or a script posing as one) cannot fill the queue's
    workers with its own renders."""

    def __init__(self, limit: int = 1):
        self.limit = limit
        self._running: Counter = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def enter(self, visitor: str) -> Iterator[bool]:
        """Yields whether the call may go ahead (False: this visitor has `limit` calls running already)."""
        with self._lock:
            admitted = self._running[visitor] < self.limit
            if admitted:
                self._running[visitor] += 1
        try:
            yield admitted
        finally:
            if admitted:
                with self._lock:
                    self._running[visitor] -= 1
                    if not self._running[visitor]:
                        del self._running[visitor]
