"""A 256-row experiment on the SmolLM2-360M architecture: one variant whose rows have 32-96 prompt tokens and
16-64 new tokens each, greedy. The engine with continuous batching (its measured width), the same engine fed fixed
batches of 8 (what a runner with a batch size of 8 does: a batch's slots wait for its longest row), and
`transformers serve --continuous-batching` on the same model folder driven with 8 and 32 requests in flight.
Each is run in turns (A B C D A B C D with --repeats 2) and the medians are reported.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from speed_common import PYTHON, ROOT, line, load_average

ROWS = 256
VARIANT = "Summarize these notes in one line: {notes}"
WORDS = ("battery lantern solar light charge evening garden camping weather bright warm hours switch handle "
         "customer review price shipping colour size weight water rain durable").split()


def experiment_rows(tokenizer, format_prompt, count: int = ROWS, seed: int = 0) -> list[tuple[str, int]]:
    """(prompt, new tokens) for each row: notes long enough that the formatted prompt has 32-96 tokens."""
    draw = random.Random(seed)
    rows = []
    for _ in range(count):
        target, new = draw.randint(32, 96), draw.randint(16, 64)
        notes = []
        while True:
            prompt = VARIANT.format(notes=" ".join(notes))
            if len(tokenizer(format_prompt(prompt), add_special_tokens=False)["input_ids"]) >= target:
                break
            notes.append(draw.choice(WORDS))
        rows.append((prompt, new))
    return rows


def engine_run(model, rows, options, chunk: int | None) -> tuple[float, list]:
    """Seconds for every row through the engine: one stream (continuous batching), or one per `chunk` rows."""
    from playground.engines.base import Finished, GenerationRequest

    requests = [GenerationRequest(prompt, seed=1, max_new_tokens=new) for prompt, new in rows]
    outputs = [None] * len(requests)
    started = time.perf_counter()
    size = chunk or len(requests)
    for start in range(0, len(requests), size):
        for event in model.stream(requests[start:start + size], options):
            if isinstance(event, Finished):
                outputs[start + event.index] = event.output
    return time.perf_counter() - started, outputs


# ---- transformers serve ---------------------------------------------------------------------------------------------

class Serve:
    """`transformers serve <folder> --continuous-batching` on a port of ours, CPU, bfloat16."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        self.log = tempfile.NamedTemporaryFile("w+", prefix="pp-serve-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [str(Path(PYTHON).parent / "transformers"), "serve", str(folder), "--continuous-batching",
             # a fixed cache: left to itself on a CPU it sizes the cache from the machine's free memory
             "--cb-block-size", "32", "--cb-num-blocks", "1024",
             "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "bfloat16",
             "--log-level", "warning"],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 600
        while True:
            if self.process.poll() is not None or time.time() > deadline:
                self.close()
                raise RuntimeError(f"transformers serve did not start: {self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        self.ask("warm up", 4)

    def ask(self, prompt: str, new_tokens: int) -> dict:
        body = {"model": str(self.folder), "messages": [{"role": "user", "content": prompt}],
                "max_tokens": new_tokens, "temperature": 0.0, "stream": False}
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/chat/completions",
                                         data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=1800) as response:
            return json.loads(response.read())

    def run(self, rows, in_flight: int) -> tuple[float, int]:
        """Seconds for every row with `in_flight` requests open at once, and the new tokens it reported."""
        started = time.perf_counter()
        try:
            with ThreadPoolExecutor(in_flight) as pool:
                answers = list(pool.map(lambda row: self.ask(*row), rows))
        except OSError as error:
            raise RuntimeError(f"transformers serve failed ({error}): {self.tail()}") from None
        return time.perf_counter() - started, sum(a["usage"]["completion_tokens"] for a in answers)

    def tail(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


# ---- the section ----------------------------------------------------------------------------------------------------

def experiment(folder: Path, data_dir: Path, repeats: int, port: int, count: int = ROWS) -> None:
    from playground.engines import compute
    from playground.engines.base import GenerationRequest
    from playground.engines.catalog import Catalog
    from playground.registry import LocalTextOptions, validate_options
    from playground.settings import Settings

    settings = Settings(data_dir=data_dir / "app", offline=True, device="cpu", max_models_loaded=1)
    catalog = Catalog(settings)
    model = catalog.get(catalog.resolve("text", str(folder)))
    options = validate_options(LocalTextOptions, {"max_new_tokens": 64, "do_sample": False}, settings)
    rows = experiment_rows(model.tokenizer, lambda prompt: model.format_prompt(GenerationRequest(prompt)), count)
    lengths = [len(model.tokenizer(model.format_prompt(GenerationRequest(p)), add_special_tokens=False)["input_ids"])
               for p, _ in rows]
    new = [n for _, n in rows]
    print(f"\nexperiment: {len(rows)} rows of one variant on the SmolLM2-360M architecture ({model.dtype}), greedy; "
          f"prompts {min(lengths)}-{max(lengths)} tokens, {min(new)}-{max(new)} new tokens each ({sum(new)} in all)")
    engine_run(model, rows[:2], options, None)                     # first-call allocations
    width = compute.run(model.rows_per_step, len(rows), max(lengths) + max(new))
    line("width: rows per step, measured here", f"{width}", "seconds per step by rows: " + ", ".join(
        f"{rows_}: {seconds:.3f}" for rows_, seconds in sorted((model.width_seconds or {}).items())))
    arms = {"continuous": None, "fixed batches of 8": 8, "serve, 8 in flight": 8, "serve, 32 in flight": 32}
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    outputs, served_tokens = {}, 0
    serve = Serve(folder, port)
    try:
        for _ in range(max(repeats, 1)):
            for arm, size in arms.items():
                if arm.startswith("serve"):
                    seconds, served_tokens = serve.run(rows, size)
                else:
                    seconds, outputs[arm] = engine_run(model, rows, options, size)
                times[arm].append(seconds)
    finally:
        serve.close()
    produced = sum(o.metrics["completion_tokens"] for o in outputs["continuous"])
    for arm, samples in times.items():
        median = statistics.median(samples)
        note = "" if arm == "continuous" else \
            f"continuous is {statistics.median(b / a for a, b in zip(times['continuous'], samples)):.2f}x this"
        line(f"{arm}", f"{len(rows) / median:.2f} rows/s",
             f"{median:.1f} s (runs: {', '.join(f'{t:.1f}' for t in samples)}); "
             f"{(served_tokens if arm.startswith('serve') else produced) / median:.1f} new tok/s; {note}")
    same = sum(a.text == b.text for a, b in zip(outputs["continuous"], outputs["fixed batches of 8"]))
    picks = list(range(0, len(rows), max(len(rows) // 6, 1)))[:6]
    alone = [engine_run(model, [rows[i]], options, None)[1][0].text == outputs["continuous"][i].text for i in picks]
    line("cells alone == batched", f"{sum(alone)} of {len(alone)}",
         f"rows {picks} alone vs in the continuous run; continuous == fixed batches of 8 in {same} of {len(rows)} "
         f"rows; new tokens: engine {produced}, serve {served_tokens}; {load_average()}")
    catalog.clear()
