"""The Emulator: one fake portal — dispatch, envelope, `time`, hooks, request log, seeding."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import categories, crmtypes, items, statuses, userfields, users  # noqa: F401  (registers methods)
from . import cost as cost_model
from .auth import Auth, OAuthApp, webhook_auth
from .batch import run_batch
from .clock import Clock, SystemClock, VirtualClock
from .convert import iso, parse_offset
from .errors import ApiError
from .registry import METHODS, CallContext, ListPage, MethodSpec
from .state import PortalState

if TYPE_CHECKING:
    from .persist import StateFile

log = logging.getLogger(__name__)

METHOD_NOT_FOUND = ApiError("ERROR_METHOD_NOT_FOUND", "Method not found!", status=404)
WRONG_AUTH_TYPE = ApiError(
    "WRONG_AUTH_TYPE", "Current authorization type is denied for this method", status=401
)
DOMAIN = "emulator.bitrix24.test"


def _load_optional_modules() -> None:
    """Register the methods of the sibling modules (events, stage history, card configuration)."""
    for name in ("events", "stagehistory", "details", "productrows", "legacy"):
        try:
            __import__(f"{__package__}.{name}")
        except Exception:  # a sibling under construction must not take the portal down
            log.exception("emulator module %s failed to load", name)


_load_optional_modules()


@dataclass
class LogEntry:
    """One executed (sub-)call: what ran, how it ended, what it cost."""

    method: str
    status: int
    error: str | None
    cost: float
    http: bool
    at: float
    request_id: int
    batch_key: str | None = None
    params: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Reply:
    """What a request produced: an envelope, or raw bytes (faults), or a lost response."""

    status: int
    body: dict[str, Any] | None = None
    raw: bytes | None = None
    content_type: str = "application/json; charset=utf-8"
    drop: bool = False
    truncate: bool = False
    stream: Any = None  # faults "huge"/"hang": an iterable of body chunks written as produced


def intval(value: Any) -> int:
    """PHP intval for `start`: leading integer part, 0 when not numeric."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip() if isinstance(value, str) else ""
    sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    num = ""
    for ch in digits:
        if not ch.isdecimal():
            break
        num += ch
    return sign * int(num) if num else 0


