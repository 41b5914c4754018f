"""Cached prompt heads (engines/heads.py): the same numbers as reading the whole prompt, computed once per head,
and a cell's tokens independent of its neighbours."""

from __future__ import annotations

import pytest
import torch

from conftest import collect, options
from playground.engines.base import GenerationRequest
from playground.engines.catalog import Catalog

PROMPTS = ["Write a tagline for a solar lantern.", "Hi", "Summarize in three bullet points: the weather is sunny."]


@pytest.fixture(scope="module")
def mid_model(settings, mid_text):
    catalog = Catalog(settings.replace(max_models_loaded=1))
    model = catalog.get(catalog.resolve("text", str(mid_text)))
    yield model
    catalog.clear()


def _first_logits(model, requests) -> torch.Tensor:
    """The first new token's logits the way the engine computes them: every row prefilled on its cached head and
    given a slot, then one decode step of all rows together (continuous.py)."""
    from playground.engines import compute, continuous

    ids = model.tokenizer([model.format_prompt(r) for r in requests], add_special_tokens=False)["input_ids"]
    rows = model.prepare_rows(requests, ids, [1] * len(requests))

    def step():
        decoder = continuous.Decoder(model.model, model.heads, len(rows), max(len(i) for i in ids))
        for row in rows:
            decoder.join(row)
        return decoder.step()

    return compute.run(step), rows


def _whole_prompt_logits(model, requests) -> torch.Tensor:
    """Each prompt read whole, alone, with no cache at all."""
    logits = []
    with torch.inference_mode():
        for request in requests:
            ids = model.tokenizer(model.format_prompt(request), return_tensors="pt", add_special_tokens=False)
            logits.append(model.model(**ids, logits_to_keep=1).logits[0, -1].float())
    return torch.stack(logits)


@pytest.fixture
def fp32_model(mid_model, settings):
    list(mid_model.stream([GenerationRequest("warm up")], options("text", {"precision": "float32",
                                                                           "max_new_tokens": 1}, settings)))
    yield mid_model


@pytest.mark.parametrize("system", [None, "You are terse."])
def test_a_cached_head_gives_the_logits_of_the_whole_prompt(fp32_model, system):
    """float32, so the only difference is the order of additions: equal to ~1e-5."""
    requests = [GenerationRequest(p, system=system) for p in PROMPTS]
    cached, rows = _first_logits(fp32_model, requests)
    assert all(len(row.head) >= (6 if system else 1) for row in rows), "the chat template's head is reused"
    assert torch.allclose(cached, _whole_prompt_logits(fp32_model, requests), atol=1e-4)


def test_a_corrupted_head_cache_is_caught(fp32_model):
    """The comparison above reads the cached keys and values: noise in them must change the logits."""
    requests = [GenerationRequest(p, system="You are terse.") for p in PROMPTS]
    _first_logits(fp32_model, requests)                       # the head is computed and kept
    kept = fp32_model.heads._kept
    saved = dict(kept)
    generator = torch.Generator().manual_seed(0)
    for head, layers in saved.items():
        kept[head] = [(k + torch.randn(k.shape, generator=generator), v + torch.randn(v.shape, generator=generator))
                      for k, v in layers]
    try:
        corrupted, _ = _first_logits(fp32_model, requests)
    finally:
        kept.update(saved)
    assert (corrupted - _whole_prompt_logits(fp32_model, requests)).abs().max() > 1e-2


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
