"""A sync killed after any HTTP request resumes and converges; random edit interleavings converge."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sync_support import (
    MAPPINGS,
    KillAfter,
    Killed,
    local_exec,
    local_insert,
    local_rows,
    portal_items,
    setup_processes,
)

from connector.rest import Client
from connector.store import Store
from connector.sync import sync
from connector.sync.engine import parent_first, resolve_conflict
from connector.templates import load_templates

try:
    from connector.emulator import Emulator
except ImportError:
    from connector.emulator.core import Emulator

TEMPLATES = parent_first(
    load_templates([str(MAPPINGS / "car_service.toml"), str(MAPPINGS / "work_order.toml")])
)


def _state(emu: Any, db: Path, etids: dict[str, int], type_ids: dict[str, int]) -> None:
    """Assert local rows and portal items agree, with no duplicates and no lost edits."""
    for code in ("car", "work_order"):
        items = portal_items(emu, etids[code])
        xml = [i["xmlId"] for i in items if i.get("xmlId")]
        assert len(xml) == len(set(xml)), f"duplicate creates in {code}"
        rows = [r for r in local_rows(db, code) if not r["deleted"]]
        assert sorted(r["id"] for r in rows) == sorted(i["id"] for i in items)
        by_id = {i["id"]: i for i in items}
        for r in rows:
            item = by_id[r["id"]]
            assert item["title"] == r["title"]
            if code == "car":
                assert item[f"UF_CRM_{type_ids[code]}_MODEL"] == r["model"]
            else:
                assert item[f"parentId{etids['car']}"] == r["parent_car"]
    conn = sqlite3.connect(db)
    try:
        pending = conn.execute("SELECT COUNT(*) FROM _changes WHERE status != 'done'").fetchone()[0]
    finally:
        conn.close()
    assert pending == 0


def _scenario(tmp: Path, kill_at: int | None) -> int:
    """Portal and local edits, one sync killed after request `kill_at`, then normal syncs."""
    emu = Emulator(limits="off", clock="virtual")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        url = emu.register(rsps)
        etids = setup_processes(emu, TEMPLATES)
        types = {t["entityTypeId"]: t["id"] for t in emu.call("crm.type.list", {})["result"]["types"]}
        type_ids = {c: types[e] for c, e in etids.items()}
        uf = f"UF_CRM_{type_ids['car']}_MODEL"
        db = tmp / f"k{kill_at}.db"
        store = Store.open(db)
        r1 = emu.call(
            "crm.item.add",
            {"entityTypeId": etids["car"], "fields": {"title": "A", uf: "a"}, "useOriginalUfNames": "Y"},
        )["result"]["item"]["id"]
        r2 = emu.call(
            "crm.item.add",
            {"entityTypeId": etids["car"], "fields": {"title": "B", uf: "b"}, "useOriginalUfNames": "Y"},
        )["result"]["item"]["id"]
        sync(Client.from_webhook(url), store, TEMPLATES, portal_key="emu")
        # edits on both sides
        emu.clock.advance(5)
        emu.call(
            "crm.item.update",
            {"entityTypeId": etids["car"], "id": r1, "fields": {uf: "a2"}, "useOriginalUfNames": "Y"},
        )
        local_exec(db, "UPDATE car SET model = 'b2' WHERE id = ?", (r2,))
        pk = local_insert(db, "car", {"title": "C", "model": "c"})
        local_insert(db, "work_order", {"title": "W", "parent_car_key": pk})
        for n in range(60):
            local_insert(db, "car", {"title": f"bulk {n}", "model": f"m{n}"})
        session = KillAfter(kill_at) if kill_at else None
        client = Client.from_webhook(url, session=session) if session else Client.from_webhook(url)
        killed = False
        try:
            sync(client, store, TEMPLATES, portal_key="emu", policy="merge")
        except Killed:
            killed = True
            store.close()  # the process died: reopen the file like a new run would
            store = Store.open(db)
        for _ in range(2):
            report = sync(Client.from_webhook(url), store, TEMPLATES, portal_key="emu", policy="merge")
            assert report.failures == []
        _state(emu, db, etids, type_ids)
        store.close()
        return session.n if session and not killed else -1


def test_sync_killed_after_each_http_request_converges(tmp_path: Path) -> None:
    k = 1
    while True:
        finished_after = _scenario(tmp_path, k)
        if finished_after != -1:  # the run completed before request k: every cut point was covered
            break
        k += 1
    assert k > 3


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["local", "remote", "sync"]),
            st.integers(0, 3),
            st.text("abcxyz", min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=14,
    ),
    st.sampled_from(["remote-wins", "local-wins", "newest-wins", "merge"]),
)
def test_random_interleavings_of_edits_converge(
    tmp_path: Path, steps: list[tuple[str, int, str]], policy: str
) -> None:
    emu = Emulator(limits="off", clock="virtual")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        url = emu.register(rsps)
        etids = setup_processes(emu, TEMPLATES[:1])
        types = {t["entityTypeId"]: t["id"] for t in emu.call("crm.type.list", {})["result"]["types"]}
        uf = f"UF_CRM_{types[etids['car']]}_MODEL"
        ids = [
            emu.call(
                "crm.item.add",
                {
                    "entityTypeId": etids["car"],
                    "fields": {"title": f"c{n}", uf: "0"},
                    "useOriginalUfNames": "Y",
                },
            )["result"]["item"]["id"]
            for n in range(4)
        ]
        db = tmp_path / f"p{abs(hash((tuple(steps), policy)))}.db"
        store = Store.open(db)
        client = Client.from_webhook(url)
        sync(client, store, TEMPLATES[:1], portal_key="emu", policy=policy)
        for side, n, value in steps:
            emu.clock.advance(1)
            if side == "local":
                local_exec(db, "UPDATE car SET model = ? WHERE id = ?", (value, ids[n]))
            elif side == "remote":
                emu.call(
                    "crm.item.update",
                    {
                        "entityTypeId": etids["car"],
                        "id": ids[n],
                        "fields": {uf: value},
                        "useOriginalUfNames": "Y",
                    },
                )
            else:
                sync(client, store, TEMPLATES[:1], portal_key="emu", policy=policy)
        for _ in range(2):
            sync(client, store, TEMPLATES[:1], portal_key="emu", policy=policy)
        items = {i["id"]: i[uf] for i in portal_items(emu, etids["car"])}
        rows = {r["id"]: r["model"] for r in local_rows(db, "car")}
        open_ = {c.portal_id: c for c in store.list_conflicts("car")}
        assert policy == "merge" or not open_
        for pid, c in open_.items():  # same field edited on both sides: both values are kept
            assert c.local["model"] == rows[pid] and c.remote["model"] == items[pid]
        assert {k: v for k, v in items.items() if k not in open_} == {
            k: v for k, v in rows.items() if k not in open_
        }
        for c in open_.values():
            resolve_conflict(store, c.id, "local")
        sync(client, store, TEMPLATES[:1], portal_key="emu", policy=policy)
        items = {i["id"]: i[uf] for i in portal_items(emu, etids["car"])}
        assert items == {r["id"]: r["model"] for r in local_rows(db, "car")}
        store.close()
