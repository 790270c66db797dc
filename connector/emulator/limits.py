"""Emulator limits: the per-portal leaky bucket (503) and the per-method operating-time ledger (429).

Both follow reference/server-behaviour.md section 7 and the limits page of the REST docs
(https://apidocs.bitrix24.com/limits.html). They are driven only by the `now` the caller
passes (the emulator's injected clock) and are safe to share between server threads.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connector.constants import BUCKET_PLANS
from connector.emulator.errors import ApiError

DEFAULT_OPERATING_LIMIT = 420.0  # seconds per 10 minutes (self-hosted default, loadlimiter.php)
BUCKET_SECONDS = 60
BUCKET_COUNT = 10
NOT_COUNTED_METHODS = frozenset({"batch"})  # the outer batch call is ignored by LoadLimiter

_SPEC_KEYS = ("capacity", "drain", "operating")


class LimitSpec(BaseModel):
    """Which limits are on: bucket capacity/drain (None = no bucket), operating seconds (None = none)."""

    model_config = ConfigDict(frozen=True)

    capacity: float | None = Field(default=None, gt=0)
    drain: float = Field(default=2.0, gt=0)
    operating: float | None = Field(default=None, gt=0)

    @property
    def active(self) -> bool:
        """True when any limit is switched on."""
        return self.capacity is not None or self.operating is not None

    @classmethod
    def parse(cls, spec: str | LimitSpec | None) -> LimitSpec:
        """Parse "off" | "standard" | "enterprise" | "capacity=50,drain=20,operating=420".

        A plan name may be followed by overrides ("standard,operating=60"); "operating=off"
        switches the time ledger off. Raises ValueError naming the bad part and what is allowed.
        """
        if spec is None:
            return cls()
        if isinstance(spec, LimitSpec):
            return spec
        if not isinstance(spec, str):
            raise ValueError(f"limits spec must be a string, got {type(spec).__name__}")
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        values: dict[str, Any] = {}
        for index, part in enumerate(parts):
            name = part.lower()
            if "=" not in part:
                if index != 0:
                    raise ValueError(f"limits spec: plan name {part!r} must come first")
                if name == "off":
                    continue
                if name not in BUCKET_PLANS:
                    allowed = ", ".join(["off", *BUCKET_PLANS])
                    raise ValueError(f"limits spec: unknown plan {part!r}; allowed: {allowed}")
                capacity, drain = BUCKET_PLANS[name]
                values.update(capacity=float(capacity), drain=drain, operating=DEFAULT_OPERATING_LIMIT)
                continue
            key, _, raw = part.partition("=")
            key = key.strip().lower()
            if key not in _SPEC_KEYS:
                raise ValueError(f"limits spec: unknown key {key!r}; allowed: {', '.join(_SPEC_KEYS)}")
            raw = raw.strip()
            if raw.lower() == "off" and key != "drain":
                values[key] = None
                continue
            try:
                number = float(raw)
            except ValueError:
                raise ValueError(f"limits spec: {key}={raw!r} is not a number") from None
            if not math.isfinite(number) or number <= 0:
                raise ValueError(f"limits spec: {key} must be a positive number, got {raw!r}")
            values[key] = number
        return cls(**values)

    def describe(self) -> str:
        """The spec back as a string that `parse` accepts."""
        if not self.active:
            return "off"
        parts = []
        if self.capacity is not None:
            parts += [f"capacity={self.capacity:g}", f"drain={self.drain:g}"]
        parts.append(f"operating={self.operating:g}" if self.operating is not None else "operating=off")
        return ",".join(parts)


def _caller_key(auth: Any) -> Hashable:
    """A hashable identity for the ledger: the auth object itself, or its repr if unhashable."""
    key = getattr(auth, "ledger_key", None)
    if key is not None:
        return key  # type: ignore[no-any-return]
    try:
        hash(auth)
    except TypeError:
        return repr(auth)
    return auth  # type: ignore[no-any-return]


class _MethodLedger:
    """Seconds used by one (caller, method) in one-minute buckets; the window is ten buckets."""

    __slots__ = ("buckets",)

    def __init__(self) -> None:
        self.buckets: dict[int, float] = {}

    def _expire(self, now: float) -> None:
        current = int(now // BUCKET_SECONDS)
        for minute in [m for m in self.buckets if m <= current - BUCKET_COUNT]:
            del self.buckets[minute]

    def used(self, now: float) -> float:
        self._expire(now)
        return sum(self.buckets.values())

    def add(self, seconds: float, now: float) -> None:
        self._expire(now)
        minute = int(now // BUCKET_SECONDS)
        self.buckets[minute] = self.buckets.get(minute, 0.0) + seconds

    def reset_at(self, now: float) -> int:
        """Unix time at which the oldest live bucket drops out of the window."""
        self._expire(now)
        oldest = min(self.buckets) if self.buckets else int(now // BUCKET_SECONDS)
        return (oldest + BUCKET_COUNT) * BUCKET_SECONDS


class Limiter:
    """One portal's limits: `admit` per HTTP request, `check_method`/`charge` per (sub-)call."""

    def __init__(self, spec: str | LimitSpec | None = "off") -> None:
        self.spec = LimitSpec.parse(spec)
        self._lock = threading.Lock()
        self._level = 0.0
        self._level_at: float | None = None
        self._ledgers: dict[tuple[Hashable, str], _MethodLedger] = {}
        self.rejected: dict[str, int] = {"QUERY_LIMIT_EXCEEDED": 0, "OPERATION_TIME_LIMIT": 0}

    @property
    def active(self) -> bool:
        return self.spec.active

    def configure(self, spec: str | LimitSpec | None) -> None:
        """Switch to another spec, forgetting the bucket level and the ledgers."""
        with self._lock:
            self.spec = LimitSpec.parse(spec)
            self._level, self._level_at = 0.0, None
            self._ledgers.clear()

    # -- leaky bucket ---------------------------------------------------------------------------
    def _drain(self, now: float) -> None:
        if self._level_at is not None and now > self._level_at:
            self._level = max(0.0, self._level - (now - self._level_at) * self.spec.drain)
        if self._level_at is None or now > self._level_at:
            self._level_at = now

    def bucket_level(self, now: float) -> float:
        """How full the bucket is at `now` (0 when the bucket is off)."""
        with self._lock:
            if self.spec.capacity is None:
                return 0.0
            self._drain(now)
            return self._level

    def admit(self, auth: Any, now: float) -> ApiError | None:
        """Count one HTTP request against the portal's bucket; 503 when it would overflow."""
        if self.spec.capacity is None:
            return None
        with self._lock:
            self._drain(now)
            if self._level + 1 > self.spec.capacity:
                self.rejected["QUERY_LIMIT_EXCEEDED"] += 1
                return ApiError("QUERY_LIMIT_EXCEEDED", "Too many requests", status=503)
            self._level += 1
            return None

    # -- operating-time ledger ------------------------------------------------------------------
    def _ledger(self, auth: Any, method: str) -> _MethodLedger:
        key = (_caller_key(auth), method.lower())
        ledger = self._ledgers.get(key)
        if ledger is None:
            ledger = self._ledgers[key] = _MethodLedger()
        return ledger

    def operating(self, auth: Any, method: str, now: float) -> float:
        """Seconds `method` has used for this caller in the last ten minutes."""
        with self._lock:
            return self._ledger(auth, method).used(now)

    def check_method(self, auth: Any, method: str, now: float) -> ApiError | None:
        """429 when this caller's method has used more than its budget; the outer batch is free."""
        limit = self.spec.operating
        if limit is None or method.lower() in NOT_COUNTED_METHODS:
            return None
        with self._lock:
            if self._ledger(auth, method).used(now) > limit:
                self.rejected["OPERATION_TIME_LIMIT"] += 1
                return ApiError(
                    "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", status=429
                )
        return None

    def charge(self, auth: Any, method: str, seconds: float, now: float) -> dict[str, Any]:
        """Book `seconds` to (caller, method); return the `operating*` keys for `time` ({} when off)."""
        if self.spec.operating is None:
            return {}
        if method.lower() in NOT_COUNTED_METHODS:
            return {"operating_reset_at": int(now) + BUCKET_COUNT * BUCKET_SECONDS, "operating": 0}
        with self._lock:
            ledger = self._ledger(auth, method)
            ledger.add(max(0.0, float(seconds)), now)
            return {"operating_reset_at": ledger.reset_at(now), "operating": round(ledger.used(now), 6)}
