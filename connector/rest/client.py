"""`Client`: one per portal, shared by all threads; calls, batches and keyset list scans.

https://apidocs.bitrix24.com/settings/how-to-call-rest-api/index.html
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3 import exceptions as urllib3_errors

from connector.constants import BATCH_MAX

from .auth import Auth, WebhookAuth
from .decoding import decode_json
from .encoding import EncodedParams, command, json_params
from .errors import (
    AuthError,
    B24Error,
    OperationTimeLimit,
    OutcomeUnknown,
    PortalUnreachable,
    QueryLimit,
    TokenExpired,
    TransportError,
    UnexpectedAnswer,
    error_from_body,
)
from .limits import Clock, LeakyBucket, MethodLedger, Sleep
from .models import ApiResponse, BatchResult
from .paging import iter_list_pages, json_kind
from .redact import install_log_filter, redact
from .references import has_user_reference, resolve
from .retry import (
    FINAL_5XX_CODES,
    SERVER_FAULT_CODES,
    RetryPolicy,
    connect_failure,
    is_read,
    request_was_sent,
)

log = logging.getLogger("b24sync.rest")

USER_AGENT = "b24sync/0.1 (+https://github.com/b24sync)"
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
MAX_BODY = 64 * 1024 * 1024  # bytes; a larger answer is refused (a full 50-command batch is a few MB)
READ_CHUNK = 1024 * 1024  # bytes per read of a plain body without Content-Length
ENCODED_CHUNK = 64 * 1024  # bytes per read of a compressed body: each read inflates a bounded piece
ANNOUNCE_PAUSES_FROM = 5.0  # seconds: a limit pause at least this long is announced in one line
_LABEL = re.compile(r"^[A-Za-z0-9_]+$")

Command = tuple[str, Mapping[str, Any] | EncodedParams | None]
PauseListener = Callable[[str], None]
Peek = Callable[[bytes], None]  # sees a batch answer's raw body before it is decoded


@dataclass
class ClientStats:
    """Counters of one client: HTTP requests, retries, seconds waited for limits, per method."""

    requests: int = 0
    retries: int = 0
    waited_seconds: float = 0.0
    backoff_seconds: float = 0.0
    refreshes: int = 0
    per_method: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **amounts: float) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def count(self, method: str, status: int | None) -> None:
        with self._lock:
            self.requests += 1
            self.per_method[method] += 1
            if status is not None:
                self.statuses[status] += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "retries": self.retries,
                    "waited_seconds": round(self.waited_seconds, 3),
                    "backoff_seconds": round(self.backoff_seconds, 3), "refreshes": self.refreshes,
                    "per_method": dict(self.per_method), "statuses": dict(self.statuses)}


@dataclass
class _Failure:
    """A request that produced no usable answer and may be retried."""

    error: B24Error
    retryable: bool
    maybe_executed: bool = False
    retry_after: float | None = None
    unreachable: bool = False


class Client:
    """REST client for one portal; thread-safe; the `requests.Session` is the transport seam.

    Limits: the leaky bucket of `plan` is mirrored before every request. When the bucket comes from
    the plan (no `bucket=` given) and the portal's first timed answer lacks `time.operating`, the
    portal runs no limiter (self-hosted, or `emulator serve --limits off`; server-behaviour.md §7:
    the cloud always adds it), so the mirror is switched off; the first 503 switches it back on.
    A portal that cannot be reached before it ever answered fails at once (`PortalUnreachable`).
    Pauses of `ANNOUNCE_PAUSES_FROM` seconds or more go to `on_pause` (or a warning log line).
    """

    def __init__(self, auth: Auth, plan: str = "standard", session: requests.Session | None = None, *,
                 timeout: tuple[float, float] = (5.0, 60.0), retry: RetryPolicy | None = None,
                 bucket: LeakyBucket | None = None, ledger: MethodLedger | None = None,
                 sleep: Sleep = time.sleep, clock: Clock = time.monotonic,
                 allow_http: bool | None = None, max_body: int = MAX_BODY) -> None:
        """`allow_http` (when given) also governs redirects: plain http to a non-loopback host.

        `max_body`: the largest answer in bytes the client reads; a longer one is refused mid-stream.
        """
        if max_body < 1:
            raise ValueError(f"max_body must be a positive number of bytes; got {max_body}")
        self.max_body = max_body
        if allow_http is not None and hasattr(auth, "allow_http"):
            auth.allow_http = allow_http
        self.auth = auth
        self.plan = plan
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.bucket = bucket or LeakyBucket.for_plan(plan, sleep=sleep)
        self.bucket_on = True
        self._learn_limits = bucket is None
        self._answered = False
        self.on_pause: PauseListener | None = None
        self.ledger = ledger or MethodLedger()
        self.stats = ClientStats()
        self._sleep = sleep
        self._clock = clock
        install_log_filter()

    @classmethod
    def from_webhook(cls, url: str, plan: str = "standard", allow_http: bool = False,
                     session: requests.Session | None = None, **options: Any) -> Client:
        """Client for an incoming webhook URL `https://portal/rest/<user>/<code>/`."""
        return cls(WebhookAuth(url, allow_http=allow_http), plan=plan, session=session, allow_http=allow_http,
                   **options)

    def __repr__(self) -> str:
        return f"Client({self.auth!r}, plan={self.plan!r})"

    @property
    def is_app(self) -> bool:
        """Whether the portal knows this client as an OAuth application, not an incoming webhook.

        Only an app has an offline event queue.
        https://apidocs.bitrix24.com/api-reference/events/offline-events/index.html
        """
        return self.auth.kind == "oauth"

    # -- single calls ---------------------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> ApiResponse:
        """Call one REST method; raises a typed `B24Error` on any error answer."""
        if not method or not isinstance(method, str) or "/" in method or "?" in method:
            raise ValueError(f"method must be a REST method name such as 'crm.item.get'; got {method!r}")
        if params is not None and not isinstance(params, Mapping):
            raise ValueError(f"{method}: params must be a mapping (a dict of parameter names); "
                             f"got {type(params).__name__}")
        body = json_params(dict(params or {}))
        payload, status = self._exchange(method, body, write=not is_read(method), ledger_methods=[method])
        self.ledger.record(method, payload.get("time"))
        return ApiResponse(result=payload.get("result"), total=_int_or_none(payload.get("total")),
                           next=_int_or_none(payload.get("next")), time=_dict(payload.get("time")),
                           status=status)

    # -- batches --------------------------------------------------------------------------------

    def batch(self, commands: Mapping[str, Command], halt: bool = False, *,
              peek: Peek | None = None) -> BatchResult:
        """Run up to 50 commands in one request; per-label results and errors.

        `peek`: called with the raw body of the answer (HTTP 200, before it is decoded), on the
        calling thread; a keyset scan sends its next batch from it. Not called when the commands
        must be split (text the batch server would rewrite).
        https://apidocs.bitrix24.com/settings/how-to-call-rest-api/batch.html
        """
        if len(commands) > BATCH_MAX:
            raise ValueError(f"batch takes at most {BATCH_MAX} commands, got {len(commands)}; use batch_all")
        if not commands:
            return BatchResult()
        methods = {label: _check_command(label, entry) for label, entry in commands.items()}
        if any(_user_reference(entry[1]) for entry in commands.values()):
            plain = {label: (m, p.params if isinstance(p, EncodedParams) else p)
                     for label, (m, p) in commands.items()}
            return self._batch_in_segments(plain, methods, halt)
        return self._send_batch(commands, methods, halt, peek)

    def _send_batch(self, commands: Mapping[str, Command], methods: dict[str, str],
                    halt: bool, peek: Peek | None = None) -> BatchResult:
        cmd = {label: command(methods[label], commands[label][1]) for label in commands}
        write = any(not is_read(methods[label]) for label in commands)
        payload, _ = self._exchange("batch", {"halt": 1 if halt else 0, "cmd": cmd}, write=write,
                                    ledger_methods=sorted({methods[label] for label in commands}), peek=peek)
        return self._batch_result(payload, methods)

    def _batch_in_segments(self, commands: Mapping[str, Command], methods: dict[str, str],
                           halt: bool) -> BatchResult:
        """Commands holding text the batch server would rewrite go as plain calls, in order.

        The commands around them still travel in batches; a `BatchRef` to a label answered in an
        earlier segment is resolved here by the server's own rule (`references.resolve`).
        """
        merged = BatchResult()
        pending: dict[str, Command] = {}

        def known() -> dict[str, Any]:
            errors = {k: {"error": e.code, "error_description": e.description}
                      for k, e in merged.errors.items()}
            return {"result": merged.results, "next": merged.nexts, "total": merged.totals,
                    "time": merged.times, "error": errors}

        def flush() -> None:
            if pending:
                earlier = known()
                part = self._send_batch({label: (m, resolve(p, earlier, keep=set(pending)))
                                         for label, (m, p) in pending.items()}, methods, halt)
                merged.merge(part)
                merged.time = merged.time or part.time  # the first answer's clock, as for one batch
                pending.clear()

        for label, (method, params) in commands.items():
            if not has_user_reference(params):
                pending[label] = (method, params)
                continue
            flush()
            if halt and merged.errors:
                return merged
            try:
                response = self.call(method, resolve(params or {}, known()))
            except (TransportError, AuthError, QueryLimit):
                raise  # no answer, or the whole request was refused: as a batch would raise
            except B24Error as err:
                merged.errors[label] = err
                if halt:
                    return merged
                continue
            merged.results[label] = response.result
            merged.time = merged.time or response.time
            if response.total is not None:
                merged.totals[label] = response.total
            if response.next is not None:
                merged.nexts[label] = response.next
            if response.time:
                merged.times[label] = response.time
        flush()
        return merged

    def batch_all(self, commands: Mapping[str, Command] | Iterable[tuple[str, Command]],
                  halt: bool = False) -> BatchResult:
        """Any number of commands, sent in chunks of 50; one merged `BatchResult`."""
        items = list(commands.items() if isinstance(commands, Mapping) else commands)
        merged = BatchResult()
        for start in range(0, len(items), BATCH_MAX):
            chunk = self.batch(dict(items[start:start + BATCH_MAX]), halt=halt)
            merged.merge(chunk)
            if halt and chunk.errors:
                break
        return merged

    def _batch_result(self, payload: dict[str, Any], methods: dict[str, str]) -> BatchResult:
        inner = check_batch_shape(payload.get("result"))
        result = BatchResult(time=_dict(payload.get("time")))
        result.results = _as_map(inner.get("result"))
        for label, body in _as_map(inner.get("result_error")).items():
            body = body if isinstance(body, dict) else {"error": body}
            result.errors[label] = self._error(body, None, methods.get(label))
        result.totals = {k: v for k, v in ((k, _int_or_none(v)) for k, v in
                                           _as_map(inner.get("result_total")).items()) if v is not None}
        result.nexts = {k: v for k, v in ((k, _int_or_none(v)) for k, v in
                                          _as_map(inner.get("result_next")).items()) if v is not None}
        result.times = {k: v for k, v in _as_map(inner.get("result_time")).items() if isinstance(v, dict)}
        for label, time_info in result.times.items():
            if label in methods:
                self.ledger.charge(methods[label], time_info)
        for label, error in result.errors.items():
            if isinstance(error, OperationTimeLimit) and label in methods:
                self.ledger.block(methods[label], self._limit_reset(methods[label]))
        return result

    # -- list scans -----------------------------------------------------------------------------

    def iter_list(self, method: str, params: Mapping[str, Any] | None = None, rows_key: str | None = "auto",
                  id_key: str | None = None, pages_per_request: int = BATCH_MAX) -> Iterator[Any]:
        """Every row of a list method, without COUNT: `>id` keyset chained in one batch.

        Up to `pages_per_request` x 50 rows per HTTP request; rows_key "auto" picks `items`,
        `types`, `categories`, ... from the method, None means the result is a plain array.
        https://apidocs.bitrix24.com/settings/performance/huge-data.html
        """
        yield from iter_list_pages(self, method, params, rows_key, id_key, pages_per_request)

    # -- the request loop -----------------------------------------------------------------------

    def _exchange(self, method: str, body: dict[str, Any], write: bool,
                  ledger_methods: list[str], peek: Peek | None = None) -> tuple[dict[str, Any], int]:
        started = self._clock()
        slept = 0.0
        retries = 0
        refreshed = False
        redirects = 0
        while True:
            self._respect_ledger(ledger_methods, method)
            waited = self.bucket.acquire(on_wait=self._announce_bucket) if self.bucket_on else 0.0
            if waited:
                self.stats.add(waited_seconds=waited)
            signed, token = self.auth.sign(body)
            outcome = self._send(method, signed, write, peek)
            if isinstance(outcome, requests.Response):
                location = outcome.headers.get("Location")
                if redirects >= MAX_REDIRECTS or not location:
                    raise TransportError("TOO_MANY_REDIRECTS", f"gave up after {redirects} redirects",
                                         outcome.status_code, method)
                host = self.auth.rebase(location, method)
                log.info("portal moved: following HTTP %s to %s for %s", outcome.status_code, host, method)
                redirects += 1
                continue
            if isinstance(outcome, tuple):
                self._learn_plan(outcome[0])
                return outcome
            error = outcome.error
            if isinstance(error, TokenExpired) and self.auth.can_refresh and not refreshed:
                log.info("%s: access token expired, refreshing once", method)
                self.auth.refresh(self.session, token, self.timeout[1])
                self.stats.add(refreshes=1)
                refreshed = True
                continue
            if not outcome.retryable:
                raise error
            if write and outcome.maybe_executed:
                raise OutcomeUnknown(error.code, "the write may have been applied but its answer was lost "
                                     f"({error.description or error.code}); it was not re-sent",
                                     error.status, method)
            retries += 1
            delay = self._retry_delay(outcome, retries, method, ledger_methods)
            elapsed = max(self._clock() - started, slept)
            if retries >= self.retry.max_attempts or (outcome.retry_after is None
                                                      and elapsed + delay > self.retry.max_total):
                raise error
            log.info("%s: retry %d after %s in %.2fs", method, retries, error.code or "error", delay)
            self.stats.add(retries=1)
            if outcome.retry_after is None and delay > 0:
                reason = "the request-rate limit" if isinstance(error, QueryLimit) else "a failed answer"
                self._announce(f"{reason} ({error.code or 'error'} on {method}), then retrying", delay)
                self.stats.add(backoff_seconds=delay)
                self._sleep(delay)
                slept += delay

    def _retry_delay(self, failure: _Failure, retries: int, method: str, ledger_methods: list[str]) -> float:
        if failure.retry_after is None:
            return self.retry.delay(retries)
        until = failure.retry_after
        wait = until - self.ledger.now()
        if wait > self.retry.max_limit_wait:
            raise failure.error
        for name in ledger_methods:
            self.ledger.block(name, until)
        return max(0.0, wait)

    def _respect_ledger(self, methods: list[str], method: str) -> None:
        pause = max((self.ledger.pause_needed(name) for name in methods), default=0.0)
        if pause <= 0:
            return
        if pause > self.retry.max_limit_wait:
            raise OperationTimeLimit("OPERATION_TIME_LIMIT", f"time budget nearly spent; it resets in "
                                     f"{pause:.0f}s, longer than max_limit_wait", None, method,
                                     reset_at=self.ledger.now() + pause)
        log.info("%s: pausing %.1fs before the portal's operating-time limit", method, pause)
        self._announce(f"the operating-time limit of {method} (the portal's 10-minute budget per method)",
                       pause)
        self.stats.add(waited_seconds=pause)
        self._sleep(pause)

    def _announce(self, limit: str, seconds: float) -> None:
        """Tell the user about a pause long enough to look like a hang: which limit, how long."""
        if seconds < ANNOUNCE_PAUSES_FROM:
            return
        line = f"waiting {seconds:.0f} s for {limit}"
        if self.on_pause is not None:
            self.on_pause(line)
        else:
            log.warning("%s", line)

    def _announce_bucket(self, seconds: float) -> None:
        self._announce(f"the request-rate limit ({self.plan} plan, {self.bucket.capacity:g} requests, "
                       f"{self.bucket.drain:g} per second)", seconds)

    def _learn_plan(self, payload: dict[str, Any]) -> None:
        """Switch the bucket mirror off when the first timed answer shows the portal runs no limiter."""
        self._answered = True
        timing = payload.get("time")
        if not self._learn_limits or not isinstance(timing, dict):
            return
        self._learn_limits = False
        if "operating" not in timing and "operating_reset_at" not in timing:
            log.info("the portal reports no operating-time limiter (self-hosted, or an emulator without "
                     "limits): client-side rate limiting is off until the portal answers 503")
            self.bucket_on = False

    def _limit_reset(self, method: str) -> float:
        reset = self.ledger.reset_at(method)
        return reset if reset is not None else self.ledger.now() + self.retry.limit_fallback

    def _send(self, method: str, body: dict[str, Any], write: bool,
              peek: Peek | None = None) -> tuple[dict[str, Any], int] | requests.Response | _Failure:
        started = self._clock()
        try:
            response = self.session.post(self.auth.url(method), json=body, timeout=self.timeout,
                                         allow_redirects=False, headers=_HEADERS, stream=True)
            content = read_capped(response, self.max_body)
        except BodyTooLarge as exc:  # the same answer would come again: not retried, the next run tries
            self.stats.count(method, exc.status)
            return _Failure(TransportError("BODY_TOO_LARGE", str(exc), exc.status, method), retryable=False)
        except requests.RequestException as exc:
            self.stats.count(method, None)
            sent = request_was_sent(exc)
            log.debug("%s -> %s (%s)", method, type(exc).__name__, "maybe sent" if sent else "not sent")
            failed = connect_failure(exc)
            if failed is not None:  # never answered yet: a wrong URL or a stopped portal, fail at once
                host = urlsplit(self.auth.base_url).netloc.rsplit("@", 1)[-1]
                detail = redact(failed[1], self.auth.secrets())
                gone = PortalUnreachable(host, failed[0], detail, method)
                return _Failure(gone, retryable=self._answered, maybe_executed=sent, unreachable=True)
            text = redact(str(exc), self.auth.secrets())
            error = TransportError("TRANSPORT", f"{type(exc).__name__}: {text}", None, method)
            return _Failure(error, retryable=True, maybe_executed=sent)
        status = response.status_code
        self._answered = True
        self.stats.count(method, status)
        log.debug("%s -> HTTP %s in %.3fs", method, status, self._clock() - started)
        if status in REDIRECTS and response.headers.get("Location"):
            return response
        if peek is not None and status == 200:
            peek(content)
        payload = _parse_body(content)
        if payload is None:
            error = body_error(content, response.headers.get("Content-Type", ""), status, method)
            return _Failure(error, retryable=True, maybe_executed=status not in (429, 503))
        if "error" in payload and payload.get("error") is not None and "result" not in payload:
            return self._error_failure(payload, status, method)
        if status >= 500 or "result" not in payload:
            error = TransportError("BAD_BODY", "the portal answered without a result", status, method)
            return _Failure(error, retryable=True, maybe_executed=True)
        check_envelope(payload, status, method)
        return payload, status

    def _error_failure(self, payload: dict[str, Any], status: int, method: str) -> _Failure:
        error = self._error(payload, status, method)
        code = error.code
        if code in FINAL_5XX_CODES:  # blocked or deleted portal: waiting a few seconds changes nothing
            return _Failure(error, retryable=False)
        if status == 503 or isinstance(error, QueryLimit):
            self.bucket_on, self._learn_limits = True, False
            self.bucket.saturate()
            return _Failure(error, retryable=True)
        if status == 429 or isinstance(error, OperationTimeLimit):
            reset = self._limit_reset(method)
            limit = OperationTimeLimit(code, error.description, status, method, reset_at=reset)
            return _Failure(limit, retryable=True, retry_after=reset)
        if status >= 500 and (code in SERVER_FAULT_CODES or type(error) is B24Error):
            return _Failure(error, retryable=True, maybe_executed=True)
        return _Failure(error, retryable=False)

    def _error(self, body: dict[str, Any], status: int | None, method: str | None) -> B24Error:
        secrets = self.auth.secrets()
        description = body.get("error_description")
        clean = {"error": body.get("error"),
                 "error_description": None if description is None else redact(str(description), secrets)}
        if isinstance(clean["error"], str):
            clean["error"] = redact(clean["error"], secrets)
        return error_from_body(clean, status, method)


_HEADERS = {"Accept": "application/json", "User-Agent": USER_AGENT}


def _check_command(label: Any, entry: Any) -> str:
    """Validate one batch entry; returns its method name."""
    if not isinstance(label, str) or not _LABEL.match(label) or label.lstrip("-").isdecimal():
        raise ValueError(f"batch label {label!r} is not allowed: labels are non-numeric names of letters, "
                         "digits and underscores (e.g. 'get_1'), because PHP turns numeric keys into a list")
    if not (isinstance(entry, tuple | list) and len(entry) == 2 and isinstance(entry[0], str)):
        raise ValueError(f"batch command {label!r} must be a (method, params) pair; got {entry!r}")
    method = entry[0]
    if method.lower() == "batch" or not method or "?" in method:
        raise ValueError(f"batch command {label!r}: {method!r} is not allowed (no nested batch, no query)")
    if entry[1] is not None and not isinstance(entry[1], Mapping | EncodedParams):
        raise ValueError(f"batch command {label!r}: params must be a mapping, EncodedParams or None")
    return method


def _user_reference(params: Mapping[str, Any] | EncodedParams | None) -> bool:
    """Whether a command's params hold text the batch server would rewrite (checked once if encoded)."""
    if isinstance(params, EncodedParams):
        return params.user_reference
    return has_user_reference(params)


