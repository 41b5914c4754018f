"""Any OpenAI-compatible server (vLLM, TGI, SGLang, llama.cpp, Ollama, `transformers serve`, hosted APIs) through
the official `openai` client: chat completions streamed over SSE, or legacy completions when asked."""

from __future__ import annotations

from importlib.metadata import version

import openai

from ..settings import Settings
from .base import GenerationRequest, Output, Timer
from .remote import chat_messages, endpoint_slots, read_text_stream, scrub, stream_concurrently, text_output


class OpenAICompatModel:
    def __init__(self, resolved, settings: Settings):
        self.endpoint = resolved.endpoint
        self.model = resolved.source
        self.model_id = resolved.model_id
        self.timeout = self.endpoint.timeout_s or settings.remote_timeout_s
        self.limit = self.endpoint.max_concurrency or settings.remote_concurrency
        self.retries = settings.remote_retries
        self.device = self.endpoint.host
        self.dtype = None

    def _client(self) -> openai.OpenAI:
        # Built per stream: the key is read from its variable at request time and never kept in a record.
        return openai.OpenAI(base_url=self.endpoint.base_url, api_key=self.endpoint.api_key or "none",
                             timeout=self.timeout, max_retries=self.retries)

    @property
    def versions(self) -> dict:
        return {"openai": version("openai")}

    def stream(self, requests: list[GenerationRequest], options: dict):
        client = self._client()
        slots = endpoint_slots(self.endpoint.base_url, self.limit)
        try:
            yield from stream_concurrently(requests, slots, self.limit,
                                           lambda i, r, emit, stop: self._one(client, i, r, options, emit, stop),
                                           self.describe)
        finally:
            client.close()

    def _one(self, client, index, request, options, emit, stop) -> Output:
        timer = Timer()
        common = {"model": self.model, "max_tokens": options["max_new_tokens"], "temperature": options["temperature"],
                  "top_p": options["top_p"], "seed": request.seed, "stream": True}
        if options.get("completions"):
            formatted = f"{request.system}\n\n{request.prompt}" if request.system else request.prompt
            stream = client.completions.create(prompt=formatted, **common)
            piece_of = lambda choice: choice.text      # noqa: E731
        else:
            formatted = chat_messages(request)
            stream = client.chat.completions.create(messages=formatted, stream_options={"include_usage": True},
                                                    **common)
            piece_of = lambda choice: choice.delta.content if choice.delta else None   # noqa: E731
        with stream:
            result = read_text_stream(stream, index, emit, stop, timer, piece_of)
        return text_output(result, timer, formatted, endpoint=self.endpoint.host,
                           revision=f"{result.served or self.model}" + (f"@{result.fingerprint}"
                                                                        if result.fingerprint else ""),
                           seed="sent; OpenAI-compatible servers honour it on a best-effort basis")

    def describe(self, error: BaseException) -> str:
        host, key_env = self.endpoint.host, self.endpoint.api_key_env
        if isinstance(error, openai.APITimeoutError):
            message = f"{host} gave no answer within {self.timeout:g} s; raise timeout_s or check the server"
        elif isinstance(error, openai.APIConnectionError):
            message = f"cannot reach {host}: is the server running, and is the base URL right ({self.endpoint.name})?"
        elif isinstance(error, openai.AuthenticationError):
            message = f"{host} refused the API key (401): set {key_env or 'api_key_env'} to a valid key"
        elif isinstance(error, openai.PermissionDeniedError):
            message = f"{host} refused access (403) to {self.model!r}: check the key's permissions"
        elif isinstance(error, openai.NotFoundError):
            message = (f"{host} has no model {self.model!r} (404): check the model name (GET /v1/models lists them) "
                       "and that the base URL ends in /v1")
        elif isinstance(error, openai.RateLimitError):
            message = f"{host} is rate limiting (429) after {self.retries} retries: lower max_concurrency or wait"
        elif isinstance(error, openai.APIStatusError):
            detail = " ".join(str(getattr(error, "message", "") or "").split())[:300]
            message = f"{host} answered {error.status_code}: {detail}"
        elif isinstance(error, (openai.APIError, ValueError, ConnectionError)):
            message = f"{host}: {' '.join(str(error).split())[:300]}"
        else:
            message = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        return scrub(message, self.endpoint.api_key)
