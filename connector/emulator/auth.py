"""Who is calling: incoming webhooks (`/rest/<user>/<code>/`) and OAuth tokens that expire."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError

ACCESS_TTL = 3600
REFRESH_TTL = 180 * 86400
ALL_SCOPES = frozenset({"crm", "userfieldconfig", "basic", "user", "placement", "catalog"})
NO_AUTH = ApiError("NO_AUTH_FOUND", "Wrong authorization data", status=401)
EXPIRED = ApiError("expired_token", "The access token provided has expired", status=401)
INVALID_CREDENTIALS = ApiError("INVALID_CREDENTIALS", "Invalid request credentials", status=401)


@dataclass(frozen=True)
class Auth:
    """The caller of one request. Never prints its secret."""

    kind: str  # "webhook" | "oauth"
    user_id: int
    ledger_key: str  # identity for the operating-time ledger ("webhook:1", "app:<client id>")
    scopes: frozenset[str] = ALL_SCOPES
    client_id: str | None = None
    is_admin: bool = True
    auth_connector: str | None = None
    access_token: str | None = field(default=None, compare=False)  # OAuth callers: events carry it

    def __repr__(self) -> str:
        return f"Auth(kind={self.kind!r}, user_id={self.user_id})"


@dataclass
class _Token:
    user_id: int
    expires: float
    scopes: frozenset[str]


@dataclass
class OAuthApp:
    """The one local application of the portal, with its token tables."""

    client_id: str = field(default_factory=lambda: "local." + secrets.token_hex(8))
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    access: dict[str, _Token] = field(default_factory=dict, repr=False)
    refresh: dict[str, _Token] = field(default_factory=dict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def issue(
        self,
        user_id: int,
        now: float,
        scopes: frozenset[str] = ALL_SCOPES,
        domain: str = "emulator.bitrix24.test",
        base: str = "",
    ) -> dict[str, Any]:
        """A token pair shaped like the OAuth server's answer."""
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        with self.lock:
            self.access[access] = _Token(user_id, now + ACCESS_TTL, scopes)
            self.refresh[refresh] = _Token(user_id, now + REFRESH_TTL, scopes)
        return {
            "access_token": access,
            "client_endpoint": f"{base}/rest/",
            "domain": "oauth.bitrix.info",
            "expires": int(now + ACCESS_TTL),
            "expires_in": ACCESS_TTL,
            "member_id": _member(domain),
            "refresh_token": refresh,
            "scope": ",".join(sorted(scopes)),
            "server_endpoint": "https://oauth.bitrix.info/rest/",
            "status": "L",
            "user_id": user_id,
        }

    def check(self, token: str, now: float) -> Auth:
        """The caller behind an access token, or 401 (unknown) / 401 expired_token."""
        with self.lock:
            entry = self.access.get(token)
        if entry is None:
            raise NO_AUTH
        if now >= entry.expires:
            raise EXPIRED
        return Auth(
            "oauth",
            entry.user_id,
            f"app:{self.client_id}",
            entry.scopes,
            client_id=self.client_id,
            access_token=token,
        )

    def exchange(
        self, params: dict[str, Any], now: float, domain: str, base: str
    ) -> tuple[int, dict[str, Any]]:
        """`/oauth/token/?grant_type=refresh_token&...`: a new pair; the old refresh token dies."""
        if params.get("grant_type") != "refresh_token":
            return 400, {"error": "invalid_request", "error_description": "grant_type must be refresh_token"}
        if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Invalid client credentials"}
        with self.lock:
            entry = self.refresh.pop(str(params.get("refresh_token", "")), None)
        if entry is None or now >= entry.expires:
            return 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}
        return 200, self.issue(entry.user_id, now, entry.scopes, domain, base)

    def expire_all(self) -> None:
        """Make every access token expired (tests of the refresh path)."""
        with self.lock:
            for entry in self.access.values():
                entry.expires = 0.0


def _member(domain: str) -> str:
    import hashlib

    return hashlib.md5(domain.encode()).hexdigest()


def webhook_auth(user_id: int) -> Auth:
    """The caller of a valid incoming webhook."""
    return Auth("webhook", user_id, f"webhook:{user_id}")
