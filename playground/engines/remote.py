"""What the remote engines share: many requests in flight under a per-endpoint limit, events merged in order of
arrival, Stop that cancels what is still in flight, and error messages that never carry a key."""

from __future__ import annotations

import json
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .base import Event, Failed, Finished, GenerationRequest, Output, Partial, Timer, check_prompts

log = logging.getLogger(__name__)

_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def endpoint_slots(endpoint: str, limit: int) -> threading.BoundedSemaphore:
    """One limit per endpoint (its URL), shared by every model and comparison that uses it."""
    with _slots_lock:
        return _slots.setdefault((endpoint, limit), threading.BoundedSemaphore(max(1, limit)))


class Stopped(Exception):
    """The stream was closed while this request was in flight."""


def stream_concurrently(requests: list[GenerationRequest], slots: threading.BoundedSemaphore, limit: int,
                        one: Callable[[int, GenerationRequest, Callable[[Event], None], threading.Event], Output],
                        describe: Callable[[BaseException], str]) -> Iterator[Event]:
    """Run `one(index, request, emit, stop)` for every request, at most `limit` at once (and within the endpoint's
    slots); yields each request's events and then its Finished or Failed. Closing the generator stops the rest."""
    check_prompts(requests)
    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def run(index: int, request: GenerationRequest) -> None:
        with slots:
            if stop.is_set():
                return
            try:
                output = one(index, request, events.put, stop)
            except Stopped:
                return
            except Exception as error:        # every failure becomes this cell's message
                message = describe(error)
                log.warning("remote request failed: %s", message)
                events.put(Failed(index, message))
            else:
                events.put(Finished(index, output))

    pool = ThreadPoolExecutor(max_workers=max(1, min(limit, len(requests))), thread_name_prefix="remote")
    try:
        for index, request in enumerate(requests):
            pool.submit(run, index, request)
        remaining = len(requests)
        while remaining:
            event = events.get()
            if isinstance(event, (Finished, Failed)):
                remaining -= 1
            yield event
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def scrub(message: str, *secrets: str | None) -> str:
    """Remove secrets (and their first characters, as servers echo masked keys) from a message."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            message = message.replace(secret, "***")
            if len(secret) >= 12:
                message = message.replace(secret[:8], "***")
    return message


def chat_messages(request: GenerationRequest) -> list[dict]:
    return ([{"role": "system", "content": request.system}] if request.system else []) + \
        [{"role": "user", "content": request.prompt}]


@dataclass
class StreamedText:
    text: str = ""
    finish: str | None = None
    usage: object = None
    served: str | None = None          # the model name the server says it ran
    fingerprint: str | None = None
    pieces: int = 0                    # content chunks received: about one token each on every server seen


def read_text_stream(chunks: Iterable, index: int, emit: Callable[[Event], None], stop: threading.Event,
                     timer: Timer, piece_of: Callable = lambda choice: choice.delta.content if choice.delta else None,
                     ) -> StreamedText:
    """Accumulate an OpenAI-style stream of chunks (chat or completions), emitting the text so far."""
    result = StreamedText()
    for chunk in chunks:
        if stop.is_set():
            raise Stopped
        result.served = getattr(chunk, "model", None) or result.served
        result.fingerprint = getattr(chunk, "system_fingerprint", None) or result.fingerprint
        result.usage = getattr(chunk, "usage", None) or result.usage
        for choice in chunk.choices or []:
            piece = piece_of(choice)
            if piece:
                timer.mark_first()
                result.text += piece
                result.pieces += 1
                emit(Partial({index: result.text}))
            result.finish = choice.finish_reason or result.finish
    if result.finish is None:
        raise ConnectionError("the response was cut off mid-stream (no finish_reason): the server stopped "
                              "answering; try again or check the server's log")
    return result


def text_output(result: StreamedText, timer: Timer, formatted, **metrics) -> Output:
    wall = timer.elapsed
    completion_tokens = getattr(result.usage, "completion_tokens", None)
    if completion_tokens is None and result.pieces:
        # No usage on the stream (not every server sends it, even when asked): count the chunks, and say so.
        completion_tokens, metrics["completion_tokens_counted"] = result.pieces, "stream chunks; the server sent no usage"
    return Output(text=result.text, metrics={
        "wall_s": wall, "ttft_s": timer.first, "prompt_tokens": getattr(result.usage, "prompt_tokens", None),
        "completion_tokens": completion_tokens,
        "tokens_per_s": completion_tokens / wall if completion_tokens and wall > 0 else None,
        "formatted_prompt": formatted if isinstance(formatted, str) else json.dumps(formatted, ensure_ascii=False),
        "finish_reason": result.finish, **metrics})
