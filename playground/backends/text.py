"""Causal language models through transformers: one batched, left-padded `generate` for all cells."""

from __future__ import annotations

import copy
import time
from typing import Callable

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.generation.streamers import BaseStreamer

from .base import Backend, GenerationRequest, InvalidInput, Output, check_prompts, torch_dtype
from .sampling import SeededSampler


class _BatchStreamer(BaseStreamer):
    """Collects the new tokens of every row and reports the decoded texts so far after each step.

    transformers' own streamers accept one row only; this one lets a whole grid stream while still batched.
    """

    def __init__(self, tokenizer, rows: int, on_progress: Callable[[list[str]], None]):
        self.tokenizer = tokenizer
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.on_progress = on_progress
        self.prompt_seen = False
        self.stop_ids: set[int] = set()
        self.done = [False] * rows

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:        # generate hands over the prompt ids first
            self.prompt_seen = True
            return
        value = value.reshape(len(self.tokens), -1)
        for row, new in enumerate(value.tolist()):
            for token in new:
                if self.done[row]:
                    break
                if token in self.stop_ids:
                    self.done[row] = True
                else:
                    self.tokens[row].append(token)
        self.on_progress([self.tokenizer.decode(t, skip_special_tokens=True) for t in self.tokens])

    def end(self) -> None:
        pass


class TextBackend(Backend):
    modality = "text"
    backend_name = "transformers.AutoModelForCausalLM"

    def load_weights(self) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(self.source)
        self.tokenizer.padding_side = "left"     # decoder-only models continue from the right edge
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(self.source, dtype=torch_dtype(self.dtype))
        self.model.to(self.device).eval()

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

    def generate(self, requests: list[GenerationRequest], params: dict,
                 on_progress: Callable[[list[str]], None] | None = None) -> list[Output]:
        check_prompts(requests, max_chars=100_000)
        texts = [self.format_prompt(r) for r in requests]
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True,
                                 add_special_tokens=not self.uses_chat_template).to(self.device)
        self._check_context(encoded["input_ids"].shape[1], params["max_new_tokens"])

        config = copy.deepcopy(self.model.generation_config)
        # Sampling happens in SeededSampler (one generator per cell); generate itself runs greedy.
        config.update(do_sample=False, temperature=None, top_p=None, top_k=None, num_beams=1,
                      max_new_tokens=params["max_new_tokens"], repetition_penalty=params["repetition_penalty"],
                      pad_token_id=self.tokenizer.pad_token_id, max_length=None, min_new_tokens=None)
        stop_ids = _as_set(config.eos_token_id) | _as_set(self.tokenizer.eos_token_id)
        sampler = SeededSampler([r.seed for r in requests], do_sample=params["do_sample"],
                                temperature=params["temperature"], top_k=params["top_k"], top_p=params["top_p"])
        streamer = None
        if on_progress is not None:
            streamer = _BatchStreamer(self.tokenizer, len(requests), on_progress)
            streamer.stop_ids = stop_ids

        started = time.perf_counter()
        with torch.inference_mode():
            sequences = self.model.generate(**encoded, generation_config=config, logits_processor=[sampler],
                                            streamer=streamer)
        wall = time.perf_counter() - started

        new_tokens = sequences[:, encoded["input_ids"].shape[1]:].tolist()
        outputs = []
        for row, tokens in enumerate(new_tokens):
            completion = _until_stop(tokens, stop_ids)
            outputs.append(Output(
                text=self.tokenizer.decode(completion, skip_special_tokens=True),
                metrics={"prompt_tokens": int(encoded["attention_mask"][row].sum()),
                         "completion_tokens": len(completion),
                         "wall_s": wall,
                         "tokens_per_s": len(completion) / wall if wall > 0 else None,
                         "formatted_prompt": texts[row]}))
        return outputs

    def _check_context(self, prompt_tokens: int, max_new_tokens: int) -> None:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and prompt_tokens + max_new_tokens > limit:
            raise InvalidInput("max_new_tokens", f"the prompt has {prompt_tokens} tokens, so at most "
                               f"{max(limit - prompt_tokens, 0)} new tokens fit this model's context of {limit}")


def _as_set(ids) -> set[int]:
    if ids is None:
        return set()
    return {int(i) for i in ids} if isinstance(ids, (list, tuple)) else {int(ids)}


def _until_stop(tokens: list[int], stop_ids: set[int]) -> list[int]:
    for index, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:index]
    return tokens
