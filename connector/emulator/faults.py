"""Emulator fault injection: 5xx, 503, HTML pages, slow and truncated responses, lost responses,
and answers of the wrong shape.

A `FaultPlan` is built from a spec string such as
``"5xx=0.05,503=0.02,html=0.01,slow=0.01:2.0,truncate=0.01,drop=crm.item.add:1.0,seed=7"``
and/or driven from tests (`drop_next`, `inject_next`, `fail_writes_after`). The core asks
`before(method)` ahead of every call, `after(method, fault, reply)` once it ran, and
`drop_after(method)` once a call has been applied. Randomness comes from one seeded generator,
so a run with the same seed and the same call sequence injects the same faults.

Hostile kinds take an optional method: ``ids_string=crm.item.list:1.0``,
``huge=0.5:209715200`` (bytes), ``hang=crm.item.list:1:30`` (seconds). The reference notes say
nothing about broken answers; these are what a proxy, a half-updated portal or a bug could send.
"""

from __future__ import annotations

import copy
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from connector.emulator.registry import METHODS

FaultKind = Literal[
    "500", "502", "503", "html", "slow", "truncate", "notjson", "huge", "hang", "result_string",
    "items_missing", "ids_string", "ids_float", "unknown_stage", "nulls", "dup_ids", "repeat_page",
]
# The call runs, then its answer is rewritten into a wrong shape (see `reshape`).
SHAPE_KINDS: tuple[str, ...] = (
    "result_string", "items_missing", "ids_string", "ids_float", "unknown_stage", "nulls", "dup_ids",
    "repeat_page",
)
HOSTILE_KINDS: tuple[str, ...] = ("notjson", "huge", "hang", *SHAPE_KINDS)
FAULT_KINDS: tuple[str, ...] = ("500", "502", "503", "html", "slow", "truncate", *HOSTILE_KINDS)
_RATE_KEYS = ("5xx", "500", "502", "503", "html", "slow", "truncate", "drop", "seed", *HOSTILE_KINDS)
HUGE_BYTES = 200 * 1024 * 1024  # a 200 MB body, streamed, never held in memory
HANG_SECONDS = 300.0  # how long a "hang" answer stalls before its server thread gives up
STREAM_CHUNK = 64 * 1024
GHOST_STAGE = "DT1_999:GHOST"  # a stage id of no process a client could have deployed
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
    size: int = 0  # "huge": bytes streamed

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

    @property
    def reshapes(self) -> bool:
        """True when the call runs and its JSON answer is then rewritten (`reshape`)."""
        return self.kind in SHAPE_KINDS

    def stream(self) -> FaultStream | None:
        """The body of a "huge" or "hang" answer, produced chunk by chunk; None for other kinds."""
        if self.kind == "huge":
            return FaultStream(_huge_chunks(self.size), stalls=False)
        if self.kind == "hang":
            return FaultStream(_hanging_chunks(self.delay), stalls=True)
        return None


class FaultStream:
    """A body written as it is produced (no Content-Length); `stalls` = it never finishes."""

    def __init__(self, chunks: Iterator[bytes], stalls: bool) -> None:
        self.chunks = chunks
        self.stalls = stalls

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks


