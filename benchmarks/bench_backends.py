"""Backend benchmark: batched vs sequential cells, and cold load vs warm reuse, for every modality.

    python benchmarks/bench_backends.py            # tiny models + mid-size random-weight models
    python benchmarks/bench_backends.py --tiny     # tiny models only (seconds)

Mid-size models use the architecture of a real checkpoint (configs below, copied from the published config files)
with random weights, so the timings reflect the real compute without downloading anything. Figures are ratios
measured in the same run: the machines are noisy, absolute numbers less so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.backends.base import GenerationRequest  # noqa: E402
from playground.backends.catalog import Catalog, backend_class  # noqa: E402
from playground.backends.tiny import tiny_model_path  # noqa: E402
from playground.settings import Settings  # noqa: E402

PROMPTS = ["A lighthouse on a cliff at dusk", "Upbeat synth pop with a driving beat",
           "Write a tagline for a solar lantern", "A calm acoustic guitar ballad"]


def build_mid_text(folder: Path) -> None:
    """SmolLM2-360M's architecture (HuggingFaceTB/SmolLM2-360M-Instruct config.json), random weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = tiny_model_path(folder.parent, "tiny-text")      # reuse its tokenizer; vocabulary size follows it
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                         num_attention_heads=15, num_key_value_heads=5, max_position_embeddings=8192,
                         rope_theta=100000.0, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build_mid_image(folder: Path) -> None:
    """SD-Turbo's UNet and VAE architecture (stabilityai/sd-turbo), random weights, the tiny text encoder."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel

    tiny = StableDiffusionPipeline.from_pretrained(tiny_model_path(folder.parent, "tiny-image"))
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


def build_mid_music(folder: Path) -> None:
    """MusicGen-small's decoder (facebook/musicgen-small: 24 layers, 1024 wide, 4 codebooks of 2048) and
    EnCodec 32 kHz codec, random weights; the tiny T5 text encoder stands in for t5-base."""
    import torch
    from transformers import (AutoProcessor, EncodecConfig, MusicgenConfig, MusicgenDecoderConfig,
                              MusicgenForConditionalGeneration)

    tiny_dir = tiny_model_path(folder.parent, "tiny-music")
    tiny = MusicgenForConditionalGeneration.from_pretrained(tiny_dir)
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
    AutoProcessor.from_pretrained(tiny_dir).save_pretrained(folder)


CASES = {
    # modality: (tiny params, mid-size builder, mid-size params)
    "text": ({"max_new_tokens": 32}, build_mid_text, {"max_new_tokens": 32}),
    "image": ({"width": 64, "height": 64, "num_inference_steps": 4, "guidance_scale": 0.0}, build_mid_image,
              {"width": 256, "height": 256, "num_inference_steps": 1, "guidance_scale": 0.0}),
    "music": ({"duration_s": 2.0, "guidance_scale": 3.0}, build_mid_music, {"duration_s": 1.0, "guidance_scale": 3.0}),
}


def timed(fn, repeats: int = 1) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench(catalog: Catalog, modality: str, model_id: str, params: dict, n: int, repeats: int) -> dict:
    catalog.clear()
    started = time.perf_counter()
    backend = catalog.get(modality, model_id)                    # cold: from_pretrained from disk
    cold = time.perf_counter() - started
    started = time.perf_counter()
    catalog.get(modality, model_id)                              # warm: the catalog hands back the loaded model
    warm = time.perf_counter() - started
    params = backend.validate(params)
    requests = [GenerationRequest(PROMPTS[i % len(PROMPTS)], seed=i + 1) for i in range(n)]
    backend.generate(requests[:1], params)                       # first-call allocations out of the timings
    batched = timed(lambda: backend.generate(requests, params), repeats)
    sequential = timed(lambda: [backend.generate([r], params) for r in requests], repeats)
    return {"modality": modality, "model": Path(model_id).name, "n": n, "cold_load_s": cold, "warm_get_s": warm,
            "batched_s": batched, "sequential_s": sequential}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny models only")
    parser.add_argument("-n", type=int, default=4, help="cells per batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", help="keep built models here between runs")
    args = parser.parse_args()
    settings = Settings(data_dir=Path(args.data_dir or tempfile.mkdtemp(prefix="pp-bench-")), offline=True,
                        device="cpu", max_models_loaded=1)
    catalog = Catalog(settings)
    for modality in CASES:        # builds and library imports happen once, outside the cold-load timings
        tiny_model_path(settings.models_dir, f"tiny-{modality}")
        backend_class(modality)
    print(f"{'modality':8} {'model':11} {'cold load':>10} {'warm get':>10} {'batched':>9} {'sequential':>11} "
          f"{'speed-up':>9}   (N = {args.n} cells, median of {args.repeats} for tiny models)")
    for modality, (tiny_params, build_mid, mid_params) in CASES.items():
        print(_format(bench(catalog, modality, f"tiny-{modality}", tiny_params, args.n, args.repeats)), flush=True)
        if not args.tiny:
            folder = settings.models_dir / f"mid-{modality}"
            if not (folder / "built").exists():
                build_mid(folder)
                (folder / "built").write_text("random weights\n")
            print(_format(bench(catalog, modality, str(folder), mid_params, args.n, 1)), flush=True)


def _format(row: dict) -> str:
    return (f"{row['modality']:8} {row['model']:11} {row['cold_load_s']:9.2f}s {row['warm_get_s'] * 1e6:8.0f}us "
            f"{row['batched_s']:8.2f}s {row['sequential_s']:10.2f}s {row['sequential_s'] / row['batched_s']:8.2f}x")


if __name__ == "__main__":
    main()
