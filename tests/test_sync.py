"""Two-way sync against the emulator: field types, deletions, links, stages, policies, lost creates."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import responses
from test_sync_support import (
    MAPPINGS,
    DropResponse,
    local_exec,
    local_insert,
    local_rows,
    portal_items,
    row_values,
    sample_value,
    setup_processes,
)

from connector.rest import Client
from connector.store import Store
from connector.sync import sync
from connector.sync.engine import parent_first, resolve_conflict, resolve_maps
from connector.templates import FIELD_TYPES, load_templates

try:
    from connector.emulator import Emulator
except ImportError:  # the package export lands with the emulator core
    from connector.emulator.core import Emulator

TEMPLATES = parent_first(load_templates(sorted(str(p) for p in MAPPINGS.glob("*.toml"))))
BY_CODE = {t.code: t for t in TEMPLATES}


class Env:
    """An emulator with the shipped processes, a client, and a store file."""

    def __init__(self, emu: Any, url: str, db: Path, etids: dict[str, int]) -> None:
        self.emu, self.url, self.db, self.etids = emu, url, db, etids
        self.store = Store.open(db)

    def client(self, session: Any = None) -> Client:
        return Client.from_webhook(self.url, session=session) if session else Client.from_webhook(self.url)

    def sync(self, session: Any = None, **kw: Any) -> Any:
        return sync(self.client(session), self.store, TEMPLATES, portal_key="emu", **kw)

    def uf(self, code: str, field: str) -> str:
        type_id = self.etids_type[code]
        return f"UF_CRM_{type_id}_{field.upper()}"

    def items(self, code: str) -> list[dict[str, Any]]:
        return portal_items(self.emu, self.etids[code])

    def add_remote(self, code: str, fields: dict[str, Any]) -> int:
        res = self.emu.call(
            "crm.item.add", {"entityTypeId": self.etids[code], "fields": fields, "useOriginalUfNames": "Y"}
        )
        return int(res["result"]["item"]["id"])

    def update_remote(self, code: str, item_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        res = self.emu.call(
            "crm.item.update",
            {"entityTypeId": self.etids[code], "id": item_id, "fields": fields, "useOriginalUfNames": "Y"},
        )
        return res["result"]["item"]

    def rows(self, code: str, where: str = "1") -> list[dict[str, Any]]:
        return local_rows(self.db, code, where)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with env_on_emulator(tmp_path) as e:
        yield e


@contextmanager
def env_on_emulator(tmp_path: Path) -> Iterator[Env]:
    """The shipped processes on a fresh in-process emulator, and a store file in `tmp_path`."""
    emu = Emulator(limits="off", clock="virtual")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        url = emu.register(rsps)
        etids = setup_processes(emu, TEMPLATES)
        e = Env(emu, url, tmp_path / "portal.db", etids)
        e.etids_type = {t["entityTypeId"]: t["id"] for t in emu.call("crm.type.list", {})["result"]["types"]}
        e.etids_type = {code: e.etids_type[etid] for code, etid in etids.items()}
        yield e
        e.store.close()


def test_every_field_type_of_the_shipped_templates_syncs_both_ways(env: Env) -> None:
    env.sync()  # first run: backfill of an empty portal, maps resolved and cached
    keys = {t.code: local_insert(env.db, t.code, row_values(t, 1)) for t in TEMPLATES}
    report = env.sync()
    assert report.failures == [] and report.total("created") == len(TEMPLATES)
    for t in TEMPLATES:
        [item] = [i for i in env.items(t.code) if i.get("xmlId") == keys[t.code]]
        [row] = env.rows(t.code, f"key = '{keys[t.code]}'")
        assert row["id"] == item["id"]
        for f in t.fields:  # local -> portal
            if f.type == "file":
                continue
            raw = item[env.uf(t.code, f.code)]
            if f.type == "money":
                assert raw == "1001|RUB"
            elif f.type == "boolean":
                assert raw == "Y"
            elif f.type == "enumeration":
                assert raw not in (None, "", [])
            elif f.type in ("string", "url", "address"):
                assert raw == (json.loads(row[f.code]) if f.multiple else row[f.code])
        # portal -> local: change every field on the portal with value set 2, pull, compare
        other = row_values(t, 2)
        from connector.crm.items import ItemTranslator
        from connector.sync.engine import resolve_maps

        pmap = resolve_maps(env.client(), env.store, TEMPLATES, "emu")[t.code]
        tr = ItemTranslator(pmap)
        fields = tr.to_fields({**row, **other, "funnel": row["funnel"]}, [c for c in other if c != "title"])
        env.update_remote(t.code, item["id"], fields)
    report = env.sync()
    assert report.failures == [] and report.total("pulled") == len(TEMPLATES)
    for t in TEMPLATES:
        [row] = env.rows(t.code, f"key = '{keys[t.code]}'")
        for col, want in row_values(t, 2).items():
            if col == "title" or (col.endswith("_currency") and want == "RUB"):
                continue
            got = row[col]
            if isinstance(want, float):
                assert got == pytest.approx(want), (t.code, col)
            else:
                assert got == want, (t.code, col, got, want)


def test_incremental_pull_skips_known_rows_and_echo(env: Env) -> None:
    ids = [env.add_remote("car", {"title": f"car {n}"}) for n in range(3)]
    first = env.sync()
    assert first.processes["car"].pulled == 3
    local_exec(env.db, "UPDATE car SET model = 'Vesta' WHERE id = ?", (ids[0],))
    second = env.sync()
    assert second.processes["car"].updated == 1 and second.processes["car"].pulled == 0
    third = env.sync()  # our own write comes back through the overlap window: not a change
    assert third.processes["car"].pulled == 0 and third.total("conflicts") == 0
    assert third.pushed == 0


def test_a_write_that_changes_nothing_is_not_sent(env: Env) -> None:
    item_id = env.add_remote("car", {"title": "car"})
    env.sync()
    local_exec(env.db, "UPDATE car SET model = 'x' WHERE id = ?", (item_id,))
    local_exec(env.db, "UPDATE car SET model = NULL WHERE id = ?", (item_id,))
    before = len(env.emu.request_log)
    report = env.sync()
    writes = [e for e in env.emu.request_log[before:] if e.method in ("crm.item.update", "batch")]
    assert report.processes["car"].unchanged == 1 and report.processes["car"].updated == 0
    assert not [e for e in writes if e.method == "crm.item.update"]


def test_deletions_both_ways(env: Env) -> None:
    a = env.add_remote("car", {"title": "to delete on portal"})
    b = env.add_remote("car", {"title": "to delete locally"})
    env.sync()
    env.emu.call("crm.item.delete", {"entityTypeId": env.etids["car"], "id": a})
    local_exec(env.db, "DELETE FROM car WHERE id = ?", (b,))
    report = env.sync(full=True)
    assert report.processes["car"].deleted_remote == 1 and report.processes["car"].tombstoned == 1
    assert [i["id"] for i in env.items("car")] == []
    [tomb] = env.rows("car")
    assert tomb["id"] == a and tomb["deleted"] == 1 and tomb["deleted_at"]


def test_child_pointing_at_a_new_local_parent_is_pushed_after_it(env: Env) -> None:
    env.sync()
    parent_key = "p" * 32
    # the child is inserted first, so its change comes first in the log
    child = local_insert(env.db, "work_order", {"title": "ТО-1", "parent_car_key": parent_key})
    local_insert(env.db, "car", {"key": parent_key, "title": "Lada Vesta"})
    report = env.sync()
    assert report.failures == []
    [car] = env.items("car")
    [wo] = env.items("work_order")
    assert wo[f"parentId{env.etids['car']}"] == car["id"] and wo["xmlId"] == child
    [row] = env.rows("work_order")
    assert row["parent_car"] == car["id"]
    # and the other way: a portal link shows up locally
    other = env.add_remote("work_order", {"title": "ТО-2", f"parentId{env.etids['car']}": car["id"]})
    env.sync()
    [pulled] = env.rows("work_order", f"id = {other}")
    assert pulled["parent_car"] == car["id"]


def test_stage_moves_both_ways_are_kept_in_stage_history(env: Env) -> None:
    item_id = env.add_remote("candidate", {"title": "Пётр"})
    env.sync()
    local_exec(env.db, "UPDATE candidate SET stage = 'CALL' WHERE id = ?", (item_id,))
    env.sync()
    [item] = [i for i in env.items("candidate") if i["id"] == item_id]
    assert item["stageId"].endswith(":CALL")
    env.emu.clock.advance(60)
    env.update_remote("candidate", item_id, {"stageId": item["stageId"].replace("CALL", "INTERVIEW")})
    env.sync()
    moves = [(m.from_stage, m.to_stage, m.source) for m in env.store.stage_history("candidate")]
    assert moves == [(None, "NEW", "pull"), ("NEW", "CALL", "push"), ("CALL", "INTERVIEW", "pull")]


def _conflict(env: Env, policy: str, *, remote_later: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    item_id = env.add_remote(
        "car", {"title": "car", env.uf("car", "model"): "base", env.uf("car", "plate"): "A000AA"}
    )
    env.sync(policy=policy)
    if remote_later:
        local_exec(env.db, "UPDATE car SET model = 'local', vin = 'LOCALVIN' WHERE id = ?", (item_id,))
        env.emu.clock.advance(3600 * 24 * 400)
        env.update_remote(
            "car", item_id, {env.uf("car", "model"): "remote", env.uf("car", "plate"): "B111BB"}
        )
    else:
        env.update_remote(
            "car", item_id, {env.uf("car", "model"): "remote", env.uf("car", "plate"): "B111BB"}
        )
        local_exec(env.db, "UPDATE car SET model = 'local', vin = 'LOCALVIN' WHERE id = ?", (item_id,))
    env.sync(policy=policy)
    [row] = env.rows("car")
    [item] = env.items("car")
    return row, item


@pytest.mark.parametrize(
    ("policy", "remote_later", "model", "plate", "vin"),
    [
        ("remote-wins", False, "remote", "B111BB", "LOCALVIN"),
        ("local-wins", False, "local", "B111BB", "LOCALVIN"),
        ("newest-wins", True, "remote", "B111BB", "LOCALVIN"),
        ("merge", False, "local", "B111BB", "LOCALVIN"),
    ],
)
def test_conflict_policies(
    env: Env, policy: str, remote_later: bool, model: str, plate: str, vin: str | None
) -> None:
    """Only `model` clashes; `plate` (portal only) and `vin` (local only) flow under every policy."""
    row, item = _conflict(env, policy, remote_later=remote_later)
    assert (row["model"], row["plate"], row["vin"]) == (model, plate, vin)
    assert (item[env.uf("car", "plate")], item[env.uf("car", "vin")]) == (plate, vin)
    conflicts = env.store.list_conflicts("car", None)
    assert conflicts[0].fields == ["model"]
    assert len(conflicts) == 1 and conflicts[0].policy == policy  # nothing dropped silently
    assert conflicts[0].local["model"] == "local" and conflicts[0].remote["model"] == "remote"
    if policy == "merge":  # the same field changed on both sides stays open and is not pushed
        assert conflicts[0].status == "open" and conflicts[0].fields == ["model"]
        assert item[env.uf("car", "vin")] == "LOCALVIN" and item[env.uf("car", "model")] == "remote"
    else:
        assert conflicts[0].status == "resolved"
        assert item[env.uf("car", "model")] == model


class SkewedClock:
    """A portal clock that ticks in real time but is `skew` seconds off the local clock."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def now(self) -> float:
        return time.time() + self.skew

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@pytest.mark.parametrize(
    ("skew_hours", "later", "winner"),
    [(3, "local", "local"), (-3, "remote", "remote")],
)
def test_newest_wins_compares_on_the_portal_clock(
    tmp_path: Path, skew_hours: int, later: str, winner: str
) -> None:
    """The portal clock is hours off: without the offset estimate the wrong side would win."""
    emu = Emulator(limits="off", clock=SkewedClock(skew_hours * 3600))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        url = emu.register(rsps)
        etids = setup_processes(emu, [BY_CODE["car"]])
        type_id = next(t["id"] for t in emu.call("crm.type.list", {})["result"]["types"])
        model = f"UF_CRM_{type_id}_MODEL"
        item_id = emu.call(
            "crm.item.add",
            {
                "entityTypeId": etids["car"],
                "fields": {"title": "car", model: "base"},
                "useOriginalUfNames": "Y",
            },
        )["result"]["item"]["id"]
        db = tmp_path / "skew.db"
        with Store.open(db) as store:
            sync(Client.from_webhook(url), store, [BY_CODE["car"]], portal_key="emu")

            def remote() -> None:
                emu.call(
                    "crm.item.update",
                    {
                        "entityTypeId": etids["car"],
                        "id": item_id,
                        "fields": {model: "remote"},
                        "useOriginalUfNames": "Y",
                    },
                )

            def local() -> None:
                local_exec(db, "UPDATE car SET model = 'local' WHERE id = ?", (item_id,))

            first, second = (remote, local) if later == "local" else (local, remote)
            first()
            time.sleep(2.5)  # both clocks tick; times and the offset estimate are good to ~1 s each
            second()
            report = sync(
                Client.from_webhook(url), store, [BY_CODE["car"]], portal_key="emu", policy="newest-wins"
            )
            [conflict] = store.list_conflicts("car", None)
        assert report.total("conflicts") == 1 and conflict.resolution == winner
        [row] = local_rows(db, "car")
        [item] = portal_items(emu, etids["car"])
        assert row["model"] == winner and item[model] == winner


