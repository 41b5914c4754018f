"""What the remote engines share: many requests in flight under an endpoint's adaptive limit (pacing.py), events
merged in order of arrival, a time limit on each cell, Stop that aborts what is in flight at once, and error
messages that carry the server's own words but never a key.

A cell's time limit (remote_cell_timeout_s) counts from its first attempt and covers retries and waits (a 429 that
says when to come back is waited out without counting against the retries, for as long as the cell's time allows);
it holds where the per-request timeout cannot: a server that keeps a stream open with SSE keep-alive comments is
never silent. A cell past its limit, or stopped, is reported at once; its request is aborted (the socket shut down, so a
read already waiting wakes) and its thread left to end on its own.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .base import Event, Failed, Finished, GenerationRequest, Output, Partial, Timer, check_prompts
from .pacing import Throttle, backoff, trouble_of

log = logging.getLogger(__name__)
HEARTBEAT_S = 0.25          # an idle stream still yields this often, so its consumer sees Stop


class Stopped(Exception):
    """The stream was closed while this request was in flight."""


class StreamCut(ConnectionError):
    """The server ended a stream mid-answer; `text` is what it had sent (kept in the cell's record)."""

    def __init__(self, text: str, reason: str):
        self.text = text
        super().__init__(f"the stream was cut off mid-stream after {len(text)} characters ({reason}): the partial "
                         "text is kept in the record; try again, or check the server's log")


class Call:
    """One cell's request across its attempts: its time limit, its text so far, and how to abort what is in
    flight (each attempt names the response it reads with `watch`)."""

    def __init__(self, index: int, timeout_s: float):
        self.index, self.timeout_s = index, timeout_s
        self.deadline: float | None = None
        self.stopped = threading.Event()
        self.text = ""
        self.last_error: str | None = None
        self._closer: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.timeout_s

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic()) if self.deadline is not None else self.timeout_s

    def overdue(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def watch(self, closer: Callable[[], None] | None) -> None:
        with self._lock:
            self._closer = closer
            stopped = self.stopped.is_set()
        if stopped and closer is not None:
            closer()

    def abort(self) -> None:
        with self._lock:
            self.stopped.set()
            closer = self._closer
        if closer is not None:
            try:
                closer()
            except Exception:                  # noqa: BLE001 - best effort: the thread is let go either way
                pass


def close_response(response) -> None:
    """Abort an HTTP response from another thread. `close()` alone leaves a read that is already waiting on the
    socket until the server's next byte (a keep-alive comment can be seconds away); shutting the socket down
    wakes it at once. The reading thread then closes the response itself."""
    stream = (getattr(response, "extensions", None) or {}).get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
            return
        except OSError:
            pass
    response.close()


@dataclass
class Pacing:
    """How one engine drives its endpoint: the shared throttle, retries, the cell time limit, and its messages."""

    host: str
    throttle: Throttle
    retries: int
    cell_timeout_s: float
    describe: Callable[[BaseException], str]
    passing: tuple[type, ...] = ()        # errors worth another try besides those pacing knows (a dropped line)
    final: tuple[type, ...] = ()          # errors never worth another try (a timeout, offline mode)

    def timed_out(self, call: Call) -> str:
        kept = f"; the {len(call.text)} characters it sent are kept" if call.text else ""
        last = f"; the last attempt failed: {call.last_error}" if call.last_error else ""
        return (f"{self.host} took longer than {self.cell_timeout_s:g} s for this cell, so it was stopped{kept} "
                f"(setting remote_cell_timeout_s){last}")


Attempt = Callable[[Call, GenerationRequest, Callable[[Event], None]], Output]


def stream_concurrently(requests: list[GenerationRequest], pacing: Pacing, attempt: Attempt) -> Iterator[Event]:
    """Run `attempt(call, request, emit)` for every request, as many at once as the endpoint's throttle allows,
    retrying what failed for a passing reason; yields each request's events, then its Finished or Failed, and a
    `Partial({})` heartbeat while nothing arrives. Closing the generator aborts every request still in flight."""
    check_prompts(requests)
    events: queue.Queue = queue.Queue()
    calls = [Call(index, pacing.cell_timeout_s) for index in range(len(requests))]
    waiting: queue.SimpleQueue = queue.SimpleQueue()
    for call, request in zip(calls, requests):
        waiting.put((call, request))
    closed = threading.Event()

    def work() -> None:
        while not closed.is_set():
            try:
                call, request = waiting.get_nowait()
            except queue.Empty:
                return
            outcome = _serve(call, request, pacing, attempt, events.put)
            if outcome is not None:
                events.put(outcome)

    for _ in range(min(pacing.throttle.ceiling, len(requests))):
        threading.Thread(target=work, name="remote-request", daemon=True).start()
    reported: set[int] = set()
    try:
        while len(reported) < len(calls):
            try:
                event = events.get(timeout=HEARTBEAT_S)
            except queue.Empty:
                event = None
            for call in calls:
                if call.index not in reported and call.overdue():
                    call.abort()
                    reported.add(call.index)
                    yield Failed(call.index, pacing.timed_out(call), text=call.text or None)
            if event is None:
                yield Partial({})
            elif isinstance(event, Partial):
                texts = {i: t for i, t in event.texts.items() if i not in reported}
                if texts:
                    yield Partial(texts)
            elif event.index not in reported:
                reported.add(event.index)
                yield event
    finally:
        closed.set()
        for call in calls:
            if call.index not in reported:
                call.abort()


def _serve(call: Call, request: GenerationRequest, pacing: Pacing, attempt: Attempt,
           put: Callable[[Event], None]) -> Event | None:
    """One request through its attempts: Finished, Failed, or None when it was stopped or ran out of time (the
    consumer reports those)."""

    def emit(event: Event) -> None:
        if isinstance(event, Partial) and call.index in event.texts:
            call.text = event.texts[call.index]
        put(event)

    failures = 0            # the failures that count against the retries: a 429 that says when to come back does not
    while True:
        call.start()
        if not pacing.throttle.acquire(call.stopped, call.deadline):
            return None
        succeeded = False
        try:
            output = attempt(call, request, emit)
            succeeded = True
            return Finished(call.index, output)
        except Stopped:
            return None
        except Exception as error:             # every failure becomes this cell's message, or a retry
            if call.stopped.is_set():
                return None
            message = pacing.describe(error)
            trouble = trouble_of(error, pacing.passing, pacing.final)
            told_when = trouble.kind == "overload" and trouble.wait_s is not None
            if trouble.kind == "overload":
                pacing.throttle.overloaded(trouble.wait_s if told_when else backoff(failures))
            if isinstance(error, StreamCut) or call.text or trouble.kind == "final" or \
                    (not told_when and failures == pacing.retries):
                log.warning("remote request failed: %s", message)
                return Failed(call.index, message, text=call.text or None)
            call.last_error = message
            log.info("retrying after: %s", message)
        finally:
            pacing.throttle.release(succeeded)
        if trouble.kind == "passing" and call.stopped.wait(trouble.wait_s or backoff(failures)):
            return None
        failures += not told_when


_KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{8,}|(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,})")


