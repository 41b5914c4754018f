"""App and run-log benchmark: cold start, time to log a run, cached-cell latency, concurrent writes.

    python benchmarks/bench_app.py

Cold start is process start to the page served, with tiny models and a fresh data dir (the tiny models are not
built until the first request needs them).
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cold_start(command: list[str] | None = None) -> float:
    """Seconds from process start to the page served, for the app (or another `command` taking --port)."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = (command or [sys.executable, "app.py", "--offline", "--data-dir", tempfile.mkdtemp(prefix="pp-cold-")])
    started = time.perf_counter()
    process = subprocess.Popen(command + ["--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + 120
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200 and b"gradio" in response.read().lower():
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the app did not serve its page within 120 s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def log_figures() -> dict:
    from playground.store import RunLog, RunRecord

    log = RunLog(Path(tempfile.mkdtemp(prefix="pp-log-")))
    comparison = log.start_comparison("text", "bench")

    def record(i: int) -> RunRecord:
        return RunRecord(modality="image", model_id="tiny-image", prompt=f"a fox number {i}", seed=i,
                         params={"num_inference_steps": 4}, comparison_id=comparison, output_text=None)

    times = []
    for i in range(50):
        started = time.perf_counter()
        log.add_run(record(i), artifact=os.urandom(100_000), artifact_ext="png")
        times.append(time.perf_counter() - started)
    one_run = statistics.median(times)

    started = time.perf_counter()
    lookups = 200
    for i in range(lookups):
        assert log.find_cached(record(i % 50)) is not None
    cached = (time.perf_counter() - started) / lookups

    threads, per_thread = 8, 50

    def writer(t: int) -> None:
        for i in range(per_thread):
            log.add_run(record(10_000 + t * per_thread + i), artifact=os.urandom(20_000), artifact_ext="png")

    started = time.perf_counter()
    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    rate = threads * per_thread / (time.perf_counter() - started)
    log.close()
    return {"log_one_run_ms": one_run * 1000, "cache_lookup_ms": cached * 1000, "concurrent_rows_per_s": rate}


def cached_cell_latency() -> float:
    """A whole cached comparison cell through the runner: spec -> cache hit -> logged -> yielded."""
    from playground.engines.catalog import Catalog
    from playground.runner import Runner
    from playground.spec import build_spec
    from playground.settings import Settings
    from playground.store import RunLog
    from playground.templates import make_template

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="pp-cache-")), offline=True, device="cpu")
    log = RunLog(settings.data_dir)
    runner = Runner(Catalog(settings), log, settings)
    template = make_template(name="bench", modality="text", variants={"a": "Hello {{ x }}", "b": "Hi {{ x }}"},
                             variables={"x": "there"})
    spec = build_spec(template, models=["tiny-text"], seeds=[1, 2, 3, 4], params={"max_new_tokens": 8})
    list(runner.run(spec))
    started = time.perf_counter()
    list(runner.run(spec))
    latency = (time.perf_counter() - started) / len(spec.cells)
    log.close()
    return latency


def main() -> None:
    starts = [cold_start() for _ in range(3)]
    print(f"cold start (process start -> page served): median {statistics.median(starts):.2f} s "
          f"(runs: {', '.join(f'{s:.2f}' for s in starts)})")
    figures = log_figures()
    print(f"log one run with a 100 KB artifact: {figures['log_one_run_ms']:.2f} ms (median of 50)")
    print(f"cache lookup: {figures['cache_lookup_ms']:.3f} ms")
    print(f"concurrent writers (8 threads x 50 runs, 20 KB artifacts): {figures['concurrent_rows_per_s']:.0f} rows/s")
    print(f"cached cell through the runner: {cached_cell_latency() * 1000:.1f} ms per cell")


if __name__ == "__main__":
    main()
