"""The engines: one module each, registered here. Only the registry entries are made at import; an engine's
module (and torch, transformers, diffusers, openai) is imported when one of its models is first used."""

from ..registry import (Engine, ImageOptions, LocalTextOptions, MusicOptions, RemoteImageOptions, RemoteTextOptions,
                        register)

# Local text batches continuously inside one stream (engines/continuous.py): the more rows a stream gets, the fewer
# times its slots drain at a stream's end, so an experiment's rows go in large chunks.
register(Engine("local-text", "text", "transformers (this machine)", LocalTextOptions,
                "playground.engines.local_text:LocalTextModel", streams_text=True, needs_gpu=True, batch_size=1024))
register(Engine("local-image", "image", "diffusers (this machine)", ImageOptions,
                "playground.engines.local_image:LocalImageModel", needs_gpu=True, batch_size=4))
register(Engine("local-music", "music", "MusicGen (this machine)", MusicOptions,
                "playground.engines.local_music:LocalMusicModel", needs_gpu=True, batch_size=4))
register(Engine("openai", "text", "OpenAI-compatible server (openai:<model> or <endpoint>:<model>)",
                RemoteTextOptions, "playground.engines.openai_compat:OpenAICompatModel", prefix="openai:",
                streams_text=True, honours_seed="best effort", concurrent=True, batch_size=64))
register(Engine("hf-text", "text", "Hugging Face Inference Providers (hf:<model id>)", RemoteTextOptions,
                "playground.engines.hf_inference:HFInferenceModel", prefix="hf:", streams_text=True,
                honours_seed="best effort", concurrent=True, batch_size=64))
register(Engine("hf-image", "image", "Hugging Face Inference Providers (hf:<model id>)", RemoteImageOptions,
                "playground.engines.hf_inference:HFInferenceModel", prefix="hf:", honours_seed="best effort",
                concurrent=True, batch_size=64))