class Emulator:
    """A faithful fake Bitrix24 portal for smart processes.

    `limits`: "off" | "standard" | "enterprise" (or a limits spec); `faults`: a fault spec string;
    `clock`: None (system), "virtual", or a Clock; `tz`: the portal's UTC offset.
    """

    def __init__(
        self,
        limits: str = "off",
        faults: str | None = None,
        seed: int = 0,
        clock: Clock | str | None = None,
        tz: str = "+03:00",
        state_file: str | None = None,
        webhook_code: str | None = None,
        domain: str = DOMAIN,
    ) -> None:
        from .events import EventHub
        from .faults import FaultPlan
        from .limits import Limiter

        if clock == "virtual":
            clock = VirtualClock()
        elif clock is None or clock == "system":
            clock = SystemClock()
        if isinstance(clock, str):
            raise ValueError(f"clock must be None, 'system', 'virtual' or a Clock, got {clock!r}")
        self.clock: Clock = clock
        self.tz_name = tz
        self.domain = domain
        self.state = PortalState(parse_offset(tz))
        self.state.base_url = f"https://{domain}"
        self.state.clock = self.clock
        self.limiter = Limiter(limits)
        self.faults = FaultPlan.parse(faults, seed=seed)
        self.events = EventHub(
            clock=self.clock,
            tz=tz,
            domain=domain,
            entity_types=lambda: [t.entity_type_id for t in self.state.types.values()],
        )
        self.state.limiter, self.state.faults, self.state.events = self.limiter, self.faults, self.events
        self.webhook_user = 1
        self.explicit_code = webhook_code is not None
        self.webhook_code = webhook_code or secrets.token_hex(8)
        self.oauth = OAuthApp()
        self.request_log: list[LogEntry] = []
        self._request_seq = 0
        self._log_lock = threading.Lock()
        self._store: StateFile | None = None
        if state_file:
            from .persist import StateFile

            self._store = StateFile(state_file)
            self._store.load(self)

    def __repr__(self) -> str:
        return f"Emulator(domain={self.domain!r}, types={len(self.state.types)})"

    # -- in-process API ------------------------------------------------------------------------
    @property
    def stage_history(self) -> list[dict[str, Any]]:
        return self.state.stage_history

    def webhook_url(self, base: str) -> str:
        """`<base>/rest/<user>/<code>/` for user 1's webhook."""
        return f"{base.rstrip('/')}/rest/{self.webhook_user}/{self.webhook_code}/"

    def register(self, rsps: Any, base_url: str = f"https://{DOMAIN}") -> str:
        """Serve this portal on a `responses.RequestsMock`; returns the webhook URL."""
        from .responses_adapter import register

        return register(self, rsps, base_url)

    def call(
        self, method: str, params: dict[str, Any] | None = None, auth: Auth | None = None
    ) -> dict[str, Any]:
        """Run one REST call in-process (as user 1's webhook) and return the JSON body."""
        reply = self.handle(method, dict(params or {}), auth or webhook_auth(self.webhook_user), http=False)
        return (
            reply.body if reply.body is not None else {"error": "ERROR_CORE", "error_description": "no body"}
        )

    def issue_token(self, user_id: int = 1, base: str = f"https://{DOMAIN}") -> dict[str, Any]:
        """An OAuth token pair for the local app (client_id/secret are `emu.oauth.*`)."""
        pair = self.oauth.issue(user_id, self.clock.now(), domain=self.domain, base=base)
        self.save()
        return pair

    def seed_items(self, entity_type_id: int, n: int, fields: dict[str, Any] | None = None) -> list[int]:
        """Bulk-create `n` items fast (no events, no log); returns their ids."""
        from .seed import seed_items

        with self.state.lock:
            ids = seed_items(self, entity_type_id, n, fields or {})
        self.save()
        return ids

    def save(self) -> None:
        """Write pending changes to the state file (no-op without one)."""
        if self._store is not None:
            with self.state.lock:
                self._store.flush(self)

    def close(self) -> None:
        """Flush and close the state file."""
        if self._store is not None:
            self.save()
            self._store.close()
            self._store = None

    # -- dispatch ------------------------------------------------------------------------------
    def handle(
        self,
        method: str,
        params: dict[str, Any],
        auth: Auth | ApiError | None,
        *,
        http: bool,
        base_url: str | None = None,
    ) -> Reply:
        """One request: method lookup (404 first), auth, bucket, faults, the call(s), envelope.

        `base_url` is the address the request came in on (file urls in answers point there)."""
        name = method.lower()
        if name.endswith(".json"):
            name = name[:-5]
        spec = METHODS.get(name)
        if spec is None and name != "batch":
            return self._error_reply(name, METHOD_NOT_FOUND, http)
        if isinstance(auth, ApiError) or auth is None:
            return self._error_reply(name, auth or METHOD_NOT_FOUND, http)
        with self._log_lock:
            self._request_seq += 1
            request_id = self._request_seq
        now = self.clock.now()
        refused = self.limiter.admit(auth, now)
        if refused is not None:
            return self._error_reply(name, refused, http, request_id)
        fault = self.faults.before(name)
        if fault is not None and fault.replaces_response:
            self._log(name, fault.status or 500, f"fault:{fault.kind}", 0.0, http, request_id)
            stream = fault.stream()
            return Reply(fault.status or 500, raw=fault.body, content_type=fault.content_type, stream=stream)
        if fault is not None and fault.delay:
            self.clock.sleep(fault.delay)
        with self.state.lock:
            if name == "batch":
                reply = self._batch(params, auth, http, request_id, base_url)
            else:
                reply = self._single(name, spec, params, auth, http, request_id, base_url)
            if self._store is not None and (self.state.schema_dirty or self.state.dirty_items):
                self._store.flush(self)
        self.faults.after(name, fault, reply)
        if reply.status == 200 and self.faults.drop_after(name):
            reply.drop = True
        return reply

    def _single(
        self,
        name: str,
        spec: MethodSpec | None,
        params: dict[str, Any],
        auth: Auth,
        http: bool,
        request_id: int,
        base_url: str | None = None,
    ) -> Reply:
        try:
            result, total, nxt, timing = self._execute(
                name, spec, params, auth, http, request_id, None, base_url
            )
        except ApiError as err:
            return Reply(err.status, err.body())
        body: dict[str, Any] = {"result": result}
        if nxt is not None:
            body["next"] = nxt
        if total is not None:
            body["total"] = total
        body["time"] = timing
        return Reply(200, body)

    def _batch(
        self, params: dict[str, Any], auth: Auth, http: bool, request_id: int, base_url: str | None = None
    ) -> Reply:
        t0 = self.clock.now()

        def sub_call(
            method: str, query: dict[str, Any]
        ) -> tuple[Any, int | None, int | None, dict[str, Any]]:
            sub = method.lower()
            if sub.endswith(".json"):
                sub = sub[:-5]
            spec = METHODS.get(sub)
            if spec is None:
                self._log(sub, 404, METHOD_NOT_FOUND.code, 0.0, http, request_id, "batch")
                raise METHOD_NOT_FOUND
            result, total, nxt, timing = self._execute(
                sub, spec, query, auth, http, request_id, "batch", base_url
            )
            timing = {k: v for k, v in timing.items() if not k.startswith("operating")}
            return result, total, nxt, timing

        try:
            result = run_batch(params, sub_call)
        except ApiError as err:
            self._log("batch", err.status, str(err.code), 0.0, http, request_id)
            return Reply(err.status, err.body())
        self._log("batch", 200, None, 0.0, http, request_id)
        timing = self._time(t0, 0.0)
        timing.update(self.limiter.charge(auth, "batch", 0.0, t0))
        return Reply(200, {"result": result, "time": timing})

    def _execute(
        self,
        name: str,
        spec: MethodSpec | None,
        params: dict[str, Any],
        auth: Auth,
        http: bool,
        request_id: int,
        batch_key: str | None,
        base_url: str | None = None,
    ) -> tuple[Any, int | None, int | None, dict[str, Any]]:
        """Run one handler with limits and cost; returns (result, total, next, time) or raises ApiError."""
        now = self.clock.now()
        try:
            if spec is None:
                raise METHOD_NOT_FOUND
            if spec.app_only and auth.kind != "oauth":
                raise WRONG_AUTH_TYPE
            refused = self.limiter.check_method(auth, name, now)
            if refused is not None:
                raise refused
            params = dict(params)
            start = intval(params.pop("start", 0))
            ctx = CallContext(
                self.state,
                auth,
                now,
                {
                    "start": start,
                    "auth_connector": params.get("auth_connector"),
                    "http": http,
                    "base_url": base_url,
                },
            )
            try:
                out = spec.handler(ctx, params)
            except ApiError:
                raise
            except Exception:
                log.exception("emulator: %s crashed", name)
                raise ApiError("INTERNAL_SERVER_ERROR", "Internal server error", status=500) from None
        except ApiError as err:
            self._log(name, err.status, str(err.code), 0.0, http, request_id, batch_key, params)
            raise
        if spec.write:
            self.state.schema_dirty = True  # sequences moved: the state file must save them
        total = nxt = None
        if isinstance(out, ListPage):
            out, total, nxt = out.result, out.total, out.next
        scan = ctx.extras.get("scan") or {}
        seconds = cost_model.estimate(
            name, params, scan.get("table_rows", 0), scan.get("counted", False), scan.get("offset", 0)
        )
        timing = self._time(now, seconds)
        timing.update(self.limiter.charge(auth, name, seconds, now))
        self._log(name, 200, None, seconds, http, request_id, batch_key, params)
        return out, total, nxt, timing

    def _time(self, t0: float, seconds: float) -> dict[str, Any]:
        """The `time` object: integer `start` and `processing`, float `finish`/`duration`."""
        finish = t0 + seconds
        return {
            "start": int(t0),
            "finish": round(finish, 6),
            "duration": round(finish - t0, 6),
            "processing": 0,
            "date_start": iso(t0, self.state.tz),
            "date_finish": iso(finish, self.state.tz),
        }

    def _error_reply(self, name: str, err: ApiError, http: bool, request_id: int = 0) -> Reply:
        self._log(name, err.status, str(err.code), 0.0, http, request_id)
        return Reply(err.status, err.body())

    def _log(
        self,
        method: str,
        status: int,
        error: str | None,
        cost: float,
        http: bool,
        request_id: int,
        batch_key: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        entry = LogEntry(
            method, status, error, cost, http, self.clock.now(), request_id, batch_key, params or {}
        )
        with self._log_lock:
            self.request_log.append(entry)
            if len(self.request_log) > 200_000:
                del self.request_log[:100_000]

    # -- inspection ----------------------------------------------------------------------------
    def items(self, entity_type_id: int) -> Iterable[dict[str, Any]]:
        """Stored rows (UPPER keys) of one type, for tests and tools."""
        return list(self.state.table(entity_type_id).rows.values())

    def cost_by_method(self) -> dict[str, dict[str, float]]:
        """Simulated server seconds per method over the request log."""
        return cost_model.cost_by_method(self.request_log)
