"""Prompt heads computed once: the KV cache of the text every cell of a model starts with.

A chat prompt opens with the same tokens for every cell that shares a system prompt: the template's head and the
system message (57% of the prompt tokens of a typical 8-cell grid on SmolLM2's template, benchmarks/bench_speed.py).
Their keys and values are computed once per model and kept (a few heads, least recently used out), and each cell
computes only the rest of its prompt on top of them.

Each row's cache is computed alone, at batch size one, and only then copied into its slot of the batch that decodes
together (slots.py); so a cell gets the same numbers whichever cells share its batch, as row-exact attention and
packed linears keep them through decode (rowwise.py, linears.py). The head a cell uses depends on that cell alone
(its system prompt and its own tokens), never on its neighbours.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from transformers import DynamicCache

# A stand-in user message: the formatted prompt before it is the head.
MARK = "\x00prompt\x00"
# Heads kept per model. One head of 50 tokens on a 360M model is ~2 MB of keys and values.
KEEP = 8


class Heads:
    """The head caches of one loaded model, and each row's cache built on them."""

    def __init__(self, model):
        self.model = model
        self._kept: OrderedDict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = OrderedDict()

    def head_of(self, ids: list[int], head_ids: list[int]) -> list[int]:
        """The longest start of `head_ids` that `ids` begins with (tokens merging across the boundary differ),
        leaving at least the prompt's last token to the batch."""
        length = 0
        for a, b in zip(ids[:-1], head_ids):
            if a != b:
                break
            length += 1
        return ids[:length]

    def row_cache(self, ids: list[int], head: list[int], stop=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Keys and values of every token of `ids` but the last (left to the decode step), one (keys, values) of
        shape [1, kv heads, n, d] per layer: the kept head's, then the rest of the prompt computed alone on top."""
        layers = self._head(tuple(head))
        rest = ids[len(head):-1]
        if rest and not (stop is not None and stop.is_set()):
            cache = _cache(self.model, layers)
            with torch.inference_mode():
                self.model(torch.tensor([rest], device=self.model.device), cache=cache, use_cache=True,
                           logits_to_keep=1)
            layers = [(layer.keys, layer.values) for layer in cache.layers]
        return layers

    def _head(self, head: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if not head:
            return []
        if head in self._kept:
            self._kept.move_to_end(head)
            return self._kept[head]
        cache = _cache(self.model, [])
        with torch.inference_mode():
            self.model(torch.tensor([head], device=self.model.device), cache=cache, use_cache=True,
                       logits_to_keep=1)
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        self._kept[head] = layers
        while len(self._kept) > KEEP:
            self._kept.popitem(last=False)
        return layers


def head_text(formatted_with_mark: str) -> str:
    """The head of a prompt formatted around the stand-in message (empty when the template dropped it)."""
    head, found, _ = formatted_with_mark.partition(MARK)
    return head if found else ""


def _cache(model, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> DynamicCache:
    """A fresh cache holding `layers` (appending to it makes new tensors: the kept head is never written)."""
    cache = DynamicCache(config=model.config)
    for index, (keys, values) in enumerate(layers):
        cache.update(keys, values, index)
    return cache
