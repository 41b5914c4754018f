"""Speed against the naive peer, transformers serve and the physical bound, every figure in one run.

    python benchmarks/bench_speed.py                      # everything (about half an hour on 2 cores)
    python benchmarks/bench_speed.py --only experiment --rows 64   # one section, fewer rows
    python benchmarks/bench_speed.py --data-dir /tmp/pp-speed   # keep the built models between runs

Every torch call runs on the app's compute thread (playground/engines/compute.py), as model work does in the app:
a second thread using torch would slow the first (OpenMP). Models are random-weight builds of real architectures
(benchmarks/speed_models.py): SmolLM2-360M for text (bfloat16, as the real checkpoint), SD-Turbo for images,
MusicGen-small for music. Sections:
- text (speed_text.py): 8 cells x 32 new tokens against the naive peer in one process, S(8), batch-1 decode
  against the memory-bandwidth bound, and what each speed feature gains;
- experiment (speed_experiment.py): 256 rows, continuous batching against fixed batches of 8 and against
  `transformers serve --continuous-batching` with 8 and 32 requests in flight;
- load, cli, cold (speed_process.py): load + prepare against one read of the weights (first and second process),
  the CLI's whole process against the naive peer's, the app's cold start against a bare Gradio app;
- image, music.
The machine is shared: comparisons run in turns (A B A B) and ratios are medians; each section prints the load
average it ran under.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from playground.engines import compute  # noqa: E402
from speed_common import TEXT_PROMPTS, line, load_average, run_cells, timed  # noqa: E402
from speed_models import build_musicgen_small, build_sd_turbo, build_smollm2_360m, built  # noqa: E402

SECTIONS = ["text", "experiment", "load", "cli", "image", "music", "cold"]


# ---- machine --------------------------------------------------------------------------------------------------------

def bandwidth_gbs(megabytes: int = 512, repeats: int = 10) -> float:
    """Memory bandwidth from a large copy (bytes read + bytes written per second): the best of `repeats` torch
    copies after one that touches every page (torch copies on every core; numpy's copy uses one)."""
    import torch

    source = torch.ones(megabytes * 2**20 // 4)
    target = torch.empty_like(source)
    target.copy_(source)
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        target.copy_(source)
        best = max(best, 2 * source.nbytes / (time.perf_counter() - started) / 1e9)
    return best


def machine() -> float:
    import torch

    from playground.engines.base import choose_dtype, cpu_has_native_bf16

    print(f"machine ({load_average()})")
    line("CPU cores (torch threads)", f"{os.cpu_count()} ({torch.get_num_threads()})")
    line("native bf16 (avx512_bf16 / amx / bf16)", str(cpu_has_native_bf16()),
         f"auto precision on CPU -> {choose_dtype('cpu')}")
    gbs = compute.run(bandwidth_gbs)
    line("memory bandwidth (large copy)", f"{gbs:.1f} GB/s")
    return gbs


# ---- images ---------------------------------------------------------------------------------------------------------

def psnr(a, b) -> float:
    import numpy as np

    error = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(255.0 ** 2 / error)


def images(data_dir: Path, repeats: int, quick: bool) -> None:
    from playground.engines import local_image
    from playground.engines.base import GenerationRequest
    from playground.engines.catalog import Catalog
    from playground.engines.tiny import shipped_model
    from playground.registry import ImageOptions, validate_options
    from playground.settings import Settings

    settings = Settings(data_dir=data_dir / "app", offline=True, device="cpu", max_models_loaded=1)
    catalog = Catalog(settings)
    cases = [("tiny", "tiny-image", {"width": 64, "height": 64, "num_inference_steps": 4, "guidance_scale": 4.0})]
    if not quick:
        folder = built(data_dir / "sd-turbo", build_sd_turbo, shipped_model("tiny-image")[0])
        cases.append(("SD-Turbo arch", str(folder), {"width": 256, "height": 256, "num_inference_steps": 1,
                                                     "guidance_scale": 0.0}))
    print("\nimages: 4 cells, exact (per-cell denoiser) vs fast (one batched call), same seeds")
    requests = [GenerationRequest(p, seed=i + 1) for i, p in enumerate(TEXT_PROMPTS[:4])]
    for label, model_id, params in cases:
        model = catalog.get(catalog.resolve("image", model_id))
        exact_opts = validate_options(ImageOptions, params | {"image_mode": "exact"}, settings)
        fast_opts = validate_options(ImageOptions, params | {"image_mode": "fast"}, settings)
        run_cells(model, requests[:1], exact_opts)
        exact_s, (exact, _) = timed(lambda: run_cells(model, requests, exact_opts), repeats)
        fast_s, (fast, _) = timed(lambda: run_cells(model, requests, fast_opts), repeats)
        scores = [psnr(e.image, f.image) for e, f in zip(exact, fast)]
        line(f"{label} ({model.dtype}): exact / fast", f"{exact_s:.2f} / {fast_s:.2f} s",
             f"fast {exact_s / fast_s:.2f}x; PSNR fast vs exact per cell: "
             + ", ".join("identical" if s == float("inf") else f"{s:.1f} dB" for s in scores))
        if label != "tiny":
            preview(model, requests, exact_opts, exact_s, data_dir, local_image)
        catalog.clear()


def preview(model, requests, options, full_s, data_dir: Path, local_image) -> None:
    """The preview autoencoder at TAESD's architecture (AutoencoderTiny's defaults), random weights."""
    from diffusers import AutoencoderTiny

    folder = data_dir / "taesd-arch"
    if not (folder / "config.json").exists():
        compute.run(lambda: AutoencoderTiny().save_pretrained(folder))
    local_image.PREVIEW_VAES["StableDiffusionPipeline"] = str(folder)
    preview_s, _ = timed(lambda: run_cells(model, requests, options | {"preview_vae": True}), 1)
    line("  with the preview autoencoder (TAESD arch)", f"{preview_s:.2f} s", f"{full_s / preview_s:.2f}x")


# ---- music ----------------------------------------------------------------------------------------------------------

def music(data_dir: Path, repeats: int, quick: bool) -> None:
    import torch

    from playground.engines.base import GenerationRequest
    from playground.engines.catalog import Catalog
    from playground.engines.tiny import shipped_model
    from playground.registry import MusicOptions, validate_options
    from playground.settings import Settings

    settings = Settings(data_dir=data_dir / "app", offline=True, device="cpu", max_models_loaded=1)
    catalog = Catalog(settings)
    cases = [("tiny", "tiny-music", 2.0)]
    if not quick:
        folder = built(data_dir / "musicgen-small", build_musicgen_small,
                       shipped_model("tiny-music")[0])
        cases.append(("MusicGen-small arch", str(folder), 1.0))
    print("\nmusic: 4 cells, guidance 3 (doubles the batch)")
    requests = [GenerationRequest(p, seed=i + 1) for i, p in enumerate(TEXT_PROMPTS[:4])]
    for label, model_id, seconds in cases:
        model = catalog.get(catalog.resolve("music", model_id))
        options = validate_options(MusicOptions, {"duration_s": seconds}, settings)
        run_cells(model, requests[:1], options | {"duration_s": 0.5})
        batched_s, _ = timed(lambda: run_cells(model, requests, options), repeats)
        sequential_s, _ = timed(lambda: [run_cells(model, [r], options) for r in requests], 1)
        audio = 4 * seconds
        line(f"{label} ({model.dtype}), {seconds:g} s clips: batched / sequential",
             f"{batched_s:.2f} / {sequential_s:.2f} s",
             f"{sequential_s / batched_s:.2f}x; real-time factor {audio / batched_s:.2f} (audio s per wall s)")
        codec = model.model.audio_encoder
        frames = int(seconds * model.frame_rate)
        codes = torch.randint(0, codec.config.codebook_size, (1, 4, model.model.decoder.num_codebooks, frames))

        def decode():
            with torch.inference_mode():
                codec.decode(codes, [None] * 4), codec.decode.__wrapped_decode__(codes, [None] * 4)     # warm-up
                return (timed(lambda: codec.decode(codes, [None] * 4), repeats),   # the engine's wrapper
                        timed(lambda: codec.decode.__wrapped_decode__(codes, [None] * 4), repeats))

        (per_clip_s, per_clip), (batched_decode_s, batched) = compute.run(decode)
        exact = torch.equal(per_clip.audio_values, batched.audio_values)
        line("  codec decode: per clip (exact) / batched", f"{per_clip_s:.3f} / {batched_decode_s:.3f} s",
             f"per-clip costs {per_clip_s - batched_decode_s:+.3f} s of {batched_s:.2f} s; batched bit-exact: {exact}")
        catalog.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections (repeatable)")
    parser.add_argument("--quick", action="store_true", help="tiny image/music models only; skip the fp32 run")
    parser.add_argument("--repeats", type=int, default=2, help="turns of each comparison (medians reported)")
    parser.add_argument("--rows", type=int, default=256, help="rows of the experiment")
    parser.add_argument("--port", type=int, default=7960, help="first of the ports the servers started here use")
    parser.add_argument("--data-dir", help="keep built models here between runs")
    parser.add_argument("--no-peer", action="store_true", help="skip the in-process naive peer of the text section")
    args = parser.parse_args()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="pp-speed-"))
    sections = args.only or SECTIONS
    gbs = machine()
    folder = built(data_dir / "smollm2-360m-v2", build_smollm2_360m)
    if "text" in sections:
        from speed_text import text

        text(data_dir, gbs, args.repeats, args.quick, peer=not args.no_peer)
    if "experiment" in sections:
        from speed_experiment import experiment

        experiment(folder, data_dir, args.repeats, args.port, args.rows)
    from speed_process import cli, cold, load

    if "load" in sections:
        load(folder, args.repeats)
    if "cli" in sections:
        cli(folder, args.repeats)
    if "image" in sections:
        images(data_dir, args.repeats, args.quick)
    if "music" in sections:
        music(data_dir, args.repeats, args.quick)
    if "cold" in sections:
        cold(max(args.repeats, 3))
    print(f"\n{load_average()}")


if __name__ == "__main__":
    main()
