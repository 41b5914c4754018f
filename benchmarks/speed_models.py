"""Random-weight models with the architectures of real checkpoints, built offline for benchmarks/bench_speed.py.

Sizes are copied from the published config files; weights are random, so the timings reflect the real compute
without downloading anything. Each builder writes a folder that loads back through `from_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

# SmolLM2's chat template and default system prompt (HuggingFaceTB/SmolLM2-360M-Instruct tokenizer_config.json).
SMOL_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def build_smollm2_360m(folder: Path) -> None:
    """SmolLM2-360M (hidden 960, 32 layers, 15 heads, 5 kv heads, intermediate 2560, vocab 49152), random weights
    saved in bfloat16 as the real checkpoint is, with a byte-level BPE tokenizer of 49152 tokens (trained on a
    fixed corpus, so it loads like the real one rather than as tens of thousands of added tokens) and SmolLM2's
    chat template."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_bpe_49152(specials), bos_token="<|im_start|>",
                                        eos_token="<|im_end|>", pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = SMOL_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                         num_attention_heads=15, num_key_value_heads=5, max_position_embeddings=8192,
                         rope_theta=100000.0, tie_word_embeddings=True, rms_norm_eps=1e-5,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


# A fixed corpus, so the tokenizer (and with it the model) comes out the same on every machine.
_CORPUS = """
Write a short tagline for a solar powered lantern. You are a helpful assistant. Answer in one sentence.
Summarize the following text in three bullet points. Classify the review as positive, negative or neutral.
Extract the names, dates and places as JSON. Think step by step, then give the final answer.
A photograph of a red fox in a snowy forest at golden hour, soft light, shallow depth of field, 35mm.
An oil painting of a lighthouse on a cliff, dramatic clouds, wide angle, highly detailed, cinematic lighting.
A watercolor illustration of a city street in the rain, people with umbrellas, reflections, muted colors.
Lo-fi hip hop beat with mellow piano chords, vinyl crackle and a slow relaxed groove at 80 BPM.
Upbeat electronic dance track with a driving four on the floor kick, bright synth leads and a big drop.
Calm acoustic guitar ballad, warm and intimate, recorded in a small room, gentle strings in the chorus.
The quick brown fox jumps over the lazy dog. The weather today is sunny with a light breeze from the west.
Customers love the long battery life, but some say the screen is too dim outside in bright sunlight.
Please rewrite this email in a friendly, professional tone and keep it under one hundred words.
"""


def _bpe_49152(specials: list[str]):
    """A byte-level BPE tokenizer of exactly 49152 tokens, trained on English sentences and made-up words drawn from
    a fixed seed."""
    import random

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    draw = random.Random(0)
    syllables = [a + b for a in "bcdfghjklmnprstvwz" for b in "aeiouy"] + list("aeiou")
    words = [" ".join("".join(draw.choice(syllables) for _ in range(draw.randint(1, 5))) for _ in range(20))
             for _ in range(20000)]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=49152, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    english = _CORPUS.splitlines() + ["You are a helpful AI assistant named SmolLM, trained by Hugging Face"]
    tokenizer.train_from_iterator(english * 50 + words, trainer=trainer)
    return tokenizer


def build_sd_turbo(folder: Path, tiny_image: Path) -> None:
    """SD-Turbo's UNet and VAE (stabilityai/sd-turbo), random weights; the tiny text encoder stands in for
    OpenCLIP-H (it runs once per cell, the UNet runs every step)."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel

    tiny = StableDiffusionPipeline.from_pretrained(tiny_image)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=tiny.text_encoder.config.hidden_size,
                                attention_head_dim=[5, 10, 20, 20], use_linear_projection=True,
                                block_out_channels=(320, 640, 1280, 1280))
    vae = AutoencoderKL(block_out_channels=[128, 256, 512, 512], latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                        layers_per_block=2, sample_size=512)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=tiny.text_encoder, tokenizer=tiny.tokenizer, unet=unet,
                                   scheduler=tiny.scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)


def build_musicgen_small(folder: Path, tiny_music: Path) -> None:
    """MusicGen-small's decoder (24 layers, 1024 wide, 4 codebooks of 2048) and its 32 kHz EnCodec, random weights;
    the tiny T5 text encoder stands in for t5-base."""
    import torch
    from transformers import (AutoProcessor, EncodecConfig, MusicgenConfig, MusicgenDecoderConfig,
                              MusicgenForConditionalGeneration)

    tiny = MusicgenForConditionalGeneration.from_pretrained(tiny_music)
    codec = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=64, hidden_size=128,
                          upsampling_ratios=[8, 5, 4, 4], codebook_size=2048, target_bandwidths=[2.2],
                          num_lstm_layers=2, normalize=False)
    decoder = MusicgenDecoderConfig(vocab_size=2048, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                    ffn_dim=4096, num_codebooks=4, pad_token_id=2048, bos_token_id=2048,
                                    max_position_embeddings=2048)
    config = MusicgenConfig(text_encoder=tiny.config.text_encoder, audio_encoder=codec, decoder=decoder)
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(config)
    model.generation_config.pad_token_id = model.generation_config.decoder_start_token_id = 2048
    model.save_pretrained(folder)
    AutoProcessor.from_pretrained(tiny_music).save_pretrained(folder)


def built(folder: Path, build, *args) -> Path:
    """The folder, built once (kept between runs with --data-dir)."""
    if not (folder / ".built").exists():
        from playground.engines import compute

        folder.mkdir(parents=True, exist_ok=True)
        compute.run(build, folder, *args)     # torch only on the compute thread (playground/engines/compute.py)
        (folder / ".built").write_text("random weights\n")
    return folder
