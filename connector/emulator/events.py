"""Emulator events: `event.bind/unbind/get`, the offline queue `event.offline.*`, online delivery.

Behaviour follows reference/server-behaviour.md section 8 and bitrix24-rest.md section 12
(https://apidocs.bitrix24.com/api-reference/events/index.html). The core calls
`portal.events.emit(name, fields, auth, auth_connector=...)` after every successful item
add/update/delete; bound online handlers get a form-encoded POST (through an injectable
deliverer, by default `requests.post` in a background thread, no retries); offline bindings
queue one row per object, the last state winning.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from connector.emulator.clock import Clock, SystemClock
from connector.emulator.convert import iso, parse_offset
from connector.emulator.errors import ApiError
from connector.emulator.filters import compile_filter, parse_order, sort_rows
from connector.emulator.params import is_numeric, php_int
from connector.emulator.php import as_list
from connector.emulator.registry import CallContext, ListPage, method

FormPairs = list[tuple[str, str]]
Deliverer = Callable[[str, FormPairs], None]

ITEM_EVENTS = ("ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE", "ONCRMDYNAMICITEMDELETE")
KNOWN_EVENTS = frozenset(
    {
        *ITEM_EVENTS,
        "ONCRMTYPEADD",
        "ONCRMTYPEUPDATE",
        "ONCRMTYPEDELETE",
        "ONCRMTYPEUSERFIELDADD",
        "ONCRMTYPEUSERFIELDUPDATE",
        "ONCRMTYPEUSERFIELDDELETE",
        "ONCRMTYPEUSERFIELDSETENUMVALUES",
        "ONOFFLINEEVENT",
        "ONAPPINSTALL",
        "ONAPPUNINSTALL",
        "ONAPPUPDATE",
        *(
            f"ONCRM{entity}{action}"
            for entity in ("LEAD", "DEAL", "CONTACT", "COMPANY")
            for action in ("ADD", "UPDATE", "DELETE")
        ),
    }
)
_TYPED_ITEM_EVENT = re.compile(r"^(ONCRMDYNAMICITEM(?:ADD|UPDATE|DELETE))_(\d+)$")
_ACTION = re.compile(r"(ADD|UPDATE|DELETE)(?=_\d+$|$)")
SMART_INVOICE = 31
OFFLINE_LIMIT_MAX = 1000
PAGE = 50


def _arg_missing(name: str) -> ApiError:
    return ApiError("ERROR_ARGUMENT", f"Argument '{name}' is null or empty")


# -- delivery ----------------------------------------------------------------------------------
def php_form(data: Any, prefix: str = "") -> FormPairs:
    """Flatten nested data into PHP bracket form pairs; every value becomes a string."""
    if isinstance(data, dict):
        pairs: FormPairs = []
        for key, value in data.items():
            pairs += php_form(value, f"{prefix}[{key}]" if prefix else str(key))
        return pairs
    if isinstance(data, list | tuple):
        pairs = []
        for index, value in enumerate(data):
            pairs += php_form(value, f"{prefix}[{index}]")
        return pairs
    if data is None or data is False:
        return [(prefix, "")]
    if data is True:
        return [(prefix, "1")]
    return [(prefix, str(data))]


def threaded_post(url: str, form: FormPairs) -> None:
    """Default deliverer: one form-encoded POST in a daemon thread; errors are dropped (no retry)."""

    def send() -> None:
        import requests

        try:
            requests.post(url, data=form, timeout=10, headers={"User-Agent": "Bitrix24 Webhook Engine"})
        except requests.RequestException:
            pass

    threading.Thread(target=send, name="b24-emulator-event", daemon=True).start()


# -- state -------------------------------------------------------------------------------------
@dataclass
class Binding:
    """One `event.bind` row."""

    id: int
    event: str
    handler: str
    app: str
    auth_type: int = 0
    offline: bool = False
    connector: str = ""
    min_timeout: float = 1.0

    def public(self) -> dict[str, Any]:
        """As `event.get` shows it."""
        return {
            "event": self.event,
            "handler": self.handler,
            "auth_type": str(self.auth_type),
            "offline": 1 if self.offline else 0,
        }


@dataclass
class OfflineRow:
    """One row of the offline queue: the last event of one object for one (app, connector)."""

    id: int
    key: str
    app: str
    connector: str
    event_name: str
    event_data: dict[str, Any]
    additional: dict[str, Any]
    timestamp: float
    message_id: str
    process_id: str = ""
    error: int = 0

    def public(self, tz: Any, with_process: bool) -> dict[str, Any]:
        row: dict[str, Any] = {
            "ID": str(self.id),
            "TIMESTAMP_X": iso(self.timestamp, tz),
            "EVENT_NAME": self.event_name,
            "EVENT_DATA": self.event_data or False,
            "EVENT_ADDITIONAL": self.additional or False,
            "MESSAGE_ID": self.message_id,
        }
        if with_process:
            row["PROCESS_ID"] = self.process_id
            row["ERROR"] = str(self.error)
        return row

    def filter_view(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "TIMESTAMP_X": self.timestamp,
            "EVENT_NAME": self.event_name,
            "MESSAGE_ID": self.message_id,
            "PROCESS_ID": self.process_id,
            "ERROR": self.error,
        }


_GET_FIELDS = {"ID": "int", "TIMESTAMP_X": "datetime", "EVENT_NAME": "string", "MESSAGE_ID": "string"}
_LIST_FIELDS = {**_GET_FIELDS, "PROCESS_ID": "string", "ERROR": "int"}


def _resolver(allowed: dict[str, str]) -> Callable[[str], tuple[str, str, str] | None]:
    def resolve(name: str) -> tuple[str, str, str] | None:
        upper = name.strip().upper()
        return (upper, allowed[upper], upper) if upper in allowed else None

    return resolve


def _object_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """`data[FIELDS]` of an event: ID and ENTITY_TYPE_ID of an item (camel or upper keys)."""
    if "id" in fields or "entityTypeId" in fields:
        out = {"ID": fields.get("id")}
        if fields.get("entityTypeId") is not None:
            out["ENTITY_TYPE_ID"] = fields["entityTypeId"]
        return out
    return dict(fields)


def _app_of(auth: Any) -> str:
    """Which application a call comes from (bindings and queues are per application)."""
    for attr in ("client_id", "app_id", "application"):
        value = getattr(auth, attr, None)
        if value:
            return str(value)
    return "app"


def _user_of(auth: Any) -> int | None:
    value = getattr(auth, "user_id", None)
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdecimal()) else None


class EventHub:
    """Bindings, the offline queue and delivery of one portal. Thread-safe."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        tz: str = "+03:00",
        domain: str = "emulator.bitrix24.test",
        deliverer: Deliverer | None = None,
        member_id: str | None = None,
        application_token: str | None = None,
        entity_types: Callable[[], Iterable[int]] | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.tz = parse_offset(tz)
        self.domain = domain
        self.deliverer: Deliverer = deliverer or threaded_post
        self.member_id = member_id or hashlib.md5(domain.encode()).hexdigest()
        self.application_token = application_token or secrets.token_hex(16)
        self.entity_types = entity_types  # None: any entity type id is accepted in typed events
        self.bindings: list[Binding] = []
        self.offline: dict[str, OfflineRow] = {}
        self.delivered: deque[tuple[str, FormPairs]] = deque(maxlen=1000)
        self._seq = {"binding": 0, "offline": 0}
        self._last_ping: dict[int, float] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:  # the application token is a secret
        return f"EventHub(domain={self.domain!r}, bindings={len(self.bindings)}, offline={len(self.offline)})"

    # -- names ---------------------------------------------------------------------------------
    def is_known(self, event: str) -> bool:
        """Whether `event` (upper-cased) exists on this portal."""
        if event in KNOWN_EVENTS:
            return True
        typed = _TYPED_ITEM_EVENT.match(event)
        if not typed:
            return False
        etid = int(typed.group(2))
        if self.entity_types is None:
            return etid == SMART_INVOICE or etid >= 128
        return etid == SMART_INVOICE or etid in set(self.entity_types())

    # -- bind / unbind / get -------------------------------------------------------------------
    def bind(self, app: str, params: dict[str, Any], caller_is_admin: bool = True) -> bool:
        """`event.bind`; returns True or raises the server's error."""
        event = str(params.get("event") or params.get("EVENT") or "").strip().upper()
        if not event:
            raise _arg_missing("EVENT")
        event_type = str(params.get("event_type") or params.get("EVENT_TYPE") or "online").lower()
        if event_type not in ("online", "offline"):
            raise ApiError(
                "ERROR_ARGUMENT", f"Argument 'EVENT_TYPE' must be online or offline, got {event_type!r}"
            )
        offline = event_type == "offline"
        handler = str(params.get("handler") or params.get("HANDLER") or "").strip()
        if offline and not caller_is_admin:
            raise ApiError(
                "ACCESS_DENIED",
                "Access denied! Offline events binding requires administrator access rights",
                status=403,
            )
        if not self.is_known(event):
            raise ApiError("ERROR_EVENT_NOT_FOUND", "Event not found")
        if not offline:
            if not handler:
                raise _arg_missing("HANDLER")
            parts = urlsplit(handler)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ApiError("ERROR_ARGUMENT", "Argument 'HANDLER' must be an http or https URL")
        auth_type = params.get("auth_type") or params.get("AUTH_TYPE") or 0
        if not is_numeric(auth_type):
            raise ApiError("ERROR_ARGUMENT", "Argument 'AUTH_TYPE' must be a user id")
        connector = str(params.get("auth_connector") or params.get("AUTH_CONNECTOR") or "")
        given = params.get("options")
        options = given if isinstance(given, dict) else {}
        min_timeout = options.get("minTimeout", 1)
        with self._lock:
            for b in self.bindings:
                if (b.app, b.event, b.handler, b.offline, b.auth_type, b.connector) == (
                    app,
                    event,
                    handler if not offline else "",
                    offline,
                    php_int(auth_type),
                    connector,
                ):
                    raise ApiError("ERROR_HANDLER_ALREADY_EXIST", "Handler already exists!")
            self._seq["binding"] += 1
            self.bindings.append(
                Binding(
                    id=self._seq["binding"],
                    event=event,
                    handler=handler if not offline else "",
                    app=app,
                    auth_type=php_int(auth_type),
                    offline=offline,
                    connector=connector,
                    min_timeout=float(min_timeout) if is_numeric(min_timeout) else 1.0,
                )
            )
        return True

    def unbind(self, app: str, params: dict[str, Any]) -> dict[str, int]:
        """`event.unbind` → {"count": n}."""
        event = str(params.get("event") or params.get("EVENT") or "").strip().upper()
        if not event:
            raise _arg_missing("EVENT")
        offline = str(params.get("event_type") or params.get("EVENT_TYPE") or "online").lower() == "offline"
        handler = str(params.get("handler") or params.get("HANDLER") or "").strip()
        if not offline and not handler:
            raise _arg_missing("HANDLER")
        auth_type = params.get("auth_type") or params.get("AUTH_TYPE") or 0
        auth_type = php_int(auth_type) if is_numeric(auth_type) else 0
        with self._lock:
            keep, gone = [], 0
            for b in self.bindings:
                hit = (
                    b.app == app
                    and b.event == event
                    and b.offline == offline
                    and b.auth_type == auth_type
                    and (offline or b.handler == handler)
                )
                gone += hit
                if not hit:
                    keep.append(b)
            self.bindings = keep
        return {"count": gone}

    def forget_entity_type(self, entity_type_id: int) -> int:
        """Drop the bindings of `ONCRMDYNAMICITEM*_{entity_type_id}` (the type was deleted)."""
        suffix = f"_{entity_type_id}"
        with self._lock:
            keep = [
                b
                for b in self.bindings
                if not (_TYPED_ITEM_EVENT.match(b.event) and b.event.endswith(suffix))
            ]
            gone = len(self.bindings) - len(keep)
            self.bindings = keep
        return gone

    def get(self, app: str) -> list[dict[str, Any]]:
        """`event.get`: this application's bindings."""
        with self._lock:
            return [b.public() for b in self.bindings if b.app == app]

    # -- emit ----------------------------------------------------------------------------------
    def emit(
        self,
        event_name: str,
        fields: dict[str, Any],
        auth: Any = None,
        *,
        auth_connector: str | None = None,
        now: float | None = None,
    ) -> int:
        """Fire `event_name` for one object; returns how many handlers/queues received it.

        `fields`: the item (camelCase, `id`/`entityTypeId`) or the event's FIELDS (upper keys).
        `auth_connector`: the `auth_connector` parameter of the write that caused the event
        (default: `auth.auth_connector`); offline bindings made with the same key do not queue it.
        """
        base = event_name.strip().upper()
        data = {"FIELDS": _object_fields(fields)}
        names = {base}
        etid = data["FIELDS"].get("ENTITY_TYPE_ID")
        if base in ITEM_EVENTS and etid is not None:
            names.add(f"{base}_{etid}")
        ts = self.clock.now() if now is None else now
        user = _user_of(auth)
        source = auth_connector or getattr(auth, "auth_connector", None) or ""
        count = 0
        with self._lock:
            targets = [b for b in self.bindings if b.event in names]
            queued_apps: set[str] = set()
            for b in targets:
                if b.offline:
                    if source and b.connector == source:
                        continue
                    self._queue(b, data, user, ts)
                    queued_apps.add(b.app)
                else:
                    self._deliver(b, b.event, data, ts, auth)
                count += 1
            for app in queued_apps:
                self._ping_offline(app, ts, auth)
        return count

    def _deliver(self, b: Binding, event: str, data: dict[str, Any], ts: float, auth: Any) -> None:
        envelope: dict[str, Any] = {
            "event": event,
            "event_handler_id": b.id,
            "data": data,
            "ts": int(ts),
            "auth": self._auth_block(auth),
        }
        form = php_form(envelope)
        self.delivered.append((b.handler, form))
        self.deliverer(b.handler, form)

    def _auth_block(self, auth: Any) -> dict[str, Any]:
        block: dict[str, Any] = {}
        token = getattr(auth, "access_token", None)
        if token:
            block.update(access_token=token, expires_in=3600, scope="crm")
        block.update(
            domain=self.domain,
            server_endpoint="https://oauth.bitrix.info/rest/",
            status="L",
            client_endpoint=f"https://{self.domain}/rest/",
            member_id=self.member_id,
            application_token=self.application_token,
        )
        return block

    def _queue(self, b: Binding, data: dict[str, Any], user: int | None, ts: float) -> None:
        fields = data["FIELDS"]
        family = _ACTION.sub("", b.event)
        key = f"{b.app}|{b.connector}|{family}|{fields.get('ENTITY_TYPE_ID', '')}|{fields.get('ID', '')}"
        row = self.offline.get(key)
        additional = {"user_id": user} if user is not None else {}
        if row is None:
            self._seq["offline"] += 1
            self.offline[key] = OfflineRow(
                id=self._seq["offline"],
                key=key,
                app=b.app,
                connector=b.connector,
                event_name=b.event,
                event_data=data,
                additional=additional,
                timestamp=ts,
                message_id=hashlib.md5(key.encode()).hexdigest(),
            )
            return
        # last state wins; a reserved row is released so the new change is not cleared unseen
        row.event_name, row.event_data, row.additional, row.timestamp = b.event, data, additional, ts
        row.process_id, row.error = "", 0

    def _ping_offline(self, app: str, ts: float, auth: Any) -> None:
        for b in self.bindings:
            if b.app == app and b.event == "ONOFFLINEEVENT" and not b.offline:
                last = self._last_ping.get(b.id)
                if last is None or ts - last >= b.min_timeout:
                    self._last_ping[b.id] = ts
                    self._deliver(b, "ONOFFLINEEVENT", {}, ts, auth)

    # -- offline queue -------------------------------------------------------------------------
    def offline_get(self, app: str, params: dict[str, Any]) -> dict[str, Any]:
        """`event.offline.get`: read (and clear, or reserve with `clear=0`) queued rows."""
        connector = str(params.get("auth_connector") or "")
        process_id = str(params.get("process_id") or "")
        clear = _flag(params.get("clear"), default=True)
        with_errors = _flag(params.get("error"), default=False)
        limit = params.get("limit", PAGE)
        if not is_numeric(limit) or php_int(limit) < 1:
            raise ApiError("ERROR_ARGUMENT", f"Argument 'LIMIT' must be a positive integer, got {limit!r}")
        limit = min(php_int(limit), OFFLINE_LIMIT_MAX)
        resolve = _resolver(_GET_FIELDS)
        flt = compile_filter(params.get("filter"), resolve, self.tz)
        order = parse_order(params.get("order"), resolve) or [("TIMESTAMP_X", False), ("ID", False)]
        with self._lock:
            rows = [
                r
                for r in self.offline.values()
                if r.app == app
                and r.connector == connector
                and r.process_id == process_id
                and (with_errors or not r.error)
                and flt.predicate(r.filter_view())
            ]
            views = sort_rows([r.filter_view() | {"_row": r} for r in rows], order)[:limit]
            chosen: list[OfflineRow] = [v["_row"] for v in views]
            if clear:
                for r in chosen:
                    self.offline.pop(r.key, None)
                out_pid: str | None = None
            else:
                out_pid = process_id or secrets.token_hex(16)
                for r in chosen:
                    r.process_id = out_pid
            events = [r.public(self.tz, with_process=False) for r in chosen]
        return {"process_id": out_pid, "events": events}

    def offline_clear(self, app: str, params: dict[str, Any]) -> bool:
        """`event.offline.clear`: delete the rows reserved by `process_id` (optionally some of them)."""
        process_id = str(params.get("process_id") or "")
        if not process_id:
            raise _arg_missing("PROCESS_ID")
        connector = str(params.get("auth_connector") or "")
        ids = _id_set(params.get("id"))
        messages = _id_set(params.get("message_id"))
        with self._lock:
            for key, r in list(self.offline.items()):
                if r.app != app or r.connector != connector or r.process_id != process_id:
                    continue
                if ids is not None and str(r.id) not in ids:
                    continue
                if messages is not None and r.message_id not in messages:
                    continue
                del self.offline[key]
        return True

    def offline_error(self, app: str, params: dict[str, Any]) -> bool:
        """`event.offline.error`: mark reserved rows as failed (read again with `error=1`)."""
        process_id = str(params.get("process_id") or "")
        if not process_id:
            raise _arg_missing("PROCESS_ID")
        raw = params.get("message_id")
        if raw in (None, ""):
            raise _arg_missing("MESSAGE_ID")
        messages = {str(v) for v in as_list(raw)}
        connector = str(params.get("auth_connector") or "")
        with self._lock:
            for r in self.offline.values():
                mine = (r.app, r.connector, r.process_id) == (app, connector, process_id)
                if mine and r.message_id in messages:
                    r.error, r.process_id = 1, ""
        return True

    def offline_list(self, app: str, params: dict[str, Any]) -> ListPage:
        """`event.offline.list`: rows with PROCESS_ID and ERROR, paged by 50; the queue is unchanged."""
        connector = str(params.get("auth_connector") or "")
        resolve = _resolver(_LIST_FIELDS)
        flt = compile_filter(params.get("filter"), resolve, self.tz)
        order = parse_order(params.get("order"), resolve) or [("ID", False)]
        start = params.get("start", 0)
        start = max(0, php_int(start)) if is_numeric(start) else 0
        with self._lock:
            views = [
                r.filter_view() | {"_row": r}
                for r in self.offline.values()
                if r.app == app and r.connector == connector and flt.predicate(r.filter_view())
            ]
            views = sort_rows(views, order)
            total = len(views)
            page = [v["_row"].public(self.tz, with_process=True) for v in views[start : start + PAGE]]
        nxt = start + PAGE if start + PAGE < total else None
        return ListPage(page, total=total, next=nxt)

    # -- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Bindings and the queue as plain data (for the core's state file)."""
        with self._lock:
            return {
                "application_token": self.application_token,
                "member_id": self.member_id,
                "seq": dict(self._seq),
                "bindings": [asdict(b) for b in self.bindings],
                "offline": [asdict(r) for r in self.offline.values()],
            }

    def load_dict(self, data: dict[str, Any]) -> None:
        """Restore what `to_dict` saved."""
        with self._lock:
            self.application_token = data.get("application_token", self.application_token)
            self.member_id = data.get("member_id", self.member_id)
            self._seq = {"binding": 0, "offline": 0, **data.get("seq", {})}
            self.bindings = [Binding(**b) for b in data.get("bindings", [])]
            self.offline = {r["key"]: OfflineRow(**r) for r in data.get("offline", [])}


