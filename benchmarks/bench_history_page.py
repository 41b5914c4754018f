"""History page benchmark: opening a comparison with many runs draws one page, whatever the comparison's size.

    python benchmarks/bench_history_page.py [RUNS]

Prints, for a comparison of RUNS logged runs (default 5,000), the time and HTML size of its first and last page
as History draws them, next to what drawing every run at once costs.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(runs: int) -> None:
    from playground.services import Services
    from playground.settings import Settings
    from playground.store import RunRecord
    from playground.ui import grid
    from playground.ui.history import PAGE_CELLS, render_page

    services = Services.create(Settings(data_dir=tempfile.mkdtemp(prefix="bench-history-"), offline=True))
    comparison_id = services.log.start_comparison("text", "benchmark")
    started = time.perf_counter()
    for i in range(runs):
        services.log.add_run(RunRecord(modality="text", model_id="tiny-text", prompt=f"prompt {i}", seed=i, params={},
                                       comparison_id=comparison_id, row=i // 4, col=i % 4, variant=f"v{i % 4}",
                                       output_text=f"output {i} " * 20))
    print(f"logged {runs:,} runs in {time.perf_counter() - started:.1f} s")
    for label, page in (("first page", 0), ("last page", 10**9)):
        started = time.perf_counter()
        html_, _, _, _ = render_page(services, comparison_id, page)
        elapsed_ms = (time.perf_counter() - started) * 1000
        cells = html_.count('class="pp-cell ')
        print(f"{label}: {cells} cells (pages of {PAGE_CELLS}), {len(html_) / 1024:.0f} KiB, "
              f"{elapsed_ms:.0f} ms")
    started = time.perf_counter()
    everything = grid.render_grid(grid.views_for_records(services.log.get_comparison(comparison_id).runs,
                                                         services.log), "text", comparison_id=comparison_id)
    print(f"all at once (before paging): {len(everything) / 2**20:.1f} MiB, {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5_000)
