"""What the tiny models learned, measured through the app: library templates run over tens of values on the
shipped models, scored by their checks (and, for classification, by the right label), and summarised by the same
statistics as the evidence panel.

    python -m playground.toyworld.measure [text|image|music]

The tests in tests/test_prompt_effects.py run the same experiments and assert their verdicts.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import documents, image, music, text

LABEL_SCORE = "right-label"


@dataclass(frozen=True)
class Experiment:
    """A library template over many values: what a later dataset experiment will run."""

    name: str
    template: str
    values: dict[str, list[str]]
    model: str
    seeds: tuple[int, ...] = (1,)
    checks: tuple[dict, ...] = ()                     # added to the template's own checks
    labels: dict[str, str] = field(default_factory=dict)      # value -> the right label (classification)
    params: dict = field(default_factory=dict)


def _balanced(make, labels, per_label: int, seed: int) -> dict[str, str]:
    """`per_label` distinct (text -> label) pairs of each label, drawn with a fixed seed."""
    rng, found = random.Random(seed), {}
    counts = dict.fromkeys(labels, 0)
    while min(counts.values()) < per_label:
        value, label = make(rng)
        if value not in found and counts[label] < per_label:
            found[value] = label
            counts[label] += 1
    return found


def text_experiments() -> list[Experiment]:
    held_out = [phrase for phrase, _ in text.products(held_out=True)][:20]
    reviews = _balanced(lambda rng: text.review(rng)[:2], text.LABELS, 7, seed=101)
    tickets = _balanced(lambda rng: text.ticket(rng)[:2], text.TICKET_LABELS, 5, seed=102)
    notes = [documents.note(random.Random(200 + i))[0] for i in range(12)]
    passages = [documents.passage(random.Random(300 + i))[0] for i in range(12)]
    return [
        Experiment("tone", "tone-tagline", {"product": held_out}, "tiny-text"),
        Experiment("word-limit", "product-tagline", {"product": held_out}, "tiny-text"),
        Experiment("review-labels", "few-shot-sentiment", {"review": list(reviews)}, "tiny-text",
                   labels=reviews),
        Experiment("ticket-labels", "ticket-classification", {"ticket": list(tickets)}, "tiny-text",
                   labels=tickets),
        Experiment("json", "contact-extraction", {"note": notes}, "tiny-text", checks=({"type": "json_valid"},)),
        Experiment("summary-length", "summary-length", {"text": passages}, "tiny-text",
                   checks=({"type": "length", "unit": "words", "max": 25},)),
    ]


def image_experiments() -> list[Experiment]:
    return [Experiment("colour", "colour-words", {"background": ["white", "black", "gray"]}, "tiny-image",
                       seeds=(1, 2, 3))]


def music_experiments() -> list[Experiment]:
    styles = ["funk groove", "solo piano melody", "synthwave track", "folk song"]
    return [Experiment("tempo", "tempo-bpm", {"style": styles}, "tiny-music", seeds=(1, 2)),
            Experiment("mood", "mood-words", {"style": styles}, "tiny-music", seeds=(1, 2), checks=())]


EXPERIMENTS = {"text": text_experiments, "image": image_experiments, "music": music_experiments}


def normalise_label(output: str) -> str:
    return re.sub(r"[^a-z-]", "", (output or "").strip().split("\n")[0].lower())


def extra_scores(experiment: Experiment, record, output_path: Path | None):
    """Scores the checks cannot give: the right label of a classification, the shape and tempo of toy outputs."""
    from ..store.scores import Score

    scores = {}
    if experiment.labels:
        expected = experiment.labels[next(iter(record.variables.values()))]
        right = normalise_label(record.output_text) == expected
        scores[LABEL_SCORE] = Score(LABEL_SCORE, 1.0 if right else 0.0, right, {"better": "higher",
                                                                               "expected": expected})
    if record.modality == "image" and output_path is not None:
        from PIL import Image

        shape = next((s for s in image.SHAPES if s in record.prompt), None)
        seen = image.describe(Image.open(output_path))
        scores["right-shape"] = Score("right-shape", float(seen["shape"] == shape), None, {"better": "higher"})
    if record.modality == "music" and output_path is not None:
        from ..scoring.audio import read_wav

        rate, wave = read_wav(output_path.read_bytes())
        heard = music.analyse(wave, rate)
        scores["tempo-bpm"] = Score("tempo-bpm", heard["bpm"], None, {"better": None})
        scores["pitch-hz"] = Score("pitch-hz", heard["pitch"], None, {"better": None})
        scores["peak"] = Score("peak", heard["peak"], None, {"better": None})
    return scores


def run_experiment(experiment: Experiment, runner, library):
    """Run it through the runner (every cell logged and checked) and summarise every score."""
    from ..scoring.stats import summarize
    from ..spec import build_spec
    from ..store.scores import scores_for_runs

    spec = build_spec(library.get(experiment.template), values=experiment.values, models=[experiment.model],
                      seeds=list(experiment.seeds), params=experiment.params, checks=list(experiment.checks),
                      rerun=True, title=experiment.name)
    results = [p.result for p in runner.run(spec) if p.result is not None]
    records = [r.record for r in results]
    log = runner.log
    scores = scores_for_runs(log, [r.id for r in records])
    for record in records:
        path = log.artifact_path(record) if record.artifact else None
        scores.setdefault(record.id, {}).update(extra_scores(experiment, record, path))
    return summarize(records, scores), records


def report(summary, records) -> str:
    lines = []
    for metric in summary.metrics:
        means = ", ".join(f"{v.variant} {v.mean:.3g} [{v.low:.3g}, {v.high:.3g}]" if v.low is not None
                          else f"{v.variant} {v.mean}" for v in metric.variants)
        lines.append(f"  {metric.name}: {means}")
        lines.append(f"    {metric.verdict}")
        lines += [f"    {p.sentence}" for p in metric.pairs if p.clear]
    shown = {}
    for record in records:
        shown.setdefault(record.variant, record)
    if records and records[0].modality == "text":
        lines += [f"  e.g. {v}: {r.output_text!r}" for v, r in shown.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m playground.toyworld.measure", description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", metavar="kind", help="text, image or music (default: all three)")
    args = parser.parse_args(argv)
    from ..engines import gpu
    from ..engines.catalog import Catalog
    from ..runner import Runner
    from ..settings import Settings
    from ..store import RunLog
    from ..templates import load_library

    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data), offline=True, device="cpu")
        log = RunLog(Path(data))
        catalog = Catalog(settings)
        gpu.attach(catalog)
        runner, library = Runner(catalog, log, settings), load_library()
        for kind in args.kinds or list(EXPERIMENTS):
            for experiment in EXPERIMENTS[kind]():
                summary, records = run_experiment(experiment, runner, library)
                print(f"{experiment.name} ({experiment.template} on {experiment.model}, {len(records)} cells)")
                print(report(summary, records), flush=True)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
