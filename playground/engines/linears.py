"""Linear layers for CPU inference: weights laid out once for oneDNN, and each row's result independent of its batch.

Measured on CPU (benchmarks/bench_speed.py, tests/test_speed.py):
- Speed. torch's CPU `linear` hands bfloat16 and float32 weights to oneDNN in their plain layout, and oneDNN
  re-lays them out on every call: at decode, one row per step, that doubles the memory traffic of a step bound by
  reading the weights. Packing each weight once at load time (what torch.compile's freezing pass does) saves that.
  Sibling projections that read the same input (a Llama-style layer's q/k/v, and gate/up) are stacked into one
  packed weight: one wider product instead of two or three calls, with the same bits per output.
- Exactness. With packed weights, oneDNN gives every row the same bits at any row count of two or more, in bfloat16
  and float32 alike; one row alone takes a matrix-vector kernel that rounds differently. A single row is therefore
  computed as two identical rows and the second is dropped: decode reads the weights once either way, so the second
  row costs almost nothing, and a cell alone gets exactly the numbers it gets in a batch.

Packing replaces the model's `nn.Linear` modules and frees their plain weights, so memory does not double; only a
weight tied to the input embedding (the usual `lm_head`) stays in both forms. It applies to models that run on the
CPU (the "cpu" load plan): a packed weight cannot move to an accelerator, and accelerate's offload hooks sit on
the very modules it would replace.
"""

from __future__ import annotations

import torch

# What the record logs as the linear kernels: a change here changes the bits a seed gives.
PACKED = "onednn-packed"
PLAIN = "torch"
# Projections of one parent module that read the same input tensor in Llama-family layers, and the parents they
# sit in (a cross-attention's q_proj reads other states than its k_proj and v_proj).
SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))
SIBLING_PARENTS = ("self_attn", "mlp")


def _product(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, in_features: int) -> torch.Tensor:
    """x @ W.T + b with a packed W; a lone row runs as two (see the module docstring)."""
    if x.numel() == in_features:        # a lone row, whatever its leading dimensions
        row = x.reshape(1, in_features)
        out = torch.ops.mkldnn._linear_pointwise(torch.cat([row, row]), packed, bias, "none", [], "")[:1]
        return out.reshape(*x.shape[:-1], out.shape[-1])
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


class _Placeholder:
    """`weight` of a packed layer: its dtype and device, which some layers check (T5's feed-forward casts its
    input to `wo.weight.dtype`); the values themselves live packed."""

    @property
    def weight(self) -> torch.Tensor:
        return self._dtype_of

    def _hold(self, weight: torch.Tensor) -> None:
        self._dtype_of = weight.new_empty(0)


