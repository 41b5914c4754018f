"""Attention that computes each row of a batch exactly as it would be computed alone: rows of a left-padded batch
(a prompt's prefill), or rows that each keep their keys in a slot of their own (decode, slots.py).

Batched attention over left-padded rows sums a row's real keys at an offset set by its padding, so its rounding
depends on which other prompts shared the batch. In float32 that moves logits by ~1e-7; in bfloat16 each rounding
is ~1e-3 and sampled tokens drift apart within a few dozen steps. This attention slices every row to its real
queries and keys and runs PyTorch's SDPA on exactly the shapes the row has alone (at decode, one new token, a
float32 softmax of the row's own scores instead: SDPA's fixed cost per call dominated there); with packed linears
(linears.py) every other layer of a Llama-like decoder is row-independent, so a cell's logits are bit-identical
alone or batched, in any dtype.

The price is one attention call per row per layer (measured in benchmarks/bench_speed.py); the gain besides
exactness is that padded keys are never computed against.
"""

from __future__ import annotations

import torch

NAME = "rowwise_sdpa"
_registered = False


def register() -> str:
    """Make "rowwise_sdpa" an attention implementation transformers knows (with SDPA's boolean padding masks)."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

        AttentionInterface.register(NAME, rowwise_sdpa)
        ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
        _registered = True
    return NAME


def suits(config) -> bool:
    """Only plain causal decoders: sliding windows and other patterns live in the mask, which rows drop."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if getattr(text, "is_encoder_decoder", False):
        return False
    if any(kind != "full_attention" for kind in getattr(text, "layer_types", None) or []):
        return False
    sliding = getattr(text, "sliding_window", None)
    return not sliding or getattr(text, "use_sliding_window", True) is False


class _Spans:
    """Each row's real keys as (first, end), read once per mask (every layer of a forward pass shares one mask)."""
    mask = None
    spans: list[tuple[int, int]] = []


_spans = _Spans()


def _key_spans(mask: torch.Tensor) -> list[tuple[int, int]]:
    """The last query of a row attends to all its real keys, one run of them: a suffix under left padding (a batch
    of `generate`), a prefix in a row's slot (slots.py)."""
    if _spans.mask is not mask:
        visible = mask[:, 0, -1, :]
        counts = visible.sum(dim=-1).tolist()
        firsts = visible.to(torch.int8).argmax(dim=-1).tolist()
        _spans.spans = [(first, first + count) for first, count in zip(firsts, counts)]
        _spans.mask = mask
    return _spans.spans


def _plain(module, kwargs) -> bool:
    """Plain softmax attention: no logit soft-capping, no attention sinks, no dropout."""
    return (not kwargs.get("softcap") and kwargs.get("s_aux") is None and getattr(module, "sinks", None) is None
            and not kwargs.get("dropout"))


def _decode(query, key, value, spans: list[tuple[int, int]], scale: float) -> torch.Tensor:
    """Attention of one new token per row, in float32, each row against its own keys alone.

    SDPA's CPU kernel costs ~170 us a call whatever the size, which one call per row per layer pays at every step;
    here the queries of all rows are scaled and grouped in one go, and each row costs two products and a softmax
    over its own keys, with operands the same alone or batched."""
    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    grouped = (query.float() * scale).reshape(batch, kv_heads, heads // kv_heads, dim)   # query heads per kv head
    out = torch.empty(batch, kv_heads, heads // kv_heads, value.shape[-1], dtype=torch.float32, device=query.device)
    threads = torch.get_num_threads()
    # A row's products are too small to share between cores: a parallel region costs more than the work, and on a
    # busy machine every region waits for a descheduled thread.
    torch.set_num_threads(1)
    try:
        for row, (first, end) in enumerate(spans):
            keys, values = key[row, :, first:end], value[row, :, first:end]
            if keys.dtype != torch.float32:
                keys, values = keys.float(), values.float()
            torch.matmul(torch.matmul(grouped[row], keys.transpose(-1, -2)).softmax(dim=-1), values, out=out[row])
    finally:
        torch.set_num_threads(threads)
    return out.reshape(batch, 1, heads, value.shape[-1]).to(query.dtype)


def rowwise_sdpa(module, query, key, value, attention_mask, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, _, q_len, _ = query.shape
    kv_len = key.shape[2]
    decode = q_len == 1 and _plain(module, kwargs)
    if attention_mask is None and batch == 1 and not decode and q_len == kv_len:
        return sdpa_attention_forward(module, query, key, value, None, **kwargs)
    spans = _key_spans(attention_mask) if attention_mask is not None else [(0, kv_len)] * batch
    if decode:
        return _decode(query, key, value, spans, kwargs.get("scaling") or query.shape[-1] ** -0.5), None
    output = query.new_zeros(batch, q_len, query.shape[1], value.shape[-1])
    for row, (pad, end) in enumerate(spans):
        q_pad = max(0, pad - (kv_len - q_len))      # prefill: padded queries too; decode: none
        mask = None
        if 1 < q_len - q_pad < kv_len - pad:
            # Queries continuing a cache (a prompt after its cached head): causal from the bottom right corner,
            # which SDPA's is_causal (top left) is not, so the row gets its own slice of the mask.
            mask = (attention_mask[row:row + 1, :, q_pad:, pad:] if attention_mask is not None else
                    torch.ones(q_len, kv_len, dtype=torch.bool, device=query.device).tril(kv_len - q_len))
        # Contiguous copies: the kernels block strided views differently from the tensors a row has alone.
        part, _ = sdpa_attention_forward(module, query[row:row + 1, :, q_pad:].contiguous(),
                                         key[row:row + 1, :, pad:].contiguous(),
                                         value[row:row + 1, :, pad:].contiguous(), mask, **kwargs)
        output[row, q_pad:] = part[0]
    return output, None
