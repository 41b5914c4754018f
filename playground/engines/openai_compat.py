"""Any OpenAI-compatible server (vLLM, TGI, SGLang, llama.cpp, Ollama, `transformers serve`, hosted APIs) through
the official `openai` client: chat completions streamed over SSE, or legacy completions when asked."""

from __future__ import annotations

from importlib.metadata import version

import openai

from ..settings import Settings
from .base import GenerationRequest, Output, Timer
from .pacing import endpoint_throttle
from .remote import (Pacing, StreamCut, chat_messages, close_response, read_text_stream, scrub, server_message,
                     stream_concurrently, text_output)


class OpenAICompatModel:
    def __init__(self, resolved, settings: Settings):
        self.endpoint = resolved.endpoint
        self.model = resolved.source
        self.model_id = resolved.model_id
        self.timeout = self.endpoint.timeout_s or settings.remote_timeout_s
        self.limit = self.endpoint.max_concurrency or settings.remote_concurrency
        self.retries = settings.remote_retries
        self.cell_timeout = settings.remote_cell_timeout_s
        self.device = self.endpoint.host
        self.dtype = None

    def _client(self) -> openai.OpenAI:
        # Built per stream: the key is read from its variable at request time and never kept in a record. Retries
        # are pacing's (they slow the whole endpoint down on a 429), not the client's.
        return openai.OpenAI(base_url=self.endpoint.base_url, api_key=self.endpoint.api_key or "none",
                             timeout=self.timeout, max_retries=0)

    def pacing(self) -> Pacing:
        return Pacing(self.endpoint.host, endpoint_throttle(self.endpoint.base_url, self.limit), self.retries,
                      self.cell_timeout, self.describe, passing=(openai.APIConnectionError,),
                      final=(openai.APITimeoutError,))

    @property
    def versions(self) -> dict:
        return {"openai": version("openai")}

    def stream(self, requests: list[GenerationRequest], options: dict):
        client = self._client()
        try:
            yield from stream_concurrently(requests, self.pacing(),
                                           lambda call, request, emit: self._one(client, call, request, options, emit))
        finally:
            client.close()

    def _one(self, client, call, request, options, emit) -> Output:
        timer = Timer()
        common = {"model": self.model, "max_tokens": options["max_new_tokens"], "temperature": options["temperature"],
                  "top_p": options["top_p"], "seed": request.seed, "stream": True,
                  "timeout": min(self.timeout, max(call.remaining(), 0.1))}
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
            call.watch(lambda: close_response(stream.response))
            try:
                result = read_text_stream(stream, call, emit, timer, piece_of)
            finally:
                call.watch(None)
        return text_output(result, timer, formatted, endpoint=self.endpoint.host,
                           revision=f"{result.served or self.model}" + (f"@{result.fingerprint}"
                                                                        if result.fingerprint else ""),
                           seed="sent; OpenAI-compatible servers honour it on a best-effort basis")

    def describe(self, error: BaseException) -> str:
        host, key_env = self.endpoint.host, self.endpoint.api_key_env
        if isinstance(error, StreamCut):
            message = f"{host}: {error}"
        elif isinstance(error, openai.APITimeoutError):
            message = f"{host} gave no answer within {self.timeout:g} s; raise timeout_s or check the server"
        elif isinstance(error, openai.APIConnectionError) and _dropped(error):
            message = f"{host} dropped the connection before answering ({_dropped(error)}): try again, or check " \
                      "the server's log"
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
            message = f"{host} answered {error.status_code}: {server_message(error, getattr(error, 'message', ''))}"
        elif isinstance(error, (openai.APIError, ValueError, ConnectionError)):
            message = f"{host}: {' '.join(str(error).split())[:300]}"
        else:
            message = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        return scrub(message, self.endpoint.api_key)


def _dropped(error: BaseException) -> str | None:
    """What broke a connection that was made (the server closed it, or sent something that is not HTTP); None when
    none was made (refused, unknown host)."""
    cause = error.__cause__ or error.__context__
    names = {kind.__name__ for kind in type(cause).__mro__} if cause is not None else set()
    if names & {"RemoteProtocolError", "ReadError", "LocalProtocolError"}:
        return " ".join(str(cause).split())[:200] or type(cause).__name__
    return None
