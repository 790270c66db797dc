"""Configuration: portals by name, store paths, policies. Secrets come from environment variables."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import threading
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connector.errors import InputError

Plan = Literal["standard", "enterprise"]
Policy = Literal["remote-wins", "local-wins", "newest-wins", "merge", "manual"]

log = logging.getLogger("b24sync.config")

CONFIG_ENV = "B24SYNC_CONFIG"
DEFAULT_CONFIG_FILES = ("b24sync.toml",)
WEBHOOK_RE = re.compile(r"^https?://[^/]+/rest/\d+/[^/]+/?$")
ENV_VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ConfigError(InputError):
    """A configuration problem, with the file and key that caused it."""


class Defaults(BaseModel):
    """Settings every portal inherits unless it overrides them."""

    model_config = ConfigDict(extra="forbid")
    store: str = "data/{portal}.db"
    conflict_policy: Policy = "newest-wins"


class PortalConfig(BaseModel):
    """One portal: a webhook (from env or a loopback URL) or an OAuth application."""

    model_config = ConfigDict(extra="forbid")
    plan: Plan = "standard"
    webhook: str | None = None
    webhook_env: str | None = Field(default=None, pattern=ENV_VAR_PATTERN)
    endpoint: str | None = None
    client_id: str | None = None
    token_url: str | None = None
    token_file: str | None = None
    store: str | None = None
    conflict_policy: Policy | None = None
    allow_http: bool = False
    policies: dict[str, Policy] = Field(default_factory=dict)


class Config(BaseModel):
    """The whole configuration file."""

    model_config = ConfigDict(extra="forbid")
    defaults: Defaults = Field(default_factory=Defaults)
    portals: dict[str, PortalConfig] = Field(default_factory=dict)
    path: Path | None = Field(default=None, exclude=True)

    def store_path(self, portal: str) -> Path:
        """The store file of a configured portal (its `store`, else the default pattern), or of a key."""
        configured = self.portals[portal].store if portal in self.portals else None
        return Path(configured or self.defaults.store.replace("{portal}", _safe(portal)))


class PortalRef(BaseModel):
    """A portal resolved for use: where it is, how to authenticate, where its store lives."""

    name: str
    url: str
    plan: Plan = "standard"
    store: Path
    conflict_policy: Policy = "newest-wins"
    policies: dict[str, Policy] = Field(default_factory=dict)
    allow_http: bool = False
    oauth: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"PortalRef(name={self.name!r}, key={self.key!r}, plan={self.plan!r})"

    __str__ = __repr__

    @property
    def key(self) -> str:
        """The portal key used in the id map (see `portal_key`)."""
        return portal_key(self.url)


def portal_key(base_url: str) -> str:
    """The stable key of a portal: its lower-cased `host[:port]`, never the secret path."""
    netloc = urlsplit(base_url).netloc.lower()
    if not netloc:
        raise ConfigError(f"not a portal URL (expected https://host/rest/...): {redact(base_url)}")
    return netloc.rsplit("@", 1)[-1]


def redact(url: str) -> str:
    """Hide secrets in a URL: keep scheme, host and the `/rest/<user>/` prefix, mask the rest of the path."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return "<not a URL>"
    match = re.match(r"(/rest/\d+/)", parts.path)
    shown = match.group(1) + "****/" if match else "/****"
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{shown}"


