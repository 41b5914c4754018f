"""Scorers that need a model: CLIP score and PickScore for images, CLAP score for music (transformers).

The same loading code takes a hub id online and a tiny random-weight folder offline (`from_pretrained` either way).
Offline, the presets fall back to the tiny scorers, and every score they make says it is meaningless.
torch and transformers are imported inside functions: importing this module stays cheap.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field

from .base import CellInput, Check, ScorerContext
from ..requests.checks import CheckArgs, CheckText
from .tiny import MEANINGLESS_NOTE, TINY_SCORERS, tiny_scorer_path

CLIP_PRESET = "openai/clip-vit-base-patch32"
# PickScore: CLIP-H fine-tuned on Pick-a-Pic human preferences; a CLIPModel checkpoint whose processor lives in
# the base model's repo (as its model card loads it).
PICKSCORE_PRESET = "yuvalkirstain/PickScore_v1"
PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
CLAP_PRESET = "laion/clap-htsat-unfused"


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")


def check_scorer_model(context: ScorerContext, model: str | None) -> None:
    """A scorer's `model` is a preset, a tiny scorer, a hub id, or a local folder where local folders are allowed
    (anywhere for local use; under the model roots on a public deployment). One message whether a refused folder
    exists or not: a client learns nothing about the server's disk."""
    if not model or model in TINY_SCORERS or model in (CLIP_PRESET, PICKSCORE_PRESET, CLAP_PRESET):
        return
    if "://" in model or model.startswith("//"):
        raise ValueError(f"scorer model {model[:80]!r} is a URL; a model id names a model, never a server")
    roots = context.model_roots
    if roots is None:
        return
    path = Path(model).expanduser()
    if _HUB_ID.match(model) and not path.is_absolute() and not model.startswith(".") and not path.exists():
        return                                                  # a hub id (from_pretrained looks on disk first)
    resolved = path.resolve()
    if not any(resolved == root or root in resolved.parents for root in roots):
        raise ValueError(f"scorer model {model[:80]!r} is not a preset, a hub id or a folder under this server's "
                         "model roots")


def resolve_scorer(context: ScorerContext, model: str | None, preset: str, tiny: str) -> tuple[str, bool]:
    """(what from_pretrained loads, whether it is a meaningless tiny scorer). Offline, the preset is the tiny one."""
    model = model or preset
    if model in TINY_SCORERS:
        return str(tiny_scorer_path(context.models_dir, model)), True
    if context.offline and model in (CLIP_PRESET, PICKSCORE_PRESET, CLAP_PRESET):
        return str(tiny_scorer_path(context.models_dir, tiny)), True
    check_scorer_model(context, model)
    return model, False


def shown_source(source: str) -> str:
    """What a score records as `loaded_from`: a hub id as it is, a folder by its name, never a server path."""
    path = Path(source)
    return path.name if path.is_absolute() or source.startswith((".", "~")) else source


def _features(output):
    """get_*_features returns a tensor in older transformers and an output with `pooler_output` in newer ones."""
    return getattr(output, "pooler_output", output)


def _text_features(model, tokenizer, prompt: str, device: str):
    """The projected text embedding of a prompt (computed once per prompt and scorer: see ScorerContext.remember)."""
    import torch

    tokens = tokenizer([prompt], padding=True, truncation=True, return_tensors="pt").to(device)
    with torch.inference_mode():
        return _features(model.get_text_features(input_ids=tokens["input_ids"],
                                                 attention_mask=tokens.get("attention_mask")))


def _cosine(a, b) -> float:
    import torch

    return float(torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)[0])


def load_clip(source: str, processor_source: str | None, device: str):
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(source).to(device).eval()
    return model, CLIPProcessor.from_pretrained(processor_source or source)


def load_clap(source: str, device: str):
    from transformers import ClapModel, ClapProcessor

    return ClapModel.from_pretrained(source).to(device).eval(), ClapProcessor.from_pretrained(source)


def clip_for(context: ScorerContext, source: str, processor_source: str | None = None):
    """(model, processor) of a CLIP checkpoint, loaded once per scorer context."""
    return context.cached(("clip", source, processor_source, context.device),
                          lambda: load_clip(source, processor_source, context.device))


def clap_for(context: ScorerContext, source: str):
    """(model, processor) of a CLAP checkpoint, loaded once per scorer context."""
    return context.cached(("clap", source, context.device), lambda: load_clap(source, context.device))