def test_manual_conflict_is_recorded_then_resolved(env: Env) -> None:
    row, item = _conflict(env, "manual", remote_later=False)
    assert row["model"] == "local" and item[env.uf("car", "model")] == "remote"  # nobody wins yet
    [c] = env.store.list_conflicts("car")
    assert c.fields == ["model"]  # only the clashing field waits; plate and vin already flowed
    assert row["plate"] == "B111BB" and item[env.uf("car", "vin")] == "LOCALVIN"
    env.sync(policy="manual")  # still open: neither side's model is overwritten
    assert env.items("car")[0][env.uf("car", "model")] == "remote"
    resolve_conflict(env.store, c.id, "merged")
    report = env.sync(policy="manual")
    assert report.failures == []
    [item] = env.items("car")
    [row] = env.rows("car")
    assert item[env.uf("car", "model")] == "local" and item[env.uf("car", "vin")] == "LOCALVIN"
    assert item[env.uf("car", "plate")] == "B111BB" and row["plate"] == "B111BB"
    assert env.store.list_conflicts("car") == []


def test_create_whose_response_is_lost_is_not_duplicated(env: Env) -> None:
    env.sync()
    key = local_insert(env.db, "car", {"title": "Kia Rio", "vin": "VIN1"})
    before = len(env.emu.request_log)
    # request 1 of the next run is the pull; request 2 is the batch with the create
    report = env.sync(session=DropResponse(2))
    assert report.failures == []
    adds = [i for i in env.items("car") if i.get("xmlId") == key]
    assert len(adds) == 1
    [row] = env.rows("car")
    assert row["id"] == adds[0]["id"]
    assert len(env.emu.request_log) > before


