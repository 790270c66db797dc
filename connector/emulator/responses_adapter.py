"""Serve an Emulator on a `responses.RequestsMock`: a callback on a fixed base URL."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import requests

from .core import Emulator


def register(emu: Emulator, rsps: Any, base_url: str) -> str:
    """Route every GET/POST under `base_url` to `emu`; a dropped response raises ConnectionError."""
    from .server import route

    base = base_url.rstrip("/")
    pattern = re.compile("^" + re.escape(base) + "/.*")

    def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
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
        return resp.status, {"Content-Type": resp.content_type}, resp.body

    for verb in ("GET", "POST"):
        rsps.add_callback(verb, pattern, callback=callback)
    return emu.webhook_url(base)