def image_features(model, processor, images: list, device: str):
    """The projected CLIP embeddings of PIL images, one row each."""
    import torch

    pixels = processor.image_processor(images=[image.convert("RGB") for image in images],
                                       return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        return _features(model.get_image_features(pixel_values=pixels.to(device)))


def audio_features(model, processor, clips: list[tuple[int, object]], device: str):
    """The projected CLAP embeddings of (rate, waveform) clips, one row each."""
    import torch

    from .audio import mono, resample

    extractor = processor.feature_extractor
    target = int(extractor.sampling_rate)
    # CLAP crops clips longer than its window at random; crop the start here so a score is reproducible.
    waveforms = [resample(mono(waveform), int(rate), target)[: int(extractor.nb_max_samples)]
                 for rate, waveform in clips]
    inputs = extractor(waveforms, sampling_rate=target, return_tensors="pt")
    with torch.inference_mode():
        return _features(model.get_audio_features(
            input_features=inputs["input_features"].to(device),
            is_longer=inputs["is_longer"].to(device) if "is_longer" in inputs else None))


def scorer_detail(model_option: str | None, preset: str, source: str, meaningless: bool) -> dict:
    """What a model scorer's score records: the model asked for, where it loaded from, and whether it is tiny."""
    detail = {"model": model_option or preset, "loaded_from": shown_source(source)}
    if meaningless:
        detail.update(meaningless=True, note=MEANINGLESS_NOTE)
    return detail


class _ModelCheck(Check):
    needs_model = True
    runs_torch = True
    preset: str = ""
    tiny: str = ""
    class Args(CheckArgs):
        model: CheckText | None = Field(None, description="a hub id or folder (default: the preset; offline: a tiny "
                                                          "random model)")

    def _source(self, context: ScorerContext) -> tuple[str, bool]:
        return resolve_scorer(context, self.options["model"], self.preset, self.tiny)

    def _detail(self, source: str, meaningless: bool) -> dict:
        return scorer_detail(self.options["model"], self.preset, source, meaningless)


class ClipScore(_ModelCheck):
    type, modalities = "clip", ("image",)
    preset, tiny = CLIP_PRESET, "tiny-clip"
    description = "prompt-image similarity (cosine of CLIP embeddings, -1 to 1)"

    def _embeddings(self, cell: CellInput, context: ScorerContext, processor_source: str | None = None):
        if cell.image is None:
            raise ValueError("this cell has no image to score")
        source, meaningless = self._source(context)
        if meaningless:
            processor_source = None
        model, processor = clip_for(context, source, processor_source)
        text = context.remember(("clip-text", source, cell.prompt),
                                lambda: _text_features(model, processor.tokenizer, cell.prompt, context.device))
        image = image_features(model, processor, [cell.image], context.device)
        return model, text, image, self._detail(source, meaningless)

    def score(self, cell, context):
        _, text, image, detail = self._embeddings(cell, context)
        return self.make(round(_cosine(text, image), 6), None, **detail)


class PickScore(ClipScore):
    type = "pickscore"
    preset = PICKSCORE_PRESET
    description = ("predicted human preference for the image given the prompt (PickScore: logit scale x cosine; "
                   "CLIP-H, wants a GPU)")

    def score(self, cell, context):
        processor = PICKSCORE_PROCESSOR if not self.options["model"] else None
        model, text, image, detail = self._embeddings(cell, context, processor)
        scale = float(model.logit_scale.detach().exp())
        return self.make(round(scale * _cosine(text, image), 6), None, logit_scale=scale, **detail)


class ClapScore(_ModelCheck):
    type, modalities = "clap", ("music",)
    preset, tiny = CLAP_PRESET, "tiny-clap"
    description = "prompt-audio similarity (cosine of CLAP embeddings, -1 to 1)"

    def score(self, cell, context):
        if cell.audio is None:
            raise ValueError("this cell has no audio to score")
        source, meaningless = self._source(context)
        model, processor = clap_for(context, source)
        text = context.remember(("clap-text", source, cell.prompt),
                                lambda: _text_features(model, processor.tokenizer, cell.prompt, context.device))
        audio = audio_features(model, processor, [cell.audio], context.device)
        return self.make(round(_cosine(text, audio), 6), None, **self._detail(source, meaningless))

