"""Speed features that must not change results: precision (bf16 vs fp32 fidelity, the dtype logged), row-exact
attention, the vectorised seeded sampler, length-sorted sub-batches, image modes, the preview autoencoder, the codec
decode, load plans, and cheap imports."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import collect, load, options
from playground.engines.base import Finished, GenerationRequest, Partial, choose_dtype, cpu_has_native_bf16
from playground.engines.catalog import Catalog
from playground.registry import InvalidInput

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["Write a tagline for a solar lantern.", "Describe a red fox in the snow, in detail please.", "Hi",
           "Summarize the following text in three bullet points: the weather today is sunny with a light breeze."]


def requests(n=3, **extra):
    return [GenerationRequest(prompt=PROMPTS[i % len(PROMPTS)], seed=11 * (i + 1), **extra) for i in range(n)]


@pytest.fixture(scope="module")
def own_catalog(settings):
    """Models whose precision these tests switch: kept apart from the session's shared ones."""
    catalog = Catalog(settings.replace(max_models_loaded=3))
    yield catalog
    catalog.clear()


# ---- precision ----------------------------------------------------------------------------------------------------

def test_auto_precision_follows_the_hardware():
    assert choose_dtype("cpu") == ("bfloat16" if cpu_has_native_bf16() else "float32")
    assert choose_dtype("cpu", "auto") == choose_dtype("cpu")
    assert choose_dtype("cpu", "float32") == "float32"
    assert choose_dtype("mps") == "float16"
    with pytest.raises(InvalidInput, match="precision: must be one of"):
        choose_dtype("cpu", "int8")


def test_precision_option_reloads_the_model_and_the_dtype_is_what_ran(own_catalog, settings):
    model = load(own_catalog, "text", "tiny-text")
    auto = model.auto_dtype
    other = "float32" if auto != "float32" else "bfloat16"
    output = collect(model, requests(1), options("text", {"max_new_tokens": 4, "precision": other}, settings))[0][0]
    assert model.dtype == other and model.model.dtype == getattr(torch, other)
    assert output.metrics["precision_reload_s"] > 0
    collect(model, requests(1), options("text", {"max_new_tokens": 4}, settings))
    assert model.dtype == auto and str(model.model.dtype) == f"torch.{auto}"


def test_precision_option_is_checked(settings):
    with pytest.raises(InvalidInput) as error:
        options("text", {"precision": "fp8"}, settings)
    assert error.value.field == "precision"


def _greedy_agreement(source, margin: float) -> tuple[int, int]:
    """(positions where fp32's top-1 beats its runner-up by `margin` times the spread (std) of that position's
    logits, of those where bf16 picks the same token).

    bf16 reads the fp32 greedy sequence (teacher forcing), so one early disagreement does not cascade."""
    from transformers import AutoModelForCausalLM

    from playground.engines import rowwise

    attention = rowwise.register()
    fp32 = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, attn_implementation=attention).eval()
    bf16 = AutoModelForCausalLM.from_pretrained(source, dtype=torch.bfloat16, attn_implementation=attention).eval()
    generator = torch.Generator().manual_seed(0)
    clear = agree = 0
    with torch.inference_mode():
        for _ in range(4):
            prompt = torch.randint(10, fp32.config.vocab_size, (1, 12), generator=generator)
            sequence = fp32.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=24,
                                     do_sample=False, min_new_tokens=24)
            reference = fp32(sequence).logits[0, prompt.shape[1] - 1:-1].float()
            candidate = bf16(sequence).logits[0, prompt.shape[1] - 1:-1].float()
            top2 = reference.topk(2, dim=-1).values
            sure = (top2[:, 0] - top2[:, 1]) > margin * reference.std(dim=-1)
            clear += int(sure.sum())
            agree += int((reference.argmax(-1) == candidate.argmax(-1))[sure].sum())
    return clear, agree