def env_name(portal: str, what: str) -> str:
    """`B24SYNC_PORTAL_<NAME>_<WHAT>` for a portal name."""
    return f"B24SYNC_PORTAL_{re.sub(r'[^A-Za-z0-9]', '_', portal).upper()}_{what}"


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config file named, or $B24SYNC_CONFIG, or ./b24sync.toml; an empty config if none."""
    candidate = path or os.environ.get(CONFIG_ENV)
    if candidate is None:
        candidate = next((p for p in DEFAULT_CONFIG_FILES if Path(p).is_file()), None)
        if candidate is None:
            return Config()
    file = Path(candidate)
    if not file.is_file():
        raise ConfigError(f"config file not found: {file}")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{file}: {problems}") from None
    config.path = file
    for warning in secret_file_warnings(config):
        log.warning(warning)
    return config


def resolve_portal(config: Config, portal: str, *, allow_http: bool = False) -> PortalRef:
    """Turn `--portal` (a configured name or a webhook URL) into a PortalRef.

    `allow_http` lets a webhook URL given directly use plain http to a non-loopback host.
    """
    if "://" in portal:
        if not WEBHOOK_RE.match(portal):
            raise ConfigError(
                f"--portal {redact(portal)!r} is not a webhook URL; expected https://host/rest/<user>/<code>/"
            )
        key = portal_key(portal)
        store = config.store_path(key)
        policy = config.defaults.conflict_policy
        _check_scheme(portal, allow_http, what="--portal")
        return PortalRef(name=key, url=_slash(portal), store=store, conflict_policy=policy,
                         allow_http=allow_http)
    if portal not in config.portals:
        raise ConfigError(unknown_portal_message(config, portal))
    pc = config.portals[portal]
    store = config.store_path(portal)
    policy = pc.conflict_policy or config.defaults.conflict_policy
    base = PortalRef(name=portal, url="", plan=pc.plan, store=store, conflict_policy=policy,
                     policies=pc.policies, allow_http=pc.allow_http)
    webhook_var = webhook_env_var(portal, pc)
    webhook = os.environ.get(webhook_var) or pc.webhook
    if webhook:
        if not WEBHOOK_RE.match(webhook):
            raise ConfigError(f"portal {portal!r}: webhook {redact(webhook)!r} is not https://host/rest/<user>/<code>/")
        _check_scheme(webhook, pc.allow_http, f"portal {portal!r}: webhook")
        return base.model_copy(update={"url": _slash(webhook)})
    if pc.endpoint and pc.client_id:
        _check_scheme(pc.endpoint, pc.allow_http, f"portal {portal!r}: endpoint")
        if pc.token_url:
            _check_scheme(pc.token_url, pc.allow_http, f"portal {portal!r}: token_url")
        return base.model_copy(update={"url": _slash(pc.endpoint), "oauth": _oauth_settings(portal, pc)})
    raise ConfigError(
        f"portal {portal!r} has no credentials: set {webhook_var} to its webhook URL, "
        "or give endpoint + client_id (with tokens in the environment) in the config"
    )


def webhook_env_var(portal: str, pc: PortalConfig) -> str:
    """The variable holding a portal's webhook URL: `webhook_env`, else B24SYNC_PORTAL_<NAME>_WEBHOOK."""
    return pc.webhook_env or env_name(portal, "WEBHOOK")


def unknown_portal_message(config: Config, portal: str) -> str:
    """Why `--portal NAME` is not known, and how to make it known (`b24sync init` / `portal add`)."""
    known = ", ".join(sorted(config.portals)) or "none configured"
    if config.path is None:
        return (f"unknown portal {portal!r}; configured portals: {known} (no config file: create "
                f"./b24sync.toml with `b24sync init {portal}`); or pass a webhook URL")
    return (f"unknown portal {portal!r}; configured portals: {known} (in {config.path}; add it with "
            f"`b24sync portal add {portal}`); or pass a webhook URL")


