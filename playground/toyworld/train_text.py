"""Train tiny-text: a byte-level BPE tokenizer and a 3-layer Llama with a chat template, on the text toy world.

Everything is fixed by seeds and step counts (never by time): the corpus comes from `text.corpus(seed, n)`, the
tokenizer's merges are chosen with a deterministic tie-break, and training runs on one thread with deterministic
algorithms (matrix products in bfloat16 autocast, weights in float32), so the same library versions on the same
kind of CPU write the same bytes.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path

from .text import Example, corpus

log = logging.getLogger(__name__)

SPECIALS = ["<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
VOCAB_SIZE = 2048
SEED = 0
STEPS = 1800
BATCH = 32
LR = 2e-3
WARMUP = 50
TOKENIZER_EXAMPLES = 4000


def bpe_merges(texts: list[str], vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE trained with a deterministic tie-break (the most frequent pair; among equals, the smallest),
    so every run picks the same merges. Returns (vocab, merges) for `tokenizers.models.BPE`."""
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False)
    counts: Counter = Counter()
    for text in texts:
        counts.update(piece for piece, _ in pre.pre_tokenize_str(text))
    words = {tuple(piece): n for piece, n in counts.items()}
    vocab = list(SPECIALS) + sorted(pre_tokenizers.ByteLevel.alphabet())
    merges: list[tuple[str, str]] = []
    while len(vocab) < vocab_size:
        pairs: Counter = Counter()
        for symbols, n in words.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        vocab.append(best[0] + best[1])
        words = {_merge(symbols, best): n for symbols, n in words.items()}
    return {token: index for index, token in enumerate(vocab)}, merges


def _merge(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def make_tokenizer(examples: list[Example]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    texts = [part for e in examples for part in (e.system or "", e.prompt, e.reply) if part]
    vocab, merges = bpe_merges(texts, VOCAB_SIZE)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(SPECIALS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|end|>",
                                        pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def messages(example: Example) -> list[dict]:
    turns = [{"role": "user", "content": example.prompt}]
    return ([{"role": "system", "content": example.system}] if example.system else []) + turns


def encode(tokenizer, example: Example) -> tuple[list[int], int]:
    """(token ids of the chat-formatted prompt and the reply with its end token, where the reply starts)."""
    prompt = tokenizer.apply_chat_template(messages(example), tokenize=False, add_generation_prompt=True)
    head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    tail = tokenizer(example.reply + "<|end|>", add_special_tokens=False)["input_ids"]
    return head + tail, len(head)


def make_model(tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=192, intermediate_size=512, num_hidden_layers=3,
                         num_attention_heads=6, num_key_value_heads=3, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(SEED)
    return LlamaForCausalLM(config)


def _batch(rows: list[tuple[list[int], int]], pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (ids, start) in enumerate(rows):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        labels[row, start:len(ids)] = torch.tensor(ids[start:])      # loss on the reply only
        mask[row, :len(ids)] = 1
    return input_ids, mask, labels


def train(folder: Path, steps: int = STEPS, on_step=None) -> None:
    """Build the tokenizer, train the model for `steps` steps and save both to `folder`."""
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tokenizer = make_tokenizer(corpus(SEED + 1, TOKENIZER_EXAMPLES))
    model = make_model(tokenizer)
    data = [encode(tokenizer, e) for e in corpus(SEED + 2, steps * BATCH)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.98), weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / WARMUP) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s / max(steps, 1), 1.0)))))
    model.train()
    for step in range(steps):
        input_ids, mask, labels = _batch(data[step * BATCH:(step + 1) * BATCH], tokenizer.pad_token_id)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if on_step is not None:
            on_step(step + 1, steps, float(loss.detach()))
    model.eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
