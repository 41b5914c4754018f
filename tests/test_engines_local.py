"""Local engines on tiny models built offline: shapes, batching, streaming, Stop, per-cell seed reproducibility, the
model cache, bad input."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from conftest import collect, load, options
from playground.engines.base import Finished, GenerationRequest, Partial
from playground.engines.catalog import Catalog, modality_of_folder
from playground.registry import InvalidInput

PROMPTS = ["Write a tagline for a solar lantern.", "Describe a red fox in the snow, in detail please.", "Hi"]


def requests(seeds=(11, 22, 33), **extra):
    return [GenerationRequest(prompt=p, seed=s, **extra) for p, s in zip(PROMPTS, seeds)]


# ---- text ---------------------------------------------------------------------------------------------------------

def test_text_batch_of_three(text_model, settings):
    params = options("text", {"max_new_tokens": 12}, settings)
    outputs = collect(text_model, requests(), params)[0]
    assert len(outputs) == 3
    for output in outputs:
        assert isinstance(output.text, str)
        assert 0 < output.metrics["completion_tokens"] <= 12
        assert output.metrics["prompt_tokens"] > 0
        assert output.metrics["tokens_per_s"] > 0
    # Different seeds, different samples.
    assert len({o.text for o in outputs}) > 1


def test_text_uses_chat_template_with_system_prompt(text_model):
    formatted = text_model.format_prompt(GenerationRequest("Hello", system="Be brief"))
    assert formatted.startswith("<|system|>\nBe brief") and formatted.endswith("<|assistant|>\n")
    assert "<|user|>\nHello" in formatted


@pytest.mark.parametrize("do_sample", [True, False])
def test_text_cell_alone_reproduces_batched_cell(text_model, settings, do_sample):
    params = options("text", {"max_new_tokens": 16, "do_sample": do_sample, "temperature": 1.0}, settings)
    batched = collect(text_model, requests(), params)[0]
    for index, request in enumerate(requests()):
        alone = collect(text_model, [request], params)[0][0]
        assert alone.text == batched[index].text
        assert alone.metrics["completion_tokens"] == batched[index].metrics["completion_tokens"]


def test_text_streams_every_row(text_model, settings):
    params = options("text", {"max_new_tokens": 8}, settings)
    outputs, events = collect(text_model, requests(), params)
    partial = [e for e in events if isinstance(e, Partial)]
    assert len(partial) >= 2
    latest = {}
    for event in partial:
        latest.update(event.texts)
    assert [latest.get(i, "") for i in range(3)] == [o.text for o in outputs]
    # Every partial text arrives before its cell's Finished event.
    first_finished = next(i for i, e in enumerate(events) if isinstance(e, Finished))
    assert all(isinstance(e, Partial) for e in events[:first_finished])
    assert outputs[0].metrics["formatted_prompt"].startswith("<|user|>")
    assert outputs[0].metrics["ttft_s"] is not None


@pytest.mark.parametrize("modality, values", [
    ("text", {"max_new_tokens": 400, "do_sample": False}),
    ("image", {"width": 64, "height": 64, "num_inference_steps": 40, "guidance_scale": 0.0}),
    ("music", {"duration_s": 8.0}),
])
def test_closing_the_stream_stops_the_model_within_a_step(catalog, settings, modality, values):
    """Stop goes through the libraries' own mechanisms and ends the batch mid-way, not after it."""
    import time

    model = load(catalog, modality, f"tiny-{modality}")
    stream = model.stream(requests(), options(modality, values, settings))
    seen, gaps, last = 0, [], time.perf_counter()
    for event in stream:
        seen += 1
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
        assert not isinstance(event, Finished)
        if seen == 3:
            break
    started = time.perf_counter()
    stream.close()                      # waits for the model call to end
    # Within a few steps, measured against this run's own steps (a busy machine makes every step slower alike);
    # running the rest of the batch would take far longer.
    assert time.perf_counter() - started < max(5.0, 5 * max(gaps[1:]))
    # The model is free again at once and still works.
    assert collect(model, requests()[:1], options(modality, values | _short(modality), settings))[0][0] is not None


