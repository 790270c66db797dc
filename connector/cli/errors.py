"""What a user sees when a command fails: one line naming what failed and what to do, an exit code.

Known errors (portal, network, store, files, bad input) become one line on stderr. Anything else is
a bug: one line with the path of a crash report that holds the traceback, secrets masked.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import traceback
from datetime import datetime
from pathlib import Path

from connector.errors import EXIT_ERROR, B24SyncError

CRASH_DIR_ENV = "B24SYNC_CRASH_DIR"

_URL_SECRET = re.compile(r"(/rest/\d+/)[^/\s'\"?]+")
_PARAM_SECRET = re.compile(r"((?:auth|access_token|refresh_token|client_secret)=)[^&\s'\"]+", re.IGNORECASE)

__all__ = ["bug_line", "describe", "mask", "masked_traceback", "store_line", "write_crash_report"]


def mask(text: str) -> str:
    """`text` with webhook codes, tokens and every B24SYNC_* environment value replaced by `***`."""
    from connector.rest.redact import redact

    secrets = tuple(v for k, v in os.environ.items() if k.startswith("B24SYNC_PORTAL_") and len(v) >= 3)
    text = redact(text, secrets)
    return _PARAM_SECRET.sub(r"\1***", _URL_SECRET.sub(r"\1***", text))


def describe(exc: BaseException, store: str | None = None,
             portal: str | None = None) -> tuple[str, int] | None:
    """(one line for the user, exit code) of a known error; None for a bug.

    `store` is the store file the command works on and `portal` the portal's host, when known.
    """
    import sqlite3  # here, not at the top: only the error path needs it

    if isinstance(exc, B24SyncError):
        return _line(exc, store, portal), exc.exit_code
    if isinstance(exc, sqlite3.Error):  # foreign errors that are no bug: the store file, a file
        return store_line(exc, store), EXIT_ERROR
    if isinstance(exc, OSError):
        return _file_line(exc), EXIT_ERROR
    return None


def _line(exc: B24SyncError, store: str | None, portal: str | None) -> str:
    """The one line for a b24sync error: the portal or store named, a template's one problem with a hint."""
    from connector.rest import B24Error
    from connector.store import StoreError

    problems = getattr(exc, "problems", None)
    if isinstance(problems, list) and len(problems) == 1:  # TemplateError
        return f"{problems[0]}; fix the template (`b24sync template validate FILE` checks it)"
    if isinstance(exc, B24Error):
        return _portal_line(exc, portal)
    if isinstance(exc, StoreError):
        return store_line(exc, store)
    return str(exc)


def _portal_line(exc: BaseException, portal: str | None) -> str:
    from connector.rest import (
        AccessDenied,
        AuthError,
        OperationTimeLimit,
        OutcomeUnknown,
        PortalUnreachable,
        QueryLimit,
        TransportError,
    )

    where = f"the portal {portal}" if portal else "the portal"
    text = str(exc)
    if isinstance(exc, PortalUnreachable):
        return (f"{text}; is the portal (or `b24sync emulator serve`) running, and is the URL right? "
                "Nothing was changed.")
    if isinstance(exc, AuthError):
        return (f"{where} refused the credentials ({text}); check the webhook URL "
                "(B24SYNC_PORTAL_<NAME>_WEBHOOK) or the OAuth tokens")
    if isinstance(exc, AccessDenied):
        return f"{where} denied access ({text}); the webhook's user needs CRM rights and the `crm` scope"
    if isinstance(exc, OperationTimeLimit | QueryLimit):
        return f"{where} limits stopped the work ({text}); run the command again later, it resumes"
    if isinstance(exc, OutcomeUnknown):
        return f"{where}: {text}; check the portal, then run the command again"
    if isinstance(exc, TransportError):
        return f"{where} gave no usable answer ({text}); try again later, `-vv` shows the requests"
    return f"{where} refused a request ({text})"


def store_line(exc: BaseException, store: str | None) -> str:
    """The store error with the file and the reason named, and what to do."""
    from connector.store import StoreError

    raw = exc.__cause__ if isinstance(exc, StoreError) and exc.__cause__ is not None else exc
    message = str(raw)
    if store is None or store == ":memory:":
        return str(exc) if isinstance(exc, StoreError) else f"store: {message}"
    path = Path(store)
    low = message.lower()
    if "file is not a database" in low:
        return (f"store {path}: not an SQLite database ({message}); it is another kind of file or damaged: "
                "pass the right --db, or move it away to start a new store")
    if "unable to open database file" in low or "readonly" in low or "read-only" in low:
        return f"store {path}: {message}: {_why_unopenable(path)}"
    if "locked" in low or "busy" in low:
        return f"store {path}: {message}; another program holds it: wait for it to finish, then try again"
    if isinstance(exc, StoreError):
        return f"{exc}"
    return f"store {path}: {message}"


def _why_unopenable(path: Path) -> str:
    """The reason SQLite could not open (or write) `path`, found on the file system."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        return "it is a folder, not a file; pass a file path with --db"
    if not folder.exists():
        return f"the folder {folder} does not exist; create it or pass another --db"
    if path.exists() and not os.access(path, os.R_OK):
        return "the file is not readable by this user; fix its permissions"
    if path.exists() and not os.access(path, os.W_OK):
        return ("the file is read-only; `status`, `export` and `report` can still read it, "
                "commands that change the store need write access")
    if not os.access(folder, os.W_OK):
        return (f"the folder {folder} is not writable (SQLite keeps its -wal and -shm files next to "
                "the store); fix the folder's permissions or pass another --db")
    return "check the path and its permissions"


def _file_line(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else ""
    what = f"{name}: " if name else ""
    reason = exc.strerror or str(exc)
    hint = {
        errno.ENOENT: "check the path",
        errno.EACCES: "check the permissions",
        errno.EPERM: "check the permissions",
        errno.EISDIR: "it is a folder; give a file",
        errno.ENOTDIR: "a part of the path is not a folder",
        errno.ENOSPC: "free some disk space",
        errno.EROFS: "the file system is read-only; write somewhere else",
    }.get(exc.errno or 0, "check the path and try again")
    return f"file error: {what}{reason}; {hint}"


def crash_dir() -> Path:
    """Where crash reports go: $B24SYNC_CRASH_DIR, else <temp>/b24sync."""
    import tempfile

    return Path(os.environ.get(CRASH_DIR_ENV) or Path(tempfile.gettempdir()) / "b24sync")


def write_crash_report(exc: BaseException, argv: list[str]) -> Path | None:
    """Write the traceback (secrets masked) to a new crash report file; None if it cannot be written."""
    from connector import __version__

    folder = crash_dir()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"crash-{stamp}-{os.getpid()}.txt"
    lines = [
        f"b24sync {__version__} on Python {sys.version.split()[0]} ({sys.platform})",
        f"command: b24sync {' '.join(argv)}",
        "",
        *traceback.format_exception(type(exc), exc, exc.__traceback__),
    ]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(mask("\n".join(line.rstrip("\n") for line in lines)) + "\n")
    except OSError:
        return None
    return path


def bug_line(exc: BaseException, report: Path | None) -> str:
    """The one line printed for an unexpected error."""
    what = f"unexpected error {type(exc).__name__}: {mask(str(exc))[:200]}"
    if report is None:
        return f"{what} (a bug in b24sync; the crash report could not be written, run with -v to see it)"
    return f"{what} (a bug in b24sync); the traceback is in {report}, please attach it to a bug report"


def masked_traceback(exc: BaseException) -> str:
    """The traceback as text, secrets masked (printed with -v)."""
    return mask("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
