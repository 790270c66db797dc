"""How the client authenticates: an incoming webhook or an OAuth application.

An auth object knows the portal's base URL, signs a request body, follows a domain change
(`rebase`) and, for OAuth, renews an expired access token once per request.
https://apidocs.bitrix24.com/settings/how-to-call-rest-api/authorization.html
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol
from urllib.parse import urljoin, urlsplit

import requests
from pydantic import BaseModel, ConfigDict

from .errors import AuthError, TransportError, error_code
from .redact import MASK, redact, register_secret

DEFAULT_TOKEN_URL = "https://oauth.bitrix.info/oauth/token/"

AuthKind = Literal["webhook", "oauth"]
"""How a client is known to the portal: an incoming webhook, or an OAuth application (an app)."""

_WEBHOOK_PATH = re.compile(r"^(?P<prefix>/(?:.*/)?)rest/(?P<user>\d+)/(?P<code>[^/]+)/?$")


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, allow_http: bool, what: str) -> None:
    """Refuse anything but https, or plain http to a loopback host, unless `allow_http`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http(s) URL such as https://portal.bitrix24.com/rest/; "
                         f"got {redact(url)!r}")
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise ValueError(f"{what} uses plain http to {parts.hostname}, which would send secrets in clear "
                         "text; use https, a loopback host (127.0.0.1, localhost), or pass allow_http=True")


class Auth(Protocol):
    """What the client needs from an authentication scheme."""

    kind: AuthKind
    can_refresh: bool
    allow_http: bool

    @property
    def base_url(self) -> str: ...

    @property
    def host(self) -> str:
        """The portal's host (`acme.bitrix24.ru`), for messages; never a secret."""
        ...

    def url(self, method: str) -> str: ...

    def sign(self, body: dict[str, Any]) -> tuple[dict[str, Any], str | None]: ...

    def secrets(self) -> tuple[str, ...]: ...

    def rebase(self, location: str, method: str) -> str: ...

    def refresh(self, session: requests.Session, used_token: str | None, timeout: float) -> None: ...


def _new_base(current_base: str, location: str, method: str) -> str:
    """The base URL implied by a redirect `Location` for a call to `method`."""
    target = urljoin(current_base + method, location)
    parts = urlsplit(target)
    path = parts.path
    for suffix in (method, method + ".json"):
        if path.endswith("/" + suffix):
            return f"{parts.scheme}://{parts.netloc}{path[: -len(suffix)]}"
    old_path = urlsplit(current_base).path
    return f"{parts.scheme}://{parts.netloc}{old_path}"


class _PortalBase:
    """The base URL every scheme keeps, and following a portal's move to a new domain."""

    _base: str
    allow_http: bool

    @property
    def base_url(self) -> str:
        return self._base

    @property
    def host(self) -> str:
        return urlsplit(self._base).netloc

    def url(self, method: str) -> str:
        return self._base + method

    def rebase(self, location: str, method: str) -> str:
        """Follow a portal domain change; returns the new host."""
        base = _new_base(self._base, location, method)
        check_url(base, self.allow_http, "redirect target")
        self._base = base
        return self.host


