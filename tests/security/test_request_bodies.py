"""Bodies are capped before anything parses them: a 50 MB JSON body to the queue, or an upload past the size of
an import, is answered 413 without being read (so nothing lands in the upload cache), and the cache of uploads
and exports is swept."""

from __future__ import annotations

import http.client
import socket
from urllib.parse import urlparse

import pytest

from public_mode import public_app, visitor  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def post(url: str, path: str, headers: dict, body: bytes, timeout: float = 30) -> tuple[int, bytes]:
    """A raw HTTP POST that sends all of `body` (maybe much less than it declares) before it reads the answer:
    (status, body of the answer)."""
    address = urlparse(url)
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as sock:
        lines = [f"POST {path} HTTP/1.1", f"Host: {address.hostname}", *[f"{k}: {v}" for k, v in headers.items()]]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, answer.read()


def uploads(app) -> set:
    from pathlib import Path

    folder = Path(app.server_app.uploaded_file_dir)
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def test_a_huge_json_body_is_refused_before_it_is_read(public_app):
    answer = post(public_app.local_url, "/gradio_api/queue/join",
                  {"Content-Type": "application/json", "Content-Length": str(50 * 2**20)}, b'{"data": ["')
    assert answer[0] == 413, answer
    assert b"PLAYGROUND_MAX_" in answer[1]


# A client that sends its whole body before it reads (as most do) must still read the 413: the server reads and
# drops the rest. Had it closed at the cap, the kernel would answer the bytes still coming with a reset, and the
# client would see "connection reset" instead of the refusal and what to change. 64 MB outlasts the socket buffers.
OVERSIZED = 64


def test_a_body_without_a_length_is_cut_at_the_cap(public_app):
    chunk = b"x" * 2**20
    body = b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(OVERSIZED)) + b"0\r\n\r\n"
    answer = post(public_app.local_url, "/gradio_api/queue/join",
                  {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, body)
    assert answer[0] == 413, answer
    assert b"PLAYGROUND_MAX_" in answer[1]


def test_a_client_that_sends_its_whole_oversized_body_reads_the_refusal(public_app):
    body = b"x" * OVERSIZED * 2**20
    answer = post(public_app.local_url, "/gradio_api/queue/join",
                  {"Content-Type": "application/json", "Content-Length": str(len(body))}, body)
    assert answer[0] == 413, answer
    assert b"PLAYGROUND_MAX_" in answer[1]


def test_an_upload_past_the_import_size_never_reaches_the_cache(public_app):
    before = uploads(public_app)
    size = public_app.services.settings.max_import_bytes + 50 * 2**20
    answer = post(public_app.local_url, "/gradio_api/upload",
                  {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(size)},
                  b'--x\r\nContent-Disposition: form-data; name="files"; filename="big.zip"\r\n\r\n' + b"z" * 65536)
    assert answer[0] == 413, answer
    assert b"PLAYGROUND_MAX_" in answer[1]
    assert uploads(public_app) == before


def test_gradio_caps_files_and_sweeps_its_cache(public_app):
    from playground.ui.app import launch_kwargs

    settings = public_app.services.settings
    assert launch_kwargs(settings)["max_file_size"] == settings.max_import_bytes
    assert public_app.delete_cache == (settings.cache_max_age_s, settings.cache_max_age_s)


def test_ordinary_requests_still_pass(visitor):
    assert visitor().predict("text", api_name="/list_templates")
