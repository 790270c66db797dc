"""Benchmark: read every item of a smart process with `Client.iter_list` against the emulator.

N = 10,000 and 100,000 items, ids dense or with half of them deleted at random; the emulator
serves over a real 127.0.0.1 socket with limits off. Prints HTTP requests, rows per request and
wall time per case; the last line is one JSON object with all figures.
Target: at most ceil(N / 2500) + 2 HTTP requests per scan.

Client and emulator share one process and the GIL, so wall time also measures the emulator and
the machine's load. Each case therefore also reports CPU seconds: the whole process and the
client's own thread (the scan loop: JSON decoding, paging, building batches), plus the load
average; compare CPU figures, not wall time, between runs on a busy machine.

    python bench/bench_list.py [--sizes 10000,100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from typing import Any

from connector.emulator import Emulator, serve
from connector.rest import Client


def prepare(n: int, gappy: bool, seed: int) -> tuple[Emulator, int, list[int]]:
    """An emulator holding n items (dense ids, or 2n seeded and a random half deleted)."""
    emu = Emulator(limits="off", seed=seed)
    created = emu.call("crm.type.add", {"fields": {"title": "Bench"}})
    entity_type_id = created["result"]["type"]["entityTypeId"]
    ids = emu.seed_items(entity_type_id, 2 * n if gappy else n)
    if gappy:
        doomed = random.Random(seed).sample(ids, n)
        for item_id in doomed:
            emu.call("crm.item.delete", {"entityTypeId": entity_type_id, "id": item_id})
        ids = sorted(set(ids) - set(doomed))
    return emu, entity_type_id, ids


def run_case(n: int, gappy: bool, seed: int) -> dict[str, Any]:
    emu, entity_type_id, expected = prepare(n, gappy, seed)
    server = serve(emu, host="127.0.0.1", port=0)
    try:
        client = Client.from_webhook(server.webhook_url)
        started, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
        seen = [row["id"] for row in client.iter_list("crm.item.list", {"entityTypeId": entity_type_id,
                                                                        "select": ["id", "title"]})]
        wall = time.perf_counter() - started
        cpu, own = time.process_time() - cpu, time.thread_time() - own
    finally:
        server.stop()
    requests = client.stats.requests
    target = math.ceil(n / 2500) + 2
    return {"n": n, "ids": "gappy" if gappy else "dense", "rows": len(seen), "correct": seen == expected,
            "http_requests": requests, "target_max_requests": target, "within_target": requests <= target,
            "rows_per_request": round(len(seen) / requests, 1), "wall_seconds": round(wall, 3),
            "cpu_seconds": round(cpu, 3), "client_cpu_seconds": round(own, 3),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "rows_per_second": round(len(seen) / wall) if wall else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated item counts")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cases = []
    for n in (int(s) for s in args.sizes.split(",")):
        for gappy in (False, True):
            case = run_case(n, gappy, args.seed)
            cases.append(case)
            print(f"N={case['n']:>7} {case['ids']:<5} rows={case['rows']:>7} correct={case['correct']} "
                  f"requests={case['http_requests']:>3} (target <= {case['target_max_requests']}) "
                  f"rows/request={case['rows_per_request']:>7} wall={case['wall_seconds']:.2f}s "
                  f"cpu={case['cpu_seconds']:.2f}s (client {case['client_cpu_seconds']:.2f}s) "
                  f"load={case['load_average_1m']}", flush=True)
    print(json.dumps({"bench": "bench_list", "cases": cases,
                      "all_correct": all(c["correct"] for c in cases),
                      "all_within_target": all(c["within_target"] for c in cases)}))


if __name__ == "__main__":
    main()