@pytest.mark.parametrize("which", ["tiny", "mid"])
def test_bf16_greedy_tokens_match_fp32_where_the_margin_is_clear(which, text_model, mid_text):
    source = text_model.source if which == "tiny" else mid_text
    clear, agree = _greedy_agreement(source, margin=0.1)
    assert clear >= 20, "too few positions with a clear margin to judge"
    assert agree == clear


# ---- row-exact attention ------------------------------------------------------------------------------------------

def _mid_model(source, dtype, packed: bool):
    from transformers import AutoModelForCausalLM

    from playground.engines import linears, rowwise

    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, attn_implementation=rowwise.register()).eval()
    if packed:
        assert linears.pack(model) == linears.PACKED
    return model


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_a_row_alone_gets_the_logits_it_gets_in_a_batch(mid_text, dtype):
    """Row-exact attention and packed linears together: bit-identical logits alone (a batch of one) or batched
    beside shorter and longer rows, at every step, in bf16 and in fp32."""
    if dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU has no native bf16")
    model = _mid_model(mid_text, dtype, packed=True)
    generator = torch.Generator().manual_seed(1)
    rows = [torch.randint(10, model.config.vocab_size, (n,), generator=generator) for n in (5, 17, 9, 1)]
    ids = torch.zeros(len(rows), 17, dtype=torch.long)
    mask = torch.zeros(len(rows), 17, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, 17 - len(row):], mask[i, 17 - len(row):] = row, 1
    with torch.inference_mode():
        batched = model.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False, output_logits=True,
                                 return_dict_in_generate=True)
        for i, row in enumerate(rows):
            alone = model.generate(row[None], attention_mask=torch.ones(1, len(row), dtype=torch.long),
                                   max_new_tokens=8, do_sample=False, output_logits=True,
                                   return_dict_in_generate=True)
            assert all(torch.equal(a[0], b[i]) for a, b in zip(alone.logits, batched.logits)), f"row {i}"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_packed_linear_gives_each_row_the_same_bits_at_any_row_count(dtype):
    from playground.engines.linears import PackedLinear, can_pack

    if not can_pack(dtype):
        pytest.skip(f"oneDNN cannot pack {dtype} on this CPU")
    torch.manual_seed(0)
    layer = torch.nn.Linear(2560, 960, bias=True).to(dtype)     # SmolLM2-360M's down projection (with a bias)
    x = torch.randn(16, 1, 2560).to(dtype)
    packed = PackedLinear(layer)
    every = packed(x)
    assert all(torch.equal(packed(x[:m]), every[:m]) for m in (1, 2, 3, 8))
    assert torch.equal(packed(x[3, 0]), every[3, 0])                 # a bare vector too
    assert torch.allclose(every.float(), layer(x).float(), rtol=1e-2, atol=1e-2)


def test_packing_frees_the_plain_weights_and_keeps_the_tied_head(mid_text):
    from playground.engines import linears

    model = _mid_model(mid_text, torch.float32, packed=False)
    before = sum(p.numel() for p in model.parameters())
    linears.pack(model)
    after = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    assert not any(type(m) is torch.nn.Linear for m in model.modules())
    assert after < 0.5 * before and after >= embedding        # the plain copies are gone, the embedding stays
    with torch.inference_mode():
        assert model(torch.tensor([[5, 6, 7]])).logits.shape[-1] == model.config.vocab_size


def test_mid_size_cell_alone_reproduces_batched_cell_in_bf16(settings, mid_text):
    catalog = Catalog(settings.replace(max_models_loaded=1))
    model = catalog.get(catalog.resolve("text", str(mid_text)))
    assert model.dtype == choose_dtype("cpu")
    params = options("text", {"max_new_tokens": 24, "temperature": 1.0, "precision": "bfloat16"}, settings)
    batch = requests(4)
    batched = collect(model, batch, params)[0]
    for request, output in zip(batch, batched):
        alone = collect(model, [request], params)[0][0]
        assert (alone.text, alone.metrics["completion_tokens"]) == (output.text, output.metrics["completion_tokens"])
    catalog.clear()


def test_rowwise_attention_is_kept_off_sliding_window_models():
    from transformers import LlamaConfig, MistralConfig

    from playground.engines import rowwise

    assert rowwise.suits(LlamaConfig())
    assert not rowwise.suits(MistralConfig(sliding_window=64))


