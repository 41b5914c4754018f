"""The one thread per process that runs local model work: loads, generation, scoring models, tiny builds.

torch's CPU kernels run on OpenMP thread teams, one team per calling thread, kept for as long as that thread
lives. Once libgomp manages more threads than the machine has cores, it stops spin-waiting between parallel
regions and parks its threads instead, and every kernel then pays for waking them: on 2 cores a 360M decode step
got ~25% slower as soon as a second thread (the one that loaded the model, a web worker that scored an image) had
used torch. Sending all model work to one long-lived thread keeps one team. It also runs model calls one at a
time, in the order they came, which is what a CPU or one GPU stream does with them anyway.

Spin-waiting pays only while the team has the cores to itself. On a machine busier than its cores (other processes
runnable), a spinning thread burns the time slice its partner needs, and every parallel region waits for a thread
the scheduler has parked: a 360M forward pass of 40 tokens took 4-10 s instead of 0.2-0.3 s on 2 cores with ~11
runnable processes. `pace()` watches the load average and, while the machine is busier than its cores, keeps a
second team alive on a thread that does nothing else, which makes libgomp park its threads instead of spinning.

No torch here at import: importing this module stays cheap.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_pid: int | None = None
_executor: ThreadPoolExecutor | None = None
_ident: int | None = None


def _mark() -> None:
    global _ident
    _ident = threading.get_ident()


def _pool() -> ThreadPoolExecutor:
    global _pid, _executor
    with _lock:
        if _executor is None:
            _pid, _executor = os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="model-compute",
                                                              initializer=_mark)
        return _executor


def _forget_parent() -> None:
    """In a forked child (the ZeroGPU worker) the parent's compute thread is gone, and its lock may have been held
    at the fork: start afresh."""
    global _lock, _pid, _executor, _ident, _pacer
    _lock, _pid, _executor, _ident = threading.Lock(), None, None, None
    _pacer = _Pacer()


os.register_at_fork(after_in_child=_forget_parent)


class _Pacer:
    """The second OpenMP team kept while the machine is busy (see the module docstring)."""

    EVERY_S = 1.0          # how often the load average is read

    def __init__(self):
        self.lock = threading.Lock()
        self.release: threading.Event | None = None
        self.checked = 0.0

    def pace(self) -> None:
        now = time.monotonic()
        if now - self.checked < self.EVERY_S:
            return
        self.checked = now
        busy = os.getloadavg()[0] > (os.cpu_count() or 1)
        with self.lock:
            if busy and self.release is None:
                self.release = threading.Event()
                threading.Thread(target=_hold_a_team, args=(self.release,), daemon=True,
                                 name="model-compute-pacer").start()
            elif not busy and self.release is not None:
                self.release.set()
                self.release = None

    @property
    def parked(self) -> bool:
        return self.release is not None


def _hold_a_team(release: threading.Event) -> None:
    import torch

    torch.ones(1 << 20).add_(1)      # a parallel region: this thread's own OpenMP team, kept until it exits
    release.wait()


_pacer = _Pacer()


def pace() -> None:
    """Let OpenMP spin-wait while the cores are free, and park its threads while the machine is busier than its
    cores; cheap to call often (it reads the load average at most once a second)."""
    _pacer.pace()


def on_compute_thread() -> bool:
    return _pid == os.getpid() and threading.get_ident() == _ident


def submit(fn: Callable[..., T], *args, **kwargs) -> Future:
    """Queue `fn` on the compute thread. Called from the compute thread itself, it runs on a thread of its own
    instead: waiting there for work queued behind the caller would never end."""
    pace()
    if on_compute_thread():
        future: Future = Future()

        def run():
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:      # handed to whoever waits on the future
                future.set_exception(error)

        threading.Thread(target=run, daemon=True, name="model-compute-nested").start()
        return future
    return _pool().submit(fn, *args, **kwargs)


def run(fn: Callable[..., T], *args, **kwargs) -> T:
    """`fn(*args, **kwargs)` on the compute thread (at once when already there); its result or its exception."""
    pace()
    if on_compute_thread():
        return fn(*args, **kwargs)
    return _pool().submit(fn, *args, **kwargs).result()
