"""Causal language models through transformers: batched, left-padded `generate` calls for a batch of cells.

Cells are sorted by prompt length and run in sub-batches of at most MAX_ROWS, so prompts of similar length share a
call and little compute goes to padding; results are mapped back to request order.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Iterator

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from .base import (Event, Failed, Finished, GenerationRequest, InvalidInput, LocalModel, Output, Partial, Timer,
                   check_prompts, stream_blocking, torch_dtype)
from . import heads, linears, rowwise
from .placement import ensure_precision, load_plan, transformers_placement
from .sampling import SAMPLER_VERSION, SeededSampler

# Rows in one `generate` call. Decode on a CPU or a GPU is bound by reading the weights, so rows up to here come
# nearly free; beyond it a CPU turns compute-bound and the KV cache grows.
MAX_ROWS = 8


class StopWhenSet(StoppingCriteria):
    """Ends `generate` for every row at the next step once the stream is closed."""

    def __init__(self, stop):
        self.stop = stop

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.stop.is_set(), dtype=torch.bool, device=input_ids.device)


class _BatchStreamer(BaseStreamer):
    """Collects the new tokens of every row and emits the texts so far after each step.

    transformers' own streamers take one row only; this one lets a whole batch stream. Each row is decoded
    incrementally: only the tokens after the last fully printable point are decoded again.
    """

    def __init__(self, tokenizer, rows: int, stop_ids: set[int], emit, timer: Timer):
        self.tokenizer = tokenizer
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.texts = [""] * rows          # settled text of each row
        self.settled = [0] * rows         # tokens already in `texts`
        self.stop_ids = stop_ids
        self.done = [False] * rows
        self.emit = emit
        self.timer = timer
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:        # generate hands over the prompt ids first
            self.prompt_seen = True
            return
        self.timer.mark_first()
        changed = {}
        for row, new in enumerate(value.reshape(len(self.tokens), -1).tolist()):
            for token in new:
                if self.done[row]:
                    break
                if token in self.stop_ids:
                    self.done[row] = True
                else:
                    self.tokens[row].append(token)
                    changed[row] = self._text(row)
        if changed:
            self.emit(Partial(changed))

    def _text(self, row: int) -> str:
        tail = self.tokenizer.decode(self.tokens[row][self.settled[row]:], skip_special_tokens=True)
        if tail and not tail.endswith("\ufffd"):        # a whole character: settle it
            self.texts[row] += tail
            self.settled[row] = len(self.tokens[row])
            return self.texts[row]
        return self.texts[row] + tail.rstrip("\ufffd")

    def end(self) -> None:
        pass


class LocalTextModel(LocalModel):
    def load_weights(self) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(self.source, **self.hub_revision)
        self.tokenizer.padding_side = "left"     # decoder-only models continue from the right edge
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.plan = load_plan(self.device, self.offload)
        config = AutoConfig.from_pretrained(self.source, **self.hub_revision)
        # Row-exact attention keeps a cell's logits identical alone or batched (see rowwise.py).
        exact = rowwise.suits(config)
        attention = {"attn_implementation": rowwise.register()} if exact else {}
        self.model = AutoModelForCausalLM.from_pretrained(self.source, config=config, dtype=torch_dtype(self.dtype),
                                                          **attention, **transformers_placement(self.plan, self.device),
                                                          **self.hub_revision)
        if self.plan == "cpu":
            self.model.to(self.device)
        self.model.eval()
        # Packed linears: faster decode, and a cell's bits independent of its batch (see linears.py).
        self.linears = linears.pack(self.model) if self.plan == "cpu" else linears.PLAIN
        # Cached prompt heads need each row computed alone and then batched: row-exact attention only.
        self.heads = heads.Heads(self.model) if exact else None

    @property
    def uses_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def format_prompt(self, request: GenerationRequest) -> str:
        """The exact text the model sees: the tokenizer's chat template when it has one, else plain completion."""
        if self.uses_chat_template:
            messages = [{"role": "user", "content": request.prompt}]
            if request.system:
                messages.insert(0, {"role": "system", "content": request.system})
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{request.system}\n\n{request.prompt}" if request.system else request.prompt

    def stream(self, requests: list[GenerationRequest], options: dict) -> Iterator[Event]:
        check_prompts(requests)
        reload_s = ensure_precision(self, options)
        texts = [self.format_prompt(r) for r in requests]
        ids = self.tokenizer(texts, add_special_tokens=not self.uses_chat_template)["input_ids"]
        lengths = [len(row) for row in ids]
        self._check_context(max(lengths), options["max_new_tokens"])
        for rows in length_sorted_batches(lengths, MAX_ROWS):
            done: list[Event] = []          # a sub-batch's cells all end together: handed on in request order
            for event in self._stream_rows([requests[i] for i in rows], [texts[i] for i in rows],
                                           [ids[i] for i in rows], options):
                if isinstance(event, Partial):
                    yield Partial({rows[i]: text for i, text in event.texts.items()})
                elif isinstance(event, Finished):
                    event.output.metrics.update(batch_rows=len(rows), precision_reload_s=reload_s)
                    done.append(Finished(rows[event.index], event.output))
                elif isinstance(event, Failed):
                    done.append(Failed(rows[event.index], event.error))
                else:
                    yield event
            yield from sorted(done, key=lambda event: event.index)

    def _stream_rows(self, requests: list[GenerationRequest], texts: list[str], rows: list[list[int]],
                     options: dict) -> Iterator[Event]:
        """One left-padded `generate` call for a few rows (`rows`: their prompts' token ids). With row-exact
        attention each row's prompt, all but its last token, is cached first, one row at a time on top of its
        cached head (heads.py)."""
        if self.heads is not None:
            marked = [self.format_prompt(replace(r, prompt=heads.MARK)) for r in requests]
            head_ids = self.tokenizer([heads.head_text(m) for m in marked],
                                      add_special_tokens=not self.uses_chat_template)["input_ids"]
            row_heads = [self.heads.head_of(ids, head) for ids, head in zip(rows, head_ids)]
        config = copy.deepcopy(self.model.generation_config)
        # Sampling happens in SeededSampler (one generator per cell); generate itself runs greedy.
        config.update(do_sample=False, temperature=None, top_p=None, top_k=None, num_beams=1,
                      max_new_tokens=options["max_new_tokens"], repetition_penalty=options["repetition_penalty"],
                      pad_token_id=self.tokenizer.pad_token_id, max_length=None, min_new_tokens=None)
        stop_ids = _as_set(config.eos_token_id) | _as_set(self.tokenizer.eos_token_id)
        sampled = options["do_sample"] and options["temperature"] > 0

        def work(emit, stop) -> list[Output]:
            timer = Timer()
            if self.heads is not None:
                inputs = self.heads.prefill(rows, row_heads, self.tokenizer.pad_token_id, stop)
            else:
                inputs = self.tokenizer.pad({"input_ids": rows}, return_tensors="pt").to(self.model.device)
            width = inputs["input_ids"].shape[1]
            sampler = SeededSampler([r.seed for r in requests], do_sample=options["do_sample"],
                                    temperature=options["temperature"], top_k=options["top_k"],
                                    top_p=options["top_p"])
            streamer = _BatchStreamer(self.tokenizer, len(requests), stop_ids, emit, timer)
            with torch.inference_mode():
                sequences = self.model.generate(**inputs, generation_config=config, logits_processor=[sampler],
                                                stopping_criteria=StoppingCriteriaList([StopWhenSet(stop)]),
                                                streamer=streamer)
            wall = timer.elapsed
            outputs = []
            for row, tokens in enumerate(sequences[:, width:].tolist()):
                completion = _until_stop(tokens, stop_ids)
                metrics = {"prompt_tokens": len(rows[row]),
                           "completion_tokens": len(completion), "wall_s": wall, "ttft_s": timer.first,
                           "tokens_per_s": len(completion) / wall if wall > 0 else None,
                           "formatted_prompt": texts[row], "padded_tokens": width,
                           "placement": self.plan, "attention": self.model.config._attn_implementation,
                           "linears": self.linears}
                if self.heads is not None:       # prompt tokens taken from the head cache (computed once per model)
                    metrics["cached_head_tokens"] = len(row_heads[row])
                if sampled:
                    metrics["sampler"] = SAMPLER_VERSION
                outputs.append(Output(text=self.tokenizer.decode(completion, skip_special_tokens=True),
                                      metrics=metrics))
            return outputs

        yield from stream_blocking(work)

    def _check_context(self, prompt_tokens: int, max_new_tokens: int) -> None:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and prompt_tokens + max_new_tokens > limit:
            raise InvalidInput("max_new_tokens", f"the prompt has {prompt_tokens} tokens, so at most "
                               f"{max(limit - prompt_tokens, 0)} new tokens fit this model's context of {limit}")


def length_sorted_batches(lengths: list[int], max_rows: int) -> list[list[int]]:
    """Request indices grouped into batches of at most `max_rows`, shortest prompts first: prompts of similar
    length share a batch, so less of each batch is padding. Ties keep request order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[start:start + max_rows] for start in range(0, len(order), max_rows)]


def _as_set(ids) -> set[int]:
    if ids is None:
        return set()
    return {int(i) for i in ids} if isinstance(ids, (list, tuple)) else {int(ids)}


def _until_stop(tokens: list[int], stop_ids: set[int]) -> list[int]:
    for index, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:index]
    return tokens
