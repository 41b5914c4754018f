"""Remote engine benchmark: a 16-cell text grid against `transformers serve` on this machine, with 1 cell in
flight versus 8, through the same runner the app uses.

    python benchmarks/bench_remote.py [--tokens 32] [--continuous-batching]

The server runs the offline tiny text model (trained on a toy world) on 127.0.0.1. With 8 in flight the client overlaps
network and server work; how much the server itself gains depends on whether it batches concurrent requests
(`--continuous-batching` turns on transformers serve's own continuous batching).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from playground.engines.catalog import Catalog  # noqa: E402
from playground.engines.tiny import shipped_model  # noqa: E402
from playground.runner import Runner  # noqa: E402
from playground.spec import build_spec  # noqa: E402
from playground.settings import Settings  # noqa: E402
from playground.store import RunLog  # noqa: E402
from playground.templates import make_template  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(folder: Path, continuous: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="pp-serve-"))
    (home / "hub").mkdir()
    command = ["transformers", "serve", str(folder), "--host", "127.0.0.1", "--port", str(port)]
    if continuous:
        # a fixed cache: left to itself on a CPU it sizes the cache from the machine's free memory
        command += ["--continuous-batching", "--cb-block-size", "32", "--cb-num-blocks", "1024"]
    process = subprocess.Popen(command, env={**os.environ, "HF_HOME": str(home)}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit("transformers serve did not start")


def grid_seconds(data: Path, settings: Settings, url: str, folder: Path, in_flight: int, tokens: int) -> float:
    (data / "endpoints.yaml").write_text(json.dumps({"endpoints": [
        {"name": f"bench{in_flight}", "base_url": url, "models": [str(folder)], "max_concurrency": in_flight}]}))
    local = settings.replace(data_dir=data)
    log = RunLog(data)
    runner = Runner(Catalog(local), log, local)
    template = make_template(name="bench", modality="text", variants={
        "plain": "Write a tagline for {{ product }}.", "role": "You are a copywriter. A tagline for {{ product }}."},
        variables={"product": "a lantern"})
    spec = build_spec(template, values={"product": ["a lantern", "a kettle", "a bike", "a tent"]},
                      models=[f"bench{in_flight}:{folder}"], seeds=[1, 2], params={"max_new_tokens": tokens},
                      rerun=True)
    assert len(spec.cells) == 16
    started = time.perf_counter()
    records = [e.result.record for e in runner.run(spec) if e.result]
    seconds = time.perf_counter() - started
    failed = [r.error for r in records if r.status != "ok"]
    if failed:
        raise SystemExit(f"cells failed: {failed[:2]}")
    log.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--continuous-batching", action="store_true")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="pp-bench-remote-"))
    settings = Settings(data_dir=data, offline=True, device="cpu")
    folder = shipped_model("tiny-text")[0]
    process, url = serve(folder, args.continuous_batching)
    try:
        grid_seconds(data, settings, url, folder, 8, 2)        # warm the server
        one = grid_seconds(data, settings, url, folder, 1, args.tokens)
        eight = grid_seconds(data, settings, url, folder, 8, args.tokens)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
    mode = "continuous batching" if args.continuous_batching else "default"
    print(f"16-cell text grid x {args.tokens} new tokens against transformers serve ({mode}), tiny model:")
    print(f"  1 cell in flight : {one:6.2f} s")
    print(f"  8 cells in flight: {eight:6.2f} s")
    print(f"  speed-up         : {one / eight:6.2f}x")


if __name__ == "__main__":
    main()
