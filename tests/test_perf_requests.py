"""HTTP requests of sync at the bound (issue 13): counts are deterministic, so they are tested here.

- first sync of N items: <= ceil(N/2500) + 1 (the cursor time comes from the first batch's `time`,
  server-behaviour.md §6: a batch answer carries the outer `time`; no separate head page);
- incremental sync, 100 portal + 100 local edits: <= 3 (one read, two write batches of 50,
  server-behaviour.md §6: BATCH_MAX_LENGTH = 50);
- idle `sync --full`: <= ceil(N/2500) + 2 (the full pull's ids serve the deletion reconcile);
- a push of u updates: <= ceil(u/50) + 1.
Map discovery (3 requests, none for a store deployed by `b24sync apply`) is counted apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from test_sync_support import MAPPINGS, local_exec, local_rows, setup_processes

from connector.emulator import Emulator
from connector.rest import Client
from connector.store import Store
from connector.sync import engine, sync
from connector.templates import load_templates

TEMPLATES = load_templates([str(MAPPINGS / "car_service.toml")])


class Portal:
    """The car process on the emulator, a store, and request counting that sets map discovery apart."""

    def __init__(self, emu: Emulator, url: str, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.emu, self.db = emu, db
        self.etid = setup_processes(emu, TEMPLATES)["car"]
        self.client = Client.from_webhook(url)
        self.store = Store.open(db)
        self.map_requests = 0
        real = engine.resolve_maps

        def counted(*args: Any, **kwargs: Any) -> Any:
            before = self.client.stats.requests
            try:
                return real(*args, **kwargs)
            finally:
                self.map_requests += self.client.stats.requests - before

        monkeypatch.setattr(engine, "resolve_maps", counted)

    def seed(self, n: int) -> list[int]:
        ids = self.emu.seed_items(self.etid, n, fields={"TITLE": lambda i: f"car {i}"})
        self.emu.clock.advance(3600)
        return ids

    def sync(self, **kw: Any) -> tuple[Any, int]:
        """One sync: its report and its HTTP requests without map discovery."""
        before, maps = self.client.stats.requests, self.map_requests
        report = sync(self.client, self.store, TEMPLATES, portal_key="perf", **kw)
        return report, self.client.stats.requests - before - (self.map_requests - maps)

    def edit_portal(self, ids: list[int]) -> None:
        for item_id in ids:
            self.emu.call("crm.item.update", {"entityTypeId": self.etid, "id": item_id,
                                              "fields": {"title": f"portal {item_id}"}})


@pytest.fixture()
def portal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Portal]:
    emu = Emulator(limits="off", clock="virtual")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        p = Portal(emu, emu.register(rsps), tmp_path / "perf.db", monkeypatch)
        yield p
        p.store.close()


@pytest.mark.parametrize("n", [0, 49, 2500, 2550, 5049])
def test_first_sync_reads_n_items_within_ceil_n_over_2500_plus_one(portal: Portal, n: int) -> None:
    portal.seed(n)
    report, requests = portal.sync()
    assert report.pulled == n and report.failures == []
    assert requests <= math.ceil(n / 2500) + 1
    assert requests == n // 2500 + 1  # chained batches from the first request on
    assert portal.store.cursor_get("perf", "car")  # the first batch's server time


def test_incremental_sync_of_100_portal_and_100_local_edits_is_three_requests(portal: Portal) -> None:
    ids = portal.seed(3000)
    portal.sync()
    portal.emu.clock.advance(3600)
    portal.edit_portal(ids[:100])
    local_exec(portal.db, "UPDATE car SET title = 'local ' || id WHERE id > 2900")
    report, requests = portal.sync()
    figures = report.processes["car"]
    assert report.failures == [] and figures.updated == 100 and figures.pulled == 100
    assert requests <= 3  # one read, two write batches of 50


def test_a_push_of_updates_is_one_read_and_one_request_per_50(portal: Portal) -> None:
    portal.seed(400)
    portal.sync()
    portal.emu.clock.advance(3600)
    local_exec(portal.db, "UPDATE car SET title = 'pushed ' || id WHERE id <= 120")
    report, requests = portal.sync()
    assert report.processes["car"].updated == 120
    assert requests <= math.ceil(120 / 50) + 1


def test_idle_full_sync_reuses_the_pulled_ids_and_still_finds_deletions(portal: Portal) -> None:
    ids = portal.seed(5000)
    portal.sync()
    portal.emu.clock.advance(3600)
    report, requests = portal.sync(full=True)
    assert report.processes["car"].tombstoned == 0
    assert requests <= math.ceil(5000 / 2500) + 2
    # a webhook has no offline queue: portal deletions are found by the full pull's id set
    for item_id in (ids[0], ids[2600]):
        portal.emu.call("crm.item.delete", {"entityTypeId": portal.etid, "id": item_id})
    report, requests = portal.sync(full=True)
    assert report.processes["car"].tombstoned == 2
    assert requests <= math.ceil(4998 / 2500) + 2
    gone = {r["id"] for r in local_rows(portal.db, "car", "deleted = 1")}
    assert gone == {ids[0], ids[2600]}


def test_map_discovery_is_counted_apart_and_only_when_maps_are_not_cached(portal: Portal) -> None:
    portal.seed(10)
    portal.sync()
    assert portal.map_requests == 3  # types, fields, stages: read once and cached
    portal.sync()
    assert portal.map_requests == 3


def test_a_pull_that_fails_midway_keeps_the_old_cursor_and_the_chunks_it_committed(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch thread's error reaches the sync; whole chunks already written stay, the cursor does
    not move (it advances only with the last chunk), and the next sync completes the pull."""
    from connector.rest.errors import TransportError
    from connector.sync import pull

    monkeypatch.setattr(pull, "CHUNK", 1000)
    portal.seed(6000)
    real_batch = portal.client.batch
    calls = {"n": 0}

    def failing(commands: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += any(method == "crm.item.list" for method, _ in commands.values())
        if calls["n"] == 2:  # items 2,501..: chunks 1-1,000 and 1,001-2,000 are written by then
            raise TransportError("HTTP_502", "bad gateway", 502, "batch")
        return real_batch(commands, *args, **kwargs)

    monkeypatch.setattr(portal.client, "batch", failing)
    with pytest.raises(TransportError, match="bad gateway"):
        portal.sync()
    assert portal.store.cursor_get("perf", "car") is None
    assert len(local_rows(portal.db, "car")) == 2000
    monkeypatch.setattr(portal.client, "batch", real_batch)
    report, _ = portal.sync()
    assert report.pulled == 4000 and report.failures == []
    assert len(local_rows(portal.db, "car")) == 6000
    assert portal.store.cursor_get("perf", "car")
