"""Clocks for the emulator: the real one, and a virtual one that tests move by hand."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the emulator needs to know about time."""

    def now(self) -> float:
        """Unix time in seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait (really, or by moving virtual time)."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """Time that only moves when told to; `sleep` advances it instantly."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, float(seconds))

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