def test_text_model_uses_rowwise_attention_and_packed_linears(text_model, settings):
    output = collect(text_model, requests(1), options("text", {"max_new_tokens": 2}, settings))[0][0]
    assert output.metrics["attention"] == "rowwise_sdpa"
    assert output.metrics["linears"] == "onednn-packed"


# ---- sampling -----------------------------------------------------------------------------------------------------

def test_sampler_draws_the_same_numbers_alone_or_batched():
    from playground.engines.sampling import SeededSampler

    logits = torch.randn(3, 500, generator=torch.Generator().manual_seed(0))
    batched = SeededSampler([1, 2, 3], temperature=0.9, top_k=40, top_p=0.9)
    picks = torch.stack([batched._sample(logits) for _ in range(20)])
    for row, seed in enumerate([1, 2, 3]):
        alone = SeededSampler([seed], temperature=0.9, top_k=40, top_p=0.9)
        assert torch.equal(torch.stack([alone._sample(logits[row:row + 1]) for _ in range(20)])[:, 0], picks[:, row])


def test_sampler_follows_the_distribution_and_its_cut_offs():
    from playground.engines.sampling import SeededSampler

    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log().repeat(4000, 1)
    counts = np.bincount(SeededSampler(range(4000))._sample(logits).numpy(), minlength=4) / 4000
    assert np.allclose(counts, probs.numpy(), atol=0.03)
    top_k = SeededSampler(range(4000), top_k=2)._sample(logits)
    assert set(top_k.tolist()) == {0, 1}
    top_p = SeededSampler(range(4000), top_p=0.6)._sample(logits)     # 0.5 < 0.6: the second crosses it
    assert set(top_p.tolist()) == {0, 1}


def test_sampler_never_picks_a_blocked_token():
    from playground.engines.sampling import SeededSampler

    logits = torch.full((200, 50), float("-inf"))
    logits[:, 7] = 0.0
    assert set(SeededSampler(range(200))._sample(logits).tolist()) == {7}


# ---- continuous batching ----------------------------------------------------------------------------------------

def _rows(n: int, seed: int = 0) -> list[GenerationRequest]:
    """Prompts of different lengths, each with its own cap on new tokens, so rows end at different steps (and the
    longest outgrow the slots' first buffers)."""
    rows = [GenerationRequest(PROMPTS[i % len(PROMPTS)] + " please" * (i % 3), seed=100 + i,
                              max_new_tokens=3 + (7 * i + seed) % 19) for i in range(n)]
    rows[3].max_new_tokens = 22             # the longest prompt, and the most new tokens
    return rows


@pytest.fixture
def narrow(monkeypatch):
    """Every run takes `width` slots, however many rows it has (a precision reload measures that again)."""
    from playground.engines import continuous, local_text, prepared

    def set_width(model, width):
        monkeypatch.setattr(local_text, "UNMEASURED_ROWS", 0)
        monkeypatch.setattr(continuous, "measure_width", lambda model: (width, {}))
        monkeypatch.setattr(prepared, "remembered_width", lambda *args: (None, {}))
        monkeypatch.setattr(prepared, "remember_width", lambda *args: None)
        monkeypatch.setattr(model, "width", width)
    return set_width


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_a_row_gets_the_same_tokens_whatever_shared_its_slots_and_whenever_it_joined(mid_text, settings, narrow,
                                                                                     dtype):
    """Seven rows through three slots (rows join as others finish), the same rows in the opposite order, and each
    row alone: the same tokens, in bf16 and fp32, sampled."""
    if dtype == "bfloat16" and not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16")
    catalog = Catalog(settings.replace(max_models_loaded=1))
    model = catalog.get(catalog.resolve("text", str(mid_text)))
    narrow(model, 3)
    params = options("text", {"max_new_tokens": 24, "temperature": 1.0, "precision": dtype}, settings)
    rows = _rows(7)
    forward = collect(model, rows, params)[0]
    backward = collect(model, rows[::-1], params)[0][::-1]
    assert {o.metrics["batching"] for o in forward} == {"continuous"} and forward[0].metrics["batch_rows"] == 3
    assert [o.metrics["completion_tokens"] for o in forward] == [r.max_new_tokens for r in rows]
    for request, first, second in zip(rows, forward, backward):
        alone = collect(model, [request], params)[0][0]
        assert first.text == second.text == alone.text
    catalog.clear()


