"""What a pull's scan changes while it runs, and gives back as it found it.

- The cyclic garbage collector is paused: decoded items and the value lists made from them hold no
  reference cycles, so it would only rescan them (connector/sync/pull.py, `_no_cyclic_gc`);
  reference counting still frees them.
- WAL checkpoints leave the writer (`Store.deferred_checkpoints`): none on the committing thread (an
  automatic one every 4 MB syncs two files to disk there), a thread with its own connection copies
  committed frames meanwhile, and one last checkpoint at the end copies the rest.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from sync_lab import Lab, lab_env

from connector.store import Store
from connector.sync import fetch

T = TypeVar("T")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with lab_env(tmp_path) as env:
        yield env


def watch_chunks(monkeypatch: pytest.MonkeyPatch, probe: Callable[[], T]) -> list[T]:
    """`probe()` as seen by the pull at each chunk it takes from the fetch thread."""
    seen: list[T] = []
    original = fetch.ItemStream.__iter__

    def watched(self: fetch.ItemStream) -> Iterator[fetch.Chunk]:
        for chunk in original(self):
            seen.append(probe())
            yield chunk

    monkeypatch.setattr(fetch.ItemStream, "__iter__", watched)
    return seen


@pytest.fixture
def collector_seen(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """gc.isenabled() as seen by the pull at each chunk."""
    return watch_chunks(monkeypatch, gc.isenabled)


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_scan_runs_without_the_collector_and_restores_it(
    lab: Lab, collector_seen: list[bool], enabled_before: bool
) -> None:
    for n in range(3):
        lab.add_remote({"title": f"item {n}"})
    (gc.enable if enabled_before else gc.disable)()
    try:
        report = lab.sync()
        assert gc.isenabled() is enabled_before
    finally:
        gc.enable()
    assert report.pulled == 3
    assert collector_seen and not any(collector_seen)


def test_a_failing_scan_still_gives_the_collector_back(
    lab: Lab, collector_seen: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.add_remote({"title": "item"})

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the writer failed")

    monkeypatch.setattr("connector.sync.pull.Puller._apply_chunk", broken)
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="the writer failed"):
        lab.sync()
    assert gc.isenabled()
    assert collector_seen == [False]


def test_checkpoints_wait_for_the_end_of_the_scan_and_then_catch_up(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        lab.add_remote({"title": f"item {n}"})
    def autocheckpoint() -> int:
        return int(lab.store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    seen = watch_chunks(monkeypatch, autocheckpoint)
    before = autocheckpoint()
    lab.sync()
    assert seen and set(seen) == {0}
    assert autocheckpoint() == before == 1000
    busy, frames, copied = lab.store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and frames == copied  # nothing left behind in the WAL


def test_deferred_checkpoints_restore_the_setting_after_an_error(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.conn.execute("PRAGMA wal_autocheckpoint = 77")
        with pytest.raises(RuntimeError), store.deferred_checkpoints():
            assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
            raise RuntimeError("boom")
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 77


def _checkpointers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "checkpoint"]


def test_committed_pages_reach_the_store_file_while_the_block_runs(tmp_path: Path) -> None:
    """With automatic checkpoints off, only the background copier can grow the main file mid-block."""
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        store.conn.execute("CREATE TABLE filler (x TEXT)")
        with store.deferred_checkpoints(every=0.02):
            assert _checkpointers()
            start = os.path.getsize(path)
            with store.transaction() as conn:
                conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 1000,)] * 2000)  # ~2 MB
            deadline = time.monotonic() + 5
            while os.path.getsize(path) < start + 1_000_000 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert os.path.getsize(path) > start + 1_000_000
        assert not _checkpointers()
        busy, frames, copied = store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and frames == copied


def test_the_copier_stops_with_the_block_after_an_error_and_is_not_started_in_memory(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store, pytest.raises(RuntimeError), store.deferred_checkpoints():
        assert _checkpointers()
        raise RuntimeError("boom")
    assert not _checkpointers()
    with Store.open(":memory:") as store, store.deferred_checkpoints():
        assert not _checkpointers()
