"""Train tiny-music: a MusicGen (T5 text encoder, EnCodec codec, 4-codebook decoder) on the music toy world.

The codec's decoder is not trained but written (`build_codec`): a lookup from a frame's code to the world's 640
samples of it, so it decodes the world's codes exactly. The text encoder and the decoder then learn together to
predict those codes, in MusicGen's delay pattern, from the description (one in ten left empty, for classifier-free
guidance); the frames where a note starts or stops, which the description decides, weigh more in the loss than the
frames that go on. The codec's encoder keeps its random weights: generation never uses it. Fixed seeds and step
counts, one thread, deterministic algorithms.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import numpy as np

from .music import CODES, CUES, FILLERS, SAMPLE_RATE, STYLES, codes, describe, piece_of, synthesize

SEED = 0
CODEBOOK_SIZE = 64
NUM_CODEBOOKS = 4
STEPS = 3000
BATCH = 16
FRAMES = 150
LR = 2e-3
UNCONDITIONAL = 0.1
CHANGE_WEIGHT = 20.0


def make_tokenizer():
    """A word-level T5 (unigram) vocabulary of the world's words, single characters for anything else."""
    from transformers import T5Tokenizer

    text = " ".join([*CUES, *FILLERS, *STYLES, "a", "an", "the", "with", "and", "for", "bpm", "music", "of", "in"])
    words = sorted(set(re.findall(r"[a-z0-9]+", text.lower())) | {str(n) for n in range(40, 201)})
    chars = sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,.-'"))
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("▁" + w, -1.0) for w in words + ["BPM"]]
    vocab += [(c, -10.0) for c in chars] + [("▁", -5.0)]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def make_model(tokenizer):
    import torch
    from transformers import (EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, MusicgenForConditionalGeneration,
                              T5Config)

    text = T5Config(vocab_size=len(tokenizer), d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    codec = EncodecConfig(sampling_rate=SAMPLE_RATE, audio_channels=1, num_filters=10, hidden_size=32,
                          upsampling_ratios=[8, 5, 4, 4], codebook_size=CODEBOOK_SIZE, codebook_dim=32,
                          num_lstm_layers=1, target_bandwidths=[1.2], normalize=False)
    decoder = MusicgenDecoderConfig(vocab_size=CODEBOOK_SIZE, hidden_size=96, num_hidden_layers=3,
                                    num_attention_heads=4, ffn_dim=256, num_codebooks=NUM_CODEBOOKS,
                                    pad_token_id=CODEBOOK_SIZE, bos_token_id=CODEBOOK_SIZE,
                                    max_position_embeddings=2048)
    torch.manual_seed(SEED)
    model = MusicgenForConditionalGeneration(MusicgenConfig(text_encoder=text, audio_encoder=codec, decoder=decoder))
    model.generation_config.pad_token_id = CODEBOOK_SIZE
    model.generation_config.decoder_start_token_id = CODEBOOK_SIZE
    return model


def _set_weight(conv, weight) -> None:
    """Give a weight-normed convolution exactly `weight` (magnitude g, direction v; g = 0 where a slice is 0)."""
    import torch

    norm = weight.flatten(1).norm(dim=1).reshape(-1, *[1] * (weight.dim() - 1))
    conv.parametrizations.weight.original0.copy_(norm)
    conv.parametrizations.weight.original1.copy_(torch.where(norm > 0, weight, torch.ones_like(weight)))
    conv.bias.zero_()


def _same_time_tap(conv, config) -> int:
    """The tap of a convolution that reads the input at the output's own time (causal ones pad on the left)."""
    kernel = conv.conv.kernel_size[0]
    return kernel - 1 if config.use_causal_conv else kernel // 2


def build_codec(model) -> None:
    """Write the codec's decoder as a lookup: code -> the world's 640 samples of that frame.

    The first codebook's vectors are one-hot, the others zero. The first convolution copies them, the LSTM and the
    residual blocks pass their input through (zero weights, identity shortcuts), the first transposed convolution
    turns a one-hot code into the frame's samples (plus 1, so every ELU sees positive values and stays linear), the
    others hand the samples on to ever finer time steps, and the last convolution removes the 1 again.
    """
    import torch

    codec = model.audio_encoder
    decoder, config = codec.decoder, codec.config
    table = torch.from_numpy(np.stack([synthesize([code]) for code in range(CODES)]))     # (codes, 640)
    with torch.no_grad():
        for index, layer in enumerate(codec.quantizer.layers):
            embed = torch.zeros_like(layer.codebook.embed)
            if index == 0:
                embed[:CODES, :CODES] = torch.eye(CODES)
            layer.codebook.embed.copy_(embed)
            layer.codebook.embed_avg.copy_(embed)
        for module in decoder.modules():
            if isinstance(module, torch.nn.LSTM):
                for parameter in module.parameters():
                    parameter.zero_()
        convs = [m for m in decoder.layers if type(m).__name__ in ("EncodecConv1d", "EncodecConvTranspose1d")]
        first, upsamplers, last = convs[0], convs[1:-1], convs[-1]
        weight = torch.zeros_like(first.conv.weight)
        weight[:CODES, :CODES, _same_time_tap(first, config)] = torch.eye(CODES)
        _set_weight(first.conv, weight)
        width = table.shape[1]
        for stage, (up, ratio) in enumerate(zip(upsamplers, config.upsampling_ratios)):
            weight = torch.zeros_like(up.conv.weight)                      # (in, out, kernel)
            if stage == 0:
                width //= ratio                                            # samples per position after it
                for tap in range(ratio):
                    weight[:CODES, :width, tap] = table[:, tap * width:(tap + 1) * width]
                _set_weight(up.conv, weight)
                up.conv.bias[:width] = 1.0
            else:
                width //= ratio
                for tap in range(ratio):
                    weight[tap * width:(tap + 1) * width, :width, tap] = torch.eye(width)
                _set_weight(up.conv, weight)
        for block in [m for m in decoder.layers if type(m).__name__ == "EncodecResnetBlock"]:
            _set_weight(block.block[-1].conv, torch.zeros_like(block.block[-1].conv.weight))
            dim = block.shortcut.conv.weight.shape[0]
            _set_weight(block.shortcut.conv, torch.eye(dim)[:, :, None])
        weight = torch.zeros_like(last.conv.weight)
        weight[0, 0, _same_time_tap(last, config)] = 1.0
        _set_weight(last.conv, weight)
        last.conv.bias.fill_(-1.0)
    codec.eval()


def delayed(frame_codes, pad: int):
    """(batch, codebooks, frames) -> MusicGen's delay pattern, (batch, codebooks, frames + codebooks - 1)."""
    import torch

    batch, books, frames = frame_codes.shape
    out = torch.full((batch, books, frames + books - 1), pad, dtype=torch.long)
    for book in range(books):
        out[:, book, book:book + frames] = frame_codes[:, book]
    return out


def _change_weights(target, pad: int):
    """Loss weights: CHANGE_WEIGHT where the first codebook's code changes (a note starts or ends: what the
    description decides), 1 elsewhere (a note going on, which the codes before it already tell)."""
    import torch

    first = target[:, 0]
    changed = torch.zeros_like(first, dtype=torch.bool)
    changed[:, 1:] = first[:, 1:] != first[:, :-1]
    changed[:, 0] = True
    weights = torch.ones(target.shape, dtype=torch.float32)
    weights[:, 0] += (CHANGE_WEIGHT - 1) * (changed & (first != pad)).float()
    return weights


def train_decoder(model, tokenizer, steps: int, on_step=None) -> None:
    """The text encoder and the decoder learn the codes of a description (teacher forcing, delay pattern)."""
    import torch

    rng = random.Random(SEED + 3)
    pad = CODEBOOK_SIZE
    params = [p for name, p in model.named_parameters() if not name.startswith("audio_encoder.")]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 50) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s / max(steps, 1), 1.0)))))
    model.text_encoder.train()
    model.decoder.train()
    for step in range(steps):
        texts, rows = [], []
        for _ in range(BATCH):
            text = describe(rng)
            first = codes(piece_of(text), FRAMES)
            texts.append("" if rng.random() < UNCONDITIONAL else text)
            rows.append([first] + [[0] * FRAMES] * (NUM_CODEBOOKS - 1))
        target = delayed(torch.tensor(rows), pad)
        inputs = tokenizer(texts, padding=True, return_tensors="pt")
        encoded = model.text_encoder(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask)[0]
        empty = torch.tensor([t == "" for t in texts])
        encoded = encoded.masked_fill(empty[:, None, None], 0.0)
        mask = inputs.attention_mask.masked_fill(empty[:, None], 0)
        start = torch.full((BATCH, NUM_CODEBOOKS, 1), pad, dtype=torch.long)
        decoder_input = torch.cat([start, target[..., :-1]], dim=-1).reshape(BATCH * NUM_CODEBOOKS, -1)
        logits = model(encoder_outputs=(encoded,), attention_mask=mask, decoder_input_ids=decoder_input).logits
        logits = logits.reshape(BATCH, NUM_CODEBOOKS, -1, logits.shape[-1])
        labels = target.masked_fill(target == pad, -100)
        each = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                 reduction="none").reshape(labels.shape)
        weights = _change_weights(target, pad) * (labels != -100)
        loss = (each * weights).sum() / weights.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if on_step is not None:
            on_step("decoder", step + 1, steps, float(loss.detach()))
    model.eval()


def train(folder: Path, steps: int = STEPS, on_step=None) -> None:
    """Write the codec's decoder, train the text encoder and the decoder, and save model and processor."""
    import torch
    from transformers import EncodecFeatureExtractor, MusicgenProcessor

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    assert CODES <= CODEBOOK_SIZE
    tokenizer = make_tokenizer()
    model = make_model(tokenizer)
    build_codec(model)
    train_decoder(model, tokenizer, steps, on_step)
    model.save_pretrained(folder)
    processor = MusicgenProcessor(feature_extractor=EncodecFeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE),
                                  tokenizer=tokenizer)
    processor.save_pretrained(folder)