def test_a_finished_rows_slot_takes_the_next_row_at_once(text_model, settings, narrow, monkeypatch):
    """Two slots, rows of 2, 8, 3 and 3 new tokens: 8 steps (fixed batches of two would take 8 + 3)."""
    from playground.engines import continuous

    narrow(text_model, 2)
    steps = []
    step = continuous.Decoder.step
    monkeypatch.setattr(continuous.Decoder, "step", lambda self: (steps.append(len(self.rows)), step(self))[1])
    monkeypatch.setattr(type(text_model), "_stop_ids", lambda self: set())          # rows end at their caps only
    batch = [GenerationRequest(p, seed=1, max_new_tokens=n) for p, n in zip(PROMPTS, (2, 8, 3, 3))]
    outputs, events = collect(text_model, batch, options("text", {"max_new_tokens": 8}, settings))
    assert [o.metrics["completion_tokens"] for o in outputs] == [2, 8, 3, 3]
    assert steps == [2] * 8
    finished = [e.index for e in events if isinstance(e, Finished)]
    assert finished == [0, 2, 1, 3]          # each cell handed on as soon as it ends (1 and 3 end together)
    assert all(len(e.texts) <= 2 for e in events if isinstance(e, Partial))


def test_the_width_is_where_doubling_the_rows_stops_paying(monkeypatch):
    """Measured seconds per step of a + b x rows (weights read once a step, compute per row): the width is the
    last doubling that still raised rows per second by 10%."""
    from playground.engines import continuous

    monkeypatch.setattr(continuous, "step_seconds", lambda model, rows, length: 0.05 + 0.01 * rows)
    width, seconds = continuous.measure_width(None)
    assert width == 32 and sorted(seconds) == [1, 2, 4, 8, 16, 32, 64]
    monkeypatch.setattr(continuous, "step_seconds", lambda model, rows, length: 0.05 * rows)   # compute-bound
    assert continuous.measure_width(None)[0] == 1


@pytest.mark.parametrize("busy", [False, True])
def test_the_width_is_measured_once_and_kept_with_the_prepared_weights(settings, tmp_path, monkeypatch, busy):
    """Kept for the next process unless the machine was busier than its cores while measuring."""
    from playground.engines import continuous, local_text

    measured = []
    monkeypatch.setattr(continuous, "measure_width", lambda model: (measured.append(1), (4, {1: 0.1, 2: 0.1}))[1])
    monkeypatch.setattr(local_text, "_busy", lambda: busy)
    catalog = Catalog(settings.replace(data_dir=tmp_path, max_models_loaded=1))
    (tmp_path / "models").symlink_to(settings.models_dir, target_is_directory=True)
    model = load(catalog, "text", "tiny-text")
    params = options("text", {"max_new_tokens": 2}, settings)
    outputs = collect(model, requests(12), params)[0]
    collect(model, requests(10), params)
    assert measured == [1] and {o.metrics["batch_rows"] for o in outputs} == {4}
    catalog.clear()
    again = load(catalog, "text", "tiny-text")                # a new load, as a second process makes it
    assert collect(again, requests(9), params)[0][0].metrics["batch_rows"] == 4
    assert measured == ([1, 1] if busy else [1])
    assert collect(again, requests(3), params)[0][0].metrics["batch_rows"] == 3     # few rows: no measuring
    catalog.clear()


