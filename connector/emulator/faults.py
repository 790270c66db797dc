"""Emulator fault injection: 5xx, 503, HTML pages, slow and truncated responses, lost responses.

A `FaultPlan` is built from a spec string such as
``"5xx=0.05,503=0.02,html=0.01,slow=0.01:2.0,truncate=0.01,drop=crm.item.add:1.0,seed=7"``
and/or driven from tests (`drop_next`, `inject_next`, `fail_writes_after`). The core asks
`before(method)` ahead of every call and `drop_after(method)` once a call has been applied.
Randomness comes from one seeded generator, so a run with the same seed and the same call
sequence injects the same faults.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from connector.emulator.registry import METHODS

FaultKind = Literal["500", "502", "503", "html", "slow", "truncate"]
FAULT_KINDS: tuple[str, ...] = ("500", "502", "503", "html", "slow", "truncate")
_RATE_KEYS = ("5xx", "500", "502", "503", "html", "slow", "truncate", "drop", "seed")
_KEY_ALIASES = {"drop_after_write": "drop"}
_METHOD_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$", re.IGNORECASE)
_WRITE_SUFFIXES = (".add", ".update", ".delete", ".set", ".reset", ".bind", ".unbind", ".clear", ".import")

_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Bitrix24</title></head>\n"
    "<body><h1>The portal is being updated</h1><p>Please try again in a few minutes.</p></body></html>\n"
)


@dataclass(frozen=True)
class Fault:
    """One injected fault: either a replacement response, a delay, or a truncated body."""

    kind: FaultKind
    status: int | None = None  # set when the call is not executed and this response is sent
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    delay: float = 0.0  # "slow": wait this long (on the emulator clock), then answer normally

    @property
    def replaces_response(self) -> bool:
        """True when the call must not run and `status`/`body` are sent instead."""
        return self.status is not None

    @property
    def truncates(self) -> bool:
        return self.kind == "truncate"

    def cut(self, body: bytes) -> bytes:
        """The truncated form of a real response body (about half of it, never all)."""
        return body[: max(0, len(body) // 2 - 1)]


def make_fault(kind: str, delay: float = 2.0) -> Fault:
    """A `Fault` of one of FAULT_KINDS; ValueError names the allowed kinds."""
    if kind == "500":
        body = {"error": "ERROR_CORE", "error_description": "SQL query error!"}
        return Fault("500", 500, json.dumps(body).encode())
    if kind == "502":
        return Fault("502", 502, _HTML_502.encode(), "text/html")
    if kind == "503":
        body = {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
        return Fault("503", 503, json.dumps(body).encode())
    if kind == "html":
        return Fault("html", 200, _HTML_PAGE.encode(), "text/html; charset=utf-8")
    if kind == "slow":
        return Fault("slow", delay=float(delay))
    if kind == "truncate":
        return Fault("truncate")
    raise ValueError(f"unknown fault kind {kind!r}; allowed: {', '.join(FAULT_KINDS)}")


class DropRule(BaseModel):
    """Lose the response of `method` (any write when None) with probability `rate`."""

    model_config = ConfigDict(frozen=True)

    method: str | None = None
    rate: float = Field(ge=0, le=1)


class FaultSpec(BaseModel):
    """Parsed fault spec: rates per kind (0..1), the slow delay, drop rules and the seed."""

    model_config = ConfigDict(frozen=True)

    rate_500: float = Field(default=0.0, ge=0, le=1)
    rate_502: float = Field(default=0.0, ge=0, le=1)
    rate_503: float = Field(default=0.0, ge=0, le=1)
    rate_html: float = Field(default=0.0, ge=0, le=1)
    rate_slow: float = Field(default=0.0, ge=0, le=1)
    slow_seconds: float = Field(default=2.0, ge=0)
    rate_truncate: float = Field(default=0.0, ge=0, le=1)
    drops: tuple[DropRule, ...] = ()
    seed: int = 0

    @classmethod
    def parse(cls, spec: str | FaultSpec | None, seed: int | None = None) -> FaultSpec:
        """Parse "5xx=0.05,503=0.02,html=0.01,slow=0.01:2.0,truncate=0.01,drop=crm.item.add:1.0,seed=7".

        Also accepts `key:value` pairs ("drop_after_write:crm.item.add:1.0,5xx:0.1"), "off" or "".
        `5xx` splits its rate evenly between 500 ERROR_CORE and 502 HTML; `drop` without a
        method applies to every write method. Raises ValueError naming the bad part.
        """
        if isinstance(spec, FaultSpec):
            return spec if seed is None else spec.model_copy(update={"seed": seed})
        values: dict[str, object] = {}
        drops: list[DropRule] = []
        text = (spec or "").strip()
        if text.lower() in ("", "off", "none"):
            text = ""
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            key, value = _split_pair(part)
            if key == "seed":
                values["seed"] = _parse_int(key, value)
            elif key == "5xx":
                rate = _parse_rate(key, value)
                values["rate_500"] = values.get("rate_500", 0.0) + rate / 2  # type: ignore[operator]
                values["rate_502"] = values.get("rate_502", 0.0) + rate / 2  # type: ignore[operator]
            elif key == "slow":
                rate_text, _, delay_text = value.partition(":")
                values["rate_slow"] = _parse_rate(key, rate_text)
                if delay_text:
                    values["slow_seconds"] = _parse_seconds(key, delay_text)
            elif key == "drop":
                drops.append(_parse_drop(value))
            else:
                values[f"rate_{key}"] = _parse_rate(key, value)
        if seed is not None:
            values["seed"] = seed
        return cls(drops=tuple(drops), **values)  # type: ignore[arg-type]

    def rates(self) -> list[tuple[str, float]]:
        """(kind, rate) for every kind with a non-zero rate, in a fixed order."""
        pairs = [
            ("500", self.rate_500),
            ("502", self.rate_502),
            ("503", self.rate_503),
            ("html", self.rate_html),
            ("slow", self.rate_slow),
            ("truncate", self.rate_truncate),
        ]
        return [(k, r) for k, r in pairs if r > 0]


def _split_pair(part: str) -> tuple[str, str]:
    if "=" in part:
        key, _, value = part.partition("=")
    elif ":" in part:
        key, _, value = part.partition(":")
    else:
        raise ValueError(f"fault spec: {part!r} is not key=value; allowed keys: {', '.join(_RATE_KEYS)}")
    key = _KEY_ALIASES.get(key.strip().lower(), key.strip().lower())
    if key not in _RATE_KEYS:
        raise ValueError(f"fault spec: unknown key {key!r}; allowed: {', '.join(_RATE_KEYS)}")
    return key, value.strip()


def _parse_rate(key: str, text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise ValueError(f"fault spec: {key}={text!r} is not a probability between 0 and 1") from None
    if not 0 <= rate <= 1:
        raise ValueError(f"fault spec: {key}={text!r} must be a probability between 0 and 1")
    return rate


def _parse_seconds(key: str, text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"fault spec: {key} delay {text!r} is not a number of seconds") from None
    if not 0 <= seconds <= 3600:
        raise ValueError(f"fault spec: {key} delay must be between 0 and 3600 seconds, got {text!r}")
    return seconds


def _parse_int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"fault spec: {key}={text!r} is not an integer") from None


def _parse_drop(text: str) -> DropRule:
    method, sep, rate_text = text.rpartition(":")
    if not sep:
        method, rate_text = "", text
    if method and not _METHOD_RE.match(method):
        raise ValueError(f"fault spec: drop method {method!r} is not a REST method name like crm.item.add")
    return DropRule(method=method.lower() or None, rate=_parse_rate("drop", rate_text))


def is_write(method: str) -> bool:
    """Whether `method` changes data: the registry's flag, else its name."""
    spec = METHODS.get(method.lower())
    if spec is not None:
        return spec.write
    return method.lower().endswith(_WRITE_SUFFIXES)


