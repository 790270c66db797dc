"""Deletions from the offline event queue when the portal is reached through an OAuth app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from test_sync_support import MAPPINGS, Killed, local_exec, local_rows, portal_items, setup_processes

from connector.emulator import Emulator
from connector.rest import Client, OAuthAuth
from connector.store import Store
from connector.sync import sync
from connector.templates import load_templates

CAR = load_templates([str(MAPPINGS / "car_service.toml")])


class KillBefore(requests.Session):
    """A transport whose run dies just before it sends a request mentioning `method`."""

    def __init__(self, method: str) -> None:
        super().__init__()
        self.method = method

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        body = request.body or b""
        text = body.decode() if isinstance(body, bytes) else str(body)
        if self.method in (request.url or "") or self.method in text:
            raise Killed(f"killed before {self.method}")
        return super().send(request, **kwargs)


class App:
    """The emulator reached as an OAuth application (admin user 1), the car process, a store."""

    def __init__(self, emu: Emulator, webhook: str, db: Path) -> None:
        self.emu, self.db = emu, db
        self.base = webhook.split("/rest/")[0]
        self.etid = setup_processes(emu, CAR)["car"]
        self.pair = emu.issue_token(base=self.base)
        self.store = Store.open(db)

    def client(self, session: requests.Session | None = None) -> Client:
        auth = OAuthAuth(
            f"{self.base}/rest/",
            self.pair["access_token"],
            self.pair["refresh_token"],
            self.emu.oauth.client_id,
            self.emu.oauth.client_secret,
            token_url=f"{self.base}/oauth/token/",
        )
        return Client(auth, session=session) if session else Client(auth)

    def sync(self, session: requests.Session | None = None, **kw: Any) -> Any:
        return sync(self.client(session), self.store, CAR, portal_key="app", **kw)

    def add(self, title: str) -> int:
        res = self.emu.call("crm.item.add", {"entityTypeId": self.etid, "fields": {"title": title}})
        return int(res["result"]["item"]["id"])

    def delete(self, item_id: int) -> None:
        self.emu.call("crm.item.delete", {"entityTypeId": self.etid, "id": item_id})

    def queue(self) -> list[Any]:
        return list(self.emu.events.offline.values())

    def methods(self, since: int) -> list[str]:
        return [e.method for e in self.emu.request_log[since:]]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    emu = Emulator(limits="off", clock="virtual")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        a = App(emu, emu.register(rsps), tmp_path / "app.db")
        yield a
        a.store.close()


def test_portal_deletions_come_from_the_offline_queue_without_a_full_sync(app: App) -> None:
    ids = [app.add(f"car {n}") for n in range(3)]
    first = app.sync()
    assert first.pulled == 3 and first.warnings == []
    assert any(b.offline and b.event == "ONCRMDYNAMICITEMDELETE" for b in app.emu.events.bindings)
    app.delete(ids[0])
    local_exec(app.db, "DELETE FROM car WHERE id = ?", (ids[1],))
    assert len(app.queue()) == 1  # the portal-side delete is queued for the app
    since = len(app.emu.request_log)
    report = app.sync()  # not --full: no id reconcile, the queue tells
    methods = app.methods(since)
    assert "event.offline.get" in methods and "event.offline.clear" in methods
    reads = {e.request_id for e in app.emu.request_log[since:] if e.method == "crm.item.list"}
    assert len(reads) == 1  # one HTTP request reads (the changes since the cursor): no id-set reconcile
    assert report.processes["car"].tombstoned == 1 and report.processes["car"].deleted_remote == 1
    rows = {r["id"]: r for r in local_rows(app.db, "car")}
    assert rows[ids[0]]["deleted"] == 1 and rows[ids[0]]["deleted_at"]
    assert ids[1] not in rows and rows[ids[2]]["deleted"] == 0
    assert [i["id"] for i in portal_items(app.emu, app.etid)] == [ids[2]]
    # our own pushed delete was queued too; the next run clears it and changes nothing
    again = app.sync()
    assert again.deleted == 0 and again.failures == [] and app.queue() == []
    assert "event.bind" not in app.methods(since)  # bound once, remembered in the store


def test_a_run_killed_between_reserving_and_clearing_rereads_the_reservation(app: App) -> None:
    ids = [app.add(f"car {n}") for n in range(2)]
    app.sync()
    app.delete(ids[0])
    with pytest.raises(Killed):
        app.sync(session=KillBefore("event.offline.clear"))
    app.store.close()
    app.store = Store.open(app.db)
    reserved = app.queue()
    assert len(reserved) == 1 and reserved[0].process_id  # reserved (clear=0), never cleared
    # a plain read no longer returns reserved records: only the remembered process_id finds them
    app.delete(ids[1])
    report = app.sync()
    assert report.failures == [] and app.queue() == []
    rows = {r["id"]: r["deleted"] for r in local_rows(app.db, "car")}
    assert rows == {ids[0]: 1, ids[1]: 1}


class DenyBind(requests.Session):
    """The portal's answer to an app whose user is not an admin: event.bind is refused (403)."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if "event.bind" not in (request.url or ""):
            return super().send(request, **kwargs)
        resp = requests.Response()
        resp.status_code, resp.url, resp.request = 403, request.url or "", request
        resp.headers["Content-Type"] = "application/json"
        resp._content = (
            b'{"error":"ACCESS_DENIED","error_description":"Access denied! Offline events binding '
            b'requires administrator access rights"}'
        )
        return resp


def test_an_app_without_admin_rights_gets_a_warning_not_a_failed_sync(app: App) -> None:
    app.add("car")
    report = app.sync(session=DenyBind())
    assert report.failures == [] and report.pulled == 1
    assert report.warnings and "sync --full" in report.warnings[0]
    assert app.store.meta_get("sync.offline.app.bound") == "no"
    since = len(app.emu.request_log)
    assert app.sync(session=DenyBind()).warnings  # remembered: no bind attempt, no queue reads
    assert not [m for m in app.methods(since) if m.startswith("event.")]


def test_webhook_portals_never_touch_the_offline_queue(app: App, tmp_path: Path) -> None:
    with Store.open(tmp_path / "hook.db") as store:
        since = len(app.emu.request_log)
        sync(Client.from_webhook(app.emu.webhook_url(app.base)), store, CAR, portal_key="hook")
    assert not [m for m in app.methods(since) if m.startswith("event.")]