def _short(modality: str) -> dict:
    return {"text": {"max_new_tokens": 2}, "image": {"num_inference_steps": 1}, "music": {"duration_s": 0.5}}[modality]


# ---- image --------------------------------------------------------------------------------------------------------

IMAGE_PARAMS = {"width": 64, "height": 64, "num_inference_steps": 3, "guidance_scale": 4.0}


def test_image_batch_of_three(image_model, settings):
    params = options("image", IMAGE_PARAMS, settings)
    outputs = collect(image_model, requests(negative_prompt="blurry"), params)[0]
    assert [o.image.size for o in outputs] == [(64, 64)] * 3
    assert all(o.image.mode == "RGB" for o in outputs)


@pytest.mark.parametrize("guidance", [0.0, 4.0])
def test_image_cell_alone_is_bit_identical(image_model, settings, guidance):
    params = options("image", {**IMAGE_PARAMS, "guidance_scale": guidance}, settings)
    batched = collect(image_model, requests(negative_prompt="blurry"), params)[0]
    alone = collect(image_model, [requests(negative_prompt="blurry")[2]], params)[0][0]
    assert np.array_equal(np.asarray(alone.image), np.asarray(batched[2].image))
    assert not np.array_equal(np.asarray(batched[0].image), np.asarray(batched[1].image))


# ---- music --------------------------------------------------------------------------------------------------------

def test_music_batch_of_three_has_requested_length(music_model, settings):
    params = options("music", {"duration_s": 1.0}, settings)
    outputs = collect(music_model, requests(), params)[0]
    assert len(outputs) == 3
    for output in outputs:
        rate, waveform = output.audio
        assert rate == 32000
        assert waveform.dtype == np.float32 and waveform.shape == (32000,)
        assert output.metrics["realtime_factor"] > 0


def test_music_duration_uses_the_models_frame_rate(music_model):
    assert music_model.frame_rate == 50


@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_music_cell_alone_is_bit_identical(music_model, settings, temperature):
    params = options("music", {"duration_s": 0.5, "temperature": temperature}, settings)
    batched = collect(music_model, requests(), params)[0]
    alone = collect(music_model, [requests()[1]], params)[0][0]
    assert np.array_equal(alone.audio[1], batched[1].audio[1])


def test_wav_bytes_round_trip():
    from playground.engines.base import to_wav_bytes

    wave_bytes = to_wav_bytes(32000, np.linspace(-2, 2, 16000, dtype=np.float32))
    with wave.open(io.BytesIO(wave_bytes)) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getnframes()) == (32000, 1, 16000)


# ---- catalog ------------------------------------------------------------------------------------------------------

def test_second_get_reuses_the_warm_model(catalog, text_model):
    loads = catalog.loads
    assert load(catalog, "text", "tiny-text") is text_model
    assert catalog.loads == loads


def test_lru_evicts_the_least_recently_used(settings):

    small = Catalog(settings.replace(max_models_loaded=2))
    text = load(small, "text", "tiny-text")
    load(small, "image", "tiny-image")
    load(small, "text", "tiny-text")            # text is now the most recent
    music = load(small, "music", "tiny-music")  # evicts image
    assert small.loaded() == [("text", "tiny-text"), ("music", "tiny-music")]
    assert small.loads == 3
    load(small, "image", "tiny-image")          # evicts text, which releases its weights
    assert small.loaded() == [("music", "tiny-music"), ("image", "tiny-image")]
    assert text.model is None and music.model is not None and small.loads == 4


def test_offline_presets_are_the_tiny_models(catalog):
    assert [p.id for p in catalog.presets("image")] == ["tiny-image"]
    assert catalog.default_model("music") == "tiny-music"


def test_local_folder_loads_through_the_same_path(catalog, text_model):
    folder = Path(text_model.source)
    assert modality_of_folder(folder) == "text"
    resolved = catalog.resolve("text", str(folder))
    assert Path(resolved.source) == folder.resolve() and resolved.engine.name == "local-text"
    assert resolved.revision.startswith("local:")


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
        load(catalog, modality, model)
    assert error.value.field == "model"


