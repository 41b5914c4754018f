"""Speed against the naive peer and the physical bound, every figure in one run.

    python benchmarks/bench_speed.py                      # everything (a few minutes on 2 cores)
    python benchmarks/bench_speed.py --only text --quick  # one section, fewer measurements
    python benchmarks/bench_speed.py --data-dir /tmp/pp-speed   # keep the built models between runs

Every torch call runs on the app's compute thread (playground/engines/compute.py), as model work does in the app:
a second thread using torch would slow the first (OpenMP). Models are random-weight builds of real architectures
(benchmarks/speed_models.py): SmolLM2-360M for text,
SD-Turbo for images, MusicGen-small for music. Text: 8 cells x 32 new tokens, greedy, against the naive peer (8
sequential transformers `pipeline()` calls), with S(8) = sequential / batched beside its ideal from measured prefill
and batch-1 decode, and batch-1 decode against the memory-bandwidth bound (weights read once per token).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from playground.engines import compute  # noqa: E402
from speed_models import build_musicgen_small, build_sd_turbo, build_smollm2_360m, built  # noqa: E402

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

    print("machine")
    line("CPU cores (torch threads)", f"{os.cpu_count()} ({torch.get_num_threads()})")
    line("native bf16 (avx512_bf16 / amx / bf16)", str(cpu_has_native_bf16()),
         f"auto precision on CPU -> {choose_dtype('cpu')}")
    gbs = compute.run(bandwidth_gbs)
    line("memory bandwidth (large copy)", f"{gbs:.1f} GB/s")
    return gbs


# ---- text -----------------------------------------------------------------------------------------------------------

def run_cells(model, requests, options) -> tuple[list, float | None]:
    """Outputs in request order and the time to the first streamed text."""
    from playground.engines.base import Finished, Partial

    started, first, done = time.perf_counter(), None, {}
    for event in model.stream(requests, options):
        if isinstance(event, Partial) and first is None:
            first = time.perf_counter() - started
        elif isinstance(event, Finished):
            done[event.index] = event.output
        elif not isinstance(event, Partial):
            continue
    return [done[i] for i in range(len(requests))], first


def prefill_seconds(model, texts: list[str], repeats: int) -> float:
    import torch

    encoded = model.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)

    def measure() -> float:
        with torch.inference_mode():       # as generate's prefill: logits of the last position only
            model.model(**encoded, logits_to_keep=1)            # kernels for a new shape are made on first use
            return timed(lambda: model.model(**encoded, logits_to_keep=1), max(repeats, 2))[0]

    return compute.run(measure)


def naive_peer(folder: Path, tokens: int) -> tuple[float, str, int]:
    """8 sequential transformers `pipeline()` calls: what a user writes without this project."""
    from transformers import pipeline

    pipe = pipeline("text-generation", model=str(folder), device="cpu")
    pipe([{"role": "user", "content": "warm up"}], max_new_tokens=2, do_sample=False)
    started = time.perf_counter()
    produced = 0
    for prompt in TEXT_PROMPTS:
        out = pipe([{"role": "user", "content": prompt}], max_new_tokens=tokens, do_sample=False)
        reply = out[0]["generated_text"][-1]["content"]
        produced += len(pipe.tokenizer(reply, add_special_tokens=False)["input_ids"])
    seconds = time.perf_counter() - started
    dtype = str(pipe.model.dtype).removeprefix("torch.")
    del pipe
    return seconds, dtype, produced


def text(data_dir: Path, gbs: float, repeats: int, quick: bool, peer: bool = True) -> None:
    from playground.engines.base import GenerationRequest
    from playground.engines.catalog import Catalog
    from playground.registry import LocalTextOptions, validate_options
    from playground.settings import Settings

    tokens = 32
    folder = built(data_dir / "smollm2-360m", build_smollm2_360m)
    settings = Settings(data_dir=data_dir / "app", offline=True, device="cpu", max_models_loaded=1)
    catalog = Catalog(settings)
    model = catalog.get(catalog.resolve("text", str(folder)))
    params = {"max_new_tokens": tokens, "do_sample": False}
    options = validate_options(LocalTextOptions, params, settings)
    requests = [GenerationRequest(p, seed=i + 1) for i, p in enumerate(TEXT_PROMPTS)]
    texts = [model.format_prompt(r) for r in requests]
    lengths = [len(model.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    weights = step_bytes(model.model)
    print(f"\ntext: SmolLM2-360M architecture, random weights, 8 cells x {tokens} new tokens, greedy; "
          f"prompts {min(lengths)}-{max(lengths)} tokens")
    run_cells(model, requests[:1], options | {"max_new_tokens": 2})          # first-call allocations

    batched_s, (batched, _) = timed(lambda: run_cells(model, requests, options), repeats)
    sequential_s, alone = timed(lambda: [run_cells(model, [r], options) for r in requests], 1)
    same = all(a[0][0].text == b.text for a, b in zip(alone, batched))
    # A decode step at batch 1: the median over the 8 cells run alone (one cell's figure swings with the machine).
    decode_1 = statistics.median(decode_step(a[0][0].metrics) for a in alone)
    eight = batched[0].metrics
    decode_8 = decode_step(eight)
    ttft = statistics.median(a[1] for a in alone)
    prefill_each = [prefill_seconds(model, [t], repeats) for t in texts]
    prefill_batch = prefill_seconds(model, texts, repeats)
    # Ideal: the batch's prefill as measured, and decode at batch 8 costing what it costs at batch 1 (it reads the
    # same weights once per step); sequential is 8 prefills alone plus 8 x the batch-1 decode.
    ideal = (sum(prefill_each) + 8 * tokens * decode_1) / (prefill_batch + tokens * decode_1)
    speedup = sequential_s / batched_s
    bound = gbs * 1e9 / weights

    line("engine, 8 cells batched (" + model.dtype + ")", f"{batched_s:.2f} s",
         f"{8 * tokens / batched_s:.1f} tok/s")
    line("engine, 8 cells one at a time", f"{sequential_s:.2f} s", f"cells alone == batched: {same}")
    line("S(8) = sequential / batched", f"{speedup:.2f}x",
         f"ideal {ideal:.2f}x (measured prefill, decode at batch 8 as cheap as at batch 1); "
         f"{speedup / ideal:.0%} of ideal")
    line("prefill: 8 prompts one by one / as a batch", f"{sum(prefill_each):.2f} / {prefill_batch:.2f} s",
         f"padded batch {max(lengths) * 8} tokens for {sum(lengths)} real")
    line("decode step at batch 1 / batch 8", f"{decode_1 * 1000:.0f} / {decode_8 * 1000:.0f} ms")
    line("batch-1 decode vs bandwidth bound", f"{1 / decode_1:.1f} / {bound:.1f} tok/s",
         f"{(1 / decode_1) / bound:.0%} of the bound ({weights / 1e9:.2f} GB of {model.dtype} weights at "
         f"{gbs:.0f} GB/s)")
    compute.run(kernel_ceiling, model.model, weights, decode_1, gbs)
    line("time to first streamed token, one cell", f"{ttft:.3f} s", "stream() called -> first partial text")
    packing_gain(model, requests, options, repeats)

    sampled = validate_options(LocalTextOptions, {"max_new_tokens": tokens, "temperature": 0.7}, settings)
    sampled_s, _ = timed(lambda: run_cells(model, requests, sampled), 1)
    line("engine, 8 cells batched, sampled (T 0.7)", f"{sampled_s:.2f} s", "per-cell seeded inverse-CDF sampler")
    attention_cost(model, requests, options)
    head_gain(model, requests, options, repeats)

    if not quick:
        fp32_s, _ = timed(lambda: run_cells(model, requests, options | {"precision": "float32"}), 1)
        line("engine, 8 cells batched, float32", f"{fp32_s:.2f} s", f"bf16 gain {fp32_s / batched_s:.2f}x")
    catalog.clear()
    if not peer:
        return
    peer_s, peer_dtype, produced = compute.run(naive_peer, folder, tokens)
    line(f"naive peer: 8 sequential pipeline() calls ({peer_dtype})", f"{peer_s:.2f} s",
         f"engine batched is {peer_s / batched_s:.2f}x faster ({produced} tokens produced)")


def decode_step(metrics: dict) -> float:
    """Seconds per token after the first (the first includes the prefill)."""
    return (metrics["wall_s"] - metrics["ttft_s"]) / max(metrics["completion_tokens"] - 1, 1)


def step_bytes(model) -> int:
    """Bytes of weights one decode step reads: every linear layer once, packed or plain, and the norms; of the
    input embedding only one row (a head tied to it is counted through its packed copy, or once as a parameter)."""
    from playground.engines.linears import PackedLinear, StackedLinear

    packed = [m.packed for m in model.modules() if isinstance(m, PackedLinear)]
    packed += list({id(m.stack): m.stack.packed for m in model.modules() if isinstance(m, StackedLinear)}.values())
    dense = sum(p.numel() * p.element_size() for p in model.parameters())
    if packed:
        dense -= model.get_input_embeddings().weight.numel() * model.get_input_embeddings().weight.element_size()
    return dense + sum(t.numel() * t.element_size() for t in packed)


def kernel_ceiling(model, weights: int, decode_1: float, gbs: float) -> None:
    """Every packed weight of the model once, as a decode step reads them (a lone row as two), with nothing else:
    the fastest a batch-1 step can be with these matrix kernels on this machine."""
    import torch

    from playground.engines.linears import PackedLinear, StackedLinear, _product

    products = {}
    for module in model.modules():
        if isinstance(module, PackedLinear):
            products[id(module)] = (module.packed, module.bias, module.in_features)
        elif isinstance(module, StackedLinear):
            products[id(module.stack)] = (module.stack.packed, module.stack.bias, module.stack.in_features)
    if not products:
        return
    dtype = next(model.parameters()).dtype
    inputs = {width: torch.randn(1, 1, width, dtype=dtype) for _, _, width in products.values()}

    def step():
        for packed, bias, width in products.values():
            _product(inputs[width], packed, bias, width)

    with torch.inference_mode():
        step()
        seconds = timed(step, 5)[0]
    line("  the packed linears alone, one step", f"{seconds * 1000:.0f} ms",
         f"{weights / seconds / 1e9:.1f} GB/s = {1 / seconds:.1f} tok/s ({(1 / seconds) / (gbs * 1e9 / weights):.0%} "
         f"of the bound); the engine's step is {decode_1 / seconds:.2f}x that")


def packing_gain(model, requests, options, repeats: int) -> None:
    """The same model with torch's plain linear layers, whose weights oneDNN re-lays out on every call, measured in
    turns with the packed one so both see the same machine."""
    from playground.engines import linears, local_text

    pack = linears.pack
    linears.pack = lambda module: linears.PLAIN
    try:
        plain = local_text.LocalTextModel.load(model.model_id, model.source, model.revision, model.device,
                                               model.dtype)
    finally:
        linears.pack = pack
    run_cells(plain, requests[:1], options | {"max_new_tokens": 2})
    times = {(name, n): [] for name in ("packed", "plain") for n in (1, len(requests))}
    for _ in range(max(repeats, 2)):
        for (name, n), samples in times.items():
            engine = model if name == "packed" else plain
            samples.append(timed(lambda: run_cells(engine, requests[:n], options), 1)[0])
    median = {key: statistics.median(samples) for key, samples in times.items()}
    eight = len(requests)
    line("plain linears: 1 cell / 8 cells batched", f"{median['plain', 1]:.2f} / {median['plain', eight]:.2f} s",
         f"packed is {median['plain', 1] / median['packed', 1]:.2f}x / "
         f"{median['plain', eight] / median['packed', eight]:.2f}x faster (in turns)")
    plain.unload()


def attention_cost(model, requests, options) -> None:
    """Row-exact attention (one SDPA call per row) against plain batched SDPA on the same batch."""
    if model.model.config._attn_implementation != "rowwise_sdpa":
        return
    rowwise_s, _ = timed(lambda: run_cells(model, requests, options), 1)
    model.model.set_attn_implementation("sdpa")
    kept, model.heads = model.heads, None       # cached heads need row-exact attention
    try:
        plain_s, (plain, _) = timed(lambda: run_cells(model, requests, options), 1)
        alone = [run_cells(model, [r], options)[0][0].text for r in requests[:3]]
    finally:
        model.model.set_attn_implementation("rowwise_sdpa")
        model.heads = kept
    line("batched, row-exact attention / plain SDPA", f"{rowwise_s:.2f} / {plain_s:.2f} s",
         f"plain SDPA: alone == batched for {sum(a == p.text for a, p in zip(alone, plain))}/3 cells")


def head_gain(model, requests, options, repeats: int) -> None:
    """The same 8 cells with every prompt read whole by the batch, against heads cached once (engines/heads.py),
    measured in turns so both see the same machine."""
    outputs, _ = run_cells(model, requests, options)
    cached = sum(o.metrics.get("cached_head_tokens", 0) for o in outputs)
    total = sum(o.metrics["prompt_tokens"] for o in outputs)
    kept = model.heads
    times = {"cached": [], "whole": []}
    try:
        for _ in range(max(repeats, 2)):
            for label, heads in (("cached", kept), ("whole", None)):
                model.heads = heads
                times[label].append(timed(lambda: run_cells(model, requests, options), 1)[0])
    finally:
        model.heads = kept
    cached_s, whole_s = statistics.median(times["cached"]), statistics.median(times["whole"])
    line("prompt heads cached / whole prompts batched", f"{cached_s:.2f} / {whole_s:.2f} s",
         f"{cached} of {total} prompt tokens came from cached heads; {whole_s / cached_s:.2f}x (in turns)")


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


# ---- cold start -----------------------------------------------------------------------------------------------------

def cold(repeats: int) -> None:
    from bench_app import cold_start

    print("\ncold start")
    help_s = statistics.median(_wall([sys.executable, "app.py", "--help"]) for _ in range(3))
    line("python app.py --help", f"{help_s:.2f} s")
    probe = ("import sys, time; t = time.perf_counter(); import playground.ui.app; "
             "print(time.perf_counter() - t, *[m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True).stdout.split()
    line("import playground.ui.app (gradio included)", f"{float(out[0]):.2f} s",
         f"heavy model libraries imported: {', '.join(out[1:]) or 'none'}")
    gradio_s = float(subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); import gradio; "
                                     "print(time.perf_counter() - t)"], capture_output=True, text=True).stdout)
    line("  of which import gradio", f"{gradio_s:.2f} s")
    starts = [cold_start() for _ in range(repeats)]
    line("process start -> page served", f"{statistics.median(starts):.2f} s",
         "runs: " + ", ".join(f"{s:.2f}" for s in starts))
    bare = [cold_start([sys.executable, "-c", BARE_GRADIO_APP]) for _ in range(repeats)]
    line("  the floor: a one-textbox Gradio app", f"{statistics.median(bare):.2f} s",
         f"the app's own share: {statistics.median(starts) - statistics.median(bare):+.2f} s")


# The same server start with nothing of this project: what Gradio itself costs on this machine.
BARE_GRADIO_APP = ("import sys, gradio as gr\n"
                   "with gr.Blocks() as demo:\n    gr.Textbox()\n"
                   "demo.launch(server_port=int(sys.argv[sys.argv.index('--port') + 1]))")


def _wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["text", "image", "music", "cold"], action="append",
                        help="run only these sections (repeatable)")
    parser.add_argument("--quick", action="store_true", help="tiny image/music models only; skip the fp32 run")
    parser.add_argument("--repeats", type=int, default=1, help="repeats of the short measurements (median)")
    parser.add_argument("--data-dir", help="keep built models here between runs")
    parser.add_argument("--no-peer", action="store_true", help="skip the naive peer (the slowest measurement)")
    args = parser.parse_args()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="pp-speed-"))
    sections = args.only or ["text", "image", "music", "cold"]
    gbs = machine()
    if "text" in sections:
        text(data_dir, gbs, args.repeats, args.quick, peer=not args.no_peer)
    if "image" in sections:
        images(data_dir, args.repeats, args.quick)
    if "music" in sections:
        music(data_dir, args.repeats, args.quick)
    if "cold" in sections:
        cold(max(args.repeats, 3))


if __name__ == "__main__":
    main()
