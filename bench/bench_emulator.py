"""Emulator benchmark: 100,000 items in one type; keyset vs counted pages; memory.

Prints figures; the last line is one JSON object. Not a test: nothing here asserts timings.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from connector.emulator import Emulator
from connector.emulator.server import route

N_ITEMS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
ETID = 1032


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any], repeat: int = 50) -> float:
    """Median milliseconds of `fn` over `repeat` runs."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    emu = Emulator(clock="virtual")
    tid = emu.call("crm.type.add", {"fields": {"title": "Bench", "isClientEnabled": "Y"}})["result"]["type"][
        "id"
    ]
    emu.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {"entityId": f"CRM_{tid}", "fieldName": f"UF_CRM_{tid}_AMOUNT", "userTypeId": "integer"},
        },
    )
    t0 = time.perf_counter()
    emu.seed_items(ETID, N_ITEMS, fields={"ufCrm3Amount": lambda i: i % 1000, "xmlId": lambda i: f"k{i}"})
    seed_s = time.perf_counter() - t0
    last = N_ITEMS - 100
    keyset = {"entityTypeId": ETID, "start": -1, "order": {"id": "ASC"}, "filter": {">id": last - 50}}
    keyset_ms = timed(lambda: emu.call("crm.item.list", keyset))
    mid = {**keyset, "filter": {">id": N_ITEMS // 2}}
    keyset_mid_ms = timed(lambda: emu.call("crm.item.list", mid))
    body = json.dumps(keyset).encode()
    http_ms = timed(
        lambda: route(
            emu,
            "POST",
            f"/rest/1/{emu.webhook_code}/crm.item.list",
            "",
            body,
            "application/json",
            "https://x",
        )
    )
    batch = {
        "cmd": {
            f"p{i}": f"crm.item.list?entityTypeId={ETID}&start=-1&order[id]=ASC"
            f"&filter[>id]={i * 50}&select[]=id"
            for i in range(50)
        }
    }
    batch_ms = timed(lambda: emu.call("batch", batch), repeat=10)
    counted_ms = timed(lambda: emu.call("crm.item.list", {"entityTypeId": ETID, "start": 50_000}), repeat=5)
    filtered_ms = timed(
        lambda: emu.call(
            "crm.item.list", {"entityTypeId": ETID, "start": -1, "filter": {"xmlId": f"k{N_ITEMS - 1}"}}
        ),
        repeat=5,
    )
    cost = emu.cost_by_method()["crm.item.list"]
    peak_one_portal = rss_mb()  # before the state-file part, which holds more portals at once
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/state.db"
        t0 = time.perf_counter()
        stored = Emulator(clock="virtual", state_file=path)
        stored.call("crm.type.add", {"fields": {"title": "Bench"}})
        stored.seed_items(ETID, N_ITEMS)
        save_s = time.perf_counter() - t0
        stored.close()
        t0 = time.perf_counter()
        reloaded = Emulator(clock="virtual", state_file=path)
        load_s = time.perf_counter() - t0
        assert len(reloaded.state.table(ETID)) == N_ITEMS
        reloaded.close()
    result = {
        "items": N_ITEMS,
        "seed_seconds": round(seed_s, 2),
        "keyset_page_ms": round(keyset_ms, 3),
        "keyset_page_mid_ms": round(keyset_mid_ms, 3),
        "keyset_page_via_http_route_ms": round(http_ms, 3),
        "batch_50_keyset_pages_ms": round(batch_ms, 2),
        "counted_offset_page_ms": round(counted_ms, 2),
        "unindexed_filter_scan_ms": round(filtered_ms, 2),
        "simulated_list_seconds_total": cost["seconds"],
        "state_file_seed_and_save_seconds": round(save_s, 2),
        "state_file_load_seconds": round(load_s, 2),
        "peak_rss_mb_one_portal": round(peak_one_portal, 1),
    }
    for key, value in result.items():
        print(f"{key:32} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
