"""Model-based test of sync (issue 10): two replicas (store files) of one portal against an oracle.

Hypothesis drives random interleavings of local SQL edits (insert, update of one field, delete, stage
moves), portal edits (add, update, delete; a schema edit: a stage added by hand and items moved
there), edits injected *inside* a sync through the transport seam (a local edit after the pull's
HTTP read; a local edit and a portal edit of another field while a push batch is on its way), two
syncs of one store at once (threads), and faults
(5xx and 503 answers, dropped responses, a kill after any request). The oracle is the contract, not
the code: per field three-way merge against the base; a field changed on one side flows; a clash goes
to the policy; deletes against edits settled by the policy. After the faults stop and two clean syncs
of each replica, every field of every item equals the oracle on the portal and in both stores, with no
duplicate on either side.

Timing the oracle cannot know is kept out of the model: a portal edit of the same field between the
push's pre-read and its write is not generated (Bitrix24 has no conditional update; see docs/guide.md).

Profiles: CI (CI=true) runs SYNC_MODEL_EXAMPLES (default 300) derandomized examples; the long profile
is `SYNC_MODEL_EXAMPLES=5000 pytest tests/test_sync_model.py`. The number run is printed.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)
from sync_lab import LAB
from test_sync_support import portal_items, setup_processes

from connector.emulator import Emulator
from connector.rest import Client
from connector.store import Store
from connector.sync import sync

EXAMPLES = int(os.environ.get("SYNC_MODEL_EXAMPLES", "300"))
FIELDS = ("note", "big", "tags", "stage")
STAGES = ("NEW", "WORK", "CHECK")
REPLICAS = ("a", "b")
RAN = {"examples": 0, "steps": 0, "syncs": 0, "sync_once": 0, "injected": 0, "faults": 0}

texts = st.text(alphabet="abyж 7\n\t\"'\\%&?=[]{}", min_size=1, max_size=8)
values = {
    "note": texts,
    "big": st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-5, 5)),
    "tags": st.lists(texts, min_size=1, max_size=2),
    "stage": st.sampled_from(STAGES),
}
field_values = st.sampled_from(FIELDS).flatmap(lambda f: st.tuples(st.just(f), values[f]))


class Killed(BaseException):
    """A kill -9 after a request reached the portal (nothing catches a BaseException)."""


class Transport(requests.Session):
    """The transport seam: faults after the k-th request, and edits injected at named moments."""

    def __init__(self, kill_after: int | None = None, drop_at: int | None = None) -> None:
        super().__init__()
        self.kill_after, self.drop_at, self.n = kill_after, drop_at, 0
        self.after_list: Any = None  # called once after the first crm.item.list answer
        self.before_update: Any = None  # called once, with the portal id, before a batch with an update

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        body = urllib.parse.unquote(urllib.parse.unquote(_text(request.body)))
        if self.before_update is not None and "crm.item.update" in body:
            m = re.search(r"crm\.item\.update\?entityTypeId=\d+&id=(\d+)", body)
            hook, self.before_update = self.before_update, None
            if m:
                hook(int(m.group(1)))
        resp = super().send(request, **kwargs)
        self.n += 1
        if self.after_list is not None and "crm.item.list" in url:
            hook, self.after_list = self.after_list, None
            hook()
        if self.kill_after is not None and self.n >= self.kill_after:
            raise Killed(f"killed after request {self.n}")
        if self.drop_at is not None and self.n == self.drop_at:
            raise requests.ConnectionError("the connection broke after the request was sent")
        return resp


def _text(body: Any) -> str:
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")


def _norm(field: str, value: Any) -> Any:
    """A stored or portal value in the oracle's form."""
    if field == "tags":
        if value in (None, "", "[]"):
            return None
        items = json.loads(value) if isinstance(value, str) else value
        return [str(v) for v in items] or None
    if field == "big":
        return None if value in (None, "") else int(value)
    if field == "stage":
        return None if not value else str(value).rpartition(":")[2]
    return value or None