class WebhookAuth(_PortalBase):
    """Incoming webhook `https://portal/rest/<user>/<code>/`; the code is hidden in str/repr."""

    kind: AuthKind = "webhook"
    can_refresh = False

    def __init__(self, url: str, allow_http: bool = False) -> None:
        parts = urlsplit(url.strip())
        match = _WEBHOOK_PATH.match(parts.path or "")
        if not match or parts.query or parts.fragment:
            shown = f"{parts.scheme}://{parts.netloc}/{MASK}" if parts.netloc else MASK
            raise ValueError("webhook URL must look like https://portal.bitrix24.com/rest/<user id>/<code>/ "
                             f"(no method name, no query); got {shown!r} (path hidden: it may hold the code)")
        self.user_id = int(match["user"])
        self._code = match["code"]
        register_secret(self._code)
        self.allow_http = allow_http
        base = f"{parts.scheme}://{parts.netloc}{match['prefix']}rest/{self.user_id}/{self._code}/"
        check_url(base, allow_http, "webhook URL")
        self._base = base

    def sign(self, body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        return body, None

    def secrets(self) -> tuple[str, ...]:
        return (self._code,)

    def refresh(self, session: requests.Session, used_token: str | None, timeout: float) -> None:
        raise AuthError("NO_REFRESH", "a webhook cannot be refreshed")

    def __repr__(self) -> str:
        return f"WebhookAuth({self._base.replace(self._code, MASK)!r})"

    __str__ = __repr__


class OAuthTokens(BaseModel):
    """Tokens returned by the OAuth server, handed to the `on_tokens` callback to persist."""

    model_config = ConfigDict(extra="allow")

    access_token: str
    refresh_token: str
    expires_in: int | None = None
    expires: int | None = None
    client_endpoint: str | None = None
    member_id: str | None = None
    scope: str | None = None

    def __repr__(self) -> str:
        return f"OAuthTokens(access_token={MASK!r}, refresh_token={MASK!r}, member_id={self.member_id!r})"

    __str__ = __repr__


class OAuthAuth(_PortalBase):
    """OAuth application: token in `auth`; on 401 `expired_token` the client refreshes once.

    https://apidocs.bitrix24.com/settings/oauth/index.html
    """

    kind: AuthKind = "oauth"
    can_refresh = True

    def __init__(self, endpoint: str, access_token: str, refresh_token: str, client_id: str,
                 client_secret: str, token_url: str = DEFAULT_TOKEN_URL,
                 on_tokens: Callable[[OAuthTokens], None] | None = None, allow_http: bool = False) -> None:
        endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        check_url(endpoint, allow_http, "OAuth endpoint")
        check_url(token_url, allow_http, "OAuth token URL")
        for secret in (access_token, refresh_token, client_secret):
            register_secret(secret)
        self._base = endpoint
        self._access = access_token
        self._refresh = refresh_token
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_url = token_url
        self.on_tokens = on_tokens
        self.allow_http = allow_http
        self.refreshes = 0
        self._lock = threading.Lock()

    def sign(self, body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        with self._lock:
            token = self._access
        return {**body, "auth": token}, token

    def secrets(self) -> tuple[str, ...]:
        with self._lock:
            return (self._access, self._refresh, self._client_secret)

    def refresh(self, session: requests.Session, used_token: str | None, timeout: float) -> None:
        """Renew the access token, unless another thread already replaced `used_token`."""
        with self._lock:
            if used_token is not None and used_token != self._access:
                return
            tokens = self._request_tokens(session, timeout)
            register_secret(tokens.access_token)
            register_secret(tokens.refresh_token)
            self._access, self._refresh = tokens.access_token, tokens.refresh_token
            self.refreshes += 1
            if tokens.client_endpoint:
                endpoint = tokens.client_endpoint
                check_url(endpoint, self.allow_http, "client_endpoint")
                self._base = endpoint if endpoint.endswith("/") else endpoint + "/"
            if self.on_tokens is not None:
                # under the lock: two refreshes in a row persist their pairs in order
                self.on_tokens(tokens)

    def _request_tokens(self, session: requests.Session, timeout: float) -> OAuthTokens:
        params = {"grant_type": "refresh_token", "client_id": self.client_id,
                  "client_secret": self._client_secret, "refresh_token": self._refresh}
        secrets = (self._access, self._refresh, self._client_secret)
        try:
            response = session.get(self.token_url, params=params, timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise TransportError("TRANSPORT", redact(str(exc), secrets), None, "oauth.token") from None
        try:
            body = response.json()
        except ValueError:
            raise TransportError("BAD_BODY", "token endpoint answered a non-JSON body",
                                 response.status_code, "oauth.token") from None
        if not isinstance(body, dict) or "error" in body or response.status_code >= 400:
            fields = body if isinstance(body, dict) else {}
            code = error_code(fields.get("error")) or "REFRESH_FAILED"
            description = redact(str(fields.get("error_description") or ""), secrets)
            raise AuthError(code, description, response.status_code, "oauth.token")
        try:
            return OAuthTokens.model_validate(body)
        except ValueError:
            raise AuthError("REFRESH_FAILED", "token endpoint answer lacks access_token/refresh_token",
                            response.status_code, "oauth.token") from None

    def __repr__(self) -> str:
        return f"OAuthAuth(endpoint={self._base!r}, client_id={self.client_id!r})"

    __str__ = __repr__
