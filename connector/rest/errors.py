"""Typed errors of the REST layer, built from the parsed Bitrix24 error body.

Every error is a `B24Error` with `.code` (always a string: `0` becomes `"0"`), `.description`,
`.status` (HTTP status, `None` for a batch sub-command) and `.method`. `str()` never contains a
secret: the client redacts webhook codes and tokens before an error is built.
"""

from __future__ import annotations

from typing import Any

from connector.errors import PortalError


class B24Error(PortalError):
    """An error answered by the portal (or met on the way to it)."""

    def __init__(self, code: str, description: str = "", status: int | None = None,
                 method: str | None = None) -> None:
        self.code = code
        self.description = description
        self.status = status
        self.method = method
        super().__init__(self._message())

    def _message(self) -> str:
        where = self.method or "request"
        status = f" (HTTP {self.status})" if self.status is not None else ""
        code = self.code if self.code != "" else '""'
        text = f": {self.description}" if self.description else ""
        return f"{where} failed{status}: {code}{text}"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code!r}, description={self.description!r}, "
                f"status={self.status!r}, method={self.method!r})")


class NotFound(B24Error):
    """The object does not exist (`NOT_FOUND`)."""


class AccessDenied(B24Error):
    """The webhook user or app lacks the right or the scope."""


class InvalidArgument(B24Error):
    """A parameter is missing or has a bad value (`INVALID_ARG_VALUE`, `100`, ...)."""


class QueryLimit(B24Error):
    """503 `QUERY_LIMIT_EXCEEDED`: the portal's leaky bucket overflowed."""


class OperationTimeLimit(B24Error):
    """429 `OPERATION_TIME_LIMIT`: the method's 10-minute time budget is spent."""

    def __init__(self, code: str, description: str = "", status: int | None = None,
                 method: str | None = None, reset_at: float | None = None) -> None:
        self.reset_at = reset_at
        super().__init__(code, description, status, method)


class AuthError(B24Error):
    """The webhook code or token was rejected (`NO_AUTH_FOUND`, `INVALID_CREDENTIALS`, ...)."""


class TokenExpired(AuthError):
    """401 `expired_token`: the OAuth access token expired and could not be renewed."""


class TransportError(B24Error):
    """No usable answer: network failure, HTML page, truncated or non-JSON body."""


class UnexpectedAnswer(TransportError):
    """The portal answered JSON of the wrong shape: a missing or mistyped key, a bad id, a repeated page."""


class PortalUnreachable(TransportError):
    """The portal could not be reached at all: the connection was refused, or the host is unreachable.

    `host` is the portal's `host[:port]` and `reason` is "refused" or "unreachable"; the request was
    never sent, so nothing can have changed on the portal.
    """

    def __init__(self, host: str, reason: str, detail: str = "", method: str | None = None) -> None:
        self.host = host
        self.reason = reason
        self.detail = detail
        super().__init__("TRANSPORT", detail, None, method)

    def _message(self) -> str:
        said = "connection refused" if self.reason == "refused" else "host unreachable"
        detail = f" ({self.detail})" if self.detail else ""
        calling = f" (calling {self.method})" if self.method else ""
        return f"cannot reach the portal {self.host}{calling}: {said}{detail}"


class OutcomeUnknown(B24Error):
    """A write may have reached the portal but its answer was lost; it was not re-sent.

    Look the object up (for example by its `xmlId` sync key) before sending the write again.
    """


_BY_CODE: dict[str, type[B24Error]] = {
    "NOT_FOUND": NotFound,
    "ERROR_METHOD_NOT_FOUND": NotFound,
    "ACCESS_DENIED": AccessDenied,
    "allowed_only_intranet_user": AccessDenied,
    "insufficient_scope": AccessDenied,
    "user_access_error": AccessDenied,
    "INVALID_ARG_VALUE": InvalidArgument,
    "100": InvalidArgument,
    "ERROR_ARGUMENT": InvalidArgument,
    "BX_EMPTY_REQUIRED": InvalidArgument,
    "CRM_FIELD_ERROR_VALUE_NOT_VALID": InvalidArgument,
    "QUERY_LIMIT_EXCEEDED": QueryLimit,
    "OPERATION_TIME_LIMIT": OperationTimeLimit,
    "expired_token": TokenExpired,
    "NO_AUTH_FOUND": AuthError,
    "INVALID_CREDENTIALS": AuthError,
    "invalid_token": AuthError,
    "invalid_grant": AuthError,
    "invalid_client": AuthError,
}


def error_code(raw: Any) -> str:
    """Normalise the `error` field: a string, the integer `0`, `""` or `None` -> a string."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "1" if raw else "0"
    return str(raw)


def error_class(code: str) -> type[B24Error]:
    """The exception class for an error code; unknown codes give `B24Error`."""
    return _BY_CODE.get(code, B24Error)


def error_from_body(body: dict[str, Any], status: int | None, method: str | None) -> B24Error:
    """Build the typed error from a parsed `{"error": ..., "error_description": ...}` body."""
    code = error_code(body.get("error"))
    description = body.get("error_description")
    text = "" if description is None else str(description)
    return error_class(code)(code, text, status, method)
