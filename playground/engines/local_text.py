"""Causal language models through transformers.

Models with row-exact attention (plain causal decoders: Llama, Qwen2, SmolLM2, ...) run with continuous batching
(continuous.py): rows flow through a number of slots measured on this machine, and a finished row's slot takes the
next row at once; every cell gets the numbers it would get alone. Other models (sliding-window attention,
soft-capped logits) run in left-padded `generate` calls of at most MAX_ROWS rows of similar length, one fixed batch
after another. Each record's `batching` metric says which way its cell ran.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import replace
from typing import Iterator

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList
from transformers.generation.logits_process import (NoBadWordsLogitsProcessor, NoRepeatNGramLogitsProcessor,
                                                    RepetitionPenaltyLogitsProcessor, SuppressTokensLogitsProcessor)
from transformers.generation.streamers import BaseStreamer

from .base import (Event, GenerationRequest, InvalidInput, LocalModel, Output, Partial, Timer, check_prompts,
                   stream_blocking, torch_dtype)
from . import chat, continuous, heads, linears, prepared, rowwise
from .placement import ensure_precision, load_plan, transformers_placement
from .sampling import SAMPLER_VERSION, SeededSampler, sampling_values
from .slots import Slots

log = logging.getLogger(__name__)

# Rows in one fixed `generate` batch (models without row-exact attention). Decode on a CPU or a GPU is bound by
# reading the weights, so rows up to here come nearly free; beyond it a CPU turns compute-bound.
MAX_ROWS = 8
# Up to this many rows run together without measuring the width first: one step of all of them never costs more
# than two steps of half of them, and measuring costs a few seconds once per model.
UNMEASURED_ROWS = 8
# Share of the memory available at a run's start that the slots' keys and values may take.
SLOT_MEMORY_SHARE = 0.25
# generation_config fields the continuous path does not apply (logged when a model sets one).
_NOT_APPLIED = ("min_new_tokens", "min_length", "sequence_bias", "exponential_decay_length_penalty",
                "forced_eos_token_id", "begin_suppress_tokens", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff")


class StopWhenSet(StoppingCriteria):
    """Ends `generate` for every row at the next step once the stream is closed."""

    def __init__(self, stop):
        self.stop = stop

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.stop.is_set(), dtype=torch.bool, device=input_ids.device)


class _BatchStreamer(BaseStreamer):
    """The new tokens of every row of a fixed batch, emitted as texts after each step (transformers' own
    streamers take one row only)."""

    def __init__(self, tokenizer, rows: int, stop_ids: set[int], emit, timer: Timer):
        self.texts = [continuous.Text(tokenizer) for _ in range(rows)]
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
        for row, new in enumerate(value.reshape(len(self.texts), -1).tolist()):
            for token in new:
                if self.done[row]:
                    break
                if token in self.stop_ids:
                    self.done[row] = True
                else:
                    changed[row] = self.texts[row].add(token)
        if changed:
            self.emit(Partial(changed))

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
        self.linears = prepared.pack(self.model, self.prepared_dir, self.revision, self.source) \
            if self.plan == "cpu" else linears.PLAIN
        # Cached heads and continuous batching need each row computed alone and then batched: row-exact attention.
        self.heads = heads.Heads(self.model) if exact and _plain_attention(config) else None
        self.width: int | None = None            # rows per step, measured on first need (continuous.measure_width)
        self.width_seconds: dict[int, float] = {}   # seconds per step by rows, as measured

    @property
    def uses_chat_template(self) -> bool:
        return chat.has_template(self.tokenizer)

    def format_prompt(self, request: GenerationRequest) -> str:
        """The exact text the model sees: the tokenizer's chat template when it has one, else plain completion."""
        return chat.format_prompt(self.tokenizer, request.prompt, request.system)

    def stream(self, requests: list[GenerationRequest], options: dict) -> Iterator[Event]:
        check_prompts(requests)
        reload_s = ensure_precision(self, options)
        texts = [self.format_prompt(r) for r in requests]
        ids = self.tokenizer(texts, add_special_tokens=not self.uses_chat_template)["input_ids"]
        limits = [min(options["max_new_tokens"], r.max_new_tokens or options["max_new_tokens"]) for r in requests]
        self._check_context(max(len(i) + n for i, n in zip(ids, limits)), max(len(i) for i in ids))
        values, sources = sampling_values(options, self.model.generation_config)
        sampled = options["do_sample"] and values["temperature"] > 0
        common = {"placement": self.plan, "attention": self.model.config._attn_implementation,
                  "linears": self.linears, "precision_reload_s": reload_s,
                  "sampling": _describe(values, sources, sampled)}
        if sampled:
            common["sampler"] = SAMPLER_VERSION
        if self.heads is not None:
            yield from self._stream_continuous(requests, texts, ids, limits, options | values, common)
            return
        for rows in length_sorted_batches([len(i) for i in ids], MAX_ROWS):
            yield from _renumbered(self._stream_fixed([requests[i] for i in rows], [texts[i] for i in rows],
                                                      [ids[i] for i in rows], [limits[i] for i in rows],
                                                      options | values, common), rows)

    # ---- continuous batching ------------------------------------------------------------------------------------

    def prepare_rows(self, requests: list[GenerationRequest], ids: list[list[int]],
                     limits: list[int]) -> list[continuous.Row]:
        """Each request as a row: its prompt ids, the start of them its cached head covers, its own generator."""
        marked = [self.format_prompt(replace(r, prompt=heads.MARK)) for r in requests]
        head_ids = self.tokenizer([heads.head_text(m) for m in marked],
                                  add_special_tokens=not self.uses_chat_template)["input_ids"]
        return [continuous.Row(index, row_ids, self.heads.head_of(row_ids, head), limit,
                               torch.Generator(device="cpu").manual_seed(int(request.seed)))
                for index, (request, row_ids, head, limit) in enumerate(zip(requests, ids, head_ids, limits))]

    def choice(self, options: dict) -> continuous.Choice:
        """How logits become tokens: the model's own logits processors, then greedy or seeded sampling."""
        config = self.model.generation_config
        per_step, per_row = [], []
        if config.suppress_tokens:
            per_step.append(SuppressTokensLogitsProcessor(config.suppress_tokens, device=self.model.device))
        if options["repetition_penalty"] != 1.0:
            per_row.append(RepetitionPenaltyLogitsProcessor(options["repetition_penalty"]))
        if config.no_repeat_ngram_size:
            per_row.append(NoRepeatNGramLogitsProcessor(config.no_repeat_ngram_size))
        if config.bad_words_ids:
            per_row.append(NoBadWordsLogitsProcessor(config.bad_words_ids, eos_token_id=config.eos_token_id))
        ignored = [name for name in _NOT_APPLIED if getattr(config, name, None) not in (None, 0, [])]
        if ignored:
            log.warning("%s: generation_config sets %s, which continuous batching does not apply", self.model_id,
                        ", ".join(ignored))
        return continuous.Choice(options["do_sample"] and options["temperature"] > 0, options["temperature"],
                                 options["top_k"], options["top_p"], per_row, per_step)

    def rows_per_step(self, rows: int, longest: int) -> int:
        """Slots for a run of `rows` rows of at most `longest` tokens: the measured width (measured once per loaded
        model, and kept with its prepared weights), within the memory the slots may take. On the compute thread."""
        width = rows
        if rows > UNMEASURED_ROWS:
            if self.width is None:
                self.width, self.width_seconds = prepared.remembered_width(self.prepared_dir, self.revision,
                                                                           self.source, self.dtype)
            if self.width is None:
                busy = _busy()
                self.width, self.width_seconds = continuous.measure_width(self.model)
                busy = busy or _busy()
                log.info("%s: %d rows per step (seconds per step by rows: %s)%s", self.model_id, self.width,
                         ", ".join(f"{n}: {s:.3f}" for n, s in self.width_seconds.items()),
                         "; measured on a busy machine, so measured again by the next process" if busy else "")
                if not busy:
                    prepared.remember_width(self.prepared_dir, self.revision, self.source, self.dtype, self.width,
                                            self.width_seconds)
            width = min(rows, self.width)
        fits = int(SLOT_MEMORY_SHARE * _available_bytes() // (Slots.bytes_per_token(self.model) * longest))
        return max(1, min(width, fits))

    def _stream_continuous(self, requests, texts, ids, limits, options, common) -> Iterator[Event]:
        rows = self.prepare_rows(requests, ids, limits)
        choice = self.choice(options)
        stop_ids = self._stop_ids()
        longest = max(len(row.ids) + row.limit for row in rows)

        def work(emit, stop) -> list[Output]:
            width = self.rows_per_step(len(rows), longest)
            decoder = continuous.Decoder(self.model, self.heads, width, max(len(row.ids) for row in rows) + 16)

            def finish(row: continuous.Row) -> Output:
                wall = time.perf_counter() - row.joined
                metrics = {**common, "prompt_tokens": len(row.ids), "completion_tokens": len(row.tokens),
                           "wall_s": wall, "ttft_s": row.first, "queued_s": row.queued,
                           "tokens_per_s": len(row.tokens) / wall if wall > 0 else None,
                           "formatted_prompt": texts[row.index], "cached_head_tokens": len(row.head),
                           "batching": "continuous", "batch_rows": width}
                return Output(text=self.tokenizer.decode(row.tokens, skip_special_tokens=True), metrics=metrics)

            continuous.run(decoder, rows, choice, stop_ids, lambda: continuous.Text(self.tokenizer), finish, emit,
                           stop)
            return []

        yield from stream_blocking(work)

    # ---- fixed batches ------------------------------------------------------------------------------------------

    def _stream_fixed(self, requests, texts, rows, limits, options, common) -> Iterator[Event]:
        """One left-padded `generate` call for a few rows (`rows`: their prompts' token ids)."""
        config = copy.deepcopy(self.model.generation_config)
        # Sampling happens in SeededSampler (one generator per cell); generate itself runs greedy.
        config.update(do_sample=False, temperature=None, top_p=None, top_k=None, num_beams=1,
                      max_new_tokens=max(limits), repetition_penalty=options["repetition_penalty"],
                      pad_token_id=self.tokenizer.pad_token_id, max_length=None, min_new_tokens=None)
        stop_ids = self._stop_ids()

        def work(emit, stop) -> list[Output]:
            timer = Timer()
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
                completion = _until_stop(tokens, stop_ids)[:limits[row]]
                metrics = {**common, "prompt_tokens": len(rows[row]), "completion_tokens": len(completion),
                           "wall_s": wall, "ttft_s": timer.first,
                           "tokens_per_s": len(completion) / wall if wall > 0 else None,
                           "formatted_prompt": texts[row], "padded_tokens": width, "batching": "fixed",
                           "batch_rows": len(requests)}
                outputs.append(Output(text=self.tokenizer.decode(completion, skip_special_tokens=True),
                                      metrics=metrics))
            return outputs

        yield from stream_blocking(work)

    def _stop_ids(self) -> set[int]:
        return _as_set(self.model.generation_config.eos_token_id) | _as_set(self.tokenizer.eos_token_id)

    def _check_context(self, tokens: int, prompt_tokens: int) -> None:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and tokens > limit:
            raise InvalidInput("max_new_tokens", f"the prompt has {prompt_tokens} tokens, so at most "
                               f"{max(limit - prompt_tokens, 0)} new tokens fit this model's context of {limit}")


def length_sorted_batches(lengths: list[int], max_rows: int) -> list[list[int]]:
    """Request indices grouped into batches of at most `max_rows`, shortest prompts first: prompts of similar
    length share a batch, so less of each batch is padding. Ties keep request order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[start:start + max_rows] for start in range(0, len(order), max_rows)]


def _renumbered(events: Iterator[Event], rows: list[int]) -> Iterator[Event]:
    """A sub-batch's events with its request indices mapped back to the stream's."""
    for event in events:
        if isinstance(event, Partial):
            yield Partial({rows[i]: text for i, text in event.texts.items()})
        elif hasattr(event, "index"):
            yield replace(event, index=rows[event.index])
        else:
            yield event


def _plain_attention(config) -> bool:
    """Softmax attention without soft-capping: what the slot path's decode attention computes (rowwise.py)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return not getattr(text, "attn_logit_softcapping", None)


def _describe(values: dict, sources: dict, sampled: bool) -> str:
    names = ("temperature", "top_k", "top_p", "repetition_penalty") if sampled else ("repetition_penalty",)
    used = ", ".join(f"{name} {values[name]:g} ({sources[name]})" for name in names)
    return used if sampled else f"greedy, {used}"


def _busy() -> bool:
    """More runnable processes than cores: step timings now say more about the neighbours than about the model."""
    return os.getloadavg()[0] > (os.cpu_count() or 1)


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def _as_set(ids) -> set[int]:
    if ids is None:
        return set()
    return {int(i) for i in ids} if isinstance(ids, (list, tuple)) else {int(ids)}


def _until_stop(tokens: list[int], stop_ids: set[int]) -> list[int]:
    for index, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:index]
    return tokens