# -- what an answer must look like --------------------------------------------------------------


class BodyTooLarge(requests.RequestException):
    """Raised by `read_capped`; the client turns it into a `TransportError` naming the limit."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def read_capped(response: requests.Response, limit: int) -> bytes:
    """The body of a streamed response, refused (and the connection closed) past `limit` bytes.

    A declared Content-Length over the limit is refused before reading. A plain body within it is
    read in one call (http.client clips the read to the declared length: one allocation, few GIL
    hand-overs), one without it in `READ_CHUNK` pieces; a compressed body (whose Content-Length
    counts compressed bytes) in `ENCODED_CHUNK` pieces, as before. Reading stops as soon as the body
    passes the limit, so the body held stays within `limit` (plus one read), and joining the pieces
    at most doubles it.
    """
    declared = _int_or_none(response.headers.get("Content-Length"))
    if declared is not None and declared > limit:
        response.close()
        raise BodyTooLarge(f"the answer is {declared} bytes, over the {limit}-byte limit (max_body)",
                           response.status_code)
    if response.raw is None or getattr(response, "_content_consumed", False):
        # a body already in memory: a hand-built Response, or one a session has read (`doctor --record`)
        content = response.content or b""
        if len(content) > limit:
            raise BodyTooLarge(f"the answer is {len(content)} bytes, over the {limit}-byte limit (max_body)",
                               response.status_code)
        return content
    if response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        step = ENCODED_CHUNK
    else:
        step = limit + 1 if declared is not None else READ_CHUNK
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := _read_raw(response.raw, min(step, limit + 1 - size)):
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"the answer passed the {limit}-byte limit (max_body); reading stopped",
                                   response.status_code)
            chunks.append(chunk)
    finally:
        response.close()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _read_raw(raw: Any, amount: int) -> bytes:
    """Up to `amount` bytes of the (decoded) body; urllib3's errors raised as `iter_content` raises them."""
    if not hasattr(raw, "stream"):  # a plain file object, as `iter_content` reads it too
        return bytes(raw.read(amount))
    try:
        return bytes(raw.read(amount, decode_content=True))
    except urllib3_errors.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except urllib3_errors.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except urllib3_errors.ReadTimeoutError as exc:
        raise requests.exceptions.ConnectionError(exc) from exc
    except urllib3_errors.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from exc


