"""Renders run in small worker processes that can be killed, so a render is bounded whatever the template does.

The sandbox's budget (sandbox.py) stops almost every runaway template with a precise message, but it is
cooperative: it is checked between operations. A worker holds the hard line: its address space is capped
(a memory bomb ends in MemoryError there, not in the server), and the server kills it when a render overruns its
wall-clock time. Workers are reused; a killed or failed one is replaced on the next render.

Wire format: a 4-byte big-endian length, then a JSON object, both ways over the worker's stdin/stdout.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Mapping

from .errors import TemplateError
from .sandbox import RENDER_SECONDS, check_value_sizes, render_here

WORKER_MEMORY_BYTES = 1 << 30      # address space of one worker
MAX_WORKERS = 4                    # renders running at once; more wait for a free worker
KILL_GRACE_S = 1.0                 # past the render's own deadline, the worker is killed
WAIT_FOR_WORKER_S = 30.0
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])   # the folder `python -m playground...` finds us from
_HEADER = struct.Struct(">I")
_MAX_FRAME = 64 << 20


class _Worker:
    def __init__(self):
        # Started in the folder that holds this package, so `-m` imports this very copy of it, installed or not.
        self.process = subprocess.Popen([sys.executable, "-m", "playground.templates.worker"], cwd=_PACKAGE_PARENT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        close_fds=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def ask(self, request: dict, timeout: float) -> dict | None:
        """The worker's answer, or None when it did not answer in time (it is then killed)."""
        payload = json.dumps(request).encode("utf-8")
        try:
            self.process.stdin.write(_HEADER.pack(len(payload)) + payload)
            self.process.stdin.flush()
            deadline = time.monotonic() + timeout
            header = _read_exact(self.process.stdout.fileno(), _HEADER.size, deadline)
            if header is None:
                return None
            (length,) = _HEADER.unpack(header)
            body = _read_exact(self.process.stdout.fileno(), length, deadline) if length <= _MAX_FRAME else None
            return None if body is None else json.loads(body)
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass


def _read_exact(fd: int, n: int, deadline: float) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, n - got)
        if not chunk:                      # the worker died
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class _Pool:
    def __init__(self):
        self.idle: list[_Worker] = []
        self.count = 0
        self.condition = threading.Condition()
        self.broken = False                # no worker could be started here: render in-process
        self.pid = os.getpid()

    def acquire(self) -> _Worker | None:
        deadline = time.monotonic() + WAIT_FOR_WORKER_S
        with self.condition:
            if self.pid != os.getpid():    # a forked child (e.g. a GPU worker): the parent's pipes are not ours
                self.idle, self.count, self.pid = [], 0, os.getpid()
            while True:
                while self.idle:
                    worker = self.idle.pop()
                    if worker.alive():
                        return worker
                    self.count -= 1
                if self.broken:
                    return None
                if self.count < MAX_WORKERS:
                    self.count += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TemplateError("the server is busy rendering other templates; try again in a moment")
                self.condition.wait(remaining)
        try:
            return _Worker()
        except OSError:
            with self.condition:
                self.count -= 1
                self.broken = True
                self.condition.notify()
            return None

    def release(self, worker: _Worker, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self.condition:
            if healthy:
                self.idle.append(worker)
            else:
                self.count -= 1
            self.condition.notify()

    def shutdown(self) -> None:
        with self.condition:
            workers, self.idle = self.idle, []
            self.count -= len(workers)
        for worker in workers:
            worker.kill()


_POOL = _Pool()
atexit.register(_POOL.shutdown)


def render_source(source: str, values: Mapping[str, str], *, max_chars: int = 8000, where: str = "",
                  path: Path | None = None, seconds: float = RENDER_SECONDS) -> str:
    """Render one template string with plain string values, in a worker; any failure is a TemplateError."""
    where = where or "template"
    if seconds <= 0:
        raise TemplateError(f"{where}: no time left to render it; simplify the templates or use fewer cells", path)
    values = {str(k): str(v) for k, v in values.items()}
    try:
        check_value_sizes(values)
    except TemplateError as error:
        raise TemplateError(f"{where}: {error.message}", path) from None
    worker = _POOL.acquire()
    if worker is None:
        try:
            return render_here(source, values, max_chars=max_chars, where=where, seconds=seconds)
        except TemplateError as error:
            raise TemplateError(error.message, path) from None
    answer = worker.ask({"source": source, "values": values, "max_chars": max_chars, "where": where,
                         "seconds": seconds}, timeout=seconds + KILL_GRACE_S)
    _POOL.release(worker, healthy=answer is not None and not answer.get("restart"))
    if answer is None:
        raise TemplateError(f"{where}: refused: the template took more than {seconds:g} s to render (stopped); "
                            "simplify it", path)
    if "error" in answer:
        raise TemplateError(str(answer["error"]), path)
    return answer["text"]


# ---- the worker side --------------------------------------------------------------------------------------------

def serve() -> None:
    """The worker's loop: one request in, one answer out, until the server closes the pipe."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
        os.nice(10)                        # a runaway render yields the CPU to the server's own threads
    except (ImportError, ValueError, OSError):
        pass
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = source.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        (length,) = _HEADER.unpack(header)
        request = json.loads(source.read(length))
        try:
            answer = {"text": render_here(request["source"], request["values"], max_chars=request["max_chars"],
                                          where=request["where"], seconds=request["seconds"])}
        except TemplateError as error:
            answer = {"error": error.message}
        except MemoryError:
            answer = {"error": f"{request['where']}: refused: the template needs more than "
                               f"{WORKER_MEMORY_BYTES >> 20} MB of memory", "restart": True}
        except Exception as error:  # noqa: BLE001 (anything else is reported, and the worker replaced)
            answer = {"error": f"{request['where']}: {type(error).__name__}: {str(error)[:300]}", "restart": True}
        payload = json.dumps(answer).encode("utf-8")
        sink.write(_HEADER.pack(len(payload)) + payload)
        sink.flush()


if __name__ == "__main__":
    serve()
