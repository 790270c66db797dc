"""Keeping secrets (webhook codes, tokens, client secrets) out of text, logs and errors."""

from __future__ import annotations

import logging
import threading

MASK = "***"

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember a secret so that `redact` and the urllib3 log filter hide it."""
    if secret and len(secret) >= 3:
        with _lock:
            _secrets.add(secret)


def redact(text: str, extra: tuple[str, ...] = ()) -> str:
    """`text` with every known secret (and every one in `extra`) replaced by `***`."""
    with _lock:
        known = sorted(_secrets | {s for s in extra if s}, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites log records of third-party loggers (urllib3 logs request paths at debug level)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def install_log_filter() -> None:
    """Attach the redacting filter to urllib3's connection-pool logger (idempotent)."""
    logger = logging.getLogger("urllib3.connectionpool")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
