"""Keys and values of a decode batch whose rows come and go: one slot per row, each filled from position 0.

A left-padded batch (what `generate` runs) lines every row up at its right edge, so a row can only join by
re-padding them all. Here each row's keys sit at the start of a slot of their own and never move while the row runs;
the rows of a step are the first `rows` slots, a finished row's slot is handed the last row (or the next one), and
the buffers grow by doubling only when the longest row outgrows them.

This object is the model's `cache` for a decode step: the model calls `update` once per layer with one new key and
value per row and gets back every slot's keys up to the longest row; `mask()` tells row-exact attention (rowwise.py)
where each row's real keys end, so a row's attention reads its own keys alone, whoever shares the step.

Keys and values are kept in float32: decode attention computes in float32 (rowwise.py), so converting once on entry
(exact) spares a conversion per row per layer at every step. A slot holds [position, kv head, dim]: a row's keys up
to any length are then one block whose layout does not depend on the buffer's capacity, so the matrix kernels see
the same operands alone or batched.
"""

from __future__ import annotations

import torch


class Slots:
    def __init__(self, layers: int, kv_heads: int, head_dim: int, slots: int, capacity: int, device):
        shape = (slots, max(capacity, 1), kv_heads, head_dim)
        self.keys = [torch.zeros(shape, dtype=torch.float32, device=device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=torch.float32, device=device) for _ in range(layers)]
        self.lengths: list[int] = []         # real keys of each running row, in batch order
        self.device = device
        self._places = None

    @classmethod
    def for_model(cls, model, slots: int, capacity: int) -> "Slots":
        config = model.config.get_text_config()
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        return cls(config.num_hidden_layers, kv_heads, head_dim, slots, capacity, model.device)

    @staticmethod
    def bytes_per_token(model) -> int:
        """Memory one cached token of one row takes here (keys and values, every layer, float32)."""
        config = model.config.get_text_config()
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        return 2 * 4 * config.num_hidden_layers * kv_heads * head_dim

    @property
    def rows(self) -> int:
        return len(self.lengths)

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[1]

    def add(self, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> int:
        """A new row at the end of the batch holding `layers` (one (keys, values) of shape [1, kv heads, n, d] per
        layer; none for a row with nothing cached yet); its slot."""
        slot = self.rows
        if slot >= self.keys[0].shape[0]:
            raise RuntimeError("no free slot")
        length = layers[0][0].shape[2] if layers else 0
        self.reserve(length + 1)
        for index, (keys, values) in enumerate(layers):
            self.keys[index][slot, :length] = keys[0].transpose(0, 1)
            self.values[index][slot, :length] = values[0].transpose(0, 1)
        self.lengths.append(length)
        return slot

    def remove(self, slot: int) -> None:
        """Drop the row in `slot`; the last row moves into it (the caller moves its own record of it the same way)."""
        last = self.rows - 1
        if slot != last:
            length = self.lengths[last]
            for keys, values in zip(self.keys, self.values):
                keys[slot, :length] = keys[last, :length]
                values[slot, :length] = values[last, :length]
            self.lengths[slot] = length
        self.lengths.pop()

    def reserve(self, length: int) -> None:
        """Room for `length` keys per slot (doubling: a run grows its buffers a few times at most)."""
        if length <= self.capacity:
            return
        capacity = max(length, 2 * self.capacity)
        for buffers in (self.keys, self.values):
            for index, old in enumerate(buffers):
                grown = old.new_zeros(old.shape[0], capacity, *old.shape[2:])
                grown[:, :old.shape[1]] = old
                buffers[index] = grown

    def step_inputs(self) -> dict:
        """Model arguments besides `input_ids` for one new token per row: positions, mask, and this cache."""
        self.reserve(max(self.lengths) + 1)
        lengths = torch.tensor(self.lengths, device=self.device)
        # Where each row's new key goes in a slot buffer seen as [slot x position, kv head, dim].
        self._places = torch.arange(self.rows, device=self.device) * self.capacity + lengths
        width = max(self.lengths) + 1
        visible = torch.arange(width, device=self.device)[None, :] <= lengths[:, None]
        return {"position_ids": lengths[:, None], "attention_mask": visible[:, None, None, :], "cache": self,
                "use_cache": True}

    def advance(self) -> None:
        """After a step: every row holds one more key."""
        self.lengths = [length + 1 for length in self.lengths]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        """The model's cache call: store each row's new key and value at its own length; every slot's keys up to
        the longest row (the mask marks where each row's own keys end)."""
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        keys.view(-1, *keys.shape[2:]).index_copy_(0, self._places, key_states[:, :, -1].float())
        values.view(-1, *values.shape[2:]).index_copy_(0, self._places, value_states[:, :, -1].float())
        width = max(self.lengths) + 1
        return keys[:self.rows, :width].transpose(1, 2), values[:self.rows, :width].transpose(1, 2)
