"""Remote pacing against rate-limited servers: 48 remote cells (8 in flight at most) against a scripted
OpenAI-compatible server on 127.0.0.1 that answers 429 with Retry-After when pressed too hard.

    python benchmarks/bench_pacing.py [CHECKOUT]     # CHECKOUT: the code to measure (default: this one)

Two servers: one that takes 10 requests a second (a token bucket; Retry-After says when its next token comes), and
one that serves 3 requests at once (Retry-After: 1 beyond that). For each: cells finished and failed, requests
sent, 429s answered, and the wall time.
"""

from __future__ import annotations

import http.server
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from playground.engines.catalog import Catalog  # noqa: E402
from playground.runner import Runner  # noqa: E402
from playground.settings import Settings  # noqa: E402
from playground.spec import build_spec  # noqa: E402
from playground.store import RunLog  # noqa: E402
from playground.templates import make_template  # noqa: E402

AT_ONCE = 3


class Limited(http.server.BaseHTTPRequestHandler):
    """Streams a short answer, or answers 429 when the server's rate (or its requests at once) is used up."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        wait = self.server.admit()
        if wait is not None:
            body = b'{"error": {"message": "slow down"}}'
            self.send_response(429)
            self.send_header("Retry-After", f"{wait:.3f}")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece, finish in (("A", None), (" tag", None), ("line", None), (".", None), (None, "stop")):
                time.sleep(0.05)
                chunk = {"id": "1", "object": "chat.completion.chunk", "created": 0, "model": "m",
                         "choices": [{"index": 0, "delta": {"content": piece} if piece else {},
                                      "finish_reason": finish}]}
                self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            self._chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            self.server.leave()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, rate: float):
        super().__init__(("127.0.0.1", 0), Limited)
        self.rate, self.tokens, self.last = rate, rate, time.monotonic()
        self.lock, self.requests, self.limited, self.active = threading.Lock(), 0, 0, 0

    def admit(self) -> float | None:
        """None: go ahead; else the seconds to tell the client to wait."""
        with self.lock:
            self.requests += 1
            if self.rate:
                now = time.monotonic()
                self.tokens, self.last = min(self.rate, self.tokens + (now - self.last) * self.rate), now
                wait = None if self.tokens >= 1 else (1 - self.tokens) / self.rate
                self.tokens -= wait is None
            else:
                wait = None if self.active < AT_ONCE else 1.0
            self.active += wait is None
            self.limited += wait is not None
            return wait

    def leave(self) -> None:
        with self.lock:
            self.active -= 1


def measure(rate: float) -> str:
    server = Server(rate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data = Path(tempfile.mkdtemp(prefix="pp-pacing-"))
    endpoint = {"name": "lab", "base_url": f"http://127.0.0.1:{server.server_port}/v1", "models": ["m"],
                "max_concurrency": 8}
    (data / "endpoints.yaml").write_text(json.dumps({"endpoints": [endpoint]}))
    settings = Settings(data_dir=data, offline=True, remote_retries=3)
    runner = Runner(Catalog(settings), RunLog(data), settings)
    template = make_template(name="pacing", modality="text", variables={"product": "a lantern"},
                             variants={f"v{i}": f"Tagline {i} for {{{{ product }}}}." for i in range(4)})
    spec = build_spec(template, values={"product": [f"p{i}" for i in range(12)]}, models=["lab:m"], seeds=[1],
                      rerun=True)
    started = time.perf_counter()
    records = [event.result.record for event in runner.run(spec) if event.result]
    wall = time.perf_counter() - started
    server.shutdown()
    server.server_close()
    ok = sum(record.status == "ok" for record in records)
    return (f"{len(records)} cells: {ok} ok, {len(records) - ok} failed; {server.requests} requests, "
            f"{server.limited} answered 429; {wall:.1f} s")


if __name__ == "__main__":
    print("10 requests a second:", measure(10.0))
    print("3 requests at once:  ", measure(0.0))
