"""Any OpenAI-compatible server (vLLM, TGI, SGLang, llama.cpp, Ollama, `transformers serve`, hosted APIs) through
the official `openai` client: chat completions streamed over SSE, or legacy completions when asked."""

from __future__ import annotations

import json
from importlib.metadata import version

import openai

from ..settings import Settings
from .base import GenerationRequest, Output, Partial, Timer
from .remote import Stopped, endpoint_slots, scrub, stream_concurrently


class OpenAICompatModel:
    engine_name = "openai"

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
        else:
            messages = ([{"role": "system", "content": request.system}] if request.system else []) + \
                [{"role": "user", "content": request.prompt}]
            formatted = json.dumps(messages, ensure_ascii=False)
            stream = client.chat.completions.create(messages=messages, stream_options={"include_usage": True},
                                                    **common)
        text, finish, usage, served, fingerprint = "", None, None, None, None
        with stream:
            for chunk in stream:
                if stop.is_set():
                    raise Stopped
                served = getattr(chunk, "model", None) or served
                fingerprint = getattr(chunk, "system_fingerprint", None) or fingerprint
                usage = getattr(chunk, "usage", None) or usage
                for choice in chunk.choices or []:
                    piece = choice.text if options.get("completions") else (choice.delta.content or "")
                    if piece:
                        timer.mark_first()
                        text += piece
                        emit(Partial({index: text}))
                    finish = choice.finish_reason or finish
        if finish is None:
            raise ConnectionError("the response was cut off mid-stream (no finish_reason): the server stopped "
                                  "answering; try again or check the server's log")
        wall = timer.elapsed
        completion_tokens = getattr(usage, "completion_tokens", None)
        return Output(text=text, metrics={
            "wall_s": wall, "ttft_s": timer.first, "prompt_tokens": getattr(usage, "prompt_tokens", None),
            "completion_tokens": completion_tokens,
            "tokens_per_s": completion_tokens / wall if completion_tokens and wall > 0 else None,
            "formatted_prompt": formatted, "finish_reason": finish, "endpoint": self.endpoint.host,
            "revision": f"{served or self.model}" + (f"@{fingerprint}" if fingerprint else ""),
            "seed": "sent; OpenAI-compatible servers honour it on a best-effort basis"})

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
