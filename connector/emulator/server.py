"""HTTP surface: routing (`/rest/<user>/<code>/<method>`, `/rest/<method>?auth=`, `/oauth/token/`),
body decoding (JSON, form, query), the JSON encoder, and a threaded loopback server."""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import re
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import orjson

from .auth import INVALID_CREDENTIALS, NO_AUTH, Auth, webhook_auth
from .core import METHOD_NOT_FOUND, Emulator, Reply
from .errors import ApiError
from .files import DOWNLOAD_PATH, download
from .php import parse_query
from .registry import METHODS

log = logging.getLogger(__name__)

MAX_BODY = 32 * 1024 * 1024
POLL_INTERVAL = 0.05  # seconds between serve_forever's shutdown checks: stop() returns this fast
_WEBHOOK = re.compile(r"^/rest/(\d+)/([^/]+)/([^/]+?)/?$")
_OAUTH = re.compile(r"^/rest/([^/]+?)/?$")


@dataclass
class HttpResponse:
    """Status, headers and body bytes; `drop` = close the connection without answering."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    drop: bool = False
    stream: Any = None  # chunks written as produced, no Content-Length (fault "huge"/"hang")


# Json::encode's flags (server-behaviour.md §7): JSON_HEX_QUOT (a `"` inside a string is written as \u0022),
# JSON_HEX_TAG, JSON_HEX_AMP, JSON_HEX_APOS, and `/` escaped as PHP does.
_PHP_ESCAPES = (
    (b"<", b"\\u003C"), (b">", b"\\u003E"), (b"&", b"\\u0026"), (b"'", b"\\u0027"), (b"/", b"\\/"),
)
# an escaped quote: a backslash run of even length from its start (pairs are literal backslashes), then \"
_ESCAPED_QUOTE = re.compile(rb'(?<!\\)((?:\\\\)*)\\"')
# datetimes and dataclasses go to default=str, as json.dumps sends them there
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def encode_json(data: Any) -> bytes:
    """Json::encode with JSON_HEX_TAG|AMP|APOS|QUOT and unescaped unicode; `/` escaped like PHP.

    The bytes are those of `json.dumps(ensure_ascii=False, separators=(",", ":"), default=str)` before the
    escapes; orjson makes them (a 1.7 MB batch answer: 31 ms -> 7 ms with the escapes) unless it cannot
    (keys that are not text, integers past 64 bits, lone surrogates) or its floats would read differently.
    The emulator never holds NaN or infinities (`decode_params` refuses the constants, `finite_float`
    keeps `1e999` out of stored numbers), the one value the two encoders write differently without a trace.
    """
    try:
        raw = orjson.dumps(data, default=str, option=_ORJSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        raw = None
    if raw is None or _small_float_shown(raw):
        raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    if b'\\"' in raw:  # without an escaped backslash anywhere, every \" is an escaped quote: no regex needed
        raw = _ESCAPED_QUOTE.sub(rb"\1\\u0022", raw) if b"\\\\" in raw else raw.replace(b'\\"', b"\\u0022")
    for ch, esc in _PHP_ESCAPES:
        if ch in raw:  # a search is ~30x cheaper than a replace that finds nothing on large answers
            raw = raw.replace(ch, esc)
    return raw


def _small_float_shown(raw: bytes) -> bool:
    """Whether orjson may have written a float under 1e-4 (as 0.00001 or 1e-9; json.dumps writes 1e-05 and
    1e-09); text that only looks so counts too. Literal searches: a regex over a 1.7 MB answer costs 25 ms."""
    if b"0.0000" in raw:
        return True
    at = raw.find(b"e-")
    while at > 0:
        if 48 <= raw[at - 1] <= 57:  # a digit before the exponent
            return True
        at = raw.find(b"e-", at + 2)
    return False


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def decode_params(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    """$_REQUEST: query-string params, then the body's (JSON or form) on top."""
    params: dict[str, Any] = parse_query(query) if query else {}
    if not body:
        return params
    ctype = content_type.split(";")[0].strip().lower()
    text = body.decode("utf-8", errors="replace")
    if ctype == "application/json" or (not ctype and text.lstrip().startswith("{")):
        # NaN/Infinity are not JSON (PHP's json_decode refuses them); the reference notes are silent: stricter
        try:
            data = json.loads(text, parse_constant=_not_json)
        except ValueError:
            data = None
        if isinstance(data, dict):
            params.update(data)
        return params
    params.update(parse_query(text))
    return params


def _method_of(name: str) -> str:
    low = name.lower()
    return low[:-5] if low.endswith(".json") else low


def route(
    emu: Emulator, verb: str, url_path: str, query: str, body: bytes, content_type: str, base_url: str
) -> HttpResponse:
    """Answer one HTTP request; never raises."""
    try:
        return _route(emu, verb, url_path, query, body, content_type, base_url)
    except Exception:
        log.exception("emulator: request to %s failed", _hide_secrets(url_path))
        err = {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}
        return HttpResponse(500, encode_json(err))


