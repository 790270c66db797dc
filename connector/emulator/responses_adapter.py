"""Serve an Emulator on a `responses.RequestsMock`: a callback on a fixed base URL."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests

from .core import Emulator


def register(emu: Emulator, rsps: Any, base_url: str) -> str:
    """Route every GET/POST under `base_url` to `emu`; a dropped response raises ConnectionError."""
    from .server import route

    base = base_url.rstrip("/")
    pattern = re.compile("^" + re.escape(base) + "/.*")

    def callback(request: Any) -> tuple[int, dict[str, str], bytes | io.BufferedReader]:
        parts = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):
            body = b"".join(body)  # a generator body
        resp = route(
            emu,
            request.method.upper(),
            parts.path,
            parts.query,
            body,
            request.headers.get("Content-Type", ""),
            base,
        )
        if resp.drop:
            raise requests.ConnectionError("Connection aborted: the emulator dropped the response")
        if resp.stream is not None:
            if getattr(resp.stream, "stalls", False):
                raise requests.ReadTimeout("Read timed out: the emulator's answer never finished")
            return resp.status, {"Content-Type": resp.content_type}, _reader(resp.stream)
        return resp.status, {"Content-Type": resp.content_type}, resp.body

    for verb in ("GET", "POST"):
        rsps.add_callback(verb, pattern, callback=callback)
    return emu.webhook_url(base)


class _ChunkReader(io.RawIOBase):
    """A file over an iterable of byte chunks, read lazily (a streamed body through `responses`)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            self._left = next(self._chunks, b"")
            if not self._left:
                return 0
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


def _reader(chunks: Iterable[bytes]) -> io.BufferedReader:
    return io.BufferedReader(_ChunkReader(chunks))