def body_error(content: bytes, content_type: str, status: int, method: str) -> TransportError:
    """The error for a body that is not a JSON object: an HTML page, a cut-off JSON text, or other."""
    if "html" in content_type or content.lstrip()[:1] == b"<":
        return TransportError("HTML", "the portal answered an HTML page, not JSON", status, method)
    if content.lstrip()[:1] in (b"{", b"["):
        text = f"the portal's JSON answer ends early (after {len(content)} bytes)"
        return TransportError("TRUNCATED", text, status, method)
    if not content.strip():
        return TransportError("BAD_BODY", "the portal answered an empty body", status, method)
    return TransportError("BAD_BODY", "the portal answered a body that is not JSON", status, method)


def check_envelope(payload: dict[str, Any], status: int, method: str) -> None:
    """`time` of a successful answer, when present, is an object (the limit ledger reads it)."""
    timing = payload.get("time")
    if timing is not None and not isinstance(timing, dict):
        text = f"'time' is {json_kind(timing)}, expected an object"
        raise UnexpectedAnswer("BAD_SHAPE", text, status, method)


def check_batch_shape(inner: Any) -> dict[str, Any]:
    """The `result` of a batch answer: an object whose parts are maps (`[]` when empty in PHP)."""
    if not isinstance(inner, dict):
        raise UnexpectedAnswer("BAD_SHAPE", f"result is {json_kind(inner)}, expected an object with "
                               "result/result_error", 200, "batch")
    for part in ("result", "result_error", "result_total", "result_next", "result_time"):
        value = inner.get(part)
        if value is not None and not isinstance(value, dict | list):
            raise UnexpectedAnswer("BAD_SHAPE", f"result.{part} is {json_kind(value)}, expected an object",
                                   200, "batch")
    return inner


def _parse_body(content: bytes) -> dict[str, Any] | None:
    try:
        payload = decode_json(content)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _as_map(value: Any) -> dict[str, Any]:
    """A PHP map as serialised by the portal: an object, an array (keys 0..n-1) or `[]`."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


__all__ = ["Client", "ClientStats"]
