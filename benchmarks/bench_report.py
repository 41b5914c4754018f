"""Report and ranking benchmark: size and time of the self-contained HTML report, and of the vote ranking.

    python benchmarks/bench_report.py

Runs an image comparison (4 variants x 2 seeds at 512 px) and a music comparison (3 variants, 10 s clips) on the
tiny offline models, casts random blind votes, and prints the report's size next to the media it embeds.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from playground.spec import build_spec
    from playground.services import Services
    from playground.settings import Settings
    from playground.stakeholders.preferences import comparison_ranking
    from playground.stakeholders.report import write_report
    from playground.stakeholders.votes import cast, next_pair
    from playground.templates import make_template

    data_dir = Path(tempfile.mkdtemp(prefix="pp-bench-report-"))
    services = Services.create(Settings(data_dir=data_dir, offline=True, device="cpu"))
    cases = [("image", {"a": "a red {{ x }}", "b": "a blue {{ x }}", "c": "a green {{ x }}", "d": "a gold {{ x }}"},
              [1, 2], {"num_inference_steps": 2, "width": 512, "height": 512}),
             ("music", {"a": "calm {{ x }}", "b": "loud {{ x }}", "c": "fast {{ x }}"}, [1], {"duration_s": 10.0})]
    rng = random.Random(0)
    for modality, variants, seeds, params in cases:
        template = make_template(name=f"bench-{modality}", modality=modality, variants=variants,
                                 variables={"x": "lantern"})
        spec = build_spec(template, models=[f"tiny-{modality}"], seeds=seeds, params=params)
        comparison_id = None
        for progress in services.runner.run(spec):
            comparison_id = progress.comparison_id
        runs = services.log.get_comparison(comparison_id).runs
        for voter in range(10):
            while (pair := next_pair(services.log, comparison_id, f"v{voter}", rng)) is not None:
                cast(services.log, pair, rng.choice(["A", "B", "A", "tie"]), f"v{voter}")
        started = time.perf_counter()
        comparison_ranking(services.log, comparison_id, n_boot=300)
        rank_s = time.perf_counter() - started
        started = time.perf_counter()
        path = write_report(services.log, comparison_id, data_dir / f"report-{modality}.html")
        report_s = time.perf_counter() - started
        media = sum(services.log.artifact_path(r).stat().st_size for r in runs)
        print(f"{modality}: {len(runs)} cells, media files {media / 1024:.0f} KB -> report "
              f"{path.stat().st_size / 1024:.0f} KB in {report_s:.2f} s; ranking with 300 "
              f"bootstrap fits {rank_s:.2f} s")
    services.log.close()


if __name__ == "__main__":
    main()
