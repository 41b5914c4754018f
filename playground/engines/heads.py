"""Prompt heads computed once: the KV cache of the text every cell of a model starts with.

A chat prompt opens with the same tokens for every cell that shares a system prompt: the template's head and the
system message (57% of the prompt tokens of a typical 8-cell grid on SmolLM2's template, benchmarks/bench_speed.py).
Their keys and values are computed once per model and kept (a few heads, least recently used out), and each cell
computes only the rest of its prompt on top of them.

Each row's cache is computed alone, at batch size one, and only then stacked into the left-padded batch that decodes
together; so a cell gets the same numbers whichever cells share its batch, as row-exact attention and packed linears
keep them through decode (rowwise.py, linears.py). The head a cell uses depends on that cell alone (its system
prompt and its own tokens), never on its neighbours.
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
    """The head caches of one loaded model, and the batch caches built from them."""

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

    def prefill(self, rows: list[list[int]], heads: list[list[int]], pad_id: int, stop) -> dict:
        """`generate` arguments for left-padded `rows` with every token but the last already in the cache.
        Rows are computed one at a time on top of their head."""
        caches = []
        for ids, head in zip(rows, heads):
            layers = self._head(tuple(head))
            rest = ids[len(head):-1]
            if rest and not stop.is_set():
                cache = _cache(self.model, layers)
                with torch.inference_mode():
                    self.model(torch.tensor([rest], device=self.model.device), past_key_values=cache,
                               use_cache=True, logits_to_keep=1)
                layers = [(layer.keys, layer.values) for layer in cache.layers]
            caches.append(layers)
        width = max(len(ids) for ids in rows)
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for row, ids in enumerate(rows):
            input_ids[row, width - len(ids):] = torch.tensor(ids)
            mask[row, width - len(ids):] = 1
        arguments = {"input_ids": input_ids.to(self.model.device), "attention_mask": mask.to(self.model.device)}
        if any(caches):      # else (one-token prompts, or stopped already) generate reads the prompts itself
            arguments["past_key_values"] = _stacked(self.model, caches, [width - len(ids) for ids in rows])
        return arguments

    def _head(self, head: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if not head:
            return []
        if head in self._kept:
            self._kept.move_to_end(head)
            return self._kept[head]
        cache = _cache(self.model, [])
        with torch.inference_mode():
            self.model(torch.tensor([head], device=self.model.device), past_key_values=cache, use_cache=True,
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


def _stacked(model, caches: list[list[tuple[torch.Tensor, torch.Tensor]]], pads: list[int]) -> DynamicCache:
    """One left-padded batch cache from each row's own (padded keys are never attended: see rowwise.py)."""
    filled = next(layers for layers in caches if layers)
    stacked = DynamicCache(config=model.config)
    for index, (some_keys, some_values) in enumerate(filled):
        keys, values = [], []
        for layers, pad in zip(caches, pads):
            if layers:
                row_keys, row_values = layers[index]
            else:                                   # a one-token prompt: nothing cached yet
                row_keys, row_values = some_keys[:, :, :0], some_values[:, :, :0]
            keys.append(torch.nn.functional.pad(row_keys, (0, 0, pad, 0)))
            values.append(torch.nn.functional.pad(row_values, (0, 0, pad, 0)))
        stacked.update(torch.cat(keys), torch.cat(values), index)
    return stacked