def test_models_without_row_exact_attention_run_in_fixed_batches(text_model, settings, monkeypatch):
    from playground.engines import local_text

    monkeypatch.setattr(text_model, "heads", None)
    monkeypatch.setattr(local_text, "MAX_ROWS", 2)
    params = options("text", {"max_new_tokens": 6, "temperature": 1.0}, settings)
    many = requests(5)
    outputs = collect(text_model, many, params)[0]
    assert {o.metrics["batching"] for o in outputs} == {"fixed"}
    assert sorted(o.metrics["batch_rows"] for o in outputs) == [1, 2, 2, 2, 2]
    for request, output in zip(many, outputs):
        assert collect(text_model, [request], params)[0][0].text == output.text


def test_length_sorted_batches_group_similar_lengths():
    from playground.engines.local_text import length_sorted_batches

    assert length_sorted_batches([30, 5, 12, 5, 40], 2) == [[1, 3], [2, 0], [4]]
    assert sorted(sum(length_sorted_batches(list(range(20, 0, -1)), 8), [])) == list(range(20))


# ---- prepared weights ---------------------------------------------------------------------------------------------

def test_prepared_weights_are_kept_and_mapped_by_the_next_load(mid_text, settings, tmp_path, monkeypatch):
    """The second load packs nothing: it maps the file the first wrote, and every cell comes out bit-identical."""
    from playground.engines import linears, prepared

    (tmp_path / "models").symlink_to(settings.models_dir, target_is_directory=True)
    catalog = Catalog(settings.replace(data_dir=tmp_path, max_models_loaded=1))
    first = catalog.get(catalog.resolve("text", str(mid_text)))
    params = options("text", {"max_new_tokens": 6, "temperature": 1.0}, settings)
    before = collect(first, requests(3), params)[0]
    prepared.flush()                                       # written while the model already ran
    kept = list((tmp_path / "prepared").glob("*/weights.bin"))
    assert len(kept) == 1 and kept[0].stat().st_size > 0
    catalog.clear()
    packed = []
    reorder = linears.PackedLinear.__init__
    monkeypatch.setattr(linears.PackedLinear, "__init__",
                        lambda self, linear, prepared=None: (packed.append(prepared is None),
                                                             reorder(self, linear, prepared))[1])
    second = catalog.get(catalog.resolve("text", str(mid_text)))
    assert packed and not any(packed)                      # every weight came from the file
    assert [o.text for o in collect(second, requests(3), params)[0]] == [o.text for o in before]
    catalog.clear()


