"""Deterministic tiny models, built offline from configs and saved like any checkpoint.

When the hub cannot be reached, the app uses these: random weights, so outputs are noise, but they are loaded
back with `from_pretrained` through exactly the code real checkpoints take, so every feature works offline.
Builds are versioned: bump TINY_VERSION when a builder changes so stale folders are rebuilt.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable

from . import compute

TINY_VERSION = 3
TINY_MODELS = {"tiny-text": "text", "tiny-image": "image", "tiny-music": "music"}

# A fixed corpus, so the tokenizers (and with them the models) come out the same on every machine.
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

_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_lock = threading.Lock()


def tiny_model_path(models_dir: Path, name: str) -> Path:
    """The folder of a tiny model, built on first use (safe against concurrent builders)."""
    if name not in TINY_MODELS:
        raise KeyError(f"unknown tiny model {name!r}; known: {', '.join(TINY_MODELS)}")
    return ensure_built(Path(models_dir) / f"{name}-v{TINY_VERSION}", _BUILDERS[name])


def tiny_model_ready(models_dir: Path, name: str) -> bool:
    """Whether the tiny model's folder is complete (built before, here or by another process): using it only loads
    it."""
    return (Path(models_dir) / f"{name}-v{TINY_VERSION}" / ".complete").exists()


def ensure_built(target: Path, build: Callable[[Path], None],
                 note: str = "built offline with random weights by Prompt Playground") -> Path:
    """`target`, built on first use: into a scratch folder beside it, marked complete, then renamed into place
    (one builder at a time in this process; a half-built folder is never seen)."""
    with _lock:
        if not (target / ".complete").exists():
            _build_atomically(target, build, note)
    return target


def _build_atomically(target: Path, build: Callable[[Path], None], note: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        compute.run(build, scratch)
        (scratch / ".complete").write_text(note + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(scratch, target)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


def _bpe_tokenizer(vocab_size: int, special: list[str]):
    """A byte-level BPE tokenizer trained on the fixed corpus (the same ids in every process)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)
    return tokenizer


def clip_vocab(special: list[str]) -> dict[str, int]:
    """A character-level CLIP vocabulary with no merges: written out, not trained, because the BPE trainer breaks
    ties between equally frequent pairs differently in each process, which gave each build different ids."""
    alphabet = sorted(set(_CORPUS.lower()) - set(" \n")) + list("abcdefghijklmnopqrstuvwxyz0123456789")
    tokens = list(dict.fromkeys(special + alphabet + [ch + "</w>" for ch in alphabet]))
    return {token: index for index, token in enumerate(tokens)}


def build_tiny_text(folder: Path) -> None:
    """A 2-layer Llama with a chat template: exercises the chat-template path of real instruct models."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_bpe_tokenizer(600, specials), bos_token="<|endoftext|>",
                                        eos_token="<|end|>", pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = _CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    # Random weights pick byte tokens as often as words; suppressing the unprintable ones (a standard
    # generation_config field, applied by generate) keeps the noise readable as word salad.
    model.generation_config.suppress_tokens = [
        i for i in range(len(tokenizer)) if not _printable(tokenizer.decode([i]))]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _printable(text: str) -> bool:
    return bool(text) and "\ufffd" not in text and all(ch.isprintable() or ch in " \n" for ch in text)


def build_tiny_image(folder: Path) -> None:
    """A tiny Stable Diffusion pipeline (the shape of diffusers' own test fixtures): 64 px images in milliseconds."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = CLIPTokenizer(vocab=clip_vocab(specials), merges=[], model_max_length=77)

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=16, attention_head_dim=4)
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=[16, 32], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        norm_num_groups=16, sample_size=64)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, projection_dim=32))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="trailing", steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)


def build_tiny_music(folder: Path) -> None:
    """A tiny MusicGen (T5 text encoder, EnCodec codec, 2-layer decoder) at MusicGen's real 32 kHz / 50 Hz framing."""
    import torch
    from transformers import (EncodecConfig, EncodecFeatureExtractor, MusicgenConfig, MusicgenDecoderConfig,
                              MusicgenForConditionalGeneration, MusicgenProcessor, T5Config, T5Tokenizer)

    words = sorted({w.strip(".,").lower() for w in _CORPUS.split() if w.strip(".,")})
    chars = sorted(set("".join(words)))
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("▁" + w, -float(i % 7)) for i, w in enumerate(words)]
    vocab += [(c, -10.0) for c in chars] + [("▁", -5.0)]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    codebook_size = 64
    text_config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                           pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    codec_config = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=4, hidden_size=16,
                                 upsampling_ratios=[8, 5, 4, 4], codebook_size=codebook_size, codebook_dim=16,
                                 num_lstm_layers=1, target_bandwidths=[2.2], normalize=False)
    decoder_config = MusicgenDecoderConfig(vocab_size=codebook_size, hidden_size=32, num_hidden_layers=2,
                                           num_attention_heads=4, ffn_dim=64, num_codebooks=4,
                                           pad_token_id=codebook_size, bos_token_id=codebook_size,
                                           max_position_embeddings=2048)
    config = MusicgenConfig(text_encoder=text_config, audio_encoder=codec_config, decoder=decoder_config)
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(config)
    model.generation_config.pad_token_id = codebook_size
    model.generation_config.decoder_start_token_id = codebook_size
    model.save_pretrained(folder)
    processor = MusicgenProcessor(feature_extractor=EncodecFeatureExtractor(feature_size=1, sampling_rate=32000),
                                  tokenizer=tokenizer)
    processor.save_pretrained(folder)


_BUILDERS: dict[str, Callable[[Path], None]] = {
    "tiny-text": build_tiny_text, "tiny-image": build_tiny_image, "tiny-music": build_tiny_music}
