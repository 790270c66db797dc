"""Regression tests of issue 10, one per symptom (15 belongs to the REST client): sync never loses or
duplicates an edit. All run against the in-process emulator (symptom 4 also over a loopback socket).

Emulator behaviour relied on, with its source:
- server-behaviour.md §2 "Unknown and read-only fields": unknown keys are silently ignored.
- server-behaviour.md §2 "categoryId / stageId validation": on update an invalid stage is reverted
  silently to the stored value.
- server-behaviour.md §2 "updatedTime": second resolution; a real change bumps it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sync_lab import LAB, Hook, Lab, dumps, lab_env
from test_sync_support import MAPPINGS, KillAfter, Killed

from connector.rest import Client
from connector.store import Store
from connector.sync import SyncLocked, holder_of, sync, sync_lock
from connector.sync.engine import parent_first, resolve_conflict
from connector.templates import load_templates

POLICIES = ["remote-wins", "local-wins", "newest-wins", "merge", "manual"]
CARS = parent_first(load_templates([MAPPINGS / "car_service.toml", MAPPINGS / "work_order.toml"]))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with lab_env(tmp_path) as env:
        yield env


def _synced_item(lab: Lab, **fields: Any) -> int:
    item_id = lab.add_remote({"title": "item", **{lab.uf(k): v for k, v in fields.items()}})
    lab.sync()
    return item_id


# ---- 1: a field changed on one side only flows, under every policy ----------------------------


@pytest.mark.parametrize("policy", POLICIES)
def test_s01_edits_of_different_fields_on_both_sides_both_survive(lab: Lab, policy: str) -> None:
    item_id = _synced_item(lab, note="base", big=1)
    lab.emu.clock.advance(5)
    lab.update_remote(item_id, {lab.uf("note"): "portal"})
    lab.local("UPDATE lab SET big = 2 WHERE id = ?", (item_id,))
    report = lab.sync(policy=policy)
    assert report.failures == [] and report.conflicts == 0
    row, item = lab.row(item_id), lab.item(item_id)
    assert (row["note"], row["big"]) == ("portal", 2)
    assert (item[lab.uf("note")], item[lab.uf("big")]) == ("portal", 2)
    assert lab.store.list_conflicts("lab", None) == []


def test_s01_manual_lists_only_clashing_fields_and_resolve_decides_only_those(lab: Lab) -> None:
    item_id = _synced_item(lab, note="base", big=1, tags=["x"])
    lab.emu.clock.advance(5)
    lab.update_remote(item_id, {lab.uf("note"): "portal", lab.uf("tags"): ["x", "portal"]})
    lab.local("UPDATE lab SET note = 'local', big = 2 WHERE id = ?", (item_id,))
    lab.sync(policy="manual")
    [c] = lab.store.list_conflicts("lab")
    assert c.fields == ["note"]
    item = lab.item(item_id)
    assert item[lab.uf("big")] == 2 and item[lab.uf("note")] == "portal"  # big flowed, note waits
    assert lab.row(item_id)["tags"] == dumps(["x", "portal"])
    resolve_conflict(lab.store, c.id, "remote")
    lab.sync(policy="manual")
    row, item = lab.row(item_id), lab.item(item_id)
    assert (row["note"], row["big"], row["tags"]) == ("portal", 2, dumps(["x", "portal"]))
    assert (item[lab.uf("note")], item[lab.uf("big")]) == ("portal", 2)
    assert lab.store.list_conflicts("lab") == []


def test_s01_two_stores_on_one_portal_keep_each_others_edits(lab: Lab, tmp_path: Path) -> None:
    item_id = _synced_item(lab, note="base", big=1)
    other = Store.open(tmp_path / "second.db")
    try:
        lab.sync(store=other)
        lab.local("UPDATE lab SET note = 'first' WHERE id = ?", (item_id,))
        sqlite_exec(tmp_path / "second.db", "UPDATE lab SET big = 7 WHERE id = ?", (item_id,))
        for policy in ("remote-wins", "local-wins"):
            lab.emu.clock.advance(5)
            lab.sync(policy=policy)
            lab.sync(store=other, policy=policy)
        lab.sync()
        second = sqlite_rows(tmp_path / "second.db", item_id)
    finally:
        other.close()
    item = lab.item(item_id)
    assert (item[lab.uf("note")], item[lab.uf("big")]) == ("first", 7)
    assert (lab.row(item_id)["note"], lab.row(item_id)["big"]) == ("first", 7)
    assert (second["note"], second["big"]) == ("first", 7)


def sqlite_exec(db: Path, sql: str, args: tuple[Any, ...]) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def sqlite_rows(db: Path, item_id: int) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("SELECT * FROM lab WHERE id = ?", (item_id,)).fetchone())
    finally:
        conn.close()


# ---- 2, 3: edits made while a request is in flight -------------------------------------------


def test_s02_local_edit_while_a_push_batch_is_in_flight_survives(lab: Lab) -> None:
    item_id = _synced_item(lab, note="base")
    lab.local("UPDATE lab SET note = 'sent' WHERE id = ?", (item_id,))
    hook = Hook(
        "crm.item.update", before=lambda: lab.local("UPDATE lab SET note = 'newer' WHERE id = ?", (item_id,))
    )
    lab.sync(session=hook)
    assert hook.seen == 1
    assert lab.row(item_id)["note"] == "newer"  # the portal's answer ('sent') did not overwrite it
    assert lab.item(item_id)[lab.uf("note")] == "sent"
    lab.sync()  # the next run pushes it
    assert lab.item(item_id)[lab.uf("note")] == "newer" and lab.row(item_id)["note"] == "newer"


def test_s03_local_edit_while_a_pull_is_in_flight_survives(lab: Lab) -> None:
    item_id = _synced_item(lab, note="base", big=1)
    lab.emu.clock.advance(5)
    lab.update_remote(item_id, {lab.uf("big"): 2})
    hook = Hook(
        "crm.item.list", after=lambda: lab.local("UPDATE lab SET note = 'local' WHERE id = ?", (item_id,))
    )
    report = lab.sync(session=hook, policy="remote-wins")
    assert hook.seen >= 1 and report.failures == []
    row, item = lab.row(item_id), lab.item(item_id)
    assert (row["note"], row["big"]) == ("local", 2)
    assert (item[lab.uf("note")], item[lab.uf("big")]) == ("local", 2)


# ---- 4: one sync per store --------------------------------------------------------------------


def test_s04_a_second_sync_on_a_store_in_use_waits_or_fails_naming_the_holder(lab: Lab) -> None:
    lab.sync()
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with Store.open(lab.db) as s, sync_lock(s, wait=0):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(10)
        found = holder_of(str(lab.db))
        assert found is not None and found.pid == os.getpid()
        with pytest.raises(SyncLocked) as err:
            lab.sync(wait=0.3)
        assert f"pid {os.getpid()}" in str(err.value) and "since" in str(err.value)
        threading.Timer(0.5, release.set).start()
        report = lab.sync(wait=10)  # waits for the holder, then runs
        assert report.failures == []
    finally:
        release.set()
        t.join()


def test_s04_a_crashed_holders_lock_is_taken_over(lab: Lab) -> None:
    lab.sync()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that existed and is gone now
    conn = sqlite3.connect(lab.db)
    conn.execute(
        "INSERT INTO _sync_lock (id, pid, host, since, beat, token) "
        "VALUES (1, ?, ?, '2026-01-01T00:00:00Z', 0, 'x')",
        (dead.pid, os.uname().nodename),
    )
    conn.commit()
    conn.close()
    report = lab.sync(wait=0)
    assert any("crashed" in w and str(dead.pid) in w for w in report.warnings)
    assert holder_of(str(lab.db)) is None  # released after the run


def test_s04_two_concurrent_syncs_create_no_duplicates(live_emulator: Any, tmp_path: Path) -> None:
    from test_sync_support import portal_items, setup_processes

    emu = live_emulator.emulator if hasattr(live_emulator, "emulator") else live_emulator.emu
    etids = setup_processes(emu, [LAB])
    url = live_emulator.webhook_url
    db = tmp_path / "shared.db"
    with Store.open(db) as s:
        sync(Client.from_webhook(url, allow_http=True), s, [LAB], portal_key="emu")
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO lab (title) VALUES (?)", [(f"row {n}",) for n in range(120)])
    conn.commit()
    conn.close()
    outcomes: list[Any] = []

    def run() -> None:
        with Store.open(db) as s:
            try:
                outcomes.append(
                    sync(Client.from_webhook(url, allow_http=True), s, [LAB], portal_key="emu", wait=60)
                )
            except Exception as exc:  # noqa: BLE001 - recorded and asserted below
                outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    assert sum(o.total("created") for o in outcomes) == 120
    items = portal_items(emu, etids["lab"])
    xml = [i["xmlId"] for i in items]
    assert len(items) == 120 and len(set(xml)) == 120


def test_s04_cli_exits_75_naming_the_holder(lab: Lab, tmp_path: Path, capsys: Any) -> None:
    from connector.cli.main import main

    lab.sync()
    cfg = tmp_path / "b24sync.toml"
    cfg.write_text(f'[portals.emu]\nwebhook = "{lab.url}"\nstore = "{lab.db}"\n')
    with Store.open(lab.db) as s, sync_lock(s, wait=0):
        code = main(["--config", str(cfg), "sync", "--portal", "emu", "--wait", "0"])
    err = capsys.readouterr().err
    assert code == 75
    assert "in use by another sync" in err and f"pid {os.getpid()}" in err


# ---- 5: duplicate xmlIds ----------------------------------------------------------------------


def test_s05_items_sharing_an_xml_id_get_distinct_rows_and_one_warning(lab: Lab) -> None:
    a = lab.add_remote({"title": "a", "xmlId": "IMPORT-1"})
    b = lab.add_remote({"title": "b", "xmlId": "IMPORT-1"})
    report = lab.sync()
    assert report.failures == []
    assert sorted(r["id"] for r in lab.rows()) == [a, b]
    [warning] = [w for w in report.warnings if "xmlId" in w]
    assert "IMPORT-1" in warning and str(a) in warning and str(b) in warning
    c = lab.add_remote({"title": "c", "xmlId": "IMPORT-1"})  # a third one, in a later run
    lab.local("UPDATE lab SET note = 'still syncs' WHERE id = ?", (a,))
    report = lab.sync()
    assert report.failures == [] and sorted(r["id"] for r in lab.rows()) == [a, b, c]
    assert lab.item(a)[lab.uf("note")] == "still syncs"


# ---- 6: money with multiple = true -------------------------------------------------------------


def test_s06_multiple_money_round_trips_both_ways(lab: Lab) -> None:
    item_id = _synced_item(lab, prices=["10.5|RUB", "3|USD"])
    assert lab.row(item_id)["prices"] == dumps(
        [{"amount": 10.5, "currency": "RUB"}, {"amount": 3.0, "currency": "USD"}]
    )
    lab.local(
        "UPDATE lab SET prices = ? WHERE id = ?", (dumps([{"amount": 7.25, "currency": "EUR"}]), item_id)
    )
    report = lab.sync()
    assert report.failures == [] and lab.item(item_id)[lab.uf("prices")] == ["7.25|EUR"]


# ---- 7: never an update with empty fields -------------------------------------------------------


def test_s07_null_assignee_is_a_clear_row_failure_not_an_empty_update(lab: Lab) -> None:
    item_id = _synced_item(lab)
    lab.local("UPDATE lab SET assigned_by_id = NULL WHERE id = ?", (item_id,))
    before = len(lab.emu.request_log)
    report = lab.sync()
    [failure] = report.failures
    assert "assigned_by_id" in failure.error and "responsible user" in failure.error
    assert not [e for e in lab.emu.request_log[before:] if e.method == "crm.item.update"]


def test_s07_rows_adopted_after_a_kill_mid_push_send_no_empty_update(lab: Lab) -> None:
    lab.sync()
    for n in range(3):
        lab.insert({"title": f"t{n}", "note": f"n{n}"})
    with pytest.raises(Killed):
        lab.sync(session=KillAfter(2))  # 1: the pull; 2: the create batch reaches the portal, then kill
    lab.store.close()
    lab.store = Store.open(lab.db)
    before = len(lab.emu.request_log)
    report = lab.sync()
    assert report.failures == [] and lab.store.failed_changes("lab") == []
    assert not [
        e
        for e in lab.emu.request_log[before:]
        if e.method == "crm.item.update" and not e.params.get("fields")
    ]
    assert len(lab.items()) == 3 and all(r["id"] for r in lab.rows())


# ---- 8: manual, deleted locally vs edited on the portal ----------------------------------------


@pytest.mark.parametrize("take", ["local", "remote"])
def test_s08_manual_delete_vs_edit_resolves_either_way_and_is_recorded_once(lab: Lab, take: str) -> None:
    item_id = _synced_item(lab, note="base")
    lab.emu.clock.advance(5)
    lab.update_remote(item_id, {lab.uf("note"): "portal"})
    lab.local("DELETE FROM lab WHERE id = ?", (item_id,))
    lab.sync(policy="manual")
    lab.emu.clock.advance(5)
    lab.sync(policy="manual")
    [c] = lab.store.list_conflicts("lab", None)  # once, not once per sync
    assert c.fields == ["deleted"] and c.status == "open"
    resolve_conflict(lab.store, c.id, take)
    report = lab.sync(policy="manual")
    assert report.failures == [] and lab.store.list_conflicts("lab") == []
    if take == "local":
        assert lab.items() == [] and lab.rows() == []
    else:
        assert lab.row(item_id)["note"] == "portal" and lab.item(item_id)[lab.uf("note")] == "portal"


# ---- 9: a failed push keeps its valid edits -----------------------------------------------------


def test_s09_a_row_whose_push_failed_keeps_its_valid_edits_when_the_portal_edits_it(lab: Lab) -> None:
    item_id = _synced_item(lab, note="base", big=1)
    lab.local("UPDATE lab SET stage = 'TYPO', note = 'valid' WHERE id = ?", (item_id,))
    assert lab.sync().failures
    lab.emu.clock.advance(5)
    lab.update_remote(item_id, {lab.uf("big"): 2})
    lab.sync()
    row = lab.row(item_id)
    assert (row["note"], row["stage"], row["big"]) == ("valid", "TYPO", 2)
    lab.local("UPDATE lab SET stage = 'WORK' WHERE id = ?", (item_id,))
    assert lab.sync().failures == []
    item = lab.item(item_id)
    assert item[lab.uf("note")] == "valid" and item["stageId"].endswith(":WORK") and item[lab.uf("big")] == 2


# ---- 10: a value the portal does not keep is a row failure -------------------------------------


def test_s10_a_move_to_a_stage_deleted_on_the_portal_is_a_row_failure(lab: Lab) -> None:
    item_id = _synced_item(lab)
    stage = lab.stage_id("main", "CHECK")
    [status] = [
        s
        for s in lab.emu.call("crm.status.list", {"filter": {"STATUS_ID": stage}})["result"]
        if s["STATUS_ID"] == stage
    ]
    assert "error" not in lab.emu.call("crm.status.delete", {"id": status["ID"]})
    lab.local("UPDATE lab SET stage = 'CHECK', note = 'kept' WHERE id = ?", (item_id,))
    report = lab.sync()
    [failure] = report.failures
    assert "'stage'" in failure.error and "'CHECK'" in failure.error and "did not keep" in failure.error
    row = lab.row(item_id)
    assert row["stage"] == "CHECK" and row["note"] == "kept"  # the local edit stays until fixed
    assert lab.item(item_id)[lab.uf("note")] == "kept"
    assert lab.sync().failures  # and fails again, not silently


def test_s10_an_edit_of_a_field_deleted_on_the_portal_is_a_row_failure(lab: Lab) -> None:
    item_id = _synced_item(lab, note="base")
    fields = lab.emu.call("userfieldconfig.list", {"moduleId": "crm"})["result"]["fields"]
    [uf] = [f for f in fields if f["fieldName"] == lab.uf("note")]
    lab.emu.call("userfieldconfig.delete", {"moduleId": "crm", "id": uf["id"]})
    lab.local("UPDATE lab SET note = 'gone' WHERE id = ?", (item_id,))
    [failure] = lab.sync().failures
    assert "'note'" in failure.error and "'gone'" in failure.error
    assert lab.row(item_id)["note"] == "gone"


# ---- 11: push-only is safe -----------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "note"), [("remote-wins", "portal"), ("local-wins", "local")])
def test_s11_push_only_merges_portal_edits_instead_of_overwriting(lab: Lab, policy: str, note: str) -> None:
    item_id = _synced_item(lab, note="base", big=1, tags=["a"])
    lab.emu.clock.advance(5)
    lab.update_remote(item_id, {lab.uf("note"): "portal", lab.uf("tags"): ["a", "p"]})
    lab.local("UPDATE lab SET note = 'local', big = 2 WHERE id = ?", (item_id,))
    report = lab.sync(pull=False, policy=policy)
    assert report.conflicts == 1
    item, row = lab.item(item_id), lab.row(item_id)
    assert (item[lab.uf("note")], item[lab.uf("big")], item[lab.uf("tags")]) == (note, 2, ["a", "p"])
    assert (row["note"], row["big"], row["tags"]) == (note, 2, dumps(["a", "p"]))


# ---- 12: funnel and stage are one field ----------------------------------------------------------


@pytest.mark.parametrize("policy", ["merge", "remote-wins", "local-wins"])
def test_s12_funnel_and_stage_merge_as_one_field(lab: Lab, policy: str) -> None:
    item_id = _synced_item(lab)
    lab.emu.clock.advance(5)
    lab.update_remote(item_id, {"categoryId": lab.category("side"), "stageId": lab.stage_id("side", "ALT")})
    lab.local("UPDATE lab SET stage = 'WORK' WHERE id = ?", (item_id,))
    report = lab.sync(policy=policy)
    row, item = lab.row(item_id), lab.item(item_id)
    pairs = {("main", "WORK"), ("side", "ALT")}
    assert (row["funnel"], row["stage"]) in pairs  # never side/WORK
    assert report.failures == []
    expect = {"remote-wins": ("side", "ALT"), "local-wins": ("main", "WORK"), "merge": ("main", "WORK")}[
        policy
    ]
    assert (row["funnel"], row["stage"]) == expect
    portal = "side" if item["categoryId"] == lab.category("side") else "main"
    assert (portal, item["stageId"].rpartition(":")[2]) in {("main", "WORK"), ("side", "ALT")}
    if policy == "merge":
        [c] = lab.store.list_conflicts("lab")
        assert c.fields == ["funnel", "stage"]
        assert lab.sync(policy=policy).failures == []  # waits for resolve, fails nothing


# ---- 13: stale parent keys --------------------------------------------------------------------


def test_s13_a_child_of_a_parent_deleted_on_the_portal_is_not_relinked(tmp_path: Path) -> None:
    with lab_env(tmp_path, CARS, "cars.db") as env:
        env.sync()
        parent = env.insert({"title": "car"}, "car")
        env.insert({"title": "visit", "parent_car_key": parent}, "work_order")
        assert env.sync().failures == []
        [car] = env.items("car")
        [wo] = env.items("work_order")
        env.delete_remote(car["id"], "car")
        env.update_remote(wo["id"], {f"parentId{env.etids['car']}": 0}, "work_order")
        env.sync(full=True)
        env.local("UPDATE work_order SET title = 'visit 2' WHERE id = ?", (wo["id"],))
        report = env.sync()
        assert report.failures == []
        [wo] = env.items("work_order")
        assert wo["title"] == "visit 2" and not wo[f"parentId{env.etids['car']}"]
        assert env.row(wo["id"], "work_order")["parent_car"] is None


# ---- 14: same-second edit, then a local delete ---------------------------------------------------


def test_s14_a_portal_edit_in_the_same_second_as_our_write_then_a_local_delete_is_not_lost(lab: Lab) -> None:
    item_id = _synced_item(lab, note="base")
    lab.local("UPDATE lab SET big = 5 WHERE id = ?", (item_id,))
    lab.sync()
    written = lab.item(item_id)["updatedTime"]
    lab.update_remote(item_id, {lab.uf("note"): "same second"})  # the virtual clock did not move
    assert lab.item(item_id)["updatedTime"] == written
    lab.local("DELETE FROM lab WHERE id = ?", (item_id,))
    report = lab.sync(policy="remote-wins")
    assert report.conflicts == 1
    assert lab.item(item_id)[lab.uf("note")] == "same second" and lab.row(item_id)["note"] == "same second"


# ---- 16: integers of any size the portal holds ----------------------------------------------------


@pytest.mark.parametrize("value", [2**53 + 1, 2**63 - 1, -(2**63), -(2**53) - 3])
def test_s16_integers_above_2_53_round_trip_exactly(lab: Lab, value: int) -> None:
    lab.sync()
    key = lab.insert({"title": "big", "big": value})
    assert lab.sync().failures == []
    [item] = lab.items()
    assert item[lab.uf("big")] == value and item["xmlId"] == key
    lab.update_remote(item["id"], {lab.uf("big"): str(value - 1 if value > 0 else value + 1)})
    assert lab.sync().failures == []
    assert lab.row(item["id"])["big"] == (value - 1 if value > 0 else value + 1)


# ---- any text round-trips: `[]` is empty only in an array column ---------------------------------


def test_text_that_reads_like_an_empty_array_is_created_as_text(lab: Lab) -> None:
    # found by the model test (test_sync_model.py): a new row's note '[]' was taken for an empty value
    # and not sent, so the portal held none and the pull wrote NULL over the local text
    lab.sync()
    key = lab.insert({"title": "brackets", "note": "[]", "tags": "[]"})
    assert lab.sync().failures == []
    [item] = lab.items()
    assert item["xmlId"] == key and item[lab.uf("note")] == "[]"
    assert not item.get(lab.uf("tags"))  # an empty multiple value is sent as nothing
    assert lab.sync().failures == []
    row = lab.row(item["id"])
    assert row["note"] == "[]" and row["tags"] in (None, "[]")


# ---- 17: local SQL means what it says -------------------------------------------------------------


def test_s17_setting_deleted_by_sql_is_refused_with_a_clear_message(lab: Lab) -> None:
    item_id = _synced_item(lab)
    with pytest.raises(
        sqlite3.IntegrityError, match="deleted of lab is set by sync only; to delete an item use DELETE"
    ):
        lab.local("UPDATE lab SET deleted = 1 WHERE id = ?", (item_id,))
    for sql, words in [
        ("UPDATE lab SET id = 999 WHERE id = ?", "id of lab is given by the portal"),
        (
            "UPDATE lab SET updated_time = '2020-01-01T00:00:00Z' WHERE id = ?",
            "updated_time of lab is read-only",
        ),
        ("UPDATE lab SET key = 'other' WHERE id = ?", "key of lab identifies the row"),
    ]:
        with pytest.raises(sqlite3.IntegrityError, match=words):
            lab.local(sql, (item_id,))
    key = lab.row(item_id)["key"]
    with pytest.raises(sqlite3.IntegrityError, match="key already in the table"):
        lab.insert({"key": key, "title": "replace"})
    lab.delete_remote(item_id)
    lab.sync(full=True)
    assert lab.row(item_id)["deleted"] == 1
    with pytest.raises(sqlite3.IntegrityError, match="tombstone"):
        lab.local("UPDATE lab SET note = 'x' WHERE id = ?", (item_id,))
    assert lab.sync().failures == [] and lab.items() == []


def test_s17_insert_with_an_id_the_portal_lacks_is_created(lab: Lab) -> None:
    lab.sync()
    key = lab.insert({"id": 4242, "title": "made up id", "note": "n"})
    report = lab.sync()
    assert report.failures == [] and report.total("tombstoned") == 0
    [item] = lab.items()
    assert item["xmlId"] == key and item[lab.uf("note")] == "n"
    [row] = lab.rows()
    assert row["id"] == item["id"] and row["deleted"] == 0 and lab.sync().pushed == 0


def test_s17_the_guards_do_not_slow_or_block_the_engine(lab: Lab) -> None:
    ids = [lab.add_remote({"title": f"r{n}"}) for n in range(60)]
    report = lab.sync()
    assert report.pulled == 60 and report.failures == []
    lab.delete_remote(ids[0])
    assert lab.sync(full=True).total("tombstoned") == 1


def test_s17_with_the_guard_a_statement_that_fails_changes_nothing(lab: Lab) -> None:
    item_id = _synced_item(lab, note="base")
    with pytest.raises(sqlite3.IntegrityError):
        lab.local("UPDATE lab SET note = 'x', deleted = 1 WHERE id = ?", (item_id,))
    assert lab.row(item_id)["note"] == "base" and lab.store.pending_changes("lab") == []


def test_s04_a_scheduler_sync_job_takes_the_same_lock(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from connector import scheduler
    from connector.sync import lock

    lab.sync()
    monkeypatch.setattr(lock, "DEFAULT_WAIT", 0.2)  # the job's sync waits this long, then gives up
    job = scheduler.SyncJob(kind="sync", name="every-minute", portal="emu", interval="1m")
    env = scheduler.JobEnv(
        open_client=lambda _portal: lab.client(),
        store_path=lambda _p, _d: lab.db,
        portal_key=lambda _p: "emu",
    )
    with Store.open(lab.db) as s, sync_lock(s, wait=0):
        outcome = scheduler.JobRunner([job], env).run_job(job)
    assert outcome.status == "failed" and "in use by another sync" in (outcome.error or "")
    assert scheduler.JobRunner([job], env).run_job(job).status == "ok"  # free again: it runs
