"""The one thread per process that runs local model work: loads, generation, scoring models, tiny builds.

torch's CPU kernels run on OpenMP thread teams, one team per calling thread, kept for as long as that thread
lives. Once libgomp manages more threads than the machine has cores, it stops spin-waiting between parallel
regions and parks its threads instead, and every kernel then pays for waking them: on 2 cores a 360M decode step
got ~25% slower as soon as a second thread (the one that loaded the model, a web worker that scored an image) had
used torch. Sending all model work to one long-lived thread keeps one team. It also runs model calls one at a
time, in the order they came, which is what a CPU or one GPU stream does with them anyway.

No torch here: importing this module stays cheap.
"""

from __future__ import annotations

import os
import threading
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
    global _lock, _pid, _executor, _ident
    _lock, _pid, _executor, _ident = threading.Lock(), None, None, None


os.register_at_fork(after_in_child=_forget_parent)


def on_compute_thread() -> bool:
    return _pid == os.getpid() and threading.get_ident() == _ident


def submit(fn: Callable[..., T], *args, **kwargs) -> Future:
    """Queue `fn` on the compute thread. Called from the compute thread itself, it runs on a thread of its own
    instead: waiting there for work queued behind the caller would never end."""
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
    if on_compute_thread():
        return fn(*args, **kwargs)
    return _pool().submit(fn, *args, **kwargs).result()
