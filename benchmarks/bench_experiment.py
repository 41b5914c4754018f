"""Experiment benchmark, in one run: a 2,000-cell text experiment against `transformers serve
--continuous-batching` at 1, 8 and 32 in flight; the same rows and prompts through promptfoo at the same server
(`promptfoo eval -j 8`), cells per second and peak memory side by side; the app's peak memory over a 20,000-cell
experiment; and the time to serve one page of results at 20,000 rows.

    python benchmarks/bench_experiment.py [--cells 2000] [--big 20000] [--tokens 8] [--repeats 3]
    (promptfoo: ../shared/peers/install-promptfoo.sh /tmp/promptfoo, or --promptfoo PATH, or --no-promptfoo)

Both clients run as their own command (`python -m playground experiment run` and `promptfoo eval`), from process
start to exit, each on a fresh data dir (no cache), against the same server answering for the tiny offline text
model; peak memory is the largest resident set of the command's process tree, sampled every 50 ms. The machine is
shared: runs at 8 in flight alternate between the two tools, and medians are reported with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SERVED = "playground/tiny-text"
PORT = int(os.environ.get("BENCH_PORT", 7981))
VARIANTS = {"plain": "Write a tagline for {{ product }}.",
            "role": "You are an award-winning copywriter. Write one tagline for {{ product }}."}


class Server:
    """transformers serve with continuous batching, answering for SERVED (a name, never a path); started again
    (and counted) if it has gone between two runs: the machine is shared."""

    def __init__(self, folder: Path, work: Path):
        self.folder, self.work, self.restarts = folder, work, 0
        self.process = serve(folder, work)

    def ensure(self) -> None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=5):
                return
        except OSError:
            self.stop()
            self.restarts += 1
            self.process = serve(self.folder, self.work)

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def serve(folder: Path, work: Path) -> subprocess.Popen:
    link = work / "serve-root" / SERVED
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(folder, target_is_directory=True)
        (work / "hf-home" / "hub").mkdir(parents=True)
    # The KV cache is sized explicitly: on a CPU, continuous batching otherwise sizes it from the free memory (GBs).
    process = subprocess.Popen(["transformers", "serve", SERVED, "--host", "127.0.0.1", "--port", str(PORT),
                                "--continuous-batching", "--cb-block-size", "32", "--cb-num-blocks", "1024",
                                "--cb-max-batch-tokens", "4096"], cwd=work / "serve-root",
                               env={**os.environ, "HF_HOME": str(work / "hf-home")}, stdout=subprocess.DEVNULL,
                               stderr=open(work / "server.log", "ab"), start_new_session=True)
    for _ in range(480):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit("transformers serve did not start")


def peak_rss(command: list[str], **kwargs) -> tuple[float, float, subprocess.CompletedProcess]:
    """(seconds, peak MB of the process tree, the finished process)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    peak, stop = [0], threading.Event()

    def sample():
        root = psutil.Process(process.pid)
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{command[:4]} failed ({process.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
    return seconds, peak[0] / 2**20, subprocess.CompletedProcess(command, 0, out, err)


def write_inputs(work: Path, rows: int, tokens: int) -> tuple[Path, Path]:
    data = work / f"rows-{rows}.csv"
    data.write_text("product\n" + "".join(f"gadget number {i}\n" for i in range(rows)))
    template = work / "bench-tagline.md"
    body = "\n".join(f"  {name}: \"{text}\"" for name, text in VARIANTS.items())
    template.write_text(f"---\nname: bench-tagline\nmodality: text\nvariables:\n  product: {{default: lamp}}\n"
                        f"params: {{max_new_tokens: {tokens}, temperature: 0.8}}\nvariants:\n{body}\n---\n")
    return data, template


def ours(folder: Path, data: Path, template: Path, in_flight: int, tokens: int) -> tuple[float, float]:
    """`experiment run` as a user runs it a second time on a dataset added before (--rerun: no cache, --new: a new
    experiment), at `in_flight` requests at once."""
    (folder / "endpoints.yaml").write_text(json.dumps({"endpoints": [{
        "name": "bench", "base_url": f"http://127.0.0.1:{PORT}/v1", "models": [SERVED],
        "max_concurrency": in_flight}]}))
    command = playground(folder, "experiment", "run", str(template), "--dataset", str(data), "--models",
                         f"bench:{SERVED}", "--param", f"max_new_tokens={tokens}", "--quiet", "--rerun", "--new")
    seconds, peak, done = peak_rss(command, cwd=ROOT)
    if " 0 failed" not in done.stdout:
        raise SystemExit(f"cells failed:\n{done.stdout[-1500:]}")
    return seconds, peak


def playground(folder: Path, *args) -> list[str]:
    return [sys.executable, "-W", "ignore", "-m", "playground", "--data-dir", str(folder), "--offline", *args]


def promptfoo(binary: Path, work: Path, data: Path, in_flight: int, tokens: int) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp(prefix="promptfoo-", dir=work))
    config = folder / "promptfooconfig.yaml"
    config.write_text(json.dumps({
        "prompts": [text.replace("{{ product }}", "{{product}}") for text in VARIANTS.values()],
        "providers": [{"id": f"openai:chat:{SERVED}", "config": {
            "apiBaseUrl": f"http://127.0.0.1:{PORT}/v1", "apiKey": "x", "max_tokens": tokens, "temperature": 0.8}}],
        "tests": f"file://{data}"}))
    env = {**os.environ, "PROMPTFOO_DISABLE_TELEMETRY": "1", "PROMPTFOO_DISABLE_UPDATE": "1",
           "PROMPTFOO_CONFIG_DIR": str(folder / "home"), "PROMPTFOO_CACHE_ENABLED": "false"}
    command = [str(binary), "eval", "-c", str(config), "-j", str(in_flight), "--no-cache", "--no-table",
               "--no-progress-bar", "-o", str(folder / "out.json")]
    seconds, peak, _ = peak_rss(command, cwd=folder, env=env)
    results = json.loads((folder / "out.json").read_text())["results"]
    errors = [r for r in results.get("results", []) if r.get("error")]
    if errors:
        raise SystemExit(f"promptfoo cells failed: {errors[0].get('error')}")
    shutil.rmtree(folder, ignore_errors=True)
    return seconds, peak


def page_timings(rows: int) -> dict[str, float]:
    """Median seconds of results_page (and the summary) on an experiment of `rows` grid rows x 2 variants, with a
    score per cell, logged directly (the table's speed, not the model's)."""
    from playground.experiments.results import results_page
    from playground.scoring import comparison_summary
    from playground.store import RunLog, RunRecord
    from playground.store.rows import insert_run
    from playground.store.scores import Score, insert_scores

    folder = Path(tempfile.mkdtemp(prefix="pp-page-"))
    log = RunLog(folder)
    dataset = "0" * 64
    spec = {"experiment": {"template": "---\nname: t\nmodality: text\nvariables: {product: {default: x}}\n"
                           "variants:\n  plain: \"{{ product }}\"\n  role: \"Be brief. {{ product }}\"\n---\n",
                           "template_name": "t", "template_hash": "", "dataset": dataset, "models": ["m"],
                           "seeds": [1]}}
    import hashlib

    spec["experiment"]["template_hash"] = hashlib.sha256(spec["experiment"]["template"].encode()).hexdigest()
    experiment = log.start_comparison("text", "page bench", spec=spec)
    with log._write() as tx:
        for row in range(rows):
            for col, variant in enumerate(("plain", "role")):
                record = RunRecord(modality="text", model_id="m", prompt=f"gadget {row}", seed=1, params={},
                                   row=row, col=col, variant=variant, comparison_id=experiment,
                                   output_text=f"A tagline for gadget {row} " * 3, cell_key=f"r{row}.v{col}.s1.m0",
                                   variables={"product": f"gadget {row}"}, status="ok" if row % 97 else "error")
                insert_run(tx, record)
                insert_scores(tx, record.id, [Score("length", float((row * 7 + col * 3) % 11), None,
                                                    {"check": "length", "better": None})])
    calls = {"first page": lambda: results_page(log, experiment, limit=50),
             "last page": lambda: results_page(log, experiment, offset=rows - 50, limit=50),
             "rows that disagree": lambda: results_page(log, experiment, only="disagree", limit=50),
             "sorted by plain - role": lambda: results_page(log, experiment, sort=("plain", "role"), limit=50),
             "paired summary": lambda: comparison_summary(log, experiment)}
    timings = {}
    for name, call in calls.items():
        call()                                   # first calls import what they need (scipy.stats: ~1 s)
        times = []
        for _ in range(5 if name != "paired summary" else 3):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        timings[name] = statistics.median(times)
    log.close()
    shutil.rmtree(folder, ignore_errors=True)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--big", type=int, default=20000, help="cells of the memory run")
    parser.add_argument("--tokens", type=int, default=8, help="max new tokens per cell")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs at 8 in flight")
    parser.add_argument("--promptfoo", default="/tmp/promptfoo/node_modules/.bin/promptfoo")
    parser.add_argument("--no-promptfoo", action="store_true")
    args = parser.parse_args()
    from playground.engines.tiny import shipped_model

    work = Path(tempfile.mkdtemp(prefix="pp-bench-experiment-"))
    folder, _ = shipped_model("tiny-text")
    data, template = write_inputs(work, args.cells // len(VARIANTS), args.tokens)
    big, _ = write_inputs(work, args.big // len(VARIANTS), args.tokens)
    binary = Path(args.promptfoo)
    compare = not args.no_promptfoo and binary.exists()
    load_before = os.getloadavg()
    server = Server(folder, work)
    ours_at: dict[int, list] = {1: [], 8: [], 32: []}
    theirs: list = []
    home = work / "playground-data"
    home.mkdir()
    warm, _ = write_inputs(work, 20, args.tokens)
    try:
        for rows in (warm, data, big):          # added once, as a user adds a dataset before running on it
            subprocess.run(playground(home, "dataset", "add", str(rows)), cwd=ROOT, check=True, capture_output=True)
        ours(home, warm, template, 8, args.tokens)                            # warm the server
        for repeat in range(args.repeats):
            server.ensure()
            ours_at[8].append(ours(home, data, template, 8, args.tokens))
            if compare:
                server.ensure()
                theirs.append(promptfoo(binary, work, data, 8, args.tokens))
        for in_flight in (32, 1):
            server.ensure()
            ours_at[in_flight].append(ours(home, data, template, in_flight, args.tokens))
        server.ensure()
        big_run = ours(home, big, template, 32, 1)
    finally:
        server.stop()
    if server.restarts:
        print(f"(the server was gone {server.restarts} time(s) between runs and was started again)")
    pages = {rows: page_timings(rows) for rows in (args.cells // 2, 20_000)}
    report(args, ours_at, theirs, compare, big_run, pages, load_before)
    shutil.rmtree(work, ignore_errors=True)


def report(args, ours_at, theirs, compare, big_run, pages, load_before) -> None:
    def median(runs, index):
        return statistics.median(r[index] for r in runs)

    print(f"{args.cells:,}-cell text experiment ({len(VARIANTS)} variants x {args.cells // len(VARIANTS):,} rows, "
          f"{args.tokens} new tokens) against transformers serve --continuous-batching, tiny model, "
          f"whole command from start to exit (playground: on a dataset added before):")
    print(f"  {'client':<28} {'in flight':>9} {'runs':>5} {'seconds':>9} {'cells/s':>9} {'peak MB':>9}")
    for in_flight, runs in ours_at.items():
        seconds = median(runs, 0)
        print(f"  {'playground experiment run':<28} {in_flight:>9} {len(runs):>5} {seconds:>9.1f} "
              f"{args.cells / seconds:>9.1f} {median(runs, 1):>9.0f}")
    if compare:
        seconds = median(theirs, 0)
        print(f"  {'promptfoo 0.118 eval':<28} {8:>9} {len(theirs):>5} {seconds:>9.1f} {args.cells / seconds:>9.1f} "
              f"{median(theirs, 1):>9.0f}")
        print(f"  at 8 in flight: playground {median(theirs, 0) / median(ours_at[8], 0):.2f}x promptfoo's cells/s, "
              f"{median(ours_at[8], 1) / median(theirs, 1):.2f}x its peak memory")
    else:
        print("  promptfoo: not installed (../shared/peers/install-promptfoo.sh /tmp/promptfoo), not compared")
    print(f"{args.big:,}-cell experiment (remote engine, 1 new token, 32 in flight): {big_run[0]:.0f} s, "
          f"{args.big / big_run[0]:.1f} cells/s, peak memory {big_run[1]:.0f} MB")
    small, large = pages
    print(f"results, median seconds, for {small:,} and {large:,} rows x 2 variants (a score per cell), logged "
          f"directly:")
    for name in pages[large]:
        print(f"  {name:<24} {pages[small][name]:7.3f} {pages[large][name]:7.3f}")
    load_after = os.getloadavg()
    print(f"load average (1, 5, 15 min): before {', '.join(f'{x:.1f}' for x in load_before)}; after "
          f"{', '.join(f'{x:.1f}' for x in load_after)}; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
