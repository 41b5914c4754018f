"""Text, 8 cells x 32 new tokens on the SmolLM2-360M architecture: the engine batched and one cell at a time, S(8)
beside its ideal, batch-1 decode against the memory-bandwidth bound, and what each speed feature gains."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from playground.engines import compute
from speed_common import TEXT_PROMPTS, line, run_cells, timed
from speed_models import build_smollm2_360m, built


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
    folder = built(data_dir / "smollm2-360m-v2", build_smollm2_360m)
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
    """The same 8 cells through slots with heads cached once (engines/heads.py, continuous.py), against one
    `generate` call that reads every prompt whole (the engine's path for models without row-exact attention),
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
    line("slots + cached heads / one generate call", f"{cached_s:.2f} / {whole_s:.2f} s",
         f"{cached} of {total} prompt tokens came from cached heads; {whole_s / cached_s:.2f}x (in turns)")
