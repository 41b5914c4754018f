"""Cached prompt heads (engines/heads.py): the same numbers as reading the whole prompt, computed once per head,
and a cell's tokens independent of its neighbours."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from conftest import collect, options
from playground.engines import heads
from playground.engines.base import GenerationRequest
from playground.engines.catalog import Catalog

PROMPTS = ["Write a tagline for a solar lantern.", "Hi", "Summarize in three bullet points: the weather is sunny."]


@pytest.fixture(scope="module")
def mid_model(settings, mid_text):
    catalog = Catalog(settings.replace(max_models_loaded=1))
    model = catalog.get(catalog.resolve("text", str(mid_text)))
    yield model
    catalog.clear()


def _last_logits(model, arguments) -> torch.Tensor:
    with torch.inference_mode():
        return model.model(**arguments, logits_to_keep=1).logits[:, -1].float()


@pytest.mark.parametrize("system", [None, "You are terse."])
def test_a_cached_head_gives_the_logits_of_the_whole_prompt(mid_model, settings, system):
    """float32, so the only difference is the order of additions: equal to ~1e-5."""
    params = options("text", {"precision": "float32"}, settings)
    list(mid_model.stream([GenerationRequest("warm up")], params | {"max_new_tokens": 1}))    # reload at fp32
    requests = [GenerationRequest(p, system=system) for p in PROMPTS]
    texts = [mid_model.format_prompt(r) for r in requests]
    rows = mid_model.tokenizer(texts, add_special_tokens=False)["input_ids"]
    marked = [mid_model.format_prompt(replace(r, prompt=heads.MARK)) for r in requests]
    head_ids = mid_model.tokenizer([heads.head_text(m) for m in marked], add_special_tokens=False)["input_ids"]
    row_heads = [mid_model.heads.head_of(ids, head) for ids, head in zip(rows, head_ids)]
    assert all(len(head) >= (6 if system else 1) for head in row_heads), "the chat template's head is reused"
    cached = mid_model.heads.prefill(rows, row_heads, mid_model.tokenizer.pad_token_id, threading.Event())
    assert cached["past_key_values"].get_seq_length() == cached["input_ids"].shape[1] - 1
    whole = mid_model.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert torch.allclose(_last_logits(mid_model, cached), _last_logits(mid_model, whole), atol=1e-4)


def test_a_head_is_computed_once_and_kept(mid_model, settings, monkeypatch):
    params = options("text", {"max_new_tokens": 2, "precision": "bfloat16"}, settings)
    collect(mid_model, [GenerationRequest("warm up", system="Be kind.")], params)
    reads = []
    forward = type(mid_model.model).forward
    monkeypatch.setattr(type(mid_model.model), "forward",
                        lambda self, input_ids=None, **k: (reads.append(input_ids.shape[1]),
                                                           forward(self, input_ids=input_ids, **k))[1])
    outputs, _ = collect(mid_model, [GenerationRequest(p, system="Be kind.") for p in PROMPTS], params)
    head = outputs[0].metrics["cached_head_tokens"]
    assert head > 0 and all(o.metrics["cached_head_tokens"] == head for o in outputs)
    prompts = [o.metrics["prompt_tokens"] for o in outputs]
    # One forward per row for its own tokens (all but the head and the last), none for the head, then one step of
    # one token per new token.
    assert sorted(reads[:-2]) == sorted(p - head - 1 for p in prompts) and reads[-2:] == [1, 1]


def test_cells_alone_equal_cells_batched_with_heads_and_odd_prompts(mid_model, settings):
    """Different system prompts (different heads), a one-token prompt and sampling, in bf16."""
    params = options("text", {"max_new_tokens": 12, "temperature": 1.0, "precision": "bfloat16"}, settings)
    requests = [GenerationRequest("Hi", seed=3), GenerationRequest(PROMPTS[0], seed=4, system="Be brief."),
                GenerationRequest(PROMPTS[2], seed=5, system="Answer in French."), GenerationRequest("x", seed=6)]
    batched = collect(mid_model, requests, params)[0]
    for request, output in zip(requests, batched):
        alone = collect(mid_model, [request], params)[0][0]
        assert alone.text == output.text and alone.metrics["completion_tokens"] == output.metrics["completion_tokens"]


def test_plain_completion_models_without_a_template_still_work(text_model, settings, monkeypatch):
    monkeypatch.setattr(text_model.tokenizer, "chat_template", None)
    outputs, _ = collect(text_model, [GenerationRequest("Hello there", system="sys"), GenerationRequest("a")],
                         options("text", {"max_new_tokens": 3}, settings))
    assert all(o.metrics["completion_tokens"] >= 0 for o in outputs)
    assert outputs[0].metrics["formatted_prompt"] == "sys\n\nHello there"
