"""Experiments tab benchmark: what a page of results costs in the tab's own handlers at 20,000 rows.

    python benchmarks/bench_experiments_tab.py [ROWS]

Builds an experiment of ROWS dataset rows (default 20,000) x 2 variants with a score per cell, logged straight into
a temporary run log (the table's speed, not a model's), then times, as the Results panel calls them: opening it
(status, filters, first page), its paired statistics (drawn after the page), the first and the last page, rows
where the variants disagree, rows sorted by the difference of two variants, a column filter, and one poll of the
timer. Prints medians, the HTML size of a page, and each figure as a ratio to the first page measured in the same
run.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def big_experiment(folder: Path, settings=None, rows: int = 20_000):
    """(services, experiment id): an experiment of `rows` dataset rows x 2 variants, one length score per cell,
    every 97th row failed, its job done. The runs are written in one transaction, as a finished job leaves them."""
    from playground import experiments
    from playground.services import Services
    from playground.settings import Settings
    from playground.store import RunRecord
    from playground.store.rows import insert_run
    from playground.store.scores import Score, insert_scores

    folder = Path(folder) / "big"
    folder.mkdir(parents=True, exist_ok=True)
    settings = (settings or Settings(offline=True)).replace(data_dir=folder)
    services = Services.create(settings)
    dataset = services.datasets.add_rows([{"product": f"gadget {i}", "kind": "big" if i % 3 else "small"}
                                          for i in range(rows)], name="gadgets")
    spec = experiments.build_spec(services, template="product-tagline", dataset=dataset, models=["tiny-text"],
                                  variants=["plain", "role"], params={"max_new_tokens": 8})
    made = experiments.submit(services, spec, start=False)
    with services.log._write() as tx:
        for row in range(rows):
            for col, variant in enumerate(("plain", "role")):
                failed = row % 97 == 0
                record = RunRecord(modality="text", model_id="tiny-text", prompt=f"gadget {row}", seed=1, params={},
                                   row=row, col=col, variant=variant, comparison_id=made.id,
                                   output_text=None if failed else f"A tagline for gadget {row} " * 3,
                                   error="timed out" if failed else None, cell_key=f"r{row}.v{col}.s1.m0",
                                   variables={"product": f"gadget {row}"}, status="error" if failed else "ok")
                insert_run(tx, record)
                insert_scores(tx, record.id, [Score("length", float((row * 7 + col * 3) % 11), None,
                                                    {"check": "length", "better": None})])
        tx.execute("UPDATE jobs SET status = 'done' WHERE id = ?", (made.job.id,))
        tx.execute("UPDATE comparisons SET status = 'partial' WHERE id = ?", (made.id,))
    return services, made.id


def median_s(call, repeats: int = 5) -> float:
    call()                                   # first calls import what they need
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(rows: int) -> None:
    import gradio as gr

    from playground.ui.experiments import build_experiments_tab

    started = time.perf_counter()
    services, experiment_id = big_experiment(Path(tempfile.mkdtemp(prefix="bench-exp-tab-")), rows=rows)
    print(f"built an experiment of {rows:,} rows x 2 variants in {time.perf_counter() - started:.1f} s")
    with gr.Blocks():
        tab = build_experiments_tab(services)
    v, results, page = tab.view, tab.results, SimpleNamespace(session_hash="bench", username=None)
    base = {v.opened: experiment_id, v.page: 0, v.check: "length", v.only: "all", v.column: "", v.value: "",
            v.sort_a: "", v.sort_b: "", v.seen: None}
    last = (rows - 1) // 25
    calls = {
        "first page": lambda: results.show(base, page),
        "last page": lambda: results.table(base, None, last),
        "rows where variants disagree": lambda: results.show(base | {v.only: "disagree"}, page),
        "sorted by plain − role": lambda: results.show(base | {v.sort_a: "plain", v.sort_b: "role"}, page),
        "column kind = small": lambda: results.show(base | {v.column: "kind", v.value: "small"}, page),
        "timer poll (list + status)": lambda: results.refresh(base | {v.seen: ["done", rows * 2]}, page),
        "open (status, filters, first page)": lambda: results.open(experiment_id, page),
        "paired statistics (after the page)": lambda: results.statistics(base, page)}
    figures = {name: median_s(call, 3 if name.startswith("paired") else 5) for name, call in calls.items()}
    size = len(results.show(base, page)[v.table])
    first = figures["first page"]
    print(f"one page: 25 rows, {size / 1024:.0f} KiB of HTML")
    for name, seconds in figures.items():
        print(f"{name:34s} {seconds * 1000:8.0f} ms   {seconds / first:5.1f}x the first page")
    services.log.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
