"""Per-cell seeded sampling for `generate`.

`generate(do_sample=True)` draws every row from torch's one global RNG, so a cell's tokens depend on which other
cells shared its batch. This logits processor samples each row with its own torch.Generator and returns scores
where only the chosen token is viable; `generate` then runs in greedy mode and picks it. A cell re-run alone with
its seed therefore draws exactly the same random numbers as it did inside a batch.
"""

from __future__ import annotations

from typing import Callable

import torch
from transformers import LogitsProcessor

# Not -inf: classifier-free guidance subtracts two score tensors and -inf - -inf is NaN.
_BLOCKED = -1e4


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
        out.scatter_(1, choice.unsqueeze(1).to(out.device), 0.0)
        if self.guidance_scale is not None:
            out = torch.cat([out, out], dim=0)
        return out.to(scores.dtype)

    def _sample(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits / self.temperature
        if self.top_k and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            drop = cumulative - sorted_logits.softmax(dim=-1) > self.top_p   # keep the token that crosses top_p
            logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
        probs = logits.softmax(dim=-1).cpu()
        rows = [torch.multinomial(probs[row], 1, generator=self.generators[row // self.rows_per_seed])
                for row in range(probs.shape[0])]
        return torch.cat(rows)
