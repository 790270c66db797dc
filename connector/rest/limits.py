"""Client-side mirrors of the portal's two limits.

* `LeakyBucket`: every HTTP request adds 1 to a counter that drains by `drain` per second; the
  portal answers 503 `QUERY_LIMIT_EXCEEDED` when the counter exceeds `capacity`. A slot is taken
  *before* sending, under a lock, so requests in flight from all threads are counted.
* `MethodLedger`: per method, the execution time the portal has charged over its 10-minute
  window (`time.operating`, reset time `time.operating_reset_at`). A method close to the budget
  is paused until the reset, before the portal would answer 429 `OPERATION_TIME_LIMIT`.

https://apidocs.bitrix24.com/limits.html
Clock and sleep are injectable so that tests and benchmarks can scale time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.constants import BUCKET_PLANS

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def plan_limits(plan: str) -> tuple[int, float]:
    """(capacity, drain per second) of a plan from connector.constants."""
    try:
        return BUCKET_PLANS[plan]
    except KeyError:
        allowed = ", ".join(sorted(BUCKET_PLANS))
        raise ValueError(f"unknown plan {plan!r}; allowed plans are {allowed}") from None


class LeakyBucket:
    """Lock-protected leaky bucket; `acquire()` blocks until one more request fits.

    A request enters the portal's bucket when it *arrives*, a little after we take its slot; a
    late arrival finds the portal's bucket fuller than ours. `latency` seconds of allowance
    (`drain * latency` slots, at least 1, at most half the capacity) are kept free for that.
    """

    def __init__(self, capacity: float, drain: float, clock: Clock = time.monotonic,
                 sleep: Sleep = time.sleep, latency: float = 0.25) -> None:
        if capacity < 1 or drain <= 0 or latency < 0:
            raise ValueError("bucket needs capacity >= 1, drain > 0 and latency >= 0; "
                             f"got capacity={capacity}, drain={drain}, latency={latency}")
        self.capacity = float(capacity)
        self.drain = float(drain)
        self.headroom = min(max(1.0, drain * latency), capacity / 2) if latency else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._level = 0.0
        self._at = clock()

    @classmethod
    def for_plan(cls, plan: str, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> LeakyBucket:
        capacity, drain = plan_limits(plan)
        return cls(capacity, drain, clock, sleep)

    def _drain_to(self, now: float) -> None:
        self._level = max(0.0, self._level - (now - self._at) * self.drain)
        self._at = now

    def reserve(self) -> float:
        """Take one slot now; returns how long the caller must wait before sending."""
        with self._lock:
            self._drain_to(self._clock())
            self._level += 1.0
            return max(0.0, (self._level - (self.capacity - self.headroom)) / self.drain)

    def acquire(self, on_wait: Callable[[float], None] | None = None) -> float:
        """Take one slot and sleep until it is safe to send; returns the seconds waited.

        `on_wait(seconds)` is told before a wait starts (the client announces long pauses).
        """
        wait = self.reserve()
        if wait > 0:
            if on_wait is not None:
                on_wait(wait)
            self._sleep(wait)
        return wait

    def saturate(self) -> None:
        """The portal said the bucket is full (503): assume it is, so later requests wait."""
        with self._lock:
            self._drain_to(self._clock())
            self._level = max(self._level, self.capacity)

    @property
    def level(self) -> float:
        with self._lock:
            self._drain_to(self._clock())
            return self._level


@dataclass
class _MethodUsage:
    server_operating: float = 0.0
    reset_at: float | None = None
    charges: deque[tuple[float, float]] = field(default_factory=deque)
    blocked_until: float | None = None


class MethodLedger:
    """Per-method record of the portal's time budget; `pause_needed` says how long to hold off.

    `threshold` is the portal's budget (seconds per `window`), `margin` how close to it we let a
    method go before pausing it. The clock here is wall time (Unix seconds), like
    `operating_reset_at`.
    """

    def __init__(self, threshold: float = 420.0, window: float = 600.0, margin: float = 30.0,
                 clock: Clock = time.time) -> None:
        if threshold <= 0 or window <= 0 or margin < 0:
            raise ValueError("ledger needs threshold > 0, window > 0 and margin >= 0; got "
                             f"threshold={threshold}, window={window}, margin={margin}")
        self.threshold = threshold
        self.window = window
        self.margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._usage: dict[str, _MethodUsage] = {}

    def record(self, method: str, time_info: dict[str, Any] | None) -> None:
        """Take `operating`/`operating_reset_at` of a direct call's `time` object."""
        if not isinstance(time_info, dict):
            return
        now = self._clock()
        with self._lock:
            usage = self._usage.setdefault(method, _MethodUsage())
            self._charge(usage, now, time_info)
            if "operating" in time_info:
                usage.server_operating = _number(time_info.get("operating"))
                usage.charges.clear()
            if "operating_reset_at" in time_info:
                usage.reset_at = _number(time_info.get("operating_reset_at")) or None

    def charge(self, method: str, time_info: dict[str, Any] | None) -> None:
        """Charge a batch sub-call to its own method (its `result_time` lacks `operating`)."""
        if not isinstance(time_info, dict):
            return
        if "operating" in time_info:
            self.record(method, time_info)
            return
        now = self._clock()
        with self._lock:
            self._charge(self._usage.setdefault(method, _MethodUsage()), now, time_info)

    @staticmethod
    def _charge(usage: _MethodUsage, now: float, time_info: dict[str, Any]) -> None:
        seconds = _number(time_info.get("processing")) or _number(time_info.get("duration"))
        if seconds > 0:
            usage.charges.append((now, seconds))

    def now(self) -> float:
        """The ledger's clock (Unix seconds)."""
        return self._clock()

    def reset_at(self, method: str) -> float | None:
        """Last `operating_reset_at` the portal reported for `method`, if any."""
        with self._lock:
            usage = self._usage.get(method)
            return None if usage is None else usage.reset_at

    def block(self, method: str, until: float) -> None:
        """The portal answered 429 for `method`: hold it until `until` (Unix seconds)."""
        with self._lock:
            self._usage.setdefault(method, _MethodUsage()).blocked_until = until

    def used(self, method: str) -> float:
        """Estimated seconds of the method's budget used in the current window."""
        now = self._clock()
        with self._lock:
            usage = self._usage.get(method)
            return 0.0 if usage is None else self._used(usage, now)

    def _used(self, usage: _MethodUsage, now: float) -> float:
        while usage.charges and usage.charges[0][0] <= now - self.window:
            usage.charges.popleft()
        if usage.reset_at is not None and now >= usage.reset_at:
            usage.server_operating, usage.reset_at = 0.0, None
        return usage.server_operating + sum(seconds for _, seconds in usage.charges)

    def pause_needed(self, method: str) -> float:
        """Seconds to wait before calling `method` again (0 when it is safe)."""
        now = self._clock()
        with self._lock:
            usage = self._usage.get(method)
            if usage is None:
                return 0.0
            if usage.blocked_until is not None:
                if now < usage.blocked_until:
                    return usage.blocked_until - now
                usage.blocked_until = None
            if self._used(usage, now) < self.threshold - self.margin:
                return 0.0
            if usage.reset_at is not None:
                return max(0.0, usage.reset_at - now)
            if usage.charges:
                return max(0.0, usage.charges[0][0] + self.window - now)
            return 0.0


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
