"""Tiny random-weight CLIP and CLAP scorers, built offline from configs and saved like any checkpoint.

Their scores are meaningless (random weights); they exist so that every scoring path, including loading through
`from_pretrained`, runs without the hub. Builds are versioned: bump SCORER_TINY_VERSION when a builder changes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable

from ..engines import compute

SCORER_TINY_VERSION = 4
TINY_SCORERS = ("tiny-clip", "tiny-clap")
MEANINGLESS_NOTE = "tiny random-weight scorer built offline: its scores are meaningless"

# A fixed corpus, so the tokenizers (and with them the models) come out the same on every machine.
_CORPUS = """
a photograph of a red fox in a snowy forest at golden hour, soft light, shallow depth of field.
an oil painting of a lighthouse on a cliff, dramatic clouds, wide angle, highly detailed, cinematic lighting.
a watercolor illustration of a city street in the rain, people with umbrellas, reflections, muted colors.
lo-fi hip hop beat with mellow piano chords, vinyl crackle and a slow relaxed groove at 80 bpm.
upbeat electronic dance track with a driving kick, bright synth leads and a big drop.
calm acoustic guitar ballad, warm and intimate, gentle strings in the chorus. a cat, a dog, a tree, the sea.
"""

# CLIP's character vocabulary: these characters and their word-final forms.
_CLIP_ALPHABET = ",-.0358abcdefghijklmnopqrstuvwxyz" + "abcdefghijklmnopqrstuvwxyz0123456789"

_lock = threading.Lock()


def clip_vocab(special: list[str]) -> dict[str, int]:
    """A character-level CLIP vocabulary with no merges: written out, not trained, because the BPE trainer breaks
    ties between equally frequent pairs differently in each process, which gave each build different ids."""
    alphabet = list(_CLIP_ALPHABET)
    tokens = list(dict.fromkeys(special + alphabet + [ch + "</w>" for ch in alphabet]))
    return {token: index for index, token in enumerate(tokens)}


def ensure_built(target: Path, build: Callable[[Path], None], note: str) -> Path:
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


def tiny_scorer_path(models_dir: Path, name: str) -> Path:
    """The folder of a tiny scorer, built on first use."""
    if name not in _BUILDERS:
        raise KeyError(f"unknown tiny scorer {name!r}; known: {', '.join(TINY_SCORERS)}")
    return ensure_built(Path(models_dir) / f"{name}-v{SCORER_TINY_VERSION}", _BUILDERS[name], MEANINGLESS_NOTE)


def _bpe(vocab_size: int, special: list[str], *, clip_style: bool):
    """(vocab, merges): CLIP's character vocabulary, or a byte-level BPE trained on the fixed corpus."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if clip_style:       # written out, not trained: the trainer breaks ties differently in each process
        return clip_vocab(special), []
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    return tokenizer.get_vocab(), merges


def build_tiny_clip(folder: Path, *, text_hidden: int = 32, text_layers: int = 2, text_heads: int = 4,
                    vision_hidden: int = 32, vision_layers: int = 2, vision_heads: int = 4, image_size: int = 32,
                    patch_size: int = 8, projection_dim: int = 16) -> None:
    """CLIPModel + CLIPProcessor from tiny configs; the keyword sizes let a benchmark build a mid-size one."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    vocab, merges = _bpe(400, ["<|startoftext|>", "<|endoftext|>"], clip_style=True)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=text_hidden, intermediate_size=text_hidden * 4,
                         num_attention_heads=text_heads, num_hidden_layers=text_layers, max_position_embeddings=77,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(hidden_size=vision_hidden, intermediate_size=vision_hidden * 4,
                           num_attention_heads=vision_heads, num_hidden_layers=vision_layers, image_size=image_size,
                           patch_size=patch_size),
        projection_dim=projection_dim)
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def build_tiny_clap(folder: Path, *, text_hidden: int = 32, text_layers: int = 2, text_heads: int = 4,
                    audio_depths: tuple[int, ...] = (1, 1), audio_heads: tuple[int, ...] = (2, 2),
                    audio_embed: int = 16, projection_dim: int = 16, max_length_s: int = 2) -> None:
    """ClapModel (RoBERTa text side, HTSAT audio side) + ClapProcessor at CLAP's real 48 kHz mel framing.

    The tiny one listens to a 2 s window (the real model: 10 s), which keeps its spectrogram image small."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab, merges = _bpe(400, specials, clip_style=False)
    tokenizer = RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    extractor = ClapFeatureExtractor(feature_size=64, sampling_rate=48000, max_length_s=max_length_s,
                                     frequency_min=50, frequency_max=14000, truncation="rand_trunc")
    config = ClapConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=text_hidden, intermediate_size=text_hidden * 4,
                         num_attention_heads=text_heads, num_hidden_layers=text_layers, max_position_embeddings=80,
                         projection_dim=projection_dim, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id),
        audio_config=dict(spec_size=_spec_size(max_length_s), num_mel_bins=64, patch_size=4, patch_stride=(4, 4), window_size=8,
                          depths=list(audio_depths), num_attention_heads=list(audio_heads),
                          patch_embeds_hidden_size=audio_embed,
                          hidden_size=audio_embed * 2 ** (len(audio_depths) - 1), projection_dim=projection_dim,
                          num_hidden_layers=len(audio_depths)),
        projection_dim=projection_dim)
    torch.manual_seed(0)
    ClapModel(config).save_pretrained(folder)
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)


def _spec_size(max_length_s: int) -> int:
    """HTSAT folds the mel frames into a square image: spec_size x (spec_size // 64) must hold every frame
    (100 frames a second at hop 480 and 48 kHz; 10 s -> 256, as in the released checkpoints)."""
    frames = max_length_s * 100 + 1
    size = 64
    while size * (size // 64) < frames:
        size *= 2
    return size


_BUILDERS: dict[str, Callable[[Path], None]] = {"tiny-clip": build_tiny_clip, "tiny-clap": build_tiny_clap}
