"""Emulator benchmark: 100,000 items in one type; keyset vs counted pages; memory; the portal's CPU
seconds for serving a full keyset scan (issue 13).

The scan figure: a state file with N items of the shipped `car` process (seeded as bench/compare.py
seeds it), served by `b24sync emulator serve --state <copy> --limits standard` over loopback, read
once by the client's keyset scan (`Client.iter_list`, chained batches of 50 pages); the figure is the
serve process's CPU seconds (user + system, /proc) from its first request to its last answer, so
startup and the state load are not in it. `--repeat` fresh portals; the least disturbed run (lowest
CPU) is reported beside the median and the load average.

    python bench/bench_emulator.py [N] [--scan-only] [--repeat 3]

Prints figures; the last line is one JSON object. Not a test: nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connector.emulator import Emulator
from connector.emulator.server import route

ETID = 1032
N_ITEMS = 100_000  # set from the command line in __main__


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


def state_file_figures(n_items: int) -> dict[str, float]:
    """Seed + save, one write call, reload of a state file with `n_items` items (own process)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/state.db"
        t0 = time.perf_counter()
        stored = Emulator(clock="virtual", state_file=path)
        stored.call("crm.type.add", {"fields": {"title": "Bench"}})
        stored.seed_items(ETID, n_items)
        save_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for item_id in range(1, 201):
            stored.call("crm.item.update", {"entityTypeId": ETID, "id": item_id, "fields": {"title": "u"}})
        write_ms = (time.perf_counter() - t0) / 200 * 1000
        stored.close()
        del stored
        gc.collect()  # the portal holds reference cycles (hooks <-> state): free it before the reload
        t0 = time.perf_counter()
        reloaded = Emulator(clock="virtual", state_file=path)
        load_s = time.perf_counter() - t0
        assert len(reloaded.state.table(ETID)) == n_items
        reloaded.close()
    return {
        "state_file_seed_and_save_seconds": round(save_s, 2),
        "state_file_write_call_ms": round(write_ms, 2),
        "state_file_load_seconds": round(load_s, 2),
        "state_file_process_peak_rss_mb": round(rss_mb(), 1),
    }


def scan_figures(n_items: int, repeat: int) -> dict[str, Any]:
    """Portal CPU seconds of serving one full keyset scan of `n_items` car items (module docstring)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import compare  # the seeding and the served portal of the side-by-side bench

    from connector.rest import Client

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "scan.db"
        t0 = time.perf_counter()
        info = compare.seed_state(state, n_items)
        seed_s = time.perf_counter() - t0
        params = {"entityTypeId": info["etid"], "select": info["select"], "useOriginalUfNames": "Y"}
        runs: list[dict[str, float]] = []
        for _ in range(repeat):
            portal = compare.Portal(state, Path(tmp))
            try:
                client = Client.from_webhook(portal.url, allow_http=True)
                load = os.getloadavg()[0]
                cpu0, t0 = portal.cpu_seconds(), time.perf_counter()
                rows = sum(1 for _ in client.iter_list("crm.item.list", params))
                cpu = portal.cpu_seconds() - cpu0
                runs.append({"cpu_s": round(cpu, 2), "wall_s": round(time.perf_counter() - t0, 2),
                             "load_average_1m": round(max(load, os.getloadavg()[0]), 2)})
                if rows != n_items:
                    raise RuntimeError(f"the scan read {rows} items, not {n_items}")
            finally:
                portal.stop()
    best = min(runs, key=lambda r: r["cpu_s"])
    return {
        "scan_items": n_items,
        "scan_state_seed_seconds": round(seed_s, 1),
        "scan_portal_cpu_seconds": best["cpu_s"],
        "scan_portal_cpu_us_per_item": round(best["cpu_s"] / max(1, n_items) * 1e6, 1),
        "scan_portal_cpu_seconds_median": round(statistics.median(r["cpu_s"] for r in runs), 2),
        "scan_load_average_1m": best["load_average_1m"],
        "scan_runs": runs,
    }


def main(scan_only: bool, repeat: int) -> None:
    if scan_only:
        result = scan_figures(N_ITEMS, repeat)
        for key, value in result.items():
            print(f"{key:32} {value}")
        print(json.dumps(result))
        return
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
    import requests

    from connector.emulator import serve

    server = serve(emu)
    try:
        with requests.Session() as http:
            socket_url = server.webhook_url + "crm.item.list"
            socket_ms = timed(lambda: http.post(socket_url, json=keyset, timeout=10).raise_for_status())
    finally:
        server.stop()
    # deletes from the low end: the worst case for a sorted id list that shifts on every delete
    n_delete = min(10_000, N_ITEMS // 2)
    t0 = time.perf_counter()
    for item_id in range(1, n_delete + 1):
        emu.call("crm.item.delete", {"entityTypeId": ETID, "id": item_id})
    delete_us = (time.perf_counter() - t0) / max(1, n_delete) * 1e6
    first = {**keyset, "filter": {">id": 0}}
    keyset_after_deletes_ms = timed(lambda: emu.call("crm.item.list", first))
    assert emu.call("crm.item.list", first)["result"]["items"][0]["id"] == n_delete + 1
    peak_one_portal = rss_mb()
    # the state-file figures come from a fresh process, so each peak RSS is one portal's
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        stored = pool.apply(state_file_figures, (N_ITEMS,))
    result = {
        "items": N_ITEMS,
        "seed_seconds": round(seed_s, 2),
        "keyset_page_ms": round(keyset_ms, 3),
        "keyset_page_mid_ms": round(keyset_mid_ms, 3),
        "keyset_page_via_http_route_ms": round(http_ms, 3),
        "keyset_page_via_loopback_socket_ms": round(socket_ms, 3),
        "keyset_page_after_deletes_ms": round(keyset_after_deletes_ms, 3),
        "item_delete_us_per_call": round(delete_us, 1),
        "batch_50_keyset_pages_ms": round(batch_ms, 2),
        "counted_offset_page_ms": round(counted_ms, 2),
        "unindexed_filter_scan_ms": round(filtered_ms, 2),
        "simulated_list_seconds_total": cost["seconds"],
        **stored,
        "peak_rss_mb_one_portal": round(peak_one_portal, 1),
        **scan_figures(N_ITEMS, repeat),
    }
    for key, value in result.items():
        print(f"{key:32} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Emulator benchmark (figures, last line one JSON object).")
    parser.add_argument("items", nargs="?", type=int, default=100_000, help="items in the type (100000)")
    parser.add_argument("--scan-only", action="store_true", help="only the served keyset scan's CPU")
    parser.add_argument("--repeat", type=int, default=3, help="fresh portals for the scan figure (3)")
    args = parser.parse_args()
    N_ITEMS = args.items
    main(args.scan_only, max(1, args.repeat))