def _oauth_settings(portal: str, pc: PortalConfig) -> dict[str, Any]:
    """OAuth settings for `OAuthAuth(**settings)`, plus `token_file`.

    Tokens come from the token file when it holds a pair (it has the latest refreshed tokens, and
    a refresh token works once), else from `B24SYNC_PORTAL_<NAME>_ACCESS_TOKEN`/`_REFRESH_TOKEN`.
    """
    tokens = _read_tokens(portal, pc.token_file)
    if not (tokens.get("access_token") and tokens.get("refresh_token")):
        tokens = {"access_token": os.environ.get(env_name(portal, "ACCESS_TOKEN")),
                  "refresh_token": os.environ.get(env_name(portal, "REFRESH_TOKEN"))}
    secret = os.environ.get(env_name(portal, "CLIENT_SECRET"))
    if not tokens["access_token"] or not tokens["refresh_token"] or not secret:
        raise ConfigError(
            f"portal {portal!r}: OAuth needs {env_name(portal, 'ACCESS_TOKEN')}, "
            f"{env_name(portal, 'REFRESH_TOKEN')} (or token_file) and {env_name(portal, 'CLIENT_SECRET')}"
        )
    settings: dict[str, Any] = {
        "endpoint": pc.endpoint, "client_id": pc.client_id, "client_secret": secret,
        "access_token": str(tokens["access_token"]), "refresh_token": str(tokens["refresh_token"]),
        "token_file": pc.token_file, "allow_http": pc.allow_http,
    }
    if pc.token_url:
        settings["token_url"] = pc.token_url
    return settings


def _read_tokens(portal: str, token_file: str | None) -> dict[str, Any]:
    """The token pair saved by `save_tokens`, or {} when there is no file yet."""
    if not token_file or not Path(token_file).is_file():
        return {}
    try:
        data = json.loads(Path(token_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"portal {portal!r}: token_file {token_file} is not readable JSON "
                          f"({type(exc).__name__}); delete it to fall back to the environment") from None
    if not isinstance(data, dict):
        raise ConfigError(f"portal {portal!r}: token_file {token_file} must hold a JSON object")
    return data


TOKEN_KEYS = ("access_token", "refresh_token", "expires", "expires_in", "member_id", "client_endpoint")


def save_tokens(token_file: str | None, tokens: Any) -> None:
    """Persist refreshed OAuth tokens (a mapping or `OAuthTokens`) to the token file, owner-only.

    Written to a temporary file and renamed, so a crash never leaves a half-written file (the old
    refresh token is already dead once the server has issued a new one).
    """
    if not token_file:
        return
    data = tokens.model_dump() if hasattr(tokens, "model_dump") else dict(tokens)
    keep = {k: data[k] for k in TOKEN_KEYS if data.get(k) is not None}
    if not keep.get("access_token") or not keep.get("refresh_token"):
        raise ValueError("save_tokens needs both access_token and refresh_token")
    path = Path(token_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(keep, fh)
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def _check_scheme(url: str, allow_http: bool, what: str) -> None:
    """Plain http only to a loopback host (the emulator) unless the portal sets `allow_http = true`."""
    from connector.rest.auth import is_loopback

    parts = urlsplit(url)
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname or ""):
        raise ConfigError(f"{what} {redact(url)!r} uses plain http to a non-loopback host, which would send "
                          "secrets in clear text; use https, or set allow_http = true for that portal")


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


# -- files holding secrets that other users can read ---------------------------------------------


def secret_file_warnings(config: Config) -> list[str]:
    """One warning, with the fix, per file holding a secret that users other than its owner can read.

    The config file counts when a portal writes its `webhook` URL in it (the code in the URL is the
    password); token files always hold tokens. `save_tokens` writes them 0600, but a copy or a
    restore may not keep that. Nothing to say on systems without POSIX modes.
    """
    files: list[tuple[Path, str]] = []
    if config.path is not None and any(pc.webhook for pc in config.portals.values()):
        files.append((Path(config.path), "a webhook URL (its code works as a password)"))
    for pc in config.portals.values():
        if pc.token_file:
            files.append((Path(pc.token_file), "OAuth tokens"))
    return [text for path, holds in files if (text := _exposed(path, holds))]


def _exposed(path: Path, holds: str) -> str | None:
    if os.name != "posix":
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    return (f"{path} holds {holds} and other users can read it (mode {stat.filemode(mode)}); "
            f"make it private: chmod 600 {path}")