def test_failing_row_keeps_its_error_and_does_not_block_others(env: Env) -> None:
    env.sync()
    bad = local_insert(env.db, "candidate", {"title": "bad", "stage": "NO_SUCH"})
    good = local_insert(env.db, "candidate", {"title": "good"})
    report = env.sync()
    assert [f.key for f in report.failures] == [bad]
    assert "unknown stage 'NO_SUCH'" in report.failures[0].error
    assert [i["xmlId"] for i in env.items("candidate")] == [good]
    [failed] = env.store.failed_changes("candidate")
    assert failed.key == bad and "NO_SUCH" in (failed.error or "")


def test_funnel_and_stage_updates_by_sql_are_pushed_and_kept_in_stage_history(env: Env) -> None:
    item_id = env.add_remote("candidate", {"title": "Анна"})
    env.sync()
    cats = env.emu.call("crm.category.list", {"entityTypeId": env.etids["candidate"]})["result"]["categories"]
    reserve = next(int(c["id"]) for c in cats if c.get("isDefault") not in ("Y", True))
    local_exec(env.db, "UPDATE candidate SET funnel = 'reserve', stage = 'POOL' WHERE id = ?", (item_id,))
    report = env.sync()
    assert report.failures == [] and report.processes["candidate"].updated == 1
    [item] = [i for i in env.items("candidate") if i["id"] == item_id]
    pool = resolve_maps(env.client(), env.store, TEMPLATES, "emu")["candidate"].stages["reserve"]["POOL"]
    assert item["categoryId"] == reserve and item["stageId"] == pool  # POOL sits on the funnel's NEW
    moves = [(m.funnel, m.from_stage, m.to_stage, m.source) for m in env.store.stage_history("candidate")]
    assert moves == [("hiring", None, "NEW", "pull"), ("reserve", "NEW", "POOL", "push")]
    # a funnel change whose stage is not in the new funnel is refused with a clear error, not guessed
    local_exec(env.db, "UPDATE candidate SET funnel = 'hiring' WHERE id = ?", (item_id,))
    report = env.sync()
    [failed] = report.failures
    assert "unknown stage 'POOL' in funnel 'hiring'" in failed.error and "INTERVIEW" in failed.error
    [item] = [i for i in env.items("candidate") if i["id"] == item_id]
    assert item["categoryId"] == reserve  # the portal was not touched


