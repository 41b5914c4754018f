"""Pacing of remote requests, on its own: the adaptive in-flight limit, Retry-After, and which failures are tried
again. (tests/test_remote_faults.py drives the same code through the engines against scripted servers.)"""

from __future__ import annotations

import email.utils
import random
import threading
from types import SimpleNamespace

from playground.engines.pacing import Throttle, backoff, retry_after, trouble_of


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_overload_halves_the_limit_once_per_burst_and_successes_raise_it_slowly():
    clock = Clock()
    throttle = Throttle(8, clock=clock)
    never = threading.Event()
    assert all(throttle.acquire(never) for _ in range(8))
    assert not throttle.acquire(never, deadline=clock.now)            # full: no ninth
    for _ in range(8):                                                  # eight 429s of one burst: one cut
        throttle.overloaded(2.0)
    assert throttle.limit == 4.0 and throttle.paused_until == clock.now + 2.0
    for _ in range(8):
        throttle.release(succeeded=False)
    assert not _acquire_for_a_moment(throttle)                          # paused: nobody goes
    clock.now += 2.0                                                    # the time the server asked for has passed
    assert [throttle.acquire(never) for _ in range(4)] == [True] * 4
    assert not throttle.acquire(never, deadline=clock.now)              # four in flight now, not eight
    clock.now += 5.0
    throttle.overloaded(None)                                           # a later burst cuts again
    assert throttle.limit == 2.0
    for _ in range(4):
        throttle.release(succeeded=True)
    assert 2.0 < throttle.limit < 4.0                                   # additive: about +1 per round of limit
    clock.now += 1.0
    for _ in range(200):
        assert throttle.acquire(never)
        throttle.release(succeeded=True)
    assert throttle.limit == 8.0                                        # back to the ceiling, never past it


def _acquire_for_a_moment(throttle: Throttle) -> bool:
    moment = threading.Event()
    threading.Timer(0.3, moment.set).start()
    return throttle.acquire(moment)


def test_a_stopped_wait_gives_up():
    throttle = Throttle(1)
    stop = threading.Event()
    assert throttle.acquire(stop)
    stop.set()
    assert not throttle.acquire(stop)


def test_retry_after_reads_seconds_milliseconds_and_dates():
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    assert retry_after({"Retry-After": "soon"}) is None and retry_after({}) is None and retry_after(None) is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after({"Retry-After": date}, now=1_000_000) == 30.0
    assert retry_after({"Retry-After": "-4"}) == 0.0


def test_backoff_is_jittered_and_capped():
    rng = random.Random(0)
    waits = [backoff(attempt, rng) for attempt in range(12) for _ in range(20)]
    assert len(set(waits)) == len(waits) and max(waits) <= 30.0 and min(waits) >= 0.0
    assert max(backoff(1, rng) for _ in range(200)) <= 1.0


def _answer(status: int, **headers) -> Exception:
    error = Exception(f"answered {status}")
    error.response = SimpleNamespace(status_code=status, headers=headers)
    return error


class RemoteProtocolError(Exception):
    """Named like httpx's: pacing knows transport errors by name."""


class ReadTimeout(Exception):
    pass


def test_which_failures_are_worth_another_try():
    limited = trouble_of(_answer(429, **{"Retry-After": "7"}))
    assert (limited.kind, limited.wait_s) == ("overload", 7.0)
    assert trouble_of(_answer(503)).kind == "overload"
    assert trouble_of(_answer(500)).kind == trouble_of(_answer(502)).kind == "passing"
    assert trouble_of(_answer(400)).kind == trouble_of(_answer(401)).kind == trouble_of(_answer(404)).kind == "final"
    assert trouble_of(RemoteProtocolError("peer closed connection")).kind == "passing"
    assert trouble_of(ConnectionResetError()).kind == "passing"
    assert trouble_of(ReadTimeout()).kind == "final" and trouble_of(TimeoutError()).kind == "final"
    assert trouble_of(ValueError("bad")).kind == "final"
    assert trouble_of(ConnectionError("offline"), final=(ConnectionError,)).kind == "final"