def test_folder_of_the_wrong_kind_is_refused(catalog, image_model):
    with pytest.raises(InvalidInput, match="holds a image model"):
        catalog.resolve("text", image_model.source)


@pytest.mark.parametrize("modality, params, field, allowed", [
    ("image", {"num_inference_steps": -1}, "num_inference_steps", "must be at least 1"),
    ("image", {"num_inference_steps": 120}, "num_inference_steps", "at most 100 on this server"),
    ("image", {"width": 100000}, "width", "must be at most 2048"),
    ("image", {"height": 100}, "height", "multiple of 8"),
    ("music", {"duration_s": 60}, "duration_s", "at most 30 on this server"),
    ("text", {"max_new_tokens": 2000}, "max_new_tokens", "at most 1024 on this server"),
    ("text", {"temperature": "hot"}, "temperature", "must be a number"),
    ("text", {"top_p": float("nan")}, "top_p", "finite"),
    ("text", {"max_tokens": 5}, "max_tokens", "unknown option"),
    ("text", {"max_new_tokens": True}, "max_new_tokens", "must be a whole number, got true"),
    ("text", {"max_new_tokens": 1.5}, "max_new_tokens", "must be a whole number, got 1.5"),
])
def test_out_of_range_params_name_the_field(settings, modality, params, field, allowed):
    with pytest.raises(InvalidInput, match=allowed) as error:
        options(modality, params, settings)
    assert error.value.field == field


def test_empty_prompt_is_refused_and_the_model_keeps_working(text_model, settings):
    params = options("text", {"max_new_tokens": 4}, settings)
    with pytest.raises(InvalidInput, match="prompt: is empty"):
        collect(text_model, [GenerationRequest("   ")], params)[0]
    assert collect(text_model, [GenerationRequest("still here")], params)[0][0].text is not None


def test_prompt_longer_than_the_context_is_refused(text_model, settings):
    params = options("text", {"max_new_tokens": 1000}, settings)
    with pytest.raises(InvalidInput, match="context of 2048"):
        collect(text_model, [GenerationRequest("word " * 1500)], params)[0]


# ---- tiny models ----------------------------------------------------------------------------------------------

def test_tiny_image_tokenizer_knows_the_words(image_model):
    ids = image_model.pipe.tokenizer("a red fox at golden hour")["input_ids"]
    assert image_model.pipe.tokenizer.unk_token_id not in ids[1:-1]


# ---- real chat templates, the model's own sampling values, the cache argument ----------------------------------------

# The public chat templates of Qwen2.5 (Qwen/Qwen2.5-*-Instruct tokenizer_config.json, tools branch included) and
# SmolLM2 (HuggingFaceTB/SmolLM2-*-Instruct): both add a default system prompt when the messages have none.
QWEN25_TEMPLATE = (
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are "
    "provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n")
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
# Qwen2.5-0.5B-Instruct's generation_config.json sampling values.
QWEN25_SAMPLING = {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.1}