class PackedLinear(_Placeholder, torch.nn.Module):
    """`nn.Linear` with its weight packed for oneDNN."""

    def __init__(self, linear: torch.nn.Linear, packed: torch.Tensor | None = None):
        super().__init__()
        self._hold(linear.weight)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # A plain attribute, not a buffer: state_dict and .to() must not meet an opaque oneDNN tensor.
        self.packed = _checked(packed, (self.out_features, self.in_features)) if packed is not None else \
            torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach())
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _product(x, self.packed, self.bias, self.in_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _Stack:
    """Sibling projections' weights packed as one. The first sibling called with an input computes them all; the
    others take their part of that result when called with the very same tensor (else they compute again)."""

    def __init__(self, linears: list[torch.nn.Linear], packed: torch.Tensor | None = None, scratch=None):
        self.in_features = linears[0].in_features
        self.sizes = [linear.out_features for linear in linears]
        if packed is not None:
            self.packed = _checked(packed, (sum(self.sizes), self.in_features))
        else:
            weights = [linear.weight.detach() for linear in linears]
            stacked = torch.cat(weights, out=scratch.take((sum(self.sizes), self.in_features), weights[0]))
            self.packed = torch.ops.mkldnn._reorder_linear_weight(stacked)
        biases = [linear.bias for linear in linears]
        self.bias = None if biases[0] is None else torch.cat([b.detach() for b in biases])
        self.input: torch.Tensor | None = None
        self.parts: list[torch.Tensor | None] = []

    def part(self, x: torch.Tensor, index: int) -> torch.Tensor:
        if self.input is not x or self.parts[index] is None:
            whole = _product(x, self.packed, self.bias, self.in_features)
            self.input, self.parts = x, [p.contiguous() for p in whole.split(self.sizes, dim=-1)]
        part, self.parts[index] = self.parts[index], None
        if all(p is None for p in self.parts):        # every sibling served: hold no activations
            self.input = None
        return part


class StackedLinear(_Placeholder, torch.nn.Module):
    """One sibling of a _Stack, in the place of its `nn.Linear`."""

    def __init__(self, stack: _Stack, index: int, weight: torch.Tensor):
        super().__init__()
        self._hold(weight)
        self.stack, self.index = stack, index
        self.in_features, self.out_features = stack.in_features, stack.sizes[index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stack.part(x, self.index)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, stacked"


def can_pack(dtype: torch.dtype) -> bool:
    """oneDNN packs float32 everywhere it exists, bfloat16 only where the CPU computes it natively."""
    if not torch.backends.mkldnn.is_available():
        return False
    if dtype == torch.float32:
        return True
    return dtype == torch.bfloat16 and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def pack(model: torch.nn.Module, prepared: dict[str, torch.Tensor] | None = None) -> str:
    """Replace every plain `nn.Linear` of a CPU model by a packed one; the kernels now in use (logged per cell).

    `prepared`: packed weights made earlier for this very model (`packed_weights`), by layer name (a stack by its
    first sibling's): used as they are instead of packing again. Subclasses of nn.Linear (quantized or adapter
    layers) are left as they are.
    """
    first = next(model.parameters())
    if not can_pack(first.dtype) or first.device.type != "cpu":
        return PLAIN
    plain = {name: module for name, module in model.named_modules() if type(module) is torch.nn.Linear}
    if not plain:
        return PLAIN
    scratch = _Scratch()
    for name in list(plain):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        group = _siblings(parent_name, child, plain)
        if group:
            stack = _Stack([plain[n] for n in group], prepared[group[0]] if prepared is not None else None, scratch)
            for index, sibling in enumerate(group):
                setattr(parent, sibling.rpartition(".")[2], StackedLinear(stack, index, plain[sibling].weight))
                del plain[sibling]
        elif name in plain:
            setattr(parent, child, PackedLinear(plain.pop(name), prepared[name] if prepared is not None else None))
    return PACKED


class _Scratch:
    """One buffer the stacked weights are gathered in before packing, reused layer after layer: fresh memory for
    each would cost a page fault per 4 KB, twice the packing's own time on a 360M model."""

    def __init__(self):
        self.buffer: torch.Tensor | None = None

    def take(self, shape: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        size = shape[0] * shape[1]
        if self.buffer is None or self.buffer.numel() < size or self.buffer.dtype != like.dtype:
            self.buffer = torch.empty(size, dtype=like.dtype, device=like.device)
        return self.buffer[:size].view(shape)


def packed_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The packed weights of a packed model by layer name (a stack's under its first sibling's name)."""
    weights = {}
    for name, module in model.named_modules():
        if isinstance(module, PackedLinear):
            weights[name] = module.packed
        elif isinstance(module, StackedLinear) and module.index == 0:
            weights[name] = module.stack.packed
    return weights


def _checked(packed: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    if tuple(packed.shape) != shape or not packed.is_mkldnn:
        raise ValueError(f"a prepared weight of shape {tuple(packed.shape)} where {shape} is needed")
    return packed


def _siblings(parent: str, child: str, plain: dict) -> list[str]:
    """Full names of the sibling group `child` opens, when every member is a plain linear of one input width and
    all or none have a bias; else []."""
    if parent.rpartition(".")[2] not in SIBLING_PARENTS:
        return []
    for names in SIBLINGS:
        if child == names[0]:
            group = [f"{parent}.{n}" if parent else n for n in names]
            members = [plain.get(n) for n in group]
            if all(m is not None for m in members) and len({m.in_features for m in members}) == 1 \
                    and len({m.bias is None for m in members}) == 1:
                return group
    return []
