"""Whole processes: a model's load against one read of its weights (first process, which prepares them, and second,
which maps what the first kept), the CLI's 8-cell comparison against the naive peer's script, and the app's cold
start against a bare one-textbox Gradio app. Every comparison runs in turns (A B A B) and reports medians.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_app import cold_start
from speed_common import PYTHON, ROOT, TEXT_PROMPTS, line, load_average, median_ratio, wall

# Run in a fresh process: the libraries imported (timed apart: every process that loads a model pays them, the
# naive peer too), one plain read of the checkpoint's weight files, then the engine's load through the catalog
# (tokenizer, config, reading and casting, packing or mapping the prepared weights), then one decode step (which
# touches every weight, mapped or not).
LOAD_PROBE = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
folder, data_dir = Path(sys.argv[1]), Path(sys.argv[2])
started = time.perf_counter()
import transformers.modeling_utils, transformers.models.llama.modeling_llama, transformers.tokenization_utils_tokenizers
from playground.engines import compute, continuous, local_text, rowwise
from playground.engines.catalog import Catalog
from playground.settings import Settings
rowwise.register()
imports_s = time.perf_counter() - started
started = time.perf_counter()
size = sum(len(path.read_bytes()) for path in sorted(folder.glob("*.safetensors")))
read_s = time.perf_counter() - started
catalog = Catalog(Settings(data_dir=data_dir, offline=True, device="cpu", max_models_loaded=1))
resolved = catalog.resolve("text", str(folder))
started = time.perf_counter()
model = catalog.get(resolved)
load_s = time.perf_counter() - started
started = time.perf_counter()
compute.run(continuous.step_seconds, model.model, 1, 8, 0)
step_s = time.perf_counter() - started
print(json.dumps({{"imports_s": imports_s, "read_s": read_s, "bytes": size, "load_s": load_s,
                  "first_step_s": step_s}}))
"""

# The naive peer: what a user writes without this project, as a whole script.
PEER_SCRIPT = """
import sys
from transformers import pipeline
pipe = pipeline("text-generation", model=sys.argv[1], device="cpu")
for prompt in {prompts!r}:
    pipe([{{"role": "user", "content": prompt}}], max_new_tokens=32, do_sample=False)
"""

# The same server start with nothing of this project: what Gradio itself costs on this machine.
BARE_GRADIO_APP = ("import sys, gradio as gr\n"
                   "with gr.Blocks() as demo:\n    gr.Textbox()\n"
                   "demo.launch(server_port=int(sys.argv[sys.argv.index('--port') + 1]))")


def load(folder: Path, repeats: int) -> None:
    print(f"\nload: SmolLM2-360M architecture ({_size(folder)}), bfloat16, each in a fresh process")
    runs = {"first": [], "second": []}
    for _ in range(max(repeats, 2)):
        data_dir = Path(tempfile.mkdtemp(prefix="pp-load-"))
        for which in ("first", "second"):                # the first prepares, the second maps what it kept
            out = subprocess.run([PYTHON, "-c", LOAD_PROBE.format(root=str(ROOT)), str(folder), str(data_dir)],
                                 cwd=ROOT, capture_output=True, text=True, check=True).stdout
            runs[which].append(json.loads(out.strip().splitlines()[-1]))
        shutil.rmtree(data_dir, ignore_errors=True)
    for which, samples in runs.items():
        ratio = statistics.median(s["load_s"] / s["read_s"] for s in samples)
        ready = statistics.median((s["load_s"] + s["first_step_s"]) / s["read_s"] for s in samples)
        line(f"{which} process: load + prepare / one read", f"{ratio:.2f}x",
             f"load {_seconds(samples, 'load_s')} vs read {_seconds(samples, 'read_s')}; with the first decode "
             f"step (every weight touched) {ready:.2f}x; library imports before both "
             f"{_seconds(samples, 'imports_s')}")


def cli(folder: Path, repeats: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="pp-cli-"))
    comparison = work / "eight.json"
    comparison.write_text(json.dumps({"modality": "text", "name": "eight", "params": {
        "max_new_tokens": 32, "do_sample": False}, "variants": {f"v{i}": p for i, p in enumerate(TEXT_PROMPTS)}}))
    peer = work / "peer.py"
    peer.write_text(PEER_SCRIPT.format(prompts=TEXT_PROMPTS))
    print("\ncli: 8 cells x 32 new tokens, greedy, whole processes (start, imports, load, run, exit)")
    times = {"first": [], "second": [], "peer": []}
    for _ in range(max(repeats, 2)):
        data_dir = work / f"data-{len(times['peer'])}"
        for which in ("first", "second"):
            times[which].append(wall([PYTHON, "-m", "playground", "run", str(comparison), "--models", str(folder),
                                      "--data-dir", str(data_dir), "--offline", "--rerun", "--quiet"]))
        times["peer"].append(wall([PYTHON, str(peer), str(folder)], env=_peer_env()))
    for which in ("first", "second"):
        line(f"python -m playground run ({which} process)", f"{statistics.median(times[which]):.2f} s",
             f"the naive peer ({statistics.median(times['peer']):.2f} s) takes "
             f"{median_ratio(times['peer'], times[which]):.2f}x as long (in turns)")
    shutil.rmtree(work, ignore_errors=True)


def cold(repeats: int) -> None:
    print("\ncold start: process start -> page served")
    help_s = statistics.median(wall([PYTHON, "app.py", "--help"]) for _ in range(3))
    line("python app.py --help", f"{help_s:.2f} s")
    probe = ("import sys, time; t = time.perf_counter(); import playground.ui.app; "
             "print(time.perf_counter() - t, *[m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules])")
    out = subprocess.run([PYTHON, "-c", probe], cwd=ROOT, capture_output=True, text=True).stdout.split()
    line("import playground.ui.app (gradio included)", f"{float(out[0]):.2f} s",
         f"heavy model libraries imported: {', '.join(out[1:]) or 'none'}")
    app, bare = [], []
    for _ in range(max(repeats, 3)):
        app.append(cold_start())                       # the app, offline, on a fresh data dir
        bare.append(cold_start([PYTHON, "-c", BARE_GRADIO_APP]))
    line("the app / a one-textbox Gradio app", f"{statistics.median(app):.2f} / {statistics.median(bare):.2f} s",
         f"{median_ratio(app, bare):.2f}x (in turns; app {', '.join(f'{t:.2f}' for t in app)}; "
         f"bare {', '.join(f'{t:.2f}' for t in bare)}); {load_average()}")


def _peer_env() -> dict:
    """The peer runs on its main thread, whose one OpenMP team spin-waits; on a machine busier than its cores that
    makes every kernel wait for a parked thread (engines/compute.py). Give it what the engine does there: parked
    threads (OMP_WAIT_POLICY=PASSIVE), so the ratio measures the engine, not the machine's load."""
    import os

    busy = os.getloadavg()[0] > (os.cpu_count() or 1)
    return {**_env(), **({"OMP_WAIT_POLICY": "PASSIVE"} if busy else {})}


def _env() -> dict:
    import os

    return dict(os.environ)


def _size(folder: Path) -> str:
    return f"{sum(p.stat().st_size for p in folder.glob('*.safetensors')) / 1e9:.2f} GB of safetensors"


def _seconds(samples: list[dict], key: str) -> str:
    return f"{statistics.median(s[key] for s in samples):.2f} s"


if __name__ == "__main__":
    sys.exit("run benchmarks/bench_speed.py")
