"""One root for every error b24sync raises, with the command's exit code on the class.

Layer 0: imports nothing from `connector`. Each package's own exception classes derive from one
of these (keeping a builtin base such as `ValueError` where callers catch that too), and the CLI
exits with `type(exc).exit_code`; an exception outside this tree is a bug (exit 4, crash report).

    B24SyncError      1  a runtime error (store, deploy, sync, doctor errors derive from it directly)
    ├── InputError    2  bad input: config, template, job file, report request, conflict choice
    │   └── UsageError 2  a command-line option or argument (or the Python API parameter behind it)
    ├── PortalError   1  the portal or the network (the rest `B24Error` family)
    └── BusyError    75  another program holds the store (EX_TEMPFAIL: try again later)

docs/guide.md ("Errors and exit codes") lists every class of the package in this tree.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # runtime error: the portal, the network, the store or a file
EXIT_USAGE = 2  # bad input
EXIT_FAILED_ROWS = 3  # some rows failed to sync
EXIT_BUG = 4  # an unexpected error: a bug in b24sync (a crash report is written)
EXIT_CHANGES = 5  # "changes found": plan with changes, drift, doctor differences
EXIT_LOCKED = 75  # EX_TEMPFAIL: the store is in use by another sync
EXIT_INTERRUPTED = 130  # Ctrl-C


class B24SyncError(Exception):
    """The root of every b24sync error; `exit_code` is what the CLI exits with."""

    exit_code: int = EXIT_ERROR


class InputError(B24SyncError):
    """Bad input from the user (options, config, templates, job files, report requests): exit 2."""

    exit_code = EXIT_USAGE


class UsageError(InputError):
    """A bad command-line option or argument (or its Python API parameter): exit 2."""


class PortalError(B24SyncError):
    """The portal refused a request, or could not be reached: exit 1."""


class BusyError(B24SyncError):
    """Another program holds what the command needs (the store, for a sync): exit 75, try again later."""

    exit_code = EXIT_LOCKED


def exit_code_of(exc: BaseException) -> int | None:
    """The exit code of a b24sync error; None for any other exception (a bug, or a foreign error)."""
    return exc.exit_code if isinstance(exc, B24SyncError) else None
