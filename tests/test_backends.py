"""Backends on tiny models built offline: shapes, batching, per-cell seed reproducibility, the model cache, bad input."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from playground.backends.base import GenerationRequest, InvalidInput
from playground.backends.catalog import Catalog, modality_of_folder

PROMPTS = ["Write a tagline for a solar lantern.", "Describe a red fox in the snow, in detail please.", "Hi"]


def requests(seeds=(11, 22, 33), **extra):
    return [GenerationRequest(prompt=p, seed=s, **extra) for p, s in zip(PROMPTS, seeds)]


# ---- text ---------------------------------------------------------------------------------------------------------

def test_text_batch_of_three(text_backend, settings):
    params = text_backend.validate({"max_new_tokens": 12}, settings)
    outputs = text_backend.generate(requests(), params)
    assert len(outputs) == 3
    for output in outputs:
        assert isinstance(output.text, str)
        assert 0 < output.metrics["completion_tokens"] <= 12
        assert output.metrics["prompt_tokens"] > 0
        assert output.metrics["tokens_per_s"] > 0
    # Different seeds, different samples.
    assert len({o.text for o in outputs}) > 1


def test_text_uses_chat_template_with_system_prompt(text_backend):
    formatted = text_backend.format_prompt(GenerationRequest("Hello", system="Be brief"))
    assert formatted.startswith("<|system|>\nBe brief") and formatted.endswith("<|assistant|>\n")
    assert "<|user|>\nHello" in formatted


@pytest.mark.parametrize("do_sample", [True, False])
def test_text_cell_alone_reproduces_batched_cell(text_backend, settings, do_sample):
    params = text_backend.validate({"max_new_tokens": 16, "do_sample": do_sample, "temperature": 1.0}, settings)
    batched = text_backend.generate(requests(), params)
    for index, request in enumerate(requests()):
        alone = text_backend.generate([request], params)[0]
        assert alone.text == batched[index].text
        assert alone.metrics["completion_tokens"] == batched[index].metrics["completion_tokens"]


def test_text_streams_every_row(text_backend, settings):
    params = text_backend.validate({"max_new_tokens": 8}, settings)
    seen: list[list[str]] = []
    outputs = text_backend.generate(requests(), params, on_progress=seen.append)
    assert len(seen) >= 2
    assert seen[-1] == [o.text for o in outputs]


# ---- image --------------------------------------------------------------------------------------------------------

IMAGE_PARAMS = {"width": 64, "height": 64, "num_inference_steps": 3, "guidance_scale": 4.0}


def test_image_batch_of_three(image_backend, settings):
    params = image_backend.validate(IMAGE_PARAMS, settings)
    outputs = image_backend.generate(requests(negative_prompt="blurry"), params)
    assert [o.image.size for o in outputs] == [(64, 64)] * 3
    assert all(o.image.mode == "RGB" for o in outputs)


@pytest.mark.parametrize("guidance", [0.0, 4.0])
def test_image_cell_alone_is_bit_identical(image_backend, settings, guidance):
    params = image_backend.validate({**IMAGE_PARAMS, "guidance_scale": guidance}, settings)
    batched = image_backend.generate(requests(negative_prompt="blurry"), params)
    alone = image_backend.generate([requests(negative_prompt="blurry")[2]], params)[0]
    assert np.array_equal(np.asarray(alone.image), np.asarray(batched[2].image))
    assert not np.array_equal(np.asarray(batched[0].image), np.asarray(batched[1].image))


# ---- music --------------------------------------------------------------------------------------------------------

def test_music_batch_of_three_has_requested_length(music_backend, settings):
    params = music_backend.validate({"duration_s": 1.0}, settings)
    outputs = music_backend.generate(requests(), params)
    assert len(outputs) == 3
    for output in outputs:
        rate, waveform = output.audio
        assert rate == 32000
        assert waveform.dtype == np.float32 and waveform.shape == (32000,)
        assert output.metrics["realtime_factor"] > 0


def test_music_duration_uses_the_models_frame_rate(music_backend):
    assert music_backend.frame_rate == 50


@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_music_cell_alone_is_bit_identical(music_backend, settings, temperature):
    params = music_backend.validate({"duration_s": 0.5, "temperature": temperature}, settings)
    batched = music_backend.generate(requests(), params)
    alone = music_backend.generate([requests()[1]], params)[0]
    assert np.array_equal(alone.audio[1], batched[1].audio[1])


def test_wav_bytes_round_trip():
    from playground.backends.music import to_wav_bytes

    wave_bytes = to_wav_bytes(32000, np.linspace(-2, 2, 16000, dtype=np.float32))
    with wave.open(io.BytesIO(wave_bytes)) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getnframes()) == (32000, 1, 16000)


# ---- catalog ------------------------------------------------------------------------------------------------------

def test_second_get_reuses_the_warm_model(catalog, text_backend):
    loads = catalog.loads
    assert catalog.get("text", "tiny-text") is text_backend
    assert catalog.loads == loads


def test_lru_evicts_the_least_recently_used(settings):
    from dataclasses import replace

    small = Catalog(replace(settings, max_models_loaded=2))
    text = small.get("text", "tiny-text")
    small.get("image", "tiny-image")
    small.get("text", "tiny-text")            # text is now the most recent
    music = small.get("music", "tiny-music")  # evicts image
    assert small.loaded() == [("text", "tiny-text"), ("music", "tiny-music")]
    assert small.loads == 3
    small.get("image", "tiny-image")          # evicts text, which releases its weights
    assert small.loaded() == [("music", "tiny-music"), ("image", "tiny-image")]
    assert text.model is None and music.model is not None and small.loads == 4


def test_offline_presets_are_the_tiny_models(catalog):
    assert [p.id for p in catalog.presets("image")] == ["tiny-image"]
    assert catalog.default_model("music") == "tiny-music"


def test_local_folder_loads_through_the_same_path(catalog, text_backend):
    folder = Path(text_backend.source)
    assert modality_of_folder(folder) == "text"
    assert Path(catalog.resolve("text", str(folder))) == folder.resolve()


# ---- bad input ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("modality, model, message", [
    ("text", "nobody/no-such-model", "hub is offline"),
    ("image", "tiny-text", "is a text model"),
    ("music", "tiny-image", "is a image model"),
    ("text", "", "is empty"),
    ("text", "../no-such-folder", "neither an existing folder"),
    ("text", "/etc", "holds no model config"),
])
def test_bad_model_ids_are_refused(catalog, modality, model, message):
    with pytest.raises(InvalidInput, match=message) as error:
        catalog.get(modality, model)
    assert error.value.field == "model"


def test_folder_of_the_wrong_kind_is_refused(catalog, image_backend):
    with pytest.raises(InvalidInput, match="holds a image model"):
        catalog.resolve("text", image_backend.source)


@pytest.mark.parametrize("modality, params, field, allowed", [
    ("image", {"num_inference_steps": -1}, "num_inference_steps", "between 1 and 100"),
    ("image", {"width": 100000}, "width", "between 64 and 1536"),
    ("image", {"height": 100}, "height", "multiple of 8"),
    ("music", {"duration_s": 600}, "duration_s", "between 0.5 and 30"),
    ("text", {"max_new_tokens": 10**9}, "max_new_tokens", "between 1 and 1024"),
    ("text", {"temperature": "hot"}, "temperature", "must be a number"),
    ("text", {"top_p": float("nan")}, "top_p", "finite"),
    ("text", {"max_tokens": 5}, "max_tokens", "unknown parameter"),
])
def test_out_of_range_params_name_the_field(settings, modality, params, field, allowed):
    from playground.backends.catalog import backend_class

    with pytest.raises(InvalidInput, match=allowed) as error:
        backend_class(modality).validate(params, settings)
    assert error.value.field == field


def test_empty_prompt_is_refused_and_the_backend_keeps_working(text_backend, settings):
    params = text_backend.validate({"max_new_tokens": 4}, settings)
    with pytest.raises(InvalidInput, match="prompt: is empty"):
        text_backend.generate([GenerationRequest("   ")], params)
    assert text_backend.generate([GenerationRequest("still here")], params)[0].text is not None


def test_prompt_longer_than_the_context_is_refused(text_backend, settings):
    params = text_backend.validate({"max_new_tokens": 1000}, settings)
    with pytest.raises(InvalidInput, match="context of 2048"):
        text_backend.generate([GenerationRequest("word " * 1500)], params)
