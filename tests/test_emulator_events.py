"""Events of the emulator: bind/unbind/get, online delivery, the offline queue."""

from __future__ import annotations

import http.server
import threading
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import pytest

from connector.emulator.clock import VirtualClock
from connector.emulator.errors import ApiError
from connector.emulator.events import EventHub, php_form, threaded_post
from connector.emulator.registry import METHODS, CallContext

T0 = 1_767_225_600.0
HANDLER = "https://handler.example.test/b24"


class Sink:
    """A deliverer that records what would be POSTed."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str]]] = []

    def __call__(self, url: str, form: list[tuple[str, str]]) -> None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in form)
        self.posts.append((url, dict(form)))


@pytest.fixture()
def sink() -> Sink:
    return Sink()


@pytest.fixture()
def hub(sink: Sink) -> EventHub:
    return EventHub(clock=VirtualClock(T0), deliverer=sink, entity_types=lambda: [1032, 1034])


def call(hub: EventHub, name: str, params: dict[str, Any] | None = None, **auth: Any) -> Any:
    """Run a registered event.* handler the way the core does."""
    who = SimpleNamespace(**({"client_id": "app.1", "user_id": 1} | auth))
    ctx = CallContext(portal=SimpleNamespace(events=hub), auth=who, now=T0)
    spec = METHODS[name]
    assert spec.app_only
    return spec.handler(ctx, params or {})


def item(item_id: int, etid: int = 1032) -> dict[str, Any]:
    return {"id": item_id, "entityTypeId": etid, "title": "X", "stageId": f"DT{etid}_1:NEW"}


# -- bind / unbind / get -----------------------------------------------------------------------
def test_bind_get_unbind_roundtrip(hub):
    assert call(hub, "event.bind", {"event": "onCrmDynamicItemAdd", "handler": HANDLER}) is True
    assert call(hub, "event.bind", {"event": "ONCRMDYNAMICITEMUPDATE_1032", "handler": HANDLER,
                                    "auth_type": "1"}) is True
    assert call(hub, "event.get") == [
        {"event": "ONCRMDYNAMICITEMADD", "handler": HANDLER, "auth_type": "0", "offline": 0},
        {"event": "ONCRMDYNAMICITEMUPDATE_1032", "handler": HANDLER, "auth_type": "1", "offline": 0},
    ]
    assert call(hub, "event.get", client_id="other.app") == []
    assert call(hub, "event.unbind", {"event": "oncrmdynamicitemadd", "handler": HANDLER}) == {"count": 1}
    assert call(hub, "event.unbind", {"event": "ONCRMDYNAMICITEMADD", "handler": HANDLER}) == {"count": 0}
    assert len(call(hub, "event.get")) == 1


@pytest.mark.parametrize(
    ("params", "code", "text"),
    [
        ({"event": "ONCRMNOTHING", "handler": HANDLER}, "ERROR_EVENT_NOT_FOUND", "Event not found"),
        ({"event": "ONCRMDYNAMICITEMADD_1036", "handler": HANDLER}, "ERROR_EVENT_NOT_FOUND",
         "Event not found"),
        ({"handler": HANDLER}, "ERROR_ARGUMENT", "Argument 'EVENT' is null or empty"),
        ({"event": "ONCRMDYNAMICITEMADD"}, "ERROR_ARGUMENT", "Argument 'HANDLER' is null or empty"),
        ({"event": "ONCRMDYNAMICITEMADD", "handler": "ftp://x/"}, "ERROR_ARGUMENT", "http or https URL"),
        ({"event": "ONCRMDYNAMICITEMADD", "handler": HANDLER, "event_type": "sometimes"}, "ERROR_ARGUMENT",
         "must be online or offline"),
    ],
)
def test_bind_errors(hub, params, code, text):
    with pytest.raises(ApiError) as info:
        call(hub, "event.bind", params)
    assert info.value.code == code and text in info.value.description and info.value.status == 400


def test_binding_twice_is_refused(hub):
    call(hub, "event.bind", {"event": "ONCRMDYNAMICITEMADD", "handler": HANDLER})
    with pytest.raises(ApiError) as info:
        call(hub, "event.bind", {"event": "onCrmDynamicItemAdd", "handler": HANDLER})
    assert info.value.code == "ERROR_HANDLER_ALREADY_EXIST"
    assert info.value.description == "Handler already exists!"


def test_offline_binding_needs_an_admin(hub):
    with pytest.raises(ApiError) as info:
        call(hub, "event.bind", {"event": "ONCRMDYNAMICITEMADD", "event_type": "offline"}, is_admin=False)
    assert info.value.status == 403 and info.value.code == "ACCESS_DENIED"
    with pytest.raises(ApiError) as info:
        call(hub, "event.offline.get", {}, is_admin=False)
    assert info.value.description == "Access denied!"


def test_typed_event_without_a_type_list_accepts_plausible_ids(sink):
    free = EventHub(clock=VirtualClock(T0), deliverer=sink)
    assert free.is_known("ONCRMDYNAMICITEMDELETE_1090") and free.is_known("ONCRMDYNAMICITEMADD_31")
    assert not free.is_known("ONCRMDYNAMICITEMADD_5")


# -- online delivery ---------------------------------------------------------------------------
def test_delivery_payload_is_php_form_with_string_values(hub, sink):
    call(hub, "event.bind", {"event": "ONCRMDYNAMICITEMADD", "handler": HANDLER})
    assert hub.emit("ONCRMDYNAMICITEMADD", item(22), auth=None) == 1
    url, form = sink.posts[0]
    assert url == HANDLER
    assert form["event"] == "ONCRMDYNAMICITEMADD"
    assert form["event_handler_id"] == "1"
    assert form["data[FIELDS][ID]"] == "22"
    assert form["data[FIELDS][ENTITY_TYPE_ID]"] == "1032"
    assert form["ts"] == str(int(T0))
    assert form["auth[application_token]"] == hub.application_token
    assert form["auth[domain]"] == "emulator.bitrix24.test"
    assert form["auth[client_endpoint]"] == "https://emulator.bitrix24.test/rest/"
    assert form["auth[member_id]"] == hub.member_id
    assert "auth[access_token]" not in form  # a webhook made the change: no token
    assert hub.application_token not in repr(hub)


def test_type_specific_binding_gets_only_its_type(hub, sink):
    call(hub, "event.bind", {"event": "ONCRMDYNAMICITEMUPDATE_1034", "handler": HANDLER})
    hub.emit("ONCRMDYNAMICITEMUPDATE", item(1, 1032))
    assert sink.posts == []
    hub.emit("ONCRMDYNAMICITEMUPDATE", item(1, 1034))
    assert sink.posts[0][1]["event"] == "ONCRMDYNAMICITEMUPDATE_1034"


def test_app_token_is_passed_when_an_app_user_made_the_change(hub, sink):
    call(hub, "event.bind", {"event": "ONCRMDYNAMICITEMDELETE", "handler": HANDLER})
    hub.emit("ONCRMDYNAMICITEMDELETE", {"ID": 5, "ENTITY_TYPE_ID": 1032},
             auth=SimpleNamespace(access_token="tok-123", user_id=1))
    form = sink.posts[0][1]
    assert form["auth[access_token]"] == "tok-123" and form["auth[expires_in]"] == "3600"
    assert form["data[FIELDS][ID]"] == "5"


def test_no_binding_no_delivery_and_unrelated_events_ignored(hub, sink):
    assert hub.emit("ONCRMDYNAMICITEMADD", item(1)) == 0
    call(hub, "event.bind", {"event": "ONCRMDYNAMICITEMADD", "handler": HANDLER})
    assert hub.emit("ONCRMDYNAMICITEMUPDATE", item(1)) == 0
    assert sink.posts == []


def test_php_form_flattening():
    assert php_form({"a": {"b": [1, True, None]}, "c": 2.5}) == [
        ("a[b][0]", "1"), ("a[b][1]", "1"), ("a[b][2]", ""), ("c", "2.5"),
    ]


def test_threaded_post_really_posts_form_encoded_and_survives_dead_handlers():
    got: list[tuple[str, dict[str, str]]] = []
    done = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            got.append((self.headers["Content-Type"], dict(parse_qsl(body))))
            self.send_response(200)
            self.end_headers()
            done.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        threaded_post(f"http://127.0.0.1:{port}/h", php_form({"event": "X", "data": {"FIELDS": {"ID": 3}}}))
        assert done.wait(5)
        assert got[0][0] == "application/x-www-form-urlencoded"
        assert got[0][1] == {"event": "X", "data[FIELDS][ID]": "3"}
        threaded_post("http://127.0.0.1:9/nowhere", [("a", "b")])  # refused: dropped silently
        time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()


# -- offline queue -----------------------------------------------------------------------------
def bind_offline(hub: EventHub, connector: str = "", event: str = "ONCRMDYNAMICITEMADD") -> None:
    params = {"event": event, "event_type": "offline"}
    if connector:
        params["auth_connector"] = connector
    call(hub, "event.bind", params)


def test_offline_queue_keeps_one_row_per_object_last_state_wins(hub, sink):
    for ev in ("ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE", "ONCRMDYNAMICITEMDELETE"):
        bind_offline(hub, event=ev)
    hub.emit("ONCRMDYNAMICITEMADD", item(1))
    hub.emit("ONCRMDYNAMICITEMADD", item(2))
    hub.clock.advance(5)
    hub.emit("ONCRMDYNAMICITEMUPDATE", item(1))
    hub.emit("ONCRMDYNAMICITEMUPDATE", item(1))
    listed = call(hub, "event.offline.list")
    assert listed.total == 2
    by_id = {r["EVENT_DATA"]["FIELDS"]["ID"]: r for r in listed.result}
    assert by_id[1]["EVENT_NAME"] == "ONCRMDYNAMICITEMUPDATE"
    assert by_id[2]["EVENT_NAME"] == "ONCRMDYNAMICITEMADD"
    assert by_id[1]["PROCESS_ID"] == "" and by_id[1]["ERROR"] == "0"
    assert sink.posts == []  # offline bindings are not pushed


def test_offline_get_clears_by_default(hub):
    bind_offline(hub)
    hub.emit("ONCRMDYNAMICITEMADD", item(1))
    got = call(hub, "event.offline.get")
    assert got["process_id"] is None
    assert [e["EVENT_NAME"] for e in got["events"]] == ["ONCRMDYNAMICITEMADD"]
    ev = got["events"][0]
    assert set(ev) == {"ID", "TIMESTAMP_X", "EVENT_NAME", "EVENT_DATA", "EVENT_ADDITIONAL", "MESSAGE_ID"}
    assert ev["TIMESTAMP_X"] == "2026-01-01T03:00:00+03:00"
    assert ev["EVENT_ADDITIONAL"] is False
    assert call(hub, "event.offline.get")["events"] == []


def test_offline_clear0_reserves_then_clear_by_process(hub):
    bind_offline(hub)
    for i in range(1, 4):
        hub.emit("ONCRMDYNAMICITEMADD", item(i))
    first = call(hub, "event.offline.get", {"clear": 0, "limit": 2})
    pid = first["process_id"]
    assert isinstance(pid, str) and len(pid) == 32 and len(first["events"]) == 2
    second = call(hub, "event.offline.get", {"clear": "0"})  # parallel reader: disjoint rows
    assert [e["EVENT_DATA"]["FIELDS"]["ID"] for e in second["events"]] == [3]
    again = call(hub, "event.offline.get", {"clear": 0, "process_id": pid})
    assert [e["ID"] for e in again["events"]] == [e["ID"] for e in first["events"]]
    assert call(hub, "event.offline.clear", {"process_id": pid}) is True
    assert call(hub, "event.offline.list").total == 1


def test_change_during_processing_is_not_lost(hub):
    bind_offline(hub)
    call(hub, "event.bind", {"event": "ONCRMDYNAMICITEMUPDATE", "event_type": "offline"})
    hub.emit("ONCRMDYNAMICITEMADD", item(7))
    pid = call(hub, "event.offline.get", {"clear": 0})["process_id"]
    hub.emit("ONCRMDYNAMICITEMUPDATE", item(7))  # changes again while the reader works
    call(hub, "event.offline.clear", {"process_id": pid})
    left = call(hub, "event.offline.get")["events"]
    assert [e["EVENT_NAME"] for e in left] == ["ONCRMDYNAMICITEMUPDATE"]


def test_offline_error_marks_rows_and_error_flag_reads_them(hub):
    bind_offline(hub)
    hub.emit("ONCRMDYNAMICITEMADD", item(1))
    hub.emit("ONCRMDYNAMICITEMADD", item(2))
    got = call(hub, "event.offline.get", {"clear": 0})
    bad = got["events"][0]["MESSAGE_ID"]
    assert call(hub, "event.offline.error", {"process_id": got["process_id"], "message_id": [bad]}) is True
    call(hub, "event.offline.clear", {"process_id": got["process_id"]})
    assert call(hub, "event.offline.get", {"clear": 0})["events"] == []
    retry = call(hub, "event.offline.get", {"error": 1})
    assert [e["MESSAGE_ID"] for e in retry["events"]] == [bad]


def test_offline_clear_by_ids_only(hub):
    bind_offline(hub)
    for i in (1, 2):
        hub.emit("ONCRMDYNAMICITEMADD", item(i))
    got = call(hub, "event.offline.get", {"clear": 0})
    call(hub, "event.offline.clear", {"process_id": got["process_id"], "id": [got["events"][0]["ID"]]})
    rows = call(hub, "event.offline.list").result
    assert [r["ID"] for r in rows] == [got["events"][1]["ID"]] and rows[0]["PROCESS_ID"] == got["process_id"]


def test_offline_errors_for_missing_process(hub):
    for name in ("event.offline.clear", "event.offline.error"):
        with pytest.raises(ApiError, match="PROCESS_ID"):
            call(hub, name, {})
    with pytest.raises(ApiError, match="MESSAGE_ID"):
        call(hub, "event.offline.error", {"process_id": "x"})
    with pytest.raises(ApiError, match="LIMIT"):
        call(hub, "event.offline.get", {"limit": "many"})


def test_auth_connector_suppresses_own_writes(hub):
    bind_offline(hub, connector="b24sync")
    bind_offline(hub)  # a second binding with no connector still sees everything
    hub.emit("ONCRMDYNAMICITEMADD", item(1), auth_connector="b24sync")
    hub.emit("ONCRMDYNAMICITEMADD", item(3), auth=SimpleNamespace(auth_connector="b24sync", user_id=1))
    hub.emit("ONCRMDYNAMICITEMADD", item(2))
    mine = call(hub, "event.offline.get", {"auth_connector": "b24sync"})["events"]
    assert [e["EVENT_DATA"]["FIELDS"]["ID"] for e in mine] == [2]
    nosource = call(hub, "event.offline.get")["events"]
    assert sorted(e["EVENT_DATA"]["FIELDS"]["ID"] for e in nosource) == [1, 2, 3]


def test_offline_filter_and_order(hub):
    bind_offline(hub)
    call(hub, "event.bind", {"event": "ONCRMDYNAMICITEMDELETE", "event_type": "offline"})
    hub.emit("ONCRMDYNAMICITEMADD", item(1))
    hub.clock.advance(60)
    hub.emit("ONCRMDYNAMICITEMDELETE", item(2))
    rows = call(hub, "event.offline.list", {"filter": {"EVENT_NAME": "ONCRMDYNAMICITEMDELETE"}}).result
    assert [r["EVENT_NAME"] for r in rows] == ["ONCRMDYNAMICITEMDELETE"]
    rows = call(hub, "event.offline.list", {"order": {"ID": "DESC"}}).result
    assert [r["ID"] for r in rows] == ["2", "1"]
    got = call(hub, "event.offline.get", {"filter": {">TIMESTAMP_X": "2026-01-01T03:00:30+03:00"}})
    assert [e["EVENT_NAME"] for e in got["events"]] == ["ONCRMDYNAMICITEMDELETE"]
    with pytest.raises(ApiError, match="Invalid filter: field 'NOPE' is not allowed in filter"):
        call(hub, "event.offline.list", {"filter": {"NOPE": 1}})


def test_offline_list_pages_by_50(hub):
    bind_offline(hub)
    for i in range(1, 121):
        hub.emit("ONCRMDYNAMICITEMADD", item(i))
    page = call(hub, "event.offline.list", {"start": 100})
    assert (page.total, page.next, len(page.result)) == (120, None, 20)
    assert call(hub, "event.offline.list").next == 50


def test_onofflineevent_pings_are_throttled(hub, sink):
    bind_offline(hub)
    call(hub, "event.bind", {"event": "ONOFFLINEEVENT", "handler": HANDLER, "options": {"minTimeout": 10}})
    hub.emit("ONCRMDYNAMICITEMADD", item(1))
    hub.emit("ONCRMDYNAMICITEMADD", item(2))
    hub.clock.advance(10)
    hub.emit("ONCRMDYNAMICITEMADD", item(3))
    assert [p[1]["event"] for p in sink.posts] == ["ONOFFLINEEVENT", "ONOFFLINEEVENT"]


def test_state_survives_to_dict_and_load_dict(hub, sink):
    bind_offline(hub)
    call(hub, "event.bind", {"event": "ONCRMDYNAMICITEMADD", "handler": HANDLER})
    hub.emit("ONCRMDYNAMICITEMADD", item(1))
    copy = EventHub(clock=VirtualClock(T0), deliverer=sink)
    copy.load_dict(hub.to_dict())
    assert copy.application_token == hub.application_token
    assert call(copy, "event.get") == call(hub, "event.get")
    assert call(copy, "event.offline.list").total == 1
    call(copy, "event.bind", {"event": "ONCRMDYNAMICITEMDELETE", "handler": HANDLER})
    assert max(b.id for b in copy.bindings) == 3


# -- through the emulator core -----------------------------------------------------------------
def test_item_writes_through_the_emulator_reach_handlers_and_the_offline_queue():
    import json as _json

    from connector.emulator import Emulator
    from connector.emulator.server import route

    emu = Emulator(clock="virtual")
    posts = Sink()
    emu.events.deliverer = posts
    token = emu.issue_token()["access_token"]

    def send(method: str, params: dict[str, Any], oauth: bool = False) -> dict[str, Any]:
        path = f"/rest/{method}" if oauth else f"/rest/1/{emu.webhook_code}/{method}"
        body = _json.dumps({**params, **({"auth": token} if oauth else {})}).encode()
        return _json.loads(route(emu, "POST", path, "", body, "application/json", "https://x.test").body)

    assert send("event.bind", {"event": "ONCRMDYNAMICITEMUPDATE", "handler": HANDLER})["error"] == (
        "WRONG_AUTH_TYPE")  # webhooks cannot bind events
    send("event.bind", {"event": "ONCRMDYNAMICITEMUPDATE", "handler": HANDLER}, oauth=True)
    send("event.bind", {"event": "ONCRMDYNAMICITEMUPDATE", "event_type": "offline",
                        "auth_connector": "b24sync"}, oauth=True)
    etid = send("crm.type.add", {"fields": {"title": "T"}})["result"]["type"]["entityTypeId"]
    item = send("crm.item.add", {"entityTypeId": etid, "fields": {"title": "a"}})["result"]["item"]
    send("crm.item.update", {"entityTypeId": etid, "id": item["id"], "fields": {"title": "a"}})  # no-op
    assert posts.posts == []
    send("crm.item.update", {"entityTypeId": etid, "id": item["id"], "fields": {"title": "b"},
                             "auth_connector": "b24sync"})
    assert [p[1]["data[FIELDS][ID]"] for p in posts.posts] == [str(item["id"])]
    assert send("event.offline.get", {"auth_connector": "b24sync"}, oauth=True)["result"]["events"] == []
    send("crm.item.update", {"entityTypeId": etid, "id": item["id"], "fields": {"title": "c"}})
    queued = send("event.offline.get", {"auth_connector": "b24sync"}, oauth=True)["result"]["events"]
    assert [e["EVENT_NAME"] for e in queued] == ["ONCRMDYNAMICITEMUPDATE"]


def test_type_events_and_oauth_access_token_through_the_core():
    """ONCRMTYPEADD/UPDATE/DELETE carry the type id; an OAuth caller's token rides in auth[access_token]."""
    import json as _json

    from connector.emulator import Emulator
    from connector.emulator.server import route

    emu = Emulator(clock="virtual")
    posts = Sink()
    emu.events.deliverer = posts
    token = emu.issue_token()["access_token"]

    def send(method: str, params: dict[str, Any], oauth: bool = False) -> dict[str, Any]:
        path = f"/rest/{method}" if oauth else f"/rest/1/{emu.webhook_code}/{method}"
        body = _json.dumps({**params, **({"auth": token} if oauth else {})}).encode()
        return _json.loads(route(emu, "POST", path, "", body, "application/json", "https://x.test").body)

    for event in ("ONCRMTYPEADD", "ONCRMTYPEUPDATE", "ONCRMTYPEDELETE", "ONCRMDYNAMICITEMADD"):
        assert send("event.bind", {"event": event, "handler": HANDLER}, oauth=True)["result"] is True
    smart = send("crm.type.add", {"fields": {"title": "T"}}, oauth=True)["result"]["type"]
    etid = smart["entityTypeId"]
    send("event.bind", {"event": f"ONCRMDYNAMICITEMADD_{etid}", "handler": HANDLER}, oauth=True)
    send("crm.type.update", {"id": smart["id"], "fields": {"title": "U"}})  # by the webhook
    send("crm.item.add", {"entityTypeId": etid, "fields": {}}, oauth=True)
    send("crm.item.add", {"entityTypeId": etid, "fields": {}})
    events = [(f["event"], f.get("data[FIELDS][ID]"), f.get("auth[access_token]")) for _, f in posts.posts]
    assert events == [
        ("ONCRMTYPEADD", str(smart["id"]), token),
        ("ONCRMTYPEUPDATE", str(smart["id"]), None),  # a webhook change carries no app token
        ("ONCRMDYNAMICITEMADD", "1", token),
        (f"ONCRMDYNAMICITEMADD_{etid}", "1", token),
        ("ONCRMDYNAMICITEMADD", "2", None),
        (f"ONCRMDYNAMICITEMADD_{etid}", "2", None),
    ]
    assert all(f["auth[application_token]"] == emu.events.application_token for _, f in posts.posts)
    send("crm.item.delete", {"entityTypeId": etid, "id": 1})
    send("crm.item.delete", {"entityTypeId": etid, "id": 2})
    posts.posts.clear()
    assert send("crm.type.delete", {"id": smart["id"]})["result"] == []
    deleted = [(f["event"], f["data[FIELDS][ID]"]) for _, f in posts.posts]
    assert deleted == [("ONCRMTYPEDELETE", str(smart["id"]))]
    bound = [b["event"] for b in send("event.get", {}, oauth=True)["result"]]
    assert f"ONCRMDYNAMICITEMADD_{etid}" not in bound and "ONCRMDYNAMICITEMADD" in bound
    assert token not in repr(emu.oauth.check(token, emu.clock.now()))  # the Auth never prints it