def test_a_damaged_prepared_file_is_packed_again(mid_text, settings, tmp_path):
    from playground.engines import prepared

    (tmp_path / "models").symlink_to(settings.models_dir, target_is_directory=True)
    catalog = Catalog(settings.replace(data_dir=tmp_path, max_models_loaded=1))
    params = options("text", {"max_new_tokens": 4, "do_sample": False}, settings)
    reference = collect(catalog.get(catalog.resolve("text", str(mid_text))), requests(2), params)[0]
    catalog.clear()
    prepared.flush()
    weights = next((tmp_path / "prepared").glob("*/weights.bin"))
    with open(weights, "r+b") as damaged:
        damaged.truncate(weights.stat().st_size // 2)
    model = catalog.get(catalog.resolve("text", str(mid_text)))
    assert [o.text for o in collect(model, requests(2), params)[0]] == [o.text for o in reference]
    prepared.flush()
    assert weights.stat().st_size > 0 and (weights.parent / "index.json").exists()
    catalog.clear()


def test_prepared_weights_can_be_turned_off(settings, tmp_path):
    (tmp_path / "models").symlink_to(settings.models_dir, target_is_directory=True)
    catalog = Catalog(settings.replace(data_dir=tmp_path, prepared_cache_mb=0, max_models_loaded=1))
    load(catalog, "text", "tiny-text")
    assert not (tmp_path / "prepared").exists()
    catalog.clear()


# ---- images -------------------------------------------------------------------------------------------------------

IMAGE = {"width": 64, "height": 64, "num_inference_steps": 3, "guidance_scale": 4.0}


def _psnr(a, b) -> float:
    error = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(255.0 ** 2 / error)


def test_image_modes_auto_is_exact_on_cpu_and_fast_stays_close(image_model, settings):
    batch = requests(3, negative_prompt="blurry")
    exact = collect(image_model, batch, options("image", IMAGE, settings))[0]
    fast = collect(image_model, batch, options("image", IMAGE | {"image_mode": "fast"}, settings))[0]
    assert [o.metrics["image_mode"] for o in exact] == ["exact"] * 3
    assert [o.metrics["image_mode"] for o in fast] == ["fast"] * 3
    assert all(_psnr(e.image, f.image) > 30 for e, f in zip(exact, fast))
    alone = collect(image_model, batch[:1], options("image", IMAGE | {"image_mode": "fast"}, settings))[0][0]
    assert np.array_equal(np.asarray(alone.image), np.asarray(exact[0].image))   # a batch of one is exact anyway


def test_preview_autoencoder_decodes_the_same_latents_faster(image_model, settings, tmp_path, monkeypatch):
    from diffusers import AutoencoderTiny

    from playground.engines import local_image

    torch.manual_seed(0)
    blocks = int(np.log2(image_model.multiple)) + 1            # upsamples like the pipeline's own autoencoder
    AutoencoderTiny(encoder_block_out_channels=(16,) * blocks, decoder_block_out_channels=(16,) * blocks,
                    num_encoder_blocks=(1,) * blocks, num_decoder_blocks=(1,) * blocks,
                    latent_channels=4).save_pretrained(tmp_path)
    monkeypatch.setitem(local_image.PREVIEW_VAES, "StableDiffusionPipeline", str(tmp_path))
    monkeypatch.setattr(image_model, "preview", None)
    params = options("image", IMAGE | {"preview_vae": True}, settings)
    batch = requests(2)
    previews = collect(image_model, batch, params)[0]
    full = collect(image_model, batch, options("image", IMAGE, settings))[0]
    assert [o.image.size for o in previews] == [(64, 64)] * 2
    assert previews[0].metrics["preview_vae"] == str(tmp_path)
    assert not np.array_equal(np.asarray(previews[0].image), np.asarray(full[0].image))
    assert image_model.pipe.vae is image_model.full_vae            # put back after the call
    alone = collect(image_model, batch[1:], params)[0][0]
    assert np.array_equal(np.asarray(alone.image), np.asarray(previews[1].image))


def test_preview_autoencoder_offline_says_what_to_do(image_model, settings, monkeypatch):
    monkeypatch.setattr(image_model, "preview", None)
    with pytest.raises(InvalidInput, match="turn the preview autoencoder off") as error:
        collect(image_model, requests(1), options("image", IMAGE | {"preview_vae": True}, settings))
    assert error.value.field == "preview_vae"


# ---- music --------------------------------------------------------------------------------------------------------

def test_codec_decodes_each_clip_as_it_would_alone(music_model):
    codec = music_model.model.audio_encoder
    codes = torch.randint(0, codec.config.codebook_size, (1, 3, 4, 40), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        per_clip = codec.decode(codes, [None] * 3).audio_values
        alone = [codec.decode.__wrapped_decode__(codes[:, i:i + 1], [None]).audio_values for i in range(3)]
    assert all(torch.equal(per_clip[i], alone[i][0]) for i in range(3))


def test_music_precision_option(own_catalog, settings):
    model = load(own_catalog, "music", "tiny-music")
    output = collect(model, requests(1), options("music", {"duration_s": 0.5, "precision": "float32"}, settings))
    assert model.dtype == "float32" and output[0][0].audio[1].dtype == np.float32


# ---- load plans ---------------------------------------------------------------------------------------------------

def test_load_plans():
    from playground.engines.placement import diffusers_placement, load_plan, transformers_placement

    assert load_plan("cpu", True) == "cpu"                # offloading means nothing without an accelerator
    assert load_plan("cuda", False) == "device" and load_plan("cuda", True) == "offload"
    assert transformers_placement("device", "cuda") == {"device_map": "cuda"}
    assert transformers_placement("offload", "cuda") == {"device_map": "auto"}
    assert transformers_placement("cpu", "cpu") == {} == diffusers_placement("offload", "cuda")
    assert diffusers_placement("device", "cuda:1") == {"device_map": "cuda:1"}


def test_offload_setting_reaches_the_model_and_is_logged(settings):
    catalog = Catalog(settings.replace(cpu_offload=True, max_models_loaded=1))
    model = load(catalog, "image", "tiny-image")
    assert model.offload is True and model.plan == "cpu"      # on this CPU-only machine
    output = collect(model, requests(1), options("image", IMAGE | {"num_inference_steps": 1}, settings))[0][0]
    assert output.metrics["placement"] == "cpu"
    catalog.clear()


def test_offload_plan_uses_model_cpu_offload(monkeypatch, image_model):
    """On an accelerator with offload on, the pipeline is offloaded rather than moved (checked without a GPU)."""
    from diffusers import StableDiffusionPipeline

    from playground.engines.local_image import LocalImageModel

    calls = []
    monkeypatch.setattr(StableDiffusionPipeline, "enable_model_cpu_offload",
                        lambda self, device=None: calls.append(("offload", device)))
    monkeypatch.setattr(StableDiffusionPipeline, "to", lambda self, *a, **k: calls.append(("to", a)) or self)
    LocalImageModel.load("tiny-image", image_model.source, None, "cuda", "float32", offload=True)
    assert calls == [("offload", "cuda")]


# ---- cold start ---------------------------------------------------------------------------------------------------

def test_engines_and_catalog_import_no_model_library():
    probe = ("import sys; import playground.engines.catalog, playground.engines.placement, playground.runner; "
             "print(*[m for m in ('torch', 'transformers', 'diffusers', 'gradio') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ---- one compute thread -------------------------------------------------------------------------------------------

def test_model_work_runs_on_one_thread(settings, monkeypatch):
    """Loads, generation and scoring models share one thread: a second thread using torch would give the CPU a
    second OpenMP team and slow every kernel (engines/compute.py)."""
    import threading

    from playground.engines import compute, local_text
    from playground.scoring import ScorerContext, make_checks
    from playground.scoring.cell import score_cell

    seen = []
    load = local_text.LocalTextModel.load_weights
    monkeypatch.setattr(local_text.LocalTextModel, "load_weights",
                        lambda self: (seen.append(("load", threading.get_ident())), load(self))[1])
    catalog = Catalog(settings.replace(max_models_loaded=1))
    model = catalog.get(catalog.resolve("text", "tiny-text"))
    work = type(model.model).forward
    monkeypatch.setattr(type(model.model), "forward",
                        lambda *a, **k: (seen.append(("forward", threading.get_ident())), work(*a, **k))[1])
    collect(model, requests(1), options("text", {"max_new_tokens": 2}, settings))
    collect(model, requests(1), options("text", {"max_new_tokens": 2, "precision": "float32"}, settings))
    catalog.clear()
    assert [kind for kind, _ in itertools.groupby(kind for kind, _ in seen)] == ["load", "forward", "load", "forward"]
    assert len({ident for _, ident in seen}) == 1 and threading.get_ident() not in {i for _, i in seen}

    class Probe:
        runs_torch, modalities, name = True, ("text",), "probe"

        def score(self, cell, context):
            seen.append(("score", threading.get_ident()))
            return make_checks(["length"])[0].score(cell, context)

    record = type("Record", (), {"status": "ok", "modality": "text", "prompt": "p", "output_text": "hi",
                                 "metrics": {}, "params": {}, "artifact": None})()
    monkeypatch.setattr("playground.scoring.cell.make_checks", lambda checks: list(checks))
    score_cell(record, "hi", [Probe()], ScorerContext(models_dir=settings.models_dir))
    assert seen[-1][1] == seen[0][1]
    assert compute.run(compute.on_compute_thread) and not compute.on_compute_thread()


def test_only_projections_of_one_input_are_stacked():
    from playground.engines.linears import PackedLinear, StackedLinear, pack

    torch.manual_seed(0)
    layer = torch.nn.Module()
    for parent in ("self_attn", "cross_attn"):
        block = torch.nn.Module()
        for name in ("q_proj", "k_proj", "v_proj"):
            setattr(block, name, torch.nn.Linear(16, 8 if name == "q_proj" else 4))
        setattr(layer, parent, block)
    plain = {name: (m.weight.detach().clone(), m.bias.detach().clone())
             for name, m in layer.named_modules() if isinstance(m, torch.nn.Linear)}
    assert pack(layer) == "onednn-packed"
    assert isinstance(layer.self_attn.k_proj, StackedLinear) and isinstance(layer.cross_attn.k_proj, PackedLinear)
    x, y = torch.randn(3, 16), torch.randn(3, 16)
    # The usual order (all three of one input), then a sibling fed other states: each gets its own product.
    got = {"self_attn.q_proj": layer.self_attn.q_proj(x), "self_attn.k_proj": layer.self_attn.k_proj(x),
           "self_attn.v_proj": layer.self_attn.v_proj(y), "cross_attn.q_proj": layer.cross_attn.q_proj(x)}
    inputs = {"self_attn.v_proj": y}
    for name, out in got.items():
        weight, bias = plain[name]
        assert torch.allclose(out, torch.nn.functional.linear(inputs.get(name, x), weight, bias), atol=1e-5), name


def test_compute_thread_nesting_and_fork():
    """A stream consumed on the compute thread itself gets a thread of its own (no wait on itself), and a forked
    child (the ZeroGPU worker) starts its own compute thread instead of queueing to its parent's, gone there."""
    import os
    import threading

    from playground.engines import compute

    def nested():
        inner = compute.submit(threading.get_ident).result(timeout=10)
        return threading.get_ident(), inner

    outer, inner = compute.run(nested)
    assert outer != inner and outer == compute.run(threading.get_ident)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:                                          # the child: a compute thread of its own, and it works
        os.write(write, b"1" if compute.run(threading.get_ident) != outer else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 1) == b"1"



def test_a_precision_switch_lets_go_of_everything_the_old_weights_held(own_catalog, settings, monkeypatch):
    """The cached heads hold the model too: the old weights must be gone before the new ones load, not after."""
    import gc
    import weakref

    from playground.engines import local_text

    model = own_catalog.get(own_catalog.resolve("text", "tiny-text"))
    collect(model, requests(1), options("text", {"max_new_tokens": 2}, settings))
    old = weakref.ref(model.model)
    alive_at_load = []
    load = local_text.LocalTextModel.load_weights

    def checked_load(self):
        gc.collect()
        alive_at_load.append(old() is not None)
        load(self)

    monkeypatch.setattr(local_text.LocalTextModel, "load_weights", checked_load)
    wanted = "float32" if model.dtype != "float32" else "bfloat16"
    collect(model, requests(1), options("text", {"max_new_tokens": 2, "precision": wanted}, settings))
    assert alive_at_load == [False] and model.dtype == wanted


def test_a_packed_model_computes_what_the_plain_one_does(mid_text):
    """Every layer's weights packed (the stacked ones gathered in one reused buffer): the same logits as torch's
    plain layers, to float32 rounding."""
    plain = _mid_model(mid_text, torch.float32, packed=False)
    packed = _mid_model(mid_text, torch.float32, packed=True)
    ids = torch.randint(10, plain.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        assert torch.allclose(packed(ids).logits, plain(ids).logits, atol=1e-4)


def test_openmp_threads_park_while_the_machine_is_busier_than_its_cores(monkeypatch):
    """A second OpenMP team is kept alive exactly while the load average exceeds the cores (compute.py)."""
    import os
    import threading

    from playground.engines import compute

    pacer = compute._Pacer()
    monkeypatch.setattr(compute._Pacer, "EVERY_S", 0.0)
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0 * (os.cpu_count() or 1), 0.0, 0.0))
    pacer.pace()
    release = pacer.release
    assert pacer.parked and any(t.name == "model-compute-pacer" for t in threading.enumerate())
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    pacer.pace()
    assert not pacer.parked and release.is_set()