def scrub(message: str, *secrets: str | None) -> str:
    """Remove secrets (and their first characters, as servers echo masked keys) and anything shaped like an API key
    or a bearer token from a message."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            message = message.replace(secret, "***")
            if len(secret) >= 12:
                message = message.replace(secret[:8], "***")
    return _KEY_SHAPES.sub("***", message)


def server_message(error: BaseException, fallback: str = "") -> str:
    """What the server said about a refused request, in its own words (the `error.message` / `detail` of its JSON
    body, or its text), on one line."""
    said = getattr(error, "server_message", None)           # huggingface_hub reads it from the body already
    if not said:
        body = getattr(error, "body", None)
        response = getattr(error, "response", None)
        if body is None and response is not None:
            try:
                body = json.loads(response.text)
            except Exception:                               # noqa: BLE001 - not JSON (or not readable): its text
                body = getattr(response, "text", None)
        said = _said(body)
    return " ".join(str(said or fallback).split())[:500]


def _said(body) -> str | None:
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        for key in ("error", "message", "detail", "error_description"):
            if body.get(key):
                return _said(body[key])
    if isinstance(body, list) and body:
        return "; ".join(filter(None, (_said(item.get("msg") if isinstance(item, dict) else item)
                                       for item in body[:3])))
    return None


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


def read_text_stream(chunks: Iterable, call: Call, emit: Callable[[Event], None], timer: Timer,
                     piece_of: Callable = lambda choice: choice.delta.content if choice.delta else None,
                     ) -> StreamedText:
    """Accumulate an OpenAI-style stream of chunks (chat or completions), emitting the text so far. A stream that
    breaks or ends without a finish_reason after some text raises StreamCut with that text."""
    result = StreamedText()
    iterator = iter(chunks)
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            break
        except Exception as error:
            if call.stopped.is_set():
                raise Stopped from None
            if result.pieces:
                cause = error.__cause__ or error.__context__ or error
                raise StreamCut(result.text, " ".join(str(cause).split())[:200] or type(cause).__name__) from error
            raise
        if call.stopped.is_set():
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
                emit(Partial({call.index: result.text}))
            result.finish = choice.finish_reason or result.finish
    if result.finish is None:
        if result.pieces:
            raise StreamCut(result.text, "it ended without a finish_reason")
        raise ConnectionError("the response ended before any text came (no finish_reason): the server stopped "
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
