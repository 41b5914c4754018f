"""Continuous batching for local text: rows flow through a fixed number of slots, and a finished row's slot takes
the next row at once, so no slot waits for the longest row of its batch.

Every row is exact whoever shares its steps: its prompt is computed alone on top of its cached head (heads.py), its
keys sit in a slot of their own (slots.py), attention reads that row's keys alone (rowwise.py), the linear layers
give each row the same bits at any row count (linears.py), logits processors and the sampler run row by row with
the row's own generator (sampling.py). So a row's tokens do not depend on which rows shared its slots or when it
joined, and a cell alone gives what it gives among hundreds.

Each step feeds one token per running row: the last prompt token of a row that just joined, the newest generated
token of the others. New rows are prefilled just before the step they join.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import compute
from .base import Finished, Output, Partial
from .sampling import sample, uniforms
from .slots import Slots


@dataclass
class Row:
    """One cell on its way through the slots."""

    index: int                      # request index
    ids: list[int]                  # prompt token ids
    head: list[int]                 # the start of `ids` taken from the head cache
    limit: int                      # new tokens at most
    generator: torch.Generator
    tokens: list[int] = field(default_factory=list)
    queued: float = 0.0             # seconds from the stream's start to this row's prefill
    joined: float = 0.0             # perf_counter at its prefill
    first: float | None = None      # seconds from `joined` to its first token

    @property
    def next_input(self) -> int:
        return self.tokens[-1] if self.tokens else self.ids[-1]

    def history(self) -> list[int]:
        """The row's sequence so far (prompt and new tokens): what repetition penalties read."""
        return self.ids + self.tokens


class Text:
    """A row's tokens as text, decoded incrementally: only tokens after the last fully printable point again."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.tokens: list[int] = []
        self.settled_text = ""
        self.settled = 0

    def add(self, token: int) -> str:
        self.tokens.append(token)
        tail = self.tokenizer.decode(self.tokens[self.settled:], skip_special_tokens=True)
        if tail and not tail.endswith("\ufffd"):        # a whole character: settle it
            self.settled_text += tail
            self.settled = len(self.tokens)
            return self.settled_text
        return self.settled_text + tail.rstrip("\ufffd")


@dataclass
class Choice:
    """How each step's logits become tokens: processors (each row's own, or the whole step's at once when they do
    not read the row's tokens), then greedy or seeded sampling."""

    do_sample: bool
    temperature: float
    top_k: int
    top_p: float
    per_row: list = field(default_factory=list)     # processors that read a row's sequence (repetition penalty)
    per_step: list = field(default_factory=list)    # processors that do not (suppressed tokens)

    def tokens(self, rows: list[Row], logits: torch.Tensor) -> list[int]:
        for processor in self.per_step:
            logits = processor(None, logits)
        if self.per_row:
            parts = []
            for position, row in enumerate(rows):
                ids = torch.tensor([row.history()], device=logits.device)
                scores = logits[position:position + 1]
                for processor in self.per_row:
                    scores = processor(ids, scores)
                parts.append(scores)
            logits = torch.cat(parts)
        if not self.do_sample:
            return logits.argmax(dim=-1).tolist()
        return sample(logits, uniforms([row.generator for row in rows]), self.temperature, self.top_k,
                      self.top_p).tolist()


class Decoder:
    """The running rows of one model and the steps that move them on."""

    def __init__(self, model, heads, width: int, capacity: int):
        self.model = model
        self.heads = heads
        self.slots = Slots.for_model(model, width, capacity)
        self.rows: list[Row] = []
        self.width = width

    @property
    def full(self) -> bool:
        return len(self.rows) >= self.width

    @torch.inference_mode()
    def join(self, row: Row, stop=None) -> None:
        """Prefill `row` alone on its head (every prompt token but the last) and give it a slot."""
        self.slots.add(self.heads.row_cache(row.ids, row.head, stop))
        self.rows.append(row)

    @torch.inference_mode()
    def step(self) -> torch.Tensor:
        """One token in for every running row; their next-token logits (float32), in slot order."""
        ids = torch.tensor([[row.next_input] for row in self.rows], device=self.model.device)
        logits = self.model(input_ids=ids, **self.slots.step_inputs(), logits_to_keep=1).logits[:, -1]
        self.slots.advance()
        return logits.float()

    @torch.inference_mode()
    def leave(self, slots: list[int]) -> None:
        for slot in sorted(slots, reverse=True):       # the last row moves into a freed slot: free from the end
            self.slots.remove(slot)
            self.rows[slot] = self.rows[-1]
            self.rows.pop()


