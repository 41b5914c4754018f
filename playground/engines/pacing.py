"""How hard to press a remote server: requests in flight per endpoint adapt to what the server says (AIMD), and a
request that failed for a passing reason is tried again after a jittered wait.

A 429, or a 503 (or any answer) with Retry-After, halves the endpoint's in-flight limit (once per burst of such
answers) and holds every request to that endpoint until the time the server asked for; each success raises the
limit by 1/limit, so it climbs back by one request per round of successes, up to the configured ceiling. Server
errors (5xx) and connections that drop before any answer are retried with exponential backoff and full jitter.
No HTTP library here: errors are read through `error.response.status_code` / `.headers`, which the openai and
huggingface_hub errors both carry.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
_OVERLOADED = {429, 503}                     # the server asks for less: wait as told, and send fewer at once
_PASSING = {408, 500, 502, 504}              # worth a second try: its cause is likely gone in a moment
# Transport errors of httpx, httpx2, httpcore and requests, known by class name: no HTTP library is imported here.
_TIMEOUT_NAMES = {"TimeoutException", "Timeout", "ReadTimeout", "ConnectTimeout", "PoolTimeout", "WriteTimeout"}
_DROPPED_NAMES = {"TransportError", "NetworkError", "ConnectError", "ReadError", "WriteError", "RemoteProtocolError",
                  "ProtocolError", "ConnectionError", "ChunkedEncodingError"}

_throttles: dict[tuple[str, int], "Throttle"] = {}
_throttles_lock = threading.Lock()


class Throttle:
    """Requests in flight to one endpoint: at most `limit` of them, where limit moves between 1 and `ceiling`."""

    def __init__(self, ceiling: int, clock: Callable[[], float] = time.monotonic):
        self.ceiling = max(1, int(ceiling))
        self.limit = float(self.ceiling)
        self.in_flight = 0
        self.paused_until = 0.0                  # the time a server asked every request to wait for
        self._cut_until = 0.0                    # overload answers before this belong to the burst already cut for
        self._clock = clock
        self._changed = threading.Condition()

    def acquire(self, stopped: threading.Event, deadline: float | None = None) -> bool:
        """Wait for a place; False when `stopped` is set or `deadline` passes first."""
        with self._changed:
            while True:
                now = self._clock()
                if stopped.is_set() or (deadline is not None and now >= deadline):
                    return False
                if now >= self.paused_until and self.in_flight < int(self.limit):
                    self.in_flight += 1
                    return True
                wait = self.paused_until - now if now < self.paused_until else 0.25
                self._changed.wait(min(max(wait, 0.01), 0.25))    # short waits: Stop and deadlines are seen

    def release(self, succeeded: bool) -> None:
        with self._changed:
            self.in_flight -= 1
            if succeeded:
                self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)
            self._changed.notify_all()

    def overloaded(self, retry_after: float | None) -> None:
        """The server said it has too much: halve the limit (once per burst) and pause as long as it asked."""
        with self._changed:
            now = self._clock()
            pause = retry_after if retry_after is not None else BACKOFF_BASE_S
            if now >= self._cut_until:
                self.limit = max(1.0, self.limit / 2)
                self._cut_until = now + max(pause, 1.0)
            self.paused_until = max(self.paused_until, now + pause)
            self._changed.notify_all()


def endpoint_throttle(endpoint: str, ceiling: int) -> Throttle:
    """One throttle per endpoint (its URL) and ceiling, shared by every model and comparison that uses it."""
    with _throttles_lock:
        return _throttles.setdefault((endpoint, ceiling), Throttle(ceiling))


def retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds a server asked to wait: `retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    if not headers:
        return None
    get = headers.get
    milliseconds = get("retry-after-ms") or get("Retry-After-Ms")
    try:
        if milliseconds is not None and math.isfinite(float(milliseconds)):
            return max(0.0, float(milliseconds) / 1000)
    except ValueError:
        pass
    value = get("retry-after") or get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: a uniform wait up to base * 2^attempt (capped)."""
    return (rng or random).uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** attempt))


@dataclass(frozen=True)
class Trouble:
    """What a failed attempt means for the next one."""

    kind: str                        # "overload" (wait as told, send fewer), "passing" (try again), "final"
    wait_s: float | None = None      # what the server asked for (Retry-After), if it did


def trouble_of(error: BaseException, passing: tuple[type, ...] = (), final: tuple[type, ...] = ()) -> Trouble:
    """Classify a failed attempt. An answer is judged by its status; an error without one by its type: `final`
    types and timeouts are final (the time they took is already spent), `passing` types and dropped connections
    are passing, anything else final."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        wait = retry_after(getattr(response, "headers", None))
        if status in _OVERLOADED or (wait is not None and status >= 500):
            return Trouble("overload", wait)
        if status in _PASSING:
            return Trouble("passing", wait)
        return Trouble("final")
    names = {kind.__name__ for kind in type(error).__mro__}
    if isinstance(error, final) or isinstance(error, TimeoutError) or names & _TIMEOUT_NAMES:
        return Trouble("final")
    if isinstance(error, passing) or isinstance(error, ConnectionError) or names & _DROPPED_NAMES:
        return Trouble("passing")
    return Trouble("final")
