"""Scoring overhead per cell, as a fraction of the time it took to generate that cell (goal: under 10%).

    python benchmarks/bench_scoring.py                 # tiny models, then mid-size random-weight models
    python benchmarks/bench_scoring.py --tiny          # tiny models only (seconds)
    python benchmarks/bench_scoring.py --data-dir D    # keep built models in D between runs

CLIP scores images and CLAP scores music. Tiny rows: the tiny generators and the tiny random-weight scorers.
Mid-size rows: the real architectures with random weights, so the compute is real and nothing is downloaded:
CLIP ViT-B/32 (openai/clip-vit-base-patch32's config) and CLAP HTSAT-unfused (laion/clap-htsat-unfused's config),
against SD-Turbo's UNet/VAE and MusicGen-small's decoder from speed_models.py. Generation is timed per cell in
a batch, as the app runs it; scoring is timed per cell with the scorer model warm (it is loaded once per app).
The cheap checks (loudness, clipping, silence, latency) are timed with them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.engines.base import Finished, GenerationRequest  # noqa: E402
from playground.engines.catalog import Catalog  # noqa: E402
from playground.registry import validate_options  # noqa: E402
from playground.runner import _artifact  # noqa: E402
from playground.scoring import ScorerContext, score_cell  # noqa: E402
from playground.scoring.tiny import build_tiny_clap, build_tiny_clip  # noqa: E402
from playground.settings import Settings  # noqa: E402
from playground.store import RunRecord  # noqa: E402

PROMPTS = {"image": ["A lighthouse on a cliff at dusk", "A red fox in a snowy forest", "A city street in the rain",
                     "An oil painting of a harbour"],
           "music": ["Upbeat synth pop with a driving beat", "A calm acoustic guitar ballad", "Lo-fi hip hop beat",
                     "Epic orchestral trailer music"]}


def build_mid_clip(folder: Path) -> None:
    """openai/clip-vit-base-patch32's sizes: text 512 x 12 layers x 8 heads, vision 768 x 12 x 12, 224 px,
    32 px patches, 512-d projection; random weights."""
    build_tiny_clip(folder, text_hidden=512, text_layers=12, text_heads=8, vision_hidden=768, vision_layers=12,
                    vision_heads=12, image_size=224, patch_size=32, projection_dim=512)


def build_mid_clap(folder: Path) -> None:
    """laion/clap-htsat-unfused's sizes: RoBERTa-base text side (768 x 12 x 12), HTSAT audio side (depths
    2-2-6-2, heads 4-8-16-32, 96-d patch embeddings up to 768), 512-d projection; random weights."""
    build_tiny_clap(folder, text_hidden=768, text_layers=12, text_heads=12, audio_depths=(2, 2, 6, 2),
                    audio_heads=(4, 8, 16, 32), audio_embed=96, projection_dim=512, max_length_s=10)


def _built(folder: Path, build) -> Path:
    if not (folder / "built").exists():
        build(folder)
        (folder / "built").write_text("random weights\n")
    return folder


def generate(model, requests, options) -> list:
    finished = sorted((e for e in model.stream(requests, options) if isinstance(e, Finished)), key=lambda e: e.index)
    return [e.output for e in finished]


def bench(catalog: Catalog, modality: str, model_id: str, params: dict, scorer: str, checks: list, n: int,
          context: ScorerContext, repeats: int) -> dict:
    resolved = catalog.resolve(modality, model_id)
    model = catalog.get(resolved)
    params = validate_options(resolved.engine.options, params)
    requests = [GenerationRequest(PROMPTS[modality][i % 4], seed=i + 1) for i in range(n)]
    generate(model, requests[:1], params)                       # first-call allocations out of the timings
    started = time.perf_counter()
    outputs = generate(model, requests, params)
    generate_per_cell = (time.perf_counter() - started) / n
    records = [RunRecord(modality=modality, model_id=model_id, prompt=r.prompt, seed=r.seed, params=params,
                         wall_s=generate_per_cell) for r in requests]
    artifacts = [_artifact(o)[0] for o in outputs]             # score what the log holds: PNG / WAV bytes
    model_check = [{"type": scorer.split(":")[0], "model": scorer.split(":", 1)[1]}]
    score_cell(records[0], artifacts[0], model_check, context)  # the scorer model loads once per app
    model_times, cheap_times = [], []
    for _ in range(repeats):
        for record, artifact in zip(records, artifacts):
            started = time.perf_counter()
            scores = score_cell(record, artifact, model_check, context)
            model_times.append(time.perf_counter() - started)
            assert scores[0].value is not None, scores[0].detail
            started = time.perf_counter()
            score_cell(record, artifact, checks, context)
            cheap_times.append(time.perf_counter() - started)
    model_s, cheap_s = statistics.median(model_times), statistics.median(cheap_times)
    return {"modality": modality, "generator": Path(model_id).name, "scorer": Path(scorer.split(":", 1)[1]).name,
            "generate_s": generate_per_cell, "score_s": model_s, "cheap_s": cheap_s,
            "overhead": (model_s + cheap_s) / generate_per_cell}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny models only")
    parser.add_argument("-n", type=int, default=4, help="cells per batch")
    parser.add_argument("--repeats", type=int, default=3, help="scoring passes over the cells (median)")
    parser.add_argument("--data-dir", help="keep built models here between runs")
    args = parser.parse_args()
    settings = Settings(data_dir=Path(args.data_dir or tempfile.mkdtemp(prefix="pp-bench-")), offline=True,
                        device="cpu", max_models_loaded=1)
    catalog = Catalog(settings)
    context = ScorerContext.from_settings(settings)
    models = settings.models_dir
    cases = [("image", "tiny-image", {"width": 128, "height": 128, "num_inference_steps": 4},
              "clip:tiny-clip", ["latency"]),
             ("music", "tiny-music", {"duration_s": 2.0}, "clap:tiny-clap",
              ["loudness", "clipping", "silence", "latency"])]
    if not args.tiny:
        from speed_models import build_musicgen_small, build_sd_turbo

        from playground.engines.tiny import shipped_model

        def build_mid_image(folder):
            build_sd_turbo(folder, shipped_model("tiny-image")[0])

        def build_mid_music(folder):
            build_musicgen_small(folder, shipped_model("tiny-music")[0])

        cases += [("image", str(_built(models / "mid-image", build_mid_image)),
                   {"width": 256, "height": 256, "num_inference_steps": 1, "guidance_scale": 0.0},
                   f"clip:{_built(models / 'mid-clip', build_mid_clip)}", ["latency"]),
                  ("music", str(_built(models / "mid-music", build_mid_music)),
                   {"duration_s": 1.0, "guidance_scale": 3.0},
                   f"clap:{_built(models / 'mid-clap', build_mid_clap)}",
                   ["loudness", "clipping", "silence", "latency"])]
    print(f"{'modality':8} {'generator':11} {'scorer':10} {'generate':>10} {'model score':>12} {'cheap checks':>13} "
          f"{'overhead':>9}   (per cell; N = {args.n} cells a batch)")
    for modality, model_id, params, scorer, checks in cases:
        catalog.clear()
        row = bench(catalog, modality, model_id, params, scorer, checks, args.n, context, args.repeats)
        print(f"{row['modality']:8} {row['generator']:11} {row['scorer']:10} {row['generate_s']:9.3f}s "
              f"{row['score_s'] * 1000:10.1f}ms {row['cheap_s'] * 1000:11.2f}ms {row['overhead']:8.1%}", flush=True)


if __name__ == "__main__":
    main()
