"""Scores read off the run record: latency, tokens (cost), throughput and real-time factor."""

from __future__ import annotations

from typing import Literal

from .base import Check
from ..requests.checks import CheckArgs


def _field(cell, name: str):
    return getattr(cell.record, name, None) if cell.record is not None else None


class Latency(Check):
    type, better = "latency", "lower"
    description = "seconds the model spent on the cell (GPU or CPU time of its batch, from the run record)"

    def score(self, cell, context):
        wall = _field(cell, "wall_s")
        return self.make(wall, None, unit="s", device=_field(cell, "device"),
                         **({} if wall is not None else {"error": "no time logged for this run"}))


class Tokens(Check):
    type, modalities, better, main_arg = "tokens", ("text",), "lower", "which"
    description = "tokens used (the cost of a text cell): prompt, completion, or both"
    class Args(CheckArgs):
        which: Literal["total", "prompt", "completion"] = "total"

    def score(self, cell, context):
        prompt, completion = _field(cell, "prompt_tokens"), _field(cell, "completion_tokens")
        parts = {"prompt": [prompt], "completion": [completion], "total": [prompt, completion]}[
            self.options["which"]]
        if any(p is None for p in parts):
            return self.make(None, None, error="no token count logged for this run")
        return self.make(sum(parts), None, prompt_tokens=prompt, completion_tokens=completion)


class TokensPerSecond(Check):
    type, modalities = "tokens_per_s", ("text",)
    description = "generation speed in tokens per second"

    def score(self, cell, context):
        value = _field(cell, "tokens_per_s")
        return self.make(value, None, **({} if value is not None else {"error": "no speed logged"}))


class RealtimeFactor(Check):
    type, modalities = "realtime_factor", ("music",)
    description = "seconds of audio made per second of compute (above 1: faster than real time)"

    def score(self, cell, context):
        value = _field(cell, "realtime_factor")
        return self.make(value, None, **({} if value is not None else {"error": "no real-time factor logged"}))
