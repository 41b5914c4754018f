"""Train tiny-image: a Stable Diffusion pipeline (AutoencoderKL, CLIPTextModel, UNet2DConditionModel, DDIM) on the
image toy world at 32x32.

First the autoencoder learns to compress every distinct scene to 4x8x8 latents; then the text encoder and the
UNet learn together to denoise those latents from the scene's prompt (one prompt in ten left empty, for
classifier-free guidance). Fixed seeds and step counts, one thread, deterministic algorithms.
"""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

from .image import (BACKGROUNDS, COLOURS, COUNT_WORDS, PLURALS, POSITION_WORDS, POSITIONS, SHAPES, SIZE, SIZES, Scene,
                    prompt, random_scene, render)

SEED = 0
VAE_STEPS = 1200
VAE_BATCH = 32
STEPS = 3000
BATCH = 64
LR = 1e-3
UNCONDITIONAL = 0.1
TRAIN_TIMESTEPS = 1000
SPECIALS = ["<|startoftext|>", "<|endoftext|>"]
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-+&/()"
MAX_TOKENS = 32


def all_scenes() -> list[Scene]:
    """Every scene the world draws: each colour, shape and background at every size and position, and two or
    three small ones in a row."""
    single = [Scene(c, s, b, size, p) for c, s, b, size, p in
              itertools.product(COLOURS, SHAPES, BACKGROUNDS, SIZES, POSITIONS)]
    several = [Scene(c, s, b, "small", "center", n) for c, s, b, n in
               itertools.product(COLOURS, SHAPES, BACKGROUNDS, (2, 3))]
    return single + several


def world_words() -> list[str]:
    """Every word the world's prompts use."""
    text = " ".join([*COUNT_WORDS.values(), *SIZES, *COLOURS, *SHAPES, *PLURALS.values(), *POSITION_WORDS.values(),
                     *BACKGROUNDS, "on a background"])
    return sorted(set(text.split()))


def clip_merges(words: list[str]) -> list[tuple[str, str]]:
    """CLIP-style BPE merges (a word's last character carries `</w>`) until every world word is one token, chosen
    with a deterministic tie-break (the most frequent pair; among equals, the smallest)."""
    pieces = {tuple(word[:-1]) + (word[-1] + "</w>",) for word in words}
    merges: list[tuple[str, str]] = []
    while any(len(p) > 1 for p in pieces):
        counts: dict[tuple[str, str], int] = {}
        for symbols in pieces:
            for pair in zip(symbols, symbols[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        merged = set()
        for symbols in pieces:
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged.add(tuple(out))
        pieces = merged
    return merges


def make_tokenizer():
    """CLIP's tokenizer with single characters and the merges that make each world word one token: written out,
    not trained, so it never varies. Prompts are short, so 32 positions are enough."""
    from transformers import CLIPTokenizer

    merges = clip_merges(world_words())
    tokens = SPECIALS + list(ALPHABET) + [ch + "</w>" for ch in ALPHABET] + [a + b for a, b in merges]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(dict.fromkeys(tokens))}, merges=merges,
                         model_max_length=MAX_TOKENS)


def make_components(tokenizer):
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(SEED)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 64),
                        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        layers_per_block=1, norm_num_groups=8, sample_size=SIZE)
    torch.manual_seed(SEED + 1)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=MAX_TOKENS, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, projection_dim=64))
    torch.manual_seed(SEED + 2)
    unet = UNet2DConditionModel(sample_size=SIZE // 4, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                layers_per_block=1, down_block_types=("CrossAttnDownBlock2D",) * 2,
                                up_block_types=("CrossAttnUpBlock2D",) * 2, cross_attention_dim=64,
                                attention_head_dim=8, norm_num_groups=8)
    return vae, text_encoder, unet


def _pixels(scenes: list[Scene]):
    import numpy as np
    import torch

    array = np.stack([np.asarray(render(s), dtype=np.float32) for s in scenes]) / 127.5 - 1.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def train_vae(vae, images, steps: int, on_step=None) -> None:
    import torch

    generator = torch.Generator().manual_seed(SEED + 3)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=LR, weight_decay=0.0)
    vae.train()
    for step in range(steps):
        batch = images[torch.randint(0, len(images), (VAE_BATCH,), generator=generator)]
        posterior = vae.encode(batch).latent_dist
        latents = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        decoded = vae.decode(latents).sample
        kl = posterior.kl().mean() / latents[0].numel()
        loss = torch.nn.functional.l1_loss(decoded, batch) + 1e-3 * kl
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if on_step is not None:
            on_step("vae", step + 1, steps, float(loss.detach()))
    vae.eval()


def encode_all(vae, images):
    """The latent mean of every scene, and the factor that scales them to unit variance."""
    import torch

    with torch.no_grad():
        latents = torch.cat([vae.encode(images[i:i + 128]).latent_dist.mean for i in range(0, len(images), 128)])
    scale = 1.0 / float(latents.std())
    return latents * scale, scale


def _ids(tokenizer, prompts: list[str]):
    return tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def train_denoiser(text_encoder, unet, tokenizer, scenes, latents, steps: int, on_step=None) -> None:
    import torch
    from diffusers import DDPMScheduler

    noise_schedule = DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="linear")
    index = {scene: i for i, scene in enumerate(scenes)}
    rng = random.Random(SEED + 4)
    generator = torch.Generator().manual_seed(SEED + 5)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 100) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s / max(steps, 1), 1.0)))))
    unet.train()
    text_encoder.train()
    for step in range(steps):
        drawn = [random_scene(rng) for _ in range(BATCH)]
        prompts = ["" if rng.random() < UNCONDITIONAL else prompt(s, rng) for s in drawn]
        clean = latents[torch.tensor([index[s] for s in drawn])]
        noise = torch.randn(clean.shape, generator=generator)
        timesteps = torch.randint(0, TRAIN_TIMESTEPS, (BATCH,), generator=generator)
        noisy = noise_schedule.add_noise(clean, noise, timesteps)
        context = text_encoder(_ids(tokenizer, prompts))[0]
        loss = torch.nn.functional.mse_loss(unet(noisy, timesteps, encoder_hidden_states=context).sample, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if on_step is not None:
            on_step("denoiser", step + 1, steps, float(loss.detach()))
    unet.eval()
    text_encoder.eval()


def train(folder: Path, steps: int = STEPS, vae_steps: int = VAE_STEPS, on_step=None) -> None:
    """Train every component and save the pipeline to `folder` (loads with StableDiffusionPipeline)."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tokenizer = make_tokenizer()
    vae, text_encoder, unet = make_components(tokenizer)
    scenes = all_scenes()
    images = _pixels(scenes)
    train_vae(vae, images, vae_steps, on_step)
    latents, scale = encode_all(vae, images)
    vae.register_to_config(scaling_factor=scale)
    train_denoiser(text_encoder, unet, tokenizer, scenes, latents, steps, on_step)
    scheduler = DDIMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)
