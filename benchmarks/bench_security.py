"""Security benchmark: the cost of isolated renders, how fast hostile input is refused, import throughput.

    python benchmarks/bench_security.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playground.store import ImportLimits, RunLog, RunRecord  # noqa: E402
from playground.templates import TemplateError, expand, make_template, render_source  # noqa: E402
from playground.templates.sandbox import render_here  # noqa: E402

HOSTILE = {
    "1 MB string x 300 wordcount": "{% set s = ('word ' * 20000) %}{% set s = s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s %}"
                                   "{% for i in range(300) %}{{ s|wordcount }}{% endfor %}",
    "format width 1.5e9": "{{ '{:>1500000000}'.format('x') }}",
    "nested loops 1e8": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "wordwrap of 1 MB (killed)": "{% set s = ('a' * 100000) %}{{ (s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s)"
                                 "|wordwrap(1)|length }}",
}


def timed(fn, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    render_source("warm {{ x }}", {"x": "up"})
    source = "Write a tagline for {{ x }}, in {{ n }} words."
    here = timed(lambda: render_here(source, {"x": "a lantern", "n": "8"}, max_chars=8000, where="t"), 500)
    isolated = timed(lambda: render_source(source, {"x": "a lantern", "n": "8"}), 500)
    print(f"one render: in-process {here * 1e3:.2f} ms, in a worker {isolated * 1e3:.2f} ms")
    template = make_template("bench", "text", {f"v{i}": source for i in range(8)})
    grid = timed(lambda: expand(template, values={"x": [f"item {i}" for i in range(8)], "n": "8"}), 5)
    print(f"64-cell grid expanded: {grid * 1e3:.1f} ms")
    for name, hostile in HOSTILE.items():
        start = time.perf_counter()
        try:
            render_source(hostile, {})
            outcome = "RENDERED"
        except TemplateError as error:
            outcome = "refused: " + error.message.split(": ", 2)[-1][:70]
        print(f"{name:28} {time.perf_counter() - start:5.2f} s  {outcome}")
    with tempfile.TemporaryDirectory() as tmp:
        source_log = RunLog(Path(tmp) / "a")
        for c in range(100):
            comparison = source_log.start_comparison("text", f"c{c}")
            for i in range(20):
                source_log.add_run(RunRecord(modality="text", model_id="m", prompt=f"p {c} {i}", seed=i, params={},
                                             comparison_id=comparison, row=i // 4, col=i % 4, output_text="o"))
        exported = source_log.export(Path(tmp) / "all.jsonl", "jsonl", runs=source_log.list_runs(limit=10**6))
        target = RunLog(Path(tmp) / "b")
        first = timed(lambda: target.import_jsonl(exported))
        again = timed(lambda: target.import_jsonl(exported))
        print(f"import 2000 runs / 100 comparisons: {first:.2f} s ({2000 / first:.0f} runs/s); "
              f"again (all skipped): {again:.2f} s")
        bomb = Path(tmp) / "bomb.zip"
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("runs.jsonl", json.dumps({"modality": "image", "model_id": "m", "prompt": "p",
                                                       "seed": 1, "params": {}, "artifact": "x.png"}) + "\n")
            with archive.open("media/x.png", "w", force_zip64=True) as member:
                for _ in range(1024):
                    member.write(b"\0" * 2**20)
        refused = timed(lambda: target.import_jsonl(bomb, ImportLimits()))
        print(f"zip bomb ({bomb.stat().st_size / 2**20:.1f} MB -> 1 GB) refused in {refused * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
