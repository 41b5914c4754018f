"""What the speed benchmark's sections share: the 8 text prompts, printing, timing, and running cells."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXT_PROMPTS = [   # 8 cells of different lengths, as a grid of variants would give
    "Write a tagline for a solar powered lantern.",
    "Summarize the following text in three bullet points: the weather today is sunny with a light breeze.",
    "Classify the review as positive, negative or neutral: customers love the long battery life.",
    "Please rewrite this email in a friendly, professional tone and keep it under one hundred words: "
    "the quick brown fox jumps over the lazy dog.",
    "Extract the names, dates and places as JSON.",
    "Think step by step, then give the final answer: a lantern costs twelve dollars and a battery costs three.",
    "You are an award-winning copywriter. Write one tagline for noise-cancelling headphones.",
    "Describe a red fox in a snowy forest at golden hour, soft light, shallow depth of field, in detail please.",
]


def line(label: str, value: str, note: str = "") -> None:
    print(f"  {label:44} {value:>22}   {note}", flush=True)


def timed(fn, repeats: int = 1):
    """(median seconds, last result)."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run_cells(model, requests, options) -> tuple[list, float | None]:
    """Outputs in request order and the time to the first streamed text."""
    from playground.engines.base import Finished, Partial

    started, first, done = time.perf_counter(), None, {}
    for event in model.stream(requests, options):
        if isinstance(event, Partial) and first is None:
            first = time.perf_counter() - started
        elif isinstance(event, Finished):
            done[event.index] = event.output
    return [done[i] for i in range(len(requests))], first


def median_ratio(a: list[float], b: list[float]) -> float:
    """The median of a / b over runs made in turns (A B A B): each pair saw the same machine."""
    return statistics.median(x / y for x, y in zip(a, b))


def wall(command: list[str], env: dict | None = None) -> float:
    """Seconds a whole process takes, start to exit (it must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{command[:3]} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


PYTHON = sys.executable
