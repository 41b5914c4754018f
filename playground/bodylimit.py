"""A cap on request bodies, checked before anything parses them: pure ASGI, so it runs in front of Gradio's routes.

A 50 MB JSON body sent to the queue once added 350 MB to the server's memory before any handler could refuse it.
Here a body that declares more than its route allows is answered 413 without being read, and one that streams past
its cap without declaring a length is cut off at the cap. The connection is not closed on the refusal: the server
reads and discards whatever the client still sends, so the client gets to read the 413 and its message (closing
with unread bytes makes the kernel answer with a reset, which a client sees instead of the answer). Uploads (`.../upload`) may be as large as an import file;
every other request carries JSON or a form, and gets `max_request_bytes`.
"""

from __future__ import annotations

import json

UPLOAD_SLACK = 1 * 2**20          # multipart boundaries and headers around the largest file Gradio accepts


class BodyLimit:
    """ASGI middleware: `max_bytes` for a request body, `upload_bytes` for paths ending in /upload."""

    def __init__(self, app, max_bytes: int, upload_bytes: int):
        self.app, self.max_bytes, self.upload_bytes = app, max_bytes, upload_bytes

    def limit_for(self, path: str) -> int:
        return self.upload_bytes + UPLOAD_SLACK if path.rstrip("/").endswith("/upload") else self.max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await _refuse(send, limit)
        received, started, refused = 0, False, False

        async def counted_receive():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not refused:
                    refused = True
                    if not started:
                        await _refuse(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message):
            nonlocal started
            if refused:                   # the answer was sent; the app is only cleaning up
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        return await self.app(scope, counted_receive, watched_send)


async def _refuse(send, limit: int) -> None:
    body = json.dumps({"error": f"the request body is larger than {limit:,} bytes, the most this server accepts "
                                "(files: PLAYGROUND_MAX_IMPORT_BYTES; other requests: "
                                "PLAYGROUND_MAX_REQUEST_BYTES)"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def body_limit_middleware(settings):
    """The middleware entry for FastAPI(middleware=[...]) (Gradio's launch(app_kwargs=...))."""
    from starlette.middleware import Middleware

    return Middleware(BodyLimit, max_bytes=settings.max_request_bytes, upload_bytes=settings.max_import_bytes)
