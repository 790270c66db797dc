"""`read_capped` reads a body in one call (declared length) or in large pieces, with `max_body` exact.

Over a real 127.0.0.1 socket: a small HTTP server answers with a Content-Length, chunked, without
either (the connection's end ends the body), gzip-compressed, or cut short. For each framing a body
of exactly `max_body` bytes is read whole and one byte more is refused (`BODY_TOO_LARGE`); a cut-off
body is a retryable transport failure as before (requests' `ChunkedEncodingError`); and the client
reads a real portal answer from `emulator serve` unchanged.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from connector.emulator import Emulator, serve
from connector.rest import Client, RetryPolicy, TransportError
from connector.rest.client import BodyTooLarge, read_capped

LIMIT = 3 * 1024 * 1024 + 17  # over one READ_CHUNK, not a multiple of it


def body_of(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (size >= 20)."""
    head = b'{"result":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        # /<framing>/<size> (read_capped alone) or /rest/1/<framing>-<size>/<method> (the client)
        parts = self.path.strip("/").split("/")
        framing, size_text = parts[:2] if parts[0] != "rest" else parts[2].split("-")
        body = body_of(int(size_text))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if framing == "length":
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif framing == "gzip":
            packed = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(packed)))
            self.end_headers()
            self.wfile.write(packed)
        elif framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 300_000):
                piece = body[start:start + 300_000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif framing == "close":  # no length: the end of the connection ends the body
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
        elif framing == "cut":  # declares the length, sends half, hangs up
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that stops reading (a refused body) breaks the pipe: expected here


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def fetch(origin: str, framing: str, size: int, limit: int = LIMIT) -> bytes:
    with requests.Session() as session:
        response = session.post(f"{origin}/{framing}/{size}", json={}, stream=True, timeout=(5, 30))
        return read_capped(response, limit)


@pytest.mark.parametrize("framing", ["length", "chunked", "close", "gzip"])
def test_a_body_of_exactly_max_body_is_read_whole(origin: str, framing: str) -> None:
    for size in (20, 100_000, LIMIT):
        assert fetch(origin, framing, size) == body_of(size)


@pytest.mark.parametrize("framing", ["length", "chunked", "close", "gzip"])
def test_one_byte_over_max_body_is_refused(origin: str, framing: str) -> None:
    with pytest.raises(BodyTooLarge, match=f"{LIMIT}-byte limit"):
        fetch(origin, framing, LIMIT + 1)


def test_a_compressed_body_is_inflated_in_small_pieces(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Content-Length counts compressed bytes: one read of it could inflate far past max_body."""
    from connector.rest import client as client_module

    asked: list[int] = []
    original = client_module._read_raw

    def recording(raw: Any, amount: int) -> bytes:
        asked.append(amount)
        return original(raw, amount)

    monkeypatch.setattr(client_module, "_read_raw", recording)
    assert fetch(origin, "gzip", LIMIT) == body_of(LIMIT)
    assert asked and max(asked) <= client_module.ENCODED_CHUNK
    asked.clear()
    assert fetch(origin, "length", LIMIT) == body_of(LIMIT)
    assert asked[0] == LIMIT + 1  # a plain body of declared length: one read


def test_a_declared_length_over_the_limit_is_refused_before_reading(origin: str) -> None:
    with pytest.raises(BodyTooLarge, match=f"the answer is {LIMIT + 1} bytes, over the {LIMIT}-byte limit"):
        fetch(origin, "length", LIMIT + 1)


def test_a_cut_off_body_is_a_transport_error_as_before(origin: str) -> None:
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        fetch(origin, "cut", 200_000)
    client = Client.from_webhook(f"{origin}/rest/1/cut-200000/", allow_http=True,
                                 retry=RetryPolicy(max_attempts=1))
    with pytest.raises(TransportError) as caught:
        client.call("profile")
    assert caught.value.code == "TRANSPORT" and "ChunkedEncodingError" in str(caught.value)


def test_client_max_body_over_loopback(origin: str) -> None:
    for framing in ("length", "chunked"):
        client = Client.from_webhook(f"{origin}/rest/1/{framing}-1000/", allow_http=True, max_body=999)
        with pytest.raises(TransportError) as caught:
            client.call("profile")
        assert caught.value.code == "BODY_TOO_LARGE" and "999-byte limit (max_body)" in str(caught.value)
        client.max_body = 1000
        assert client.call("profile").result == json.loads(body_of(1000))["result"]


def test_the_client_reads_emulator_answers_unchanged() -> None:
    """A chained 2,500-row scan over `emulator serve`: every row, in order, as the emulator holds it."""
    emu = Emulator(limits="off", seed=3)
    etid = emu.call("crm.type.add", {"fields": {"title": "Read"}})["result"]["type"]["entityTypeId"]
    ids = emu.seed_items(etid, 3_000)
    server = serve(emu, host="127.0.0.1", port=0)
    try:
        client = Client.from_webhook(server.webhook_url, allow_http=True)
        rows = list(client.iter_list("crm.item.list", {"entityTypeId": etid, "select": ["id", "title"]}))
    finally:
        server.stop()
    assert [row["id"] for row in rows] == ids
    for row in rows[::997]:
        item = emu.call("crm.item.get", {"entityTypeId": etid, "id": row["id"]})["result"]["item"]
        assert row == {"id": item["id"], "title": item["title"]}


class ReadingSession(requests.Session):
    """Reads every answer before the client does, as `doctor --record` does."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().send(request, **kwargs)
        assert response.content
        return response


def test_a_body_a_session_already_read_is_used_with_the_cap(origin: str) -> None:
    client = Client.from_webhook(f"{origin}/rest/1/length-5000/", allow_http=True, session=ReadingSession())
    assert client.call("profile").result == json.loads(body_of(5000))["result"]
    client.max_body = 4999
    with pytest.raises(TransportError, match="5000 bytes, over the 4999-byte limit"):
        client.call("profile")
