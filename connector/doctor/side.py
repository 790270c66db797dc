"""One side of the comparison: the user's portal, or the in-process emulator; both behind a `Client`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.emulator import Emulator, EmulatorServer, serve
from connector.emulator.clock import VirtualClock
from connector.errors import B24SyncError
from connector.rest import B24Error, Client, LeakyBucket, RetryPolicy

from .record import Recorder

# A doctor must answer in seconds: a few quick retries, not a minute of backoff.
DOCTOR_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.3, max_delay=2.0, max_total=8.0,
                           max_limit_wait=30.0)


class DoctorError(B24SyncError):
    """The doctor could not run (exit code 1): unreachable portal, refused webhook, no sandbox."""


@dataclass
class Side:
    """Where probes run: a client, a way to let time pass, and (portal only) the recorder."""

    name: str
    client: Client
    wait: Callable[[float], None]
    recorder: Recorder | None = None
    stop: Callable[[], None] = field(default=lambda: None)

    def mark(self, label: str) -> None:
        """Name the check or probe that the following requests belong to (for `--record`)."""
        if self.recorder is not None:
            self.recorder.label = label

    def pause(self, seconds: float) -> None:
        """Let `seconds` pass on this side (really on a portal, virtually on the emulator)."""
        if self.recorder is not None:
            self.recorder.wait(seconds)
        self.wait(seconds)

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """`client.call(...).result`."""
        return self.client.call(method, params or {}).result


def portal_side(client: Client, record: bool) -> Side:
    """The user's portal through a copy of `client` with quick retries (and a recording session)."""
    recorder = Recorder(client.auth.secrets) if record else None
    session = recorder.session() if recorder is not None else None
    quick = Client(client.auth, plan=client.plan, session=session, retry=DOCTOR_RETRY)
    return Side("portal", quick, time.sleep, recorder)


def emulator_side(tz: str) -> Side:
    """A fresh in-process emulator with the portal's UTC offset, on a loopback socket; `stop()` ends it."""
    clock = VirtualClock(start=time.time())
    emu = Emulator(limits="off", clock=clock, tz=tz)
    server: EmulatorServer = serve(emu, "127.0.0.1", 0)
    unpaced = LeakyBucket(capacity=100_000, drain=100_000)  # limits="off": nothing to pace for
    client = Client.from_webhook(server.webhook_url, retry=DOCTOR_RETRY, bucket=unpaced)
    return Side("emulator", client, clock.advance, None, server.stop)


def error_text(err: B24Error) -> str:
    """An error as an observation: the code only (descriptions differ by language and version)."""
    return f"error {err.code or '(empty code)'}"