def _route(
    emu: Emulator, verb: str, url_path: str, query: str, body: bytes, content_type: str, base_url: str
) -> HttpResponse:
    if verb not in ("GET", "POST"):
        return HttpResponse(405, encode_json({"error": "METHOD_NOT_ALLOWED", "error_description": verb}))
    path = re.sub(r"/{2,}", "/", url_path)
    if path == DOWNLOAD_PATH:  # a file value's url / urlMachine (files.py)
        with emu.state.lock:
            status, data, ctype = download(emu.state, query)
        return HttpResponse(status, data, ctype)
    params = decode_params(query, body, content_type)
    if path.rstrip("/") == "/oauth/token":
        status, answer = emu.oauth.exchange(params, emu.clock.now(), emu.domain, base_url)
        if status == 200:
            emu.save()  # the new pair must survive a restart of the state file's portal
        return HttpResponse(status, encode_json(answer))
    m = _WEBHOOK.match(path)
    auth: Auth | ApiError
    if m:
        method = _method_of(m.group(3))
        if method not in METHODS and method != "batch":
            return _reply(emu.handle(method, params, METHOD_NOT_FOUND, http=True))
        ok = int(m.group(1)) == emu.webhook_user and m.group(2) == emu.webhook_code
        auth = webhook_auth(int(m.group(1))) if ok else INVALID_CREDENTIALS
    else:
        m = _OAUTH.match(path)
        if not m:
            return HttpResponse(
                404,
                encode_json({"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}),
            )
        method = _method_of(m.group(1))
        if method not in METHODS and method != "batch":
            return _reply(emu.handle(method, params, METHOD_NOT_FOUND, http=True))
        token = params.pop("auth", None)
        if not isinstance(token, str) or not token:
            auth = NO_AUTH
        else:
            try:
                auth = emu.oauth.check(token, emu.clock.now())
            except ApiError as err:
                auth = err
    if isinstance(auth, Auth) and params.get("auth_connector"):
        auth = dataclasses.replace(auth, auth_connector=str(params["auth_connector"]))
    return _reply(emu.handle(method, params, auth, http=True, base_url=base_url))


def _reply(reply: Reply) -> HttpResponse:
    body = reply.raw if reply.raw is not None else encode_json(reply.body)
    if reply.truncate:
        body = body[: max(0, len(body) // 2 - 1)]
    return HttpResponse(reply.status, body, reply.content_type, reply.drop, reply.stream)


_SECRETS = re.compile(
    r"(/rest/\d+/)[^/\s?]+|((?:^|[?&])(?:auth|access_token|refresh_token|client_secret)=)[^&\s]*"
)


def _hide_secrets(line: str) -> str:
    """Mask webhook codes and tokens in a request line before it is logged."""
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2)) + "****", line)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30

    def setup(self) -> None:
        super().setup()
        # small keep-alive answers must not wait for the peer's delayed ACK (Nagle: ~40 ms a call)
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if log.isEnabledFor(logging.DEBUG):  # the masked line is built only when someone reads it
            log.debug("emulator http: %s", _hide_secrets(format % args))

    def _serve(self, verb: str) -> None:
        parts = urlsplit(self.path)
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length else 0
        except ValueError:
            size = -1
        if size < 0 or size > MAX_BODY:
            self._send(
                HttpResponse(
                    413,
                    encode_json(
                        {"error": "REQUEST_TOO_LARGE", "error_description": f"Body limit is {MAX_BODY} bytes"}
                    ),
                )
            )
            self.close_connection = True
            return
        body = self.rfile.read(size) if size else b""
        resp = route(
            self.server.emulator,
            verb,
            parts.path,
            parts.query,
            body,
            self.headers.get("Content-Type", ""),
            self.server.base_url,
        )
        if resp.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if resp.stream is not None:
            self._send_stream(resp)
            return
        self._send(resp)

    def _send_stream(self, resp: HttpResponse) -> None:
        """Headers, then each chunk as it is produced; the closed connection ends the body."""
        self.close_connection = True
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Connection", "close")
            self.end_headers()
            for chunk in resp.stream:
                self.wfile.write(chunk)
        except OSError:  # the client hung up (a capped reader stops early)
            pass

    def _send(self, resp: HttpResponse) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        self.wfile.write(resp.body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._serve("POST")


class _Server(ThreadingHTTPServer):
    """Handler threads are daemons and every open (keep-alive) connection is tracked, so `stop()`
    can close them instead of waiting for idle clients to hang up."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    emulator: Emulator
    base_url: str

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (closed or reset its connection) is normal: no traceback for it."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            log.debug("emulator: client %s went away: %s", client_address[0], sys.exc_info()[1])
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Hang up every open connection: idle keep-alive handlers see EOF and end at once."""
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class EmulatorServer:
    """A running loopback server for one Emulator; `stop()` shuts it down."""

    def __init__(self, emu: Emulator, host: str, port: int) -> None:
        self.emulator = emu
        self._httpd = _Server((host, port), _Handler)
        self.host, self.port = str(self._httpd.server_address[0]), self._httpd.server_address[1]
        self.base_url = f"http://{self.host}:{self.port}"
        self._httpd.emulator = emu
        self._httpd.base_url = self.base_url
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(POLL_INTERVAL,), name="b24-emulator", daemon=True
        )
        self._thread.start()

    @property
    def webhook_url(self) -> str:
        return self.emulator.webhook_url(self.base_url)

    def __repr__(self) -> str:
        return f"EmulatorServer({self.base_url})"

    def stop(self) -> None:
        """Stop serving promptly (open keep-alive connections are closed) and flush the state file."""
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self.emulator.save()

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def settle_heap() -> None:
    """Exempt every object alive now from the cyclic garbage collector (`gc.freeze`).

    For a process that exists to serve one loaded portal (`b24sync emulator serve`): a loaded state
    of 100,000 items is ~230,000 tracked containers, and each full collection, triggered by the
    objects a scan's answers allocate, walked all of them (about 0.8 CPU s of a 100,000-item scan).
    Frozen objects are still freed when their last reference goes; only cycles among them are never
    collected. Nothing an answer holds changes. Not for a process that also runs other work (tests).
    """
    gc.collect()
    gc.freeze()


def serve(emu: Emulator, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
    """Start a threaded HTTP server for `emu` (port 0 = any free port)."""
    return EmulatorServer(emu, host, port)
