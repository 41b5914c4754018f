"""Hugging Face Inference Providers through `huggingface_hub.InferenceClient`: chat completion for text and
text-to-image for images, token from HF_TOKEN (never logged). `hf:<model id>` picks a model; the provider is
PLAYGROUND_HF_PROVIDER (default: auto) and PLAYGROUND_HF_BASE_URL points at a dedicated endpoint instead."""

from __future__ import annotations

import os
from importlib.metadata import version

from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, OfflineModeIsEnabled

from ..settings import Settings
from .base import GenerationRequest, Output, Timer
from .catalog import check_remote_model_name
from .pacing import endpoint_throttle
from .remote import (Pacing, Stopped, StreamCut, chat_messages, read_text_stream, scrub, server_message,
                     stream_concurrently, text_output)


class HFInferenceModel:
    def __init__(self, resolved, settings: Settings):
        check_remote_model_name(resolved.engine.name, resolved.source)   # never a URL: the token would follow it
        self.model = resolved.source
        self.model_id = resolved.model_id
        self.modality = resolved.modality
        self.base_url = settings.hf_base_url or None
        self.provider = settings.hf_provider or "auto"
        self.timeout = settings.remote_timeout_s
        self.limit = settings.remote_concurrency
        self.retries = settings.remote_retries
        self.cell_timeout = settings.remote_cell_timeout_s
        self.device = self.host
        self.dtype = None

    @property
    def host(self) -> str:
        if self.base_url:
            from urllib.parse import urlsplit

            parts = urlsplit(self.base_url)
            return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
        return f"hf-inference-providers ({self.provider})"

    @property
    def versions(self) -> dict:
        return {"huggingface_hub": version("huggingface_hub")}

    def _client(self, call) -> InferenceClient:
        """One client per attempt (connections are pooled by huggingface_hub underneath): closing it is how a
        stopped or overdue cell's stream is let go."""
        token = os.environ.get("HF_TOKEN") or None
        timeout = min(self.timeout, max(call.remaining(), 0.1))
        if self.base_url:
            return InferenceClient(base_url=self.base_url, api_key=token, timeout=timeout)
        return InferenceClient(provider=self.provider, api_key=token, timeout=timeout)

    def stream(self, requests: list[GenerationRequest], options: dict):
        one = self._chat if self.modality == "text" else self._image
        pacing = Pacing(self.host, endpoint_throttle(f"hf:{self.host}", self.limit), self.retries, self.cell_timeout,
                        self.describe, final=(InferenceTimeoutError, OfflineModeIsEnabled))
        yield from stream_concurrently(requests, pacing, lambda call, request, emit: one(call, request, options, emit))

    def _chat(self, call, request, options, emit) -> Output:
        timer = Timer()
        client = self._client(call)
        messages = chat_messages(request)
        # The usage comes on the stream's last chunk only when asked for; a provider that sends none gets its
        # tokens counted (text_output marks which).
        try:
            chunks = client.chat_completion(messages, model=self.model, stream=True,
                                            max_tokens=options["max_new_tokens"], temperature=options["temperature"],
                                            top_p=options["top_p"], seed=request.seed,
                                            stream_options={"include_usage": True})
            # The client does not hand out its response: closing the client closes it, and a read already waiting
            # ends at the server's next byte.
            call.watch(client.close)
            result = read_text_stream(chunks, call, emit, timer)
        finally:
            call.watch(None)
            client.close()
        return text_output(result, timer, messages, endpoint=self.host, revision=result.served or self.model,
                           seed="sent; providers honour it on a best-effort basis")

    def _image(self, call, request, options, emit) -> Output:
        timer = Timer()
        # A dedicated endpoint serves one model at its URL: the model is named only when routing to a provider.
        image = self._client(call).text_to_image(request.prompt, model=None if self.base_url else self.model,
                                     negative_prompt=request.negative_prompt,
                                     width=options["width"], height=options["height"],
                                     num_inference_steps=options["num_inference_steps"],
                                     guidance_scale=options["guidance_scale"], seed=request.seed)
        if call.stopped.is_set():
            raise Stopped
        return Output(image=image.convert("RGB"), metrics={
            "wall_s": timer.elapsed, "endpoint": self.host, "revision": self.model, "formatted_prompt": request.prompt,
            "seed": "sent; providers honour it on a best-effort basis"})

    def describe(self, error: BaseException) -> str:
        token = os.environ.get("HF_TOKEN")
        if isinstance(error, StreamCut):
            message = f"{self.host}: {error}"
        elif isinstance(error, OfflineModeIsEnabled):
            message = "the Hugging Face engine needs the network, and HF_HUB_OFFLINE is set: unset it to use hf: models"
        elif isinstance(error, InferenceTimeoutError):
            message = f"{self.host} gave no answer within {self.timeout:g} s"
        elif isinstance(error, HfHubHTTPError):
            status = getattr(getattr(error, "response", None), "status_code", None)
            hint = {401: "set HF_TOKEN to a valid token", 403: "the token lacks the inference permission",
                    404: f"no provider serves {self.model!r} for this task", 429: "rate limited; wait or lower "
                    "PLAYGROUND_REMOTE_CONCURRENCY"}.get(status, "")
            said = server_message(error, str(error))
            message = f"{self.host} answered {status}: {hint + '; the server said: ' if hint else ''}{said}"
        else:
            message = f"{self.host}: {type(error).__name__}: {' '.join(str(error).split())[:300]}"
        return scrub(message, token)