def run(decoder: Decoder, rows: list[Row], choice: Choice, stop_ids: set[int], text_of: Callable[[], Text],
        finish: Callable[[Row], Output], emit, stop) -> None:
    """Move `rows` through the decoder's slots, emitting Partial texts after each step and each row's Finished as
    soon as it ends (in the order rows finish)."""
    started = time.perf_counter()
    waiting = deque(rows)
    texts: dict[int, Text] = {}
    while (waiting or decoder.rows) and not stop.is_set():
        compute.pace()                   # a run may last minutes while the machine's load changes
        while waiting and not decoder.full and not stop.is_set():
            row = waiting.popleft()
            row.joined = time.perf_counter()
            row.queued = row.joined - started
            decoder.join(row, stop)
            texts[row.index] = text_of()
        if stop.is_set():
            break
        picks = choice.tokens(decoder.rows, decoder.step())
        changed, done = {}, []
        now = time.perf_counter()
        for slot, (row, token) in enumerate(zip(decoder.rows, picks)):
            if row.first is None:
                row.first = now - row.joined
            ended = token in stop_ids
            if not ended:
                row.tokens.append(token)
                changed[row.index] = texts[row.index].add(token)
            if ended or len(row.tokens) >= row.limit:
                done.append(slot)
        if changed:
            emit(Partial(changed))
        for slot in done:
            row = decoder.rows[slot]
            del texts[row.index]
            emit(Finished(row.index, finish(row)))
        decoder.leave(done)


# ---- the width ------------------------------------------------------------------------------------------------------

# Doubling the rows of a step must raise rows per second by this much to be worth its memory and latency.
WORTH_DOUBLING = 1.10
MOST_ROWS = 256


def step_seconds(model, rows: int, length: int, repeats: int = 3) -> float:
    """The fastest of `repeats` decode steps of `rows` rows that each hold `length` keys (after one to warm up)."""
    decoder = Decoder(model, None, rows, length + repeats + 2)
    decoder.slots.lengths = [length] * rows
    decoder.rows = [Row(i, [1], [], 1, torch.Generator()) for i in range(rows)]
    decoder.step()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        decoder.step()
        best = min(best, time.perf_counter() - started)
    return best


def measure_width(model, length: int = 128, most: int = MOST_ROWS) -> tuple[int, dict[int, float]]:
    """The rows per step from measured step costs: double the rows while that raises rows per second by at least
    WORTH_DOUBLING; past that point a step is bound by compute rather than by reading the weights, and more rows
    only cost memory and each row's latency. A doubling that seems not to pay is measured once more (another
    process may have taken the cores meanwhile). Returns the width and the seconds per step at each width tried."""
    seconds = {1: step_seconds(model, 1, length)}
    width = 1
    while width * 2 <= most:
        wider = width * 2
        seconds[wider] = step_seconds(model, wider, length)
        if not _pays(width, wider, seconds):
            seconds[width] = min(seconds[width], step_seconds(model, width, length))
            seconds[wider] = min(seconds[wider], step_seconds(model, wider, length))
            if not _pays(width, wider, seconds):
                break
        width = wider
    return width, seconds


def _pays(width: int, wider: int, seconds: dict[int, float]) -> bool:
    return wider / seconds[wider] >= WORTH_DOUBLING * width / seconds[width]