@dataclass
class _Forced:
    method: str | None
    kind: str  # a FAULT_KIND or "drop"
    remaining: int
    delay: float = 2.0


@dataclass
class _WriteTrap:
    after: int
    kind: str
    remaining: int | None


@dataclass
class FaultPlan:
    """Seeded fault injection for one portal; thread-safe. Empty plan = no faults."""

    spec: FaultSpec = field(default_factory=FaultSpec)
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.spec.seed)
        self._forced: list[_Forced] = []
        self._trap: _WriteTrap | None = None
        self._writes_seen = 0

    @classmethod
    def parse(cls, spec: str | FaultSpec | FaultPlan | None, seed: int | None = None) -> FaultPlan:
        """A plan from a spec string (see `FaultSpec.parse`), a spec, or an existing plan."""
        if isinstance(spec, FaultPlan):
            return spec
        return cls(FaultSpec.parse(spec, seed=seed))

    @property
    def active(self) -> bool:
        return bool(self.spec.rates() or self.spec.drops or self._forced or self._trap)

    # -- programmatic API for tests -----------------------------------------------------------
    def drop_next(self, method: str, n: int = 1) -> None:
        """Lose the response of the next `n` calls to `method` (the call itself is applied)."""
        self._force(method, "drop", n)

    def inject_next(self, kind: str, method: str | None = None, n: int = 1, delay: float = 2.0) -> None:
        """Give the next `n` calls to `method` (any method when None) the fault `kind`."""
        make_fault(kind)  # validates the kind
        self._force(method, kind, n, delay)

    def fail_writes_after(self, k: int, kind: str = "500", times: int | None = None) -> None:
        """Let `k` more write calls through, then fail writes with `kind` (`times` of them; None = all)."""
        if k < 0:
            raise ValueError(f"fail_writes_after: k must be >= 0, got {k}")
        make_fault(kind)
        with self._lock:
            self._trap = _WriteTrap(self._writes_seen + k, kind, times)

    def clear(self) -> None:
        """Forget programmatic faults (the spec's random rates stay)."""
        with self._lock:
            self._forced.clear()
            self._trap = None

    def _force(self, method: str | None, kind: str, n: int, delay: float = 2.0) -> None:
        if n < 1:
            raise ValueError(f"fault count must be >= 1, got {n}")
        with self._lock:
            self._forced.append(_Forced(method.lower() if method else None, kind, n, delay))

    def _take_forced(self, method: str, drop: bool) -> _Forced | None:
        for entry in self._forced:
            if (entry.kind == "drop") == drop and entry.method in (None, method):
                entry.remaining -= 1
                if entry.remaining <= 0:
                    self._forced.remove(entry)
                return entry
        return None

    # -- hooks called by the core -------------------------------------------------------------
    def before(self, method: str) -> Fault | None:
        """The fault for this call, decided before it runs (None = run normally)."""
        name = method.lower()
        with self._lock:
            forced = self._take_forced(name, drop=False)
            if forced is not None:
                return self._record(make_fault(forced.kind, forced.delay))
            if is_write(name):
                self._writes_seen += 1
                trap = self._trap
                if trap is not None and self._writes_seen > trap.after:
                    if trap.remaining is not None:
                        trap.remaining -= 1
                        if trap.remaining <= 0:
                            self._trap = None
                    return self._record(make_fault(trap.kind))
            for kind, rate in self.spec.rates():
                if self._rng.random() < rate:
                    return self._record(make_fault(kind, self.spec.slow_seconds))
        return None

    def drop_after(self, method: str) -> bool:
        """True when the response of this (already applied) call must be lost."""
        name = method.lower()
        with self._lock:
            if self._take_forced(name, drop=True) is not None:
                self.injected["drop"] += 1
                return True
            for rule in self.spec.drops:
                applies = rule.method == name if rule.method else is_write(name)
                if applies and self._rng.random() < rule.rate:
                    self.injected["drop"] += 1
                    return True
        return False

    def _record(self, fault: Fault) -> Fault:
        self.injected[fault.kind] += 1
        return fault