def _id_set(raw: Any) -> set[str] | None:
    """A PHP array (or scalar) of ids as strings; None when absent."""
    if raw is None or raw == "":
        return None
    return {str(v) for v in as_list(raw)}


def _flag(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().upper() not in ("0", "N", "FALSE")


# -- REST methods ------------------------------------------------------------------------------
def _hub(ctx: CallContext) -> EventHub:
    hub = getattr(ctx.portal, "events", None)
    if not isinstance(hub, EventHub):
        raise ApiError("ERROR_CORE", "Events are not available on this portal", status=500)
    return hub


def _is_admin(ctx: CallContext) -> bool:
    return bool(getattr(ctx.auth, "is_admin", True))


def _require_admin(ctx: CallContext) -> None:
    if not _is_admin(ctx):
        raise ApiError("ACCESS_DENIED", "Access denied!", status=403)


@method("event.bind", write=True, scope="basic", app_only=True)
def event_bind(ctx: CallContext, params: dict[str, Any]) -> bool:
    """https://apidocs.bitrix24.com/api-reference/events/event-bind.html"""
    return _hub(ctx).bind(_app_of(ctx.auth), params, caller_is_admin=_is_admin(ctx))


@method("event.unbind", write=True, scope="basic", app_only=True)
def event_unbind(ctx: CallContext, params: dict[str, Any]) -> dict[str, int]:
    """https://apidocs.bitrix24.com/api-reference/events/event-unbind.html"""
    if str(params.get("event_type") or "").lower() == "offline" and not _is_admin(ctx):
        raise ApiError(
            "ACCESS_DENIED",
            "Access denied! Offline events unbinding requires administrator access rights",
            status=403,
        )
    return _hub(ctx).unbind(_app_of(ctx.auth), params)


@method("event.get", scope="basic", app_only=True)
def event_get(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    """https://apidocs.bitrix24.com/api-reference/events/event-get.html"""
    return _hub(ctx).get(_app_of(ctx.auth))


@method("event.offline.get", write=True, scope="basic", app_only=True)
def event_offline_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/events/event-offline-get.html"""
    _require_admin(ctx)
    return _hub(ctx).offline_get(_app_of(ctx.auth), params)


@method("event.offline.clear", write=True, scope="basic", app_only=True)
def event_offline_clear(ctx: CallContext, params: dict[str, Any]) -> bool:
    """https://apidocs.bitrix24.com/api-reference/events/event-offline-clear.html"""
    _require_admin(ctx)
    return _hub(ctx).offline_clear(_app_of(ctx.auth), params)


@method("event.offline.error", write=True, scope="basic", app_only=True)
def event_offline_error(ctx: CallContext, params: dict[str, Any]) -> bool:
    """https://apidocs.bitrix24.com/api-reference/events/event-offline-error.html"""
    _require_admin(ctx)
    return _hub(ctx).offline_error(_app_of(ctx.auth), params)


@method("event.offline.list", scope="basic", app_only=True)
def event_offline_list(ctx: CallContext, params: dict[str, Any]) -> ListPage:
    """https://apidocs.bitrix24.com/api-reference/events/event-offline-list.html"""
    _require_admin(ctx)
    return _hub(ctx).offline_list(_app_of(ctx.auth), params)


__all__ = ["Binding", "Deliverer", "EventHub", "OfflineRow", "php_form", "threaded_post"]