def test_local_insert_with_unknown_funnel_or_stage_fails_per_row_not_silently(env: Env) -> None:
    env.sync()
    no_funnel = local_insert(env.db, "candidate", {"title": "a", "funnel": "nope", "stage": "NEW"})
    wrong_funnel = local_insert(env.db, "candidate", {"title": "b", "funnel": "hiring", "stage": "POOL"})
    no_stage = local_insert(env.db, "candidate", {"title": "c", "stage": "NOPE"})  # default funnel
    good = local_insert(env.db, "candidate", {"title": "d", "funnel": "reserve", "stage": "POOL"})
    report = env.sync()
    errors = {f.key: f.error for f in report.failures}
    assert set(errors) == {no_funnel, wrong_funnel, no_stage}
    assert "unknown funnel 'nope'; known: hiring, reserve" in errors[no_funnel]
    assert "unknown stage 'POOL' in funnel 'hiring'" in errors[wrong_funnel]
    assert "unknown stage 'NOPE' in funnel 'hiring'" in errors[no_stage]
    [item] = env.items("candidate")
    pool = resolve_maps(env.client(), env.store, TEMPLATES, "emu")["candidate"].stages["reserve"]["POOL"]
    assert item["xmlId"] == good and item["stageId"] == pool
    assert {c.key for c in env.store.failed_changes("candidate")} == set(errors)


