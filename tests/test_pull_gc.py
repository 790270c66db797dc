"""A pull's scan runs without the cyclic garbage collector, and gives it back as it found it.

Decoded items and the value lists made from them hold no reference cycles, so the cyclic collector
would only rescan them (connector/sync/pull.py, `_no_cyclic_gc`); reference counting still frees
them. Whatever happens, the collector's state after the pull is the state before it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_lab import Lab, lab_env

from connector.sync import fetch


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with lab_env(tmp_path) as env:
        yield env


@pytest.fixture
def collector_seen(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """gc.isenabled() as seen by the pull at each chunk it takes from the fetch thread."""
    seen: list[bool] = []
    original = fetch.ItemStream.__iter__

    def watched(self: fetch.ItemStream) -> Iterator[fetch.Chunk]:
        for chunk in original(self):
            seen.append(gc.isenabled())
            yield chunk

    monkeypatch.setattr(fetch.ItemStream, "__iter__", watched)
    return seen


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
