"""Per-cell seeded sampling for `generate`.

`generate(do_sample=True)` draws every row from torch's one global RNG, so a cell's tokens depend on which other
cells shared its batch. This logits processor samples each row with its own torch.Generator and returns scores
where only the chosen token is viable; `generate` then runs in greedy mode and picks it. A cell re-run alone with
its seed therefore draws exactly the same random numbers as it did inside a batch.

Each step draws one uniform number per row from that row's generator (on the CPU, so the stream of numbers is the
same on every device), moves them to the model's device in one transfer, and picks every row's token with one
vectorised inverse-CDF step over its top-k/top-p candidates: no host round-trip per row.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch
from transformers import LogitsProcessor

log = logging.getLogger(__name__)

# Not -inf: classifier-free guidance subtracts two score tensors and -inf - -inf is NaN.
_BLOCKED = -1e4
# Logged with every sampled run: a change to how numbers become tokens changes the tokens a seed gives.
SAMPLER_VERSION = "inverse-cdf-1"


class SeededSampler(LogitsProcessor):
    """Sample row i with generator seeds[i // rows_per_seed] (MusicGen has one row per codebook per cell).

    With `guidance_scale` set, the scores arrive as [conditional rows; unconditional rows] and guidance is applied
    here, before sampling; both halves of the returned scores then point at the same token so the model's own
    guidance processor, which runs after this one, leaves the choice unchanged.
    """

    def __init__(self, seeds: list[int], *, do_sample: bool = True, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0, rows_per_seed: int = 1, guidance_scale: float | None = None,
                 on_step: Callable[[int], None] | None = None):
        self.generators = [torch.Generator(device="cpu").manual_seed(int(seed)) for seed in seeds]
        self.do_sample = do_sample and temperature > 0
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.rows_per_seed = rows_per_seed
        self.guidance_scale = guidance_scale if guidance_scale and guidance_scale > 1 else None
        self.on_step = on_step      # called with the step number; it may raise to stop generation
        self.steps = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.steps += 1
        if self.on_step is not None:
            self.on_step(self.steps)
        logits = scores.float()
        if self.guidance_scale is not None:
            conditional, unconditional = logits.split(logits.shape[0] // 2, dim=0)
            logits = unconditional + (conditional - unconditional) * self.guidance_scale
        choice = self._sample(logits) if self.do_sample else logits.argmax(dim=-1)
        out = torch.full_like(logits, _BLOCKED)
        out.scatter_(1, choice.unsqueeze(1), 0.0)
        if self.guidance_scale is not None:
            out = torch.cat([out, out], dim=0)
        return out.to(scores.dtype)

    def uniforms(self, rows: int) -> torch.Tensor:
        """One number in [0, 1) per row, each from its own cell's generator (float64: no ties at the edges)."""
        return uniforms(self.generators, self.rows_per_seed)[:rows]

    def _sample(self, logits: torch.Tensor) -> torch.Tensor:
        return sample(logits, self.uniforms(logits.shape[0]), self.temperature, self.top_k, self.top_p)


def uniforms(generators: list[torch.Generator], per_generator: int = 1) -> torch.Tensor:
    """`per_generator` numbers in [0, 1) from each generator in turn (float64: no ties at the edges)."""
    return torch.cat([torch.rand(per_generator, generator=g, dtype=torch.float64) for g in generators])


def sample(logits: torch.Tensor, u: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """One token per row: temperature, then top-k, then top-p (the order of transformers' own warpers), then the
    inverse CDF at that row's number `u` (every step is row by row: a row's pick depends on its logits and u only)."""
    logits = logits / temperature
    vocab = logits.shape[-1]
    k = top_k if top_k and top_k < vocab else vocab
    # Candidates sorted by score: top-p needs them sorted, and top-k is the first k of them.
    if k < vocab:
        values, candidates = torch.topk(logits, k, dim=-1)
    elif top_p < 1.0:
        values, candidates = torch.sort(logits, dim=-1, descending=True)
    else:                                          # the whole vocabulary, in any order: no sort needed
        values, candidates = logits, None
    probs = values.softmax(dim=-1)
    if top_p < 1.0:
        before = probs.cumsum(dim=-1) - probs      # mass of the better candidates
        probs = probs.masked_fill(before > top_p, 0.0)   # keep the one that crosses top_p
    cdf = probs.double().cumsum(dim=-1)
    position = torch.searchsorted(cdf, u.to(cdf.device).unsqueeze(1) * cdf[:, -1:], right=True)
    # Rounding can put u at the very top of the CDF: take the last candidate with mass, never one without.
    index = torch.arange(probs.shape[-1], device=probs.device)
    last = torch.where(probs > 0, index, 0).amax(dim=-1, keepdim=True)
    position = torch.minimum(position, last)
    return (position if candidates is None else candidates.gather(1, position)).squeeze(1)


# What a text run samples with when neither the user, the template nor the model's generation_config sets a value.
DEFAULTS = {"temperature": 0.7, "top_p": 0.95, "top_k": 50, "repetition_penalty": 1.0}


def sampling_values(options: dict, generation_config) -> tuple[dict, dict]:
    """The sampling values a text run uses, and where each came from: "set" (the user or the template), "model"
    (the model's own generation_config) or "default" (DEFAULTS). Logged, so a record says what really ran."""
    values, sources = {}, {}
    for name, fallback in DEFAULTS.items():
        own = getattr(generation_config, name, None)
        if options.get(name) is not None:
            values[name], sources[name] = options[name], "set"
        elif own is not None:
            values[name], sources[name] = own, "model"
        else:
            values[name], sources[name] = fallback, "default"
    log.info("sampling with %s", ", ".join(f"{n}={values[n]} ({sources[n]})" for n in DEFAULTS))
    return values, sources