def _huge_chunks(size: int) -> Iterator[bytes]:
    """`size` bytes of a JSON list answer that never closes: a row repeated, 64 KiB at a time."""
    head = b'{"result":{"items":['
    row = b'{"id":1,"title":"' + b"x" * 200 + b'"},'
    chunk = row * (STREAM_CHUNK // len(row))
    yield head
    sent = len(head)
    while sent < size:
        part = chunk[: size - sent]
        sent += len(part)
        yield part


def _hanging_chunks(seconds: float) -> Iterator[bytes]:
    """The start of an answer, then silence for `seconds` (real time: socket timeouts are real)."""
    yield b'{"result":{"items":[{"id":1,'
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    yield b'"title":"late"}]}}'


def make_fault(kind: str, delay: float | None = None, size: int | None = None) -> Fault:
    """A `Fault` of one of FAULT_KINDS; ValueError names the allowed kinds.

    `delay`: seconds of a "slow" (default 2) or "hang" (default HANG_SECONDS); `size`: bytes of a "huge".
    """
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
        return Fault("slow", delay=2.0 if delay is None else float(delay))
    if kind == "truncate":
        return Fault("truncate")
    if kind == "notjson":
        text = b"Service temporarily unavailable, error 0x5C\n"
        return Fault("notjson", 200, text, "text/plain; charset=utf-8")
    if kind == "huge":
        return Fault("huge", 200, size=HUGE_BYTES if size is None else int(size))
    if kind == "hang":
        return Fault("hang", 200, delay=HANG_SECONDS if delay is None else float(delay))
    if kind in SHAPE_KINDS:
        return Fault(kind)  # type: ignore[arg-type]
    raise ValueError(f"unknown fault kind {kind!r}; allowed: {', '.join(FAULT_KINDS)}")


# -- answers of the wrong shape ---------------------------------------------------------------

_ID_KEYS = ("id", "ID")


def reshape(kind: str, body: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of a JSON answer rewritten by the shape fault `kind`; a batch's sub-answers each.

    `previous` is the last answer of the same method ("repeat_page" sends it again; inside a
    batch of chained pages, page k+1 repeats page k instead).
    """
    if kind == "repeat_page":
        return _repeat(body, previous)
    body = copy.deepcopy(body)
    if kind == "result_string":
        body["result"] = "OK"
        return body
    results = _sub_results(body)
    if kind == "dup_ids":
        results = results[:1]
    for holder, key in results:
        holder[key] = _reshape_result(kind, holder[key])
    return body


def _sub_results(body: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(container, key) of each result in an answer: the batch's per-command results, or `result`."""
    inner = body.get("result")
    if isinstance(inner, dict) and isinstance(inner.get("result"), dict) and "result_error" in inner:
        return [(inner["result"], label) for label in inner["result"]]
    return [(body, "result")] if "result" in body else []


def _rows(result: Any) -> list[Any] | None:
    if isinstance(result, dict):
        for value in result.values():
            if isinstance(value, list):
                return value
        return None
    return result if isinstance(result, list) else None


def _reshape_result(kind: str, result: Any) -> Any:
    if kind == "nulls":
        return _nulled(result)
    if kind == "items_missing":
        if not isinstance(result, dict):
            return {}
        return {k: v for k, v in result.items() if not isinstance(v, list)}
    rows = _rows(result) or []
    if kind == "dup_ids" and rows:
        rows.insert(1, copy.deepcopy(rows[0]))
    for row in rows if kind in ("ids_string", "ids_float", "unknown_stage") else []:
        if not isinstance(row, dict):
            continue
        for key in _ID_KEYS:
            if isinstance(row.get(key), int) and kind == "ids_string":
                row[key] = str(row[key])
            elif kind == "ids_float" and _numeric(row.get(key)):
                row[key] = float(row[key]) + 0.5
        if kind == "unknown_stage" and "stageId" in row:
            row["stageId"] = GHOST_STAGE
    return result


def _numeric(value: Any) -> bool:
    """An id the portal sends as a number or as numeric text (an empty or other text stays as it is)."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return isinstance(value, int) and not isinstance(value, bool)


def _nulled(value: Any) -> Any:
    """The same structure with every scalar replaced by null ("null everywhere")."""
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulled(v) for v in value]
    return None


def _repeat(body: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    results = _sub_results(body)
    if len(results) >= 2 and results[0][0] is not body:  # chained pages: the second repeats the first
        body = copy.deepcopy(body)
        holder, labels = results[0][0], [label for _, label in results]
        body["result"]["result"][labels[1]] = copy.deepcopy(holder[labels[0]])
        return body
    return copy.deepcopy(previous) if previous is not None else body


class DropRule(BaseModel):
    """Lose the response of `method` (any write when None) with probability `rate`."""

    model_config = ConfigDict(frozen=True)

    method: str | None = None
    rate: float = Field(ge=0, le=1)


class HostileRule(BaseModel):
    """Give `method` (any method when None) the hostile fault `kind` with probability `rate`."""

    model_config = ConfigDict(frozen=True)

    kind: str
    method: str | None = None
    rate: float = Field(ge=0, le=1)
    arg: float | None = None  # "hang": seconds; "huge": bytes


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
    hostile: tuple[HostileRule, ...] = ()
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
        hostile: list[HostileRule] = []
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
            elif key in HOSTILE_KINDS:
                hostile.append(_parse_hostile(key, value))
            else:
                values[f"rate_{key}"] = _parse_rate(key, value)
        if seed is not None:
            values["seed"] = seed
        return cls(drops=tuple(drops), hostile=tuple(hostile), **values)  # type: ignore[arg-type]

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


def _parse_hostile(kind: str, text: str) -> HostileRule:
    """`[method:]rate[:arg]`, e.g. "crm.item.list:1.0", "0.5:209715200" (huge bytes), "1:30" (hang s)."""
    parts = text.split(":")
    method = None
    try:
        float(parts[0])
    except ValueError:
        method = parts.pop(0)
        if not _METHOD_RE.match(method):
            raise ValueError(f"fault spec: {kind} method {method!r} is not a REST method name like "
                             "crm.item.list") from None
    if not parts or len(parts) > 2:
        raise ValueError(f"fault spec: {kind}={text!r}; write {kind}=[method:]rate[:seconds or bytes]")
    arg = None
    if len(parts) == 2:
        arg = _parse_seconds(kind, parts[1]) if kind == "hang" else float(_parse_int(kind, parts[1]))
    return HostileRule(kind=kind, method=method.lower() if method else None, rate=_parse_rate(kind, parts[0]),
                       arg=arg)


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
    delay: float | None = None
    size: int | None = None


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
        self._last: dict[str, dict[str, Any]] = {}  # method -> its last answer, kept for "repeat_page"
        self._remember = any(rule.kind == "repeat_page" for rule in self.spec.hostile)

    @classmethod
    def parse(cls, spec: str | FaultSpec | FaultPlan | None, seed: int | None = None) -> FaultPlan:
        """A plan from a spec string (see `FaultSpec.parse`), a spec, or an existing plan."""
        if isinstance(spec, FaultPlan):
            return spec
        return cls(FaultSpec.parse(spec, seed=seed))

    @property
    def active(self) -> bool:
        return bool(self.spec.rates() or self.spec.drops or self.spec.hostile or self._forced or self._trap)

    # -- programmatic API for tests -----------------------------------------------------------
    def drop_next(self, method: str, n: int = 1) -> None:
        """Lose the response of the next `n` calls to `method` (the call itself is applied)."""
        self._force(method, "drop", n)

    def inject_next(self, kind: str, method: str | None = None, n: int = 1, delay: float | None = None,
                    size: int | None = None) -> None:
        """Give the next `n` calls to `method` (any method when None) the fault `kind`.

        "repeat_page" waits for one answer of the method to repeat (a batch repeats inside itself).
        """
        make_fault(kind)  # validates the kind
        if kind == "repeat_page":
            self._remember = True
        self._force(method, kind, n, delay, size)

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

    def _force(self, method: str | None, kind: str, n: int, delay: float | None = None,
               size: int | None = None) -> None:
        if n < 1:
            raise ValueError(f"fault count must be >= 1, got {n}")
        with self._lock:
            self._forced.append(_Forced(method.lower() if method else None, kind, n, delay, size))

    def _take_forced(self, method: str, drop: bool) -> _Forced | None:
        for entry in self._forced:
            if entry.kind == "repeat_page" and method != "batch" and method not in self._last:
                continue  # nothing to repeat yet
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
                return self._record(make_fault(forced.kind, forced.delay, forced.size))
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
            for rule in self.spec.hostile:
                if rule.method in (None, name) and self._rng.random() < rule.rate:
                    if rule.kind == "repeat_page" and name != "batch" and name not in self._last:
                        continue
                    arg = rule.arg
                    fault = make_fault(rule.kind, delay=arg, size=None if arg is None else int(arg))
                    return self._record(fault)
        return None

    def after(self, method: str, fault: Fault | None, reply: Any) -> None:
        """Once a call ran: rewrite its answer for a shape fault, mark it for truncation, and
        remember it when a "repeat_page" may need it. `reply` is the core's `Reply`."""
        name = method.lower()
        body = reply.body if reply.status == 200 and isinstance(reply.body, dict) else None
        if fault is not None and fault.truncates:
            reply.truncate = True
        if body is None:
            return
        if fault is not None and fault.reshapes:
            with self._lock:
                previous = self._last.get(name)
            reply.body = reshape(fault.kind, body, previous)
        if self._remember:
            with self._lock:
                self._last[name] = body

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