class Item:
    """One item in the oracle: its portal values and each replica's row and base."""

    def __init__(self, key: str | None) -> None:
        self.key = key  # the creating replica's key (it becomes the xmlId and the other replica's key)
        self.pid: int | None = None
        self.portal: dict[str, Any] | None = None
        self.local: dict[str, dict[str, Any] | None] = {r: None for r in REPLICAS}
        self.base: dict[str, dict[str, Any] | None] = {r: None for r in REPLICAS}
        self.tomb: dict[str, bool] = {r: False for r in REPLICAS}

    def __repr__(self) -> str:
        return f"Item(key={self.key}, pid={self.pid})"


def merge_field(policy: str, base: Any, local: Any, remote: Any) -> Any:
    if local == base:
        return remote
    if remote in (base, local):
        return local
    return remote if policy == "remote-wins" else local


class SyncModel(RuleBasedStateMachine):
    items = Bundle("items")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.emu = Emulator(limits="off", clock="virtual")
        self.rsps = responses.RequestsMock(assert_all_requests_are_fired=False)
        self.rsps.start()
        self.url = self.emu.register(self.rsps)
        self.etid = setup_processes(self.emu, [LAB])["lab"]
        type_id = next(t["id"] for t in self.emu.call("crm.type.list", {})["result"]["types"])
        self.uf = {f: f"UF_CRM_{type_id}_{f.upper()}" for f in ("note", "big", "tags")}
        self.db = {r: Path(self.tmp.name) / f"{r}.db" for r in REPLICAS}
        self.stores = {r: Store.open(self.db[r]) for r in REPLICAS}
        self.all: list[Item] = []
        self.policy = "remote-wins"
        self.stage_ids: dict[str, str] = {}
        RAN["examples"] += 1

    @initialize(target=items, policy=st.sampled_from(["remote-wins", "local-wins"]), fv=field_values)
    def start(self, policy: str, fv: tuple[str, Any]) -> Any:
        """Every example starts with two items both replicas know: one from the portal, one from `a`."""
        self.policy = policy
        self._sync("a")
        self.stage_ids = dict(self._pmap().stages["main"])
        first = self.portal_add([fv])
        second = self.local_insert("a", [fv])
        for r in REPLICAS:
            self._sync(r)
            self._oracle_sync(r, False)
        return multiple(first, second)

    def teardown(self) -> None:
        try:
            for r in REPLICAS:
                self.stores[r].close()
        finally:
            self.rsps.stop()
            self.rsps.reset()
            self.tmp.cleanup()

    # ---- helpers ----
    def _pmap(self) -> Any:
        from connector.sync.engine import resolve_maps

        return resolve_maps(self._client(), self.stores["a"], [LAB], "emu")["lab"]

    def _client(self, session: requests.Session | None = None) -> Client:
        return Client.from_webhook(self.url, session=session, sleep=lambda s: None)

    def _sync(self, r: str, session: requests.Session | None = None, full: bool = False) -> Any:
        RAN["syncs"] += 1
        return sync(
            self._client(session), self.stores[r], [LAB], portal_key="emu", policy=self.policy, full=full
        )

    def _local(self, r: str, sql: str, args: tuple[Any, ...]) -> None:
        conn = sqlite3.connect(self.db[r], timeout=30)
        try:
            conn.execute(sql, args)
            conn.commit()
        finally:
            conn.close()

    def _rows(self, r: str) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.db[r])
        conn.row_factory = sqlite3.Row
        try:
            return [dict(x) for x in conn.execute("SELECT * FROM lab")]
        finally:
            conn.close()

    def _where(self, item: Item, r: str) -> tuple[str, Any]:
        if item.pid is not None and item.base[r] is not None:
            return "id = ?", item.pid
        return "key = ?", item.key

    def _column_value(self, field: str, value: Any) -> Any:
        return json.dumps(value, ensure_ascii=False) if field == "tags" else value

    def _portal_value(self, field: str, value: Any) -> Any:
        return self.stage_ids[value] if field == "stage" else value

    def _portal_field(self, field: str) -> str:
        return "stageId" if field == "stage" else self.uf[field]

    # ---- local edits (plain SQLite, like any user tool) ----
    @rule(target=items, r=st.sampled_from(REPLICAS), fv=st.lists(field_values, max_size=3))
    def local_insert(self, r: str, fv: list[tuple[str, Any]]) -> Item:
        values = {"title": "t", **dict(fv)}
        cols = {k: self._column_value(k, v) for k, v in values.items()}
        conn = sqlite3.connect(self.db[r], timeout=30)
        try:
            conn.execute(
                f"INSERT INTO lab ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                list(cols.values()),
            )
            conn.commit()
            key = conn.execute("SELECT key FROM lab WHERE rowid = last_insert_rowid()").fetchone()[0]
        finally:
            conn.close()
        item = Item(key)
        item.local[r] = {f: _norm(f, values.get(f)) for f in FIELDS}
        item.local[r]["stage"] = item.local[r]["stage"] or "NEW"
        self.all.append(item)
        return item

    def _editable(self, item: Item, r: str) -> bool:
        return item.local[r] is not None and not item.tomb[r]

    @rule(item=items, r=st.sampled_from(REPLICAS), fv=field_values, delete=st.booleans())
    def local_edit(self, item: Item, r: str, fv: tuple[str, Any], delete: bool) -> None:
        """An UPDATE of one field (or a DELETE) through a plain SQLite client."""
        if item.tomb[r]:  # the store refuses it, with a clear message
            with pytest.raises(sqlite3.IntegrityError, match="tombstone"):
                self._local(r, "UPDATE lab SET note = 'x' WHERE id = ?", (item.pid,))
        if not self._editable(item, r):
            return
        if delete:
            where, arg = self._where(item, r)
            self._local(r, f"DELETE FROM lab WHERE {where}", (arg,))
            item.local[r] = None
        else:
            self._edit_local(item, r, fv)

    def _edit_local(self, item: Item, r: str, fv: tuple[str, Any]) -> None:
        field, value = fv
        where, arg = self._where(item, r)
        self._local(r, f"UPDATE lab SET {field} = ? WHERE {where}", (self._column_value(field, value), arg))
        assert item.local[r] is not None
        item.local[r][field] = _norm(field, value)

    # ---- portal edits ----
    @rule(target=items, fv=st.lists(field_values, max_size=3))
    def portal_add(self, fv: list[tuple[str, Any]]) -> Item:
        values = dict(fv)
        fields = {self._portal_field(f): self._portal_value(f, v) for f, v in values.items()}
        res = self.emu.call(
            "crm.item.add",
            {"entityTypeId": self.etid, "fields": {"title": "p", **fields}, "useOriginalUfNames": "Y"},
        )
        item = Item(None)
        item.pid = int(res["result"]["item"]["id"])
        item.portal = {f: _norm(f, values.get(f)) for f in FIELDS}
        item.portal["stage"] = item.portal["stage"] or "NEW"
        self.all.append(item)
        return item

    @rule(item=items, fv=field_values, delete=st.booleans())
    def portal_edit(self, item: Item, fv: tuple[str, Any], delete: bool) -> None:
        """An edit of one field (or a delete) on the portal by someone else."""
        if item.portal is None:
            return
        if delete:
            self.emu.call("crm.item.delete", {"entityTypeId": self.etid, "id": item.pid})
            item.portal = None
        else:
            self._edit_portal(item, fv)

    def _edit_portal(self, item: Item, fv: tuple[str, Any]) -> None:
        field, value = fv
        self.emu.clock.advance(1)
        res = self.emu.call(
            "crm.item.update",
            {
                "entityTypeId": self.etid,
                "id": item.pid,
                "fields": {self._portal_field(field): self._portal_value(field, value)},
                "useOriginalUfNames": "Y",
            },
        )
        assert "error" not in res, res
        assert item.portal is not None
        item.portal[field] = _norm(field, value)

    @rule(item=items)
    def portal_moves_it_to_a_stage_added_by_hand(self, item: Item) -> None:
        """A schema edit on the portal: a stage the template does not have, and an item moved there.
        The store keeps the stage code; it flows like any value (and is never sent back unless moved)."""
        if item.portal is None:
            return
        if "EXTRA" not in self.stage_ids:
            cat = self._pmap().funnels["main"]
            res = self.emu.call(
                "crm.status.add",
                {
                    "fields": {
                        "ENTITY_ID": f"DYNAMIC_{self.etid}_STAGE_{cat}",
                        "STATUS_ID": "EXTRA",
                        "NAME": "x",
                    }
                },
            )
            assert "error" not in res, res
            self.stage_ids["EXTRA"] = f"DT{self.etid}_{cat}:EXTRA"
        self._edit_portal(item, ("stage", "EXTRA"))

    # ---- syncs ----
    @rule(
        r=st.sampled_from(REPLICAS),
        full=st.booleans(),
        inject=st.sampled_from(["none", "pull", "push"]),
        pick=st.integers(0, 50),
        fv=field_values,
        other=field_values,
        fault=st.sampled_from(["none", "none", "kill", "drop", "500", "503"]),
        at=st.integers(1, 6),
    )
    def sync_once(
        self,
        r: str,
        full: bool,
        inject: str,
        pick: int,
        fv: tuple[str, Any],
        other: tuple[str, Any],
        fault: str,
        at: int,
    ) -> None:
        """One sync (or, with a `fault`, a faulted run and a clean one). With `pull`, a local edit lands
        after the pull's HTTP read and before its write (the merge must include it). With `push`, while
        an update batch travels: a local edit of that row (kept, pushed by the next run) and a portal
        edit of a field nobody changed (it flows down)."""
        RAN["sync_once"] += 1
        if fault != "none":
            self._sync_with_a_fault(r, at, fault)
            return
        t = Transport()
        late: list[tuple[Item, tuple[str, Any]]] = []
        if inject == "pull":
            editable = [i for i in self.all if self._editable(i, r)]
            if editable:
                item = editable[pick % len(editable)]
                t.after_list = lambda: self._edit_local(item, r, fv)
                RAN["injected"] += 1
        elif inject == "push":
            t.before_update = lambda pid: self._during_push(r, pid, fv, other, late)
        report = self._sync(r, session=t, full=full)
        self._oracle_sync(r, full)  # an injected portal edit counts as made before the sync (it flows)
        for item, (field, value) in late:  # made after the sync: the next one pushes it
            assert item.local[r] is not None
            item.local[r][field] = _norm(field, value)
        self._check_report(report)

    def _during_push(
        self, r: str, pid: int, fv: tuple[str, Any], other: tuple[str, Any], late: list[tuple[Item, Any]]
    ) -> None:
        [item] = [i for i in self.all if i.pid == pid]
        base, local = item.base[r], item.local[r]
        if local is not None and base is not None and item.portal is not None:
            clean = [f for f in FIELDS if local[f] == base[f] and item.portal[f] == base[f]]
            if other[0] in clean:
                self._edit_portal(item, other)
                RAN["injected"] += 1
        if self._editable(item, r):
            where, arg = self._where(item, r)
            self._local(r, f"UPDATE lab SET {fv[0]} = ? WHERE {where}", (self._column_value(*fv), arg))
            # an UPDATE to the value the row already holds changes nothing (the change log records
            # nothing): not a late edit; the portal's concurrent edit of that field flows down
            if local is None or local[fv[0]] != _norm(*fv):
                late.append((item, fv))
            RAN["injected"] += 1

    def _sync_with_a_fault(self, r: str, at: int, kind: str) -> None:
        """A run hit by a fault after request `at` (5xx/503 answers, a lost answer, a kill), then a clean
        run: together they are one sync of the oracle."""
        RAN["faults"] += 1
        t = Transport(kill_after=at if kind == "kill" else None, drop_at=at if kind == "drop" else None)
        if kind in ("500", "503"):
            self.emu.faults.inject_next(kind, None, n=at)
        try:
            self._sync(r, session=t)
        except Killed:  # the process died: its lock row stays behind, the next run takes it over
            self.stores[r].close()
            self._leave_a_dead_lock(r)
            self.stores[r] = Store.open(self.db[r])
        except Exception:  # noqa: BLE001 - a failed run (too many 5xx, a lost answer): the next one recovers
            pass
        self.emu.faults.clear()
        report = self._sync(r)
        self._oracle_sync(r, False)
        self._check_report(report)

    @rule(r=st.sampled_from(REPLICAS))
    def two_syncs_of_one_store_at_once(self, r: str) -> None:
        """Two runs on one store at the same time (cron plus a long run): the lock makes them take turns."""
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with Store.open(self.db[r]) as s:
                    sync(self._client(), s, [LAB], portal_key="emu", policy=self.policy, wait=60)
            except BaseException as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        self._oracle_sync(r, False)
        self._oracle_sync(r, False)

    def _leave_a_dead_lock(self, r: str) -> None:
        conn = sqlite3.connect(self.db[r])
        try:
            conn.execute(
                "INSERT OR REPLACE INTO _sync_lock (id, pid, host, since, beat, token) VALUES (1, ?, ?, "
                "'2026-01-01T00:00:00Z', 0, 'dead')",
                (os.getpid(), os.uname().nodename),
            )
            conn.commit()
        finally:
            conn.close()

    def _check_report(self, report: Any) -> None:
        assert report.failures == [], report.failures

    # ---- the oracle ----
    def _oracle_sync(self, r: str, full: bool) -> None:
        for item in self.all:
            local, base, portal = item.local[r], item.base[r], item.portal
            if item.tomb[r]:
                continue
            if base is None and local is None:  # never seen here
                if portal is not None:
                    item.local[r], item.base[r] = dict(portal), dict(portal)
                continue
            if base is None:  # a local insert: created
                assert local is not None
                item.portal, item.base[r] = dict(local), dict(local)
                continue
            if local is None:  # deleted here
                if portal is None or portal == base:
                    item.portal, item.base[r] = None, None
                elif self.policy == "remote-wins":
                    item.local[r], item.base[r] = dict(portal), dict(portal)
                else:
                    item.portal, item.base[r] = None, None
                continue
            if portal is None:  # deleted on the portal: seen by --full, or by pushing an edit
                if full or local != base:
                    item.tomb[r] = True
                continue
            merged = {f: merge_field(self.policy, base[f], local[f], portal[f]) for f in FIELDS}
            item.portal, item.local[r], item.base[r] = dict(merged), dict(merged), dict(merged)
        self._learn_ids()

    def _learn_ids(self) -> None:
        """Portal ids of items the model created locally (identity only: found by their xmlId)."""
        todo = [i for i in self.all if i.pid is None and i.portal is not None]
        if todo:
            by_xml = {i.get("xmlId"): i["id"] for i in portal_items(self.emu, self.etid)}
            for item in todo:
                item.pid = by_xml[item.key]

    @invariant()
    def no_duplicates_on_the_portal(self) -> None:
        RAN["steps"] += 1
        xml = [i["xmlId"] for i in portal_items(self.emu, self.etid) if i.get("xmlId")]
        assert len(xml) == len(set(xml))

    def check_converged(self) -> None:
        """After the faults stop and two clean syncs of each replica (the second one full, which is
        what finds portal deletions): the oracle on the portal and in both stores, and all agree."""
        for full in (False, True):
            for r in REPLICAS:
                self._check_report(self._sync(r, full=full))
                self._oracle_sync(r, full)
        live = {i["id"]: i for i in portal_items(self.emu, self.etid)}
        expected = {i.pid: i.portal for i in self.all if i.portal is not None}
        assert set(live) == set(expected), (sorted(live), sorted(expected))
        for pid, want in expected.items():
            got = {f: _norm(f, live[pid].get(self._portal_field(f))) for f in FIELDS}
            assert got == want, (pid, got, want)
        for r in REPLICAS:
            mine = {i.pid: i.local[r] for i in self.all if i.local[r] is not None and not i.tomb[r]}
            assert mine == expected, ("the oracle itself did not converge", r)
            rows = [x for x in self._rows(r) if not x["deleted"]]
            by_id = {x["id"]: x for x in rows}
            assert len(by_id) == len(rows) and set(by_id) == set(mine), (r, sorted(by_id), sorted(mine))
            for pid, want in mine.items():
                got = {f: _norm(f, by_id[pid][f]) for f in FIELDS}
                assert got == want, (r, pid, got, want)
            assert self.stores[r].pending_changes("lab") == []


class ConvergingModel(SyncModel):
    def teardown(self) -> None:
        try:
            self.check_converged()
        finally:
            super().teardown()


ConvergingModel.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=bool(os.environ.get("CI")),
)


def test_sync_matches_the_oracle_under_random_interleavings_and_faults() -> None:
    before = dict(RAN)
    ConvergingModel.TestCase("runTest").runTest()
    ran = {k: RAN[k] - before[k] for k in RAN}
    print(
        f"\nsync model: {ran['examples']} examples, {ran['steps']} steps, {ran['syncs']} syncs, "
        f"{ran['sync_once']} sync steps, {ran['injected']} injected edits, {ran['faults']} faulted runs"
    )
    assert ran["examples"] >= min(EXAMPLES, 300)