def test_sample_values_cover_every_field_type() -> None:
    types = {f.type for t in TEMPLATES for f in t.fields}
    assert set(FIELD_TYPES) <= types
    assert all(
        sample_value(f, 1) is not None for t in TEMPLATES for f in t.fields if f.type not in ("file", "money")
    )


def test_an_item_that_fails_to_translate_is_retried_by_the_next_incremental_pull(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.crm.items import ItemTranslator, TranslationError

    a, b = env.add_remote("car", {"title": "a"}), env.add_remote("car", {"title": "b"})
    env.sync()
    env.update_remote("car", a, {"title": "a2"})
    env.update_remote("car", b, {"title": "b2"})
    env.emu.clock.advance(600)  # well past the overlap window
    real = ItemTranslator.to_values  # what the pull translates with

    def broken(self: ItemTranslator, item: dict[str, Any], null: Any = None) -> list[Any]:
        if int(item["id"]) == a:
            raise TranslationError("bad value from the portal")
        return real(self, item, null)

    monkeypatch.setattr(ItemTranslator, "to_values", broken)
    report = env.sync()
    assert [(f.id, f.direction) for f in report.failures] == [(a, "pull")]
    assert report.processes["car"].pulled == 1
    monkeypatch.setattr(ItemTranslator, "to_values", real)
    env.emu.clock.advance(600)
    retry = env.sync()  # not --full: the cursor was held at the failed item
    assert retry.failures == []
    assert {r["id"]: r["title"] for r in env.rows("car")} == {a: "a2", b: "b2"}


def test_a_portal_stage_move_that_loses_a_conflict_is_still_in_the_history(env: Env) -> None:
    item_id = env.add_remote("candidate", {"title": "Олег"})
    env.sync()
    [item] = [i for i in env.items("candidate") if i["id"] == item_id]
    env.emu.clock.advance(60)
    env.update_remote("candidate", item_id, {"stageId": item["stageId"].replace("NEW", "INTERVIEW")})
    local_exec(env.db, "UPDATE candidate SET stage = 'CALL' WHERE id = ?", (item_id,))
    report = env.sync(policy="local-wins")
    assert report.total("conflicts") == 1
    [item] = [i for i in env.items("candidate") if i["id"] == item_id]
    assert item["stageId"].endswith(":CALL")
    moves = [(m.from_stage, m.to_stage, m.source) for m in env.store.stage_history("candidate")]
    assert moves == [(None, "NEW", "pull"), ("NEW", "INTERVIEW", "pull"), ("INTERVIEW", "CALL", "push")]