def _tiny_copy(text_model, folder: Path, template: str | None = None, sampling: dict | None = None) -> Path:
    """The tiny text model saved again with a real chat template or real generation_config sampling values."""
    import shutil

    from transformers import AutoTokenizer, GenerationConfig

    shutil.copytree(text_model.source, folder)
    if template is not None:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        tokenizer.chat_template = template
        tokenizer.save_pretrained(folder)
    if sampling is not None:
        config = GenerationConfig.from_pretrained(folder)
        config.update(do_sample=True, **sampling)
        config.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("template, default", [
    (QWEN25_TEMPLATE, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
    (SMOLLM2_TEMPLATE, "You are a helpful AI assistant named SmolLM, trained by Hugging Face")])
def test_an_explicit_empty_system_message_replaces_the_templates_default(text_model, settings, tmp_path, template,
                                                                         default):
    from playground.engines.chat import preview

    folder = _tiny_copy(text_model, tmp_path / "chat", template=template)
    catalog = Catalog(settings.replace(max_models_loaded=1))
    model = load(catalog, "text", str(folder))
    user = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    expected = {None: f"<|im_start|>system\n{default}<|im_end|>\n{user}",
                "": f"<|im_start|>system\n<|im_end|>\n{user}",
                "Be terse.": f"<|im_start|>system\nBe terse.<|im_end|>\n{user}"}
    params = options("text", {"max_new_tokens": 2}, settings)
    for system, text in expected.items():
        output = collect(model, [GenerationRequest("Hi", seed=1, system=system)], params)[0][0]
        assert output.metrics["formatted_prompt"] == text, system
        assert preview(catalog, str(folder), "Hi", system) == text       # what a rendered-prompt preview shows
    catalog.clear()
    assert preview(catalog, str(folder), "Hi", "") == expected[""]       # the tokenizer alone, no weights loaded


def test_a_template_file_can_switch_the_default_system_prompt_off():
    from playground.templates import expand, parse_template

    text = "---\nname: t\nmodality: text\nsystem: ''\nvariants: {a: 'Hi {{ x }}'}\nvariables: {x: {default: y}}\n---\n"
    cells = expand(parse_template(text))
    assert [cell.system for cell in cells] == [""]


def test_sampling_uses_the_models_own_generation_config_unless_set(text_model, settings, tmp_path):
    folder = _tiny_copy(text_model, tmp_path / "qwen-sampling", sampling=QWEN25_SAMPLING)
    catalog = Catalog(settings.replace(max_models_loaded=2))
    own, plain = load(catalog, "text", str(folder)), load(catalog, "text", text_model.source)
    batch = requests()
    unset = collect(own, batch, options("text", {"max_new_tokens": 8}, settings))[0]
    assert unset[0].metrics["sampling"] == \
        "temperature 0.7 (model), top_k 20 (model), top_p 0.8 (model), repetition_penalty 1.1 (model)"
    explicit = collect(plain, batch, options("text", {"max_new_tokens": 8, **QWEN25_SAMPLING}, settings))[0]
    assert [o.text for o in unset] == [o.text for o in explicit]          # the same values, the same tokens
    assert explicit[0].metrics["sampling"].startswith("temperature 0.7 (set), top_k 20 (set)")
    mine = collect(own, batch[:1], options("text", {"max_new_tokens": 8, "top_k": 5}, settings))[0][0]
    assert "top_k 5 (set)" in mine.metrics["sampling"] and "top_p 0.8 (model)" in mine.metrics["sampling"]
    none_set = collect(plain, batch[:1], options("text", {"max_new_tokens": 2}, settings))[0][0]
    assert none_set.metrics["sampling"] == \
        "temperature 0.7 (default), top_k 50 (default), top_p 0.95 (default), repetition_penalty 1 (default)"
    catalog.clear()


def test_unset_sampling_options_stay_unset_until_the_engine_decides(settings):
    from playground.registry import LocalTextOptions, option_specs

    checked = options("text", {"max_new_tokens": 8, "temperature": None}, settings)
    assert checked["temperature"] is checked["top_k"] is checked["top_p"] is checked["repetition_penalty"] is None
    specs = {spec.name: spec for spec in option_specs(LocalTextOptions, settings)}
    assert specs["temperature"].kind is float and specs["top_k"].kind is int and specs["top_k"].default is None
    with pytest.raises(InvalidInput, match="must be a whole number"):
        options("text", {"top_k": True}, settings)


def test_a_text_run_passes_the_cache_the_way_transformers_asks(text_model, settings):
    """No `past_key_values` into forward (removed in transformers 5.40) and so no FutureWarning on every run."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collect(text_model, [GenerationRequest("A brand new prompt for the head cache", system="Fresh.")],
                options("text", {"max_new_tokens": 3}, settings))
    assert not [w for w in caught if "past_key_values" in str(w.message)]
