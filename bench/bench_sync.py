"""Sync benchmark against the emulator (in-process, `responses`).

For N = 10,000 and 100,000 items of the shipped `car` process:
- the first full pull: wall time, peak RSS (the whole process, emulator included), and rates:
  `sqlite_rows_per_s` = items (= process-table rows) / time spent turning fetched items into rows and
  writing them (translation, row inserts, base snapshots, stage history, commits and WAL checkpoints:
  `Puller._apply`); `sqlite_total_rows_per_s` counts every SQLite row that phase wrote (process rows
  + `_base` rows + `_stage_history` rows); `sqlite_rows_per_cpu_s` is the first rate per CPU second of
  this process (fairer on a shared machine); `fetch_seconds` is the rest of the first sync (HTTP and
  the in-process emulator's own work); `end_to_end_rows_per_s` = items / wall time of the whole sync;
- an incremental sync with k = 100 items changed on the portal and k_local = 100 rows changed locally:
  HTTP requests, which must stay within ceil(k/2500) + ceil(k_local/50) + 3 whatever N is.
`--n=10000` runs one size only (repeatable). `--profile` prints the top functions (cProfile, by own
time) of the translate+write phase at N=100,000.
The last line is one JSON object.
"""

from __future__ import annotations

import cProfile
import json
import math
import os
import pstats
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import responses

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_sync_support import setup_processes  # noqa: E402

from connector.emulator import Emulator  # noqa: E402
from connector.rest import Client  # noqa: E402
from connector.store import Store  # noqa: E402
from connector.sync import pull as pullmod  # noqa: E402
from connector.sync import sync  # noqa: E402
from connector.templates import load_templates  # noqa: E402

K_REMOTE, K_LOCAL = 100, 100


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(n: int, profile: cProfile.Profile | None = None) -> dict[str, Any]:
    templates = load_templates([str(ROOT / "mappings" / "car_service.toml")])
    emu = Emulator(limits="off", clock="virtual")
    timer = {"seconds": 0.0, "cpu": 0.0}
    original = pullmod.Puller._apply

    def timed(self: Any, items: Any, cursor: Any) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        original(self, items, cursor)
        if profile is not None:
            profile.disable()
        timer["seconds"] += time.perf_counter() - t0
        timer["cpu"] += time.process_time() - c0

    pullmod.Puller._apply = timed  # type: ignore[method-assign]
    try:
        with (
            responses.RequestsMock(assert_all_requests_are_fired=False) as rsps,
            tempfile.TemporaryDirectory() as d,
        ):
            url = emu.register(rsps)
            etid = setup_processes(emu, templates)["car"]
            type_id = next(
                t["id"] for t in emu.call("crm.type.list", {})["result"]["types"] if t["entityTypeId"] == etid
            )
            uf = f"UF_CRM_{type_id}_MODEL"
            emu.seed_items(etid, n, fields={"TITLE": lambda i: f"car {i}", uf: lambda i: f"model {i}"})
            emu.clock.advance(3600)  # the items existed before this first sync started
            db = Path(d) / "bench.db"
            store = Store.open(db)
            client = Client.from_webhook(url)
            t0 = time.perf_counter()
            first = sync(client, store, templates, portal_key="bench")
            full_seconds = time.perf_counter() - t0
            assert first.pulled == n, (first.pulled, n)
            apply_seconds = timer["seconds"]
            full_rows_per_s = first.pulled / apply_seconds if apply_seconds else 0.0
            written = sum(
                store.conn.execute(sql).fetchone()[0]
                for sql in (
                    "SELECT count(*) FROM car",
                    "SELECT count(*) FROM _base WHERE tbl = 'car'",
                    "SELECT count(*) FROM _stage_history WHERE tbl = 'car'",
                )
            )
            # later: k items change on the portal, k_local rows change locally
            emu.clock.advance(3600)
            for item_id in range(1, K_REMOTE + 1):
                emu.call(
                    "crm.item.update",
                    {
                        "entityTypeId": etid,
                        "id": item_id,
                        "fields": {uf: f"remote {item_id}"},
                        "useOriginalUfNames": "Y",
                    },
                )
            conn = sqlite3.connect(db)
            conn.execute("UPDATE car SET model = 'local ' || id WHERE id > ? AND id <= ?", (n - K_LOCAL, n))
            conn.commit()
            conn.close()
            t0 = time.perf_counter()
            inc = sync(client, store, None, portal_key="bench")
            inc_seconds = time.perf_counter() - t0
            store.close()
            assert inc.failures == [] and inc.processes["car"].updated == K_LOCAL, inc.to_json()
            bound = math.ceil(K_REMOTE / 2500) + math.ceil(K_LOCAL / 50) + 3
            return {
                "n": n,
                "full_pull_seconds": round(full_seconds, 2),
                "full_pull_requests": first.requests,
                "apply_seconds": round(apply_seconds, 2),
                "fetch_seconds": round(full_seconds - apply_seconds, 2),
                "sqlite_rows_per_s": round(full_rows_per_s),
                "sqlite_total_rows_written": written,
                "sqlite_total_rows_per_s": round(written / apply_seconds) if apply_seconds else 0,
                "sqlite_rows_per_cpu_s": round(first.pulled / timer["cpu"]) if timer["cpu"] else 0,
                "end_to_end_rows_per_s": round(first.pulled / full_seconds),
                "peak_rss_mb": round(rss_mb(), 1),
                "incremental_requests": inc.requests,
                "incremental_bound": bound,
                "incremental_pulled": inc.pulled,
                "incremental_pushed": inc.pushed,
                "incremental_seconds": round(inc_seconds, 3),
            }
    finally:
        pullmod.Puller._apply = original  # type: ignore[method-assign]


def main() -> None:
    profile = cProfile.Profile() if "--profile" in sys.argv[1:] else None
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    results = []
    sizes = [int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--n=")] or [10_000, 100_000]
    for n in sizes:
        r = run(n, profile if n == 100_000 else None)
        results.append(r)
        print(
            f"N={n:>7}: full pull {r['full_pull_seconds']} s in {r['full_pull_requests']} requests "
            f"(translate+write {r['apply_seconds']} s, fetch {r['fetch_seconds']} s), "
            f"{r['sqlite_rows_per_s']} items/s translated+written into SQLite "
            f"({r['sqlite_rows_per_cpu_s']} per CPU second; {r['sqlite_total_rows_per_s']} SQLite rows/s "
            f"counting base and stage-history rows) "
            f"({r['end_to_end_rows_per_s']} rows/s end to end), peak RSS {r['peak_rss_mb']} MB; "
            f"incremental k={K_REMOTE}/k_local={K_LOCAL}: {r['incremental_requests']} requests "
            f"(bound {r['incremental_bound']}), {r['incremental_seconds']} s",
            flush=True,
        )
    load = os.getloadavg()[0]
    print(f"load average at end: {load:.2f}", flush=True)
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    ok = all(r["incremental_requests"] <= r["incremental_bound"] for r in results)
    # The full-pull target is for N = 100,000: < 300 MB, >= 20,000 rows/s into SQLite (counted
    # conservatively as process-table rows, without the base and stage-history rows written with them).
    big = [r for r in results if r["n"] >= 100_000]
    ok = ok and all(r["sqlite_rows_per_s"] >= 20_000 and r["peak_rss_mb"] < 300 for r in big)
    summary = {"bench": "sync", "load_average_end": round(load, 2), "results": results, "within_targets": ok}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
