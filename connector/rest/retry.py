"""One retry policy for every request (in the spirit of stripe-python's `_should_retry`).

Retried: 503 `QUERY_LIMIT_EXCEEDED`, connection errors, 5xx, HTML or truncated bodies, with
exponential backoff and jitter, bounded by attempts and total time; 429 waits until
`operating_reset_at` (bounded by `max_limit_wait`). A *write* whose request may have reached the
portal and whose answer was lost is never re-sent: the caller gets `OutcomeUnknown`.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

READ_SUFFIXES = (".get", ".list", ".fields")
READ_METHODS = frozenset({
    "profile", "server.time", "scope", "methods", "method.get", "user.current", "app.info",
    "crm.type.getbyentitytypeid", "crm.enum.ownertype", "crm.status.entity.items", "crm.status.entity.types",
    "event.offline.list",
})
WRITE_READS = frozenset({"event.offline.get"})  # deletes what it returns unless clear=0

SERVER_FAULT_CODES = frozenset({"INTERNAL_SERVER_ERROR", "ERROR_UNEXPECTED_ANSWER", "ERROR_CORE", ""})
FINAL_5XX_CODES = frozenset({"PORTAL_DELETED", "OVERLOAD_LIMIT"})


def is_read(method: str) -> bool:
    """True for methods that change nothing on the portal (`*.get`, `*.list`, `*.fields`, ...)."""
    name = method.lower()
    if name in WRITE_READS:
        return False
    return name.endswith(READ_SUFFIXES) or name in READ_METHODS


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop; `jitter` returns a number in [0, 1) (pin it in tests)."""

    max_attempts: int = 6
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_total: float = 60.0
    max_limit_wait: float = 660.0
    limit_fallback: float = 60.0
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, retry_number: int) -> float:
        """Seconds before retry `retry_number` (1-based): 2^n backoff capped, jittered to [1/2, 1]."""
        raw = min(self.initial_delay * 2 ** (retry_number - 1), self.max_delay)
        return max(self.initial_delay, raw * (0.5 + 0.5 * self.jitter()))


def request_was_sent(exc: requests.RequestException) -> bool:
    """False only when the connection was never made, so the portal cannot have run the call."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)
        if isinstance(reason, NewConnectionError | ConnectTimeoutError):
            return False
    return True


_UNREACHABLE_ERRNOS = {
    errno.ENETUNREACH: "no route to the network", errno.EHOSTUNREACH: "no route to the host",
    errno.EHOSTDOWN: "the host is down", errno.ETIMEDOUT: "the connection timed out",
}


def connect_failure(exc: requests.RequestException) -> tuple[str, str] | None:
    """("refused" | "unreachable", detail) when no connection to the portal could be made, else None.

    TLS failures count as unreachable: no request was sent and retrying will not help.
    """
    if isinstance(exc, requests.exceptions.SSLError):
        return "unreachable", f"TLS failed: {_innermost(exc)}"
    if isinstance(exc, requests.ConnectTimeout):
        return "unreachable", "no answer to the connection attempt"
    if not isinstance(exc, requests.ConnectionError) or request_was_sent(exc):
        return None
    chain = _chain(exc)
    if any(isinstance(e, NameResolutionError) for e in chain):
        return "unreachable", "the host name does not resolve"
    for e in chain:
        if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED:
            return "refused", "nothing listens on that port"
        code = getattr(e, "errno", None)
        if code in _UNREACHABLE_ERRNOS:
            return "unreachable", _UNREACHABLE_ERRNOS[code]
    if "refused" in str(exc).lower():
        return "refused", "nothing listens on that port"
    return "unreachable", _innermost(exc)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its args that are exceptions, their reasons and causes (urllib3 nests them)."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [*item.args, getattr(item, "reason", None), item.__cause__, item.__context__]
    return seen


def _innermost(exc: BaseException) -> str:
    last = _chain(exc)[-1]
    return f"{type(last).__name__}: {last}"[:200]
