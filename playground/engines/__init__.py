"""The built-in engines, listed once (third-party ones come through the `playground.engines` entry point: see
playground/plugins.py). Only the declarations live here; an engine's module (and torch, transformers, diffusers,
openai) is imported when one of its models is first used."""

from ..registry import (Engine, ImageOptions, LocalTextOptions, MusicOptions, RemoteImageOptions, RemoteTextOptions)

BUILTIN_ENGINES: tuple[Engine, ...] = (
    # Local text batches continuously inside one stream (engines/continuous.py): the more rows a stream gets, the
    # fewer times its slots drain at a stream's end, so an experiment's rows go in large chunks.
    Engine("local-text", "text", "transformers (this machine)", LocalTextOptions,
           "playground.engines.local_text:LocalTextModel", batch_size=1024),
    Engine("local-image", "image", "diffusers (this machine)", ImageOptions,
           "playground.engines.local_image:LocalImageModel", batch_size=4),
    Engine("local-music", "music", "MusicGen (this machine)", MusicOptions,
           "playground.engines.local_music:LocalMusicModel", batch_size=4),
    Engine("openai", "text", "OpenAI-compatible server (openai:<model> or <endpoint>:<model>)", RemoteTextOptions,
           "playground.engines.openai_compat:OpenAICompatModel", prefix="openai:", batch_size=64),
    Engine("hf-text", "text", "Hugging Face Inference Providers (hf:<model id>)", RemoteTextOptions,
           "playground.engines.hf_inference:HFInferenceModel", prefix="hf:", batch_size=64),
    Engine("hf-image", "image", "Hugging Face Inference Providers (hf:<model id>)", RemoteImageOptions,
           "playground.engines.hf_inference:HFInferenceModel", prefix="hf:", batch_size=64),
)
