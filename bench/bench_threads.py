"""Benchmark: 8 threads share one Client against an emulator that enforces the leaky bucket.

Time is scaled x10 on both sides: the emulator's bucket and the client's bucket both hold 50
requests and drain 20 per second (the standard plan is 50 and 2/s). The emulator serves over a
real 127.0.0.1 socket. Must see zero 503 answers. Prints figures; the last line is one JSON object.

    python bench/bench_threads.py [--threads 8] [--calls 30] [--drain 20]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

from connector.emulator import Emulator, serve
from connector.rest import Client, LeakyBucket, RetryPolicy
from connector.rest.errors import B24Error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=30, help="calls per thread")
    parser.add_argument("--capacity", type=int, default=50)
    parser.add_argument("--drain", type=float, default=20.0, help="drain per second on both sides")
    parser.add_argument("--control", action="store_true",
                        help="control run: client bucket 100x too generous, to show the emulator does refuse")
    args = parser.parse_args()
    client_capacity = args.capacity * (100 if args.control else 1)

    emu = Emulator(limits=f"capacity={args.capacity},drain={args.drain},operating=off")
    created = emu.call("crm.type.add", {"fields": {"title": "Threads"}})
    entity_type_id = created["result"]["type"]["entityTypeId"]
    emu.seed_items(entity_type_id, 200)
    server = serve(emu, host="127.0.0.1", port=0)
    client = Client.from_webhook(server.webhook_url, bucket=LeakyBucket(client_capacity, args.drain),
                                 retry=RetryPolicy(max_attempts=1))
    failures: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for call in range(args.calls):
            try:
                if call % 2:
                    item_id = 1 + (index * 7 + call) % 200
                    client.call("crm.item.get", {"entityTypeId": entity_type_id, "id": item_id})
                else:
                    client.call("crm.item.list", {"entityTypeId": entity_type_id, "start": -1,
                                                  "filter": {">id": call}, "select": ["id"]})
            except B24Error as exc:
                with lock:
                    failures.append(f"{exc.code} {exc.status}")

    started = time.perf_counter()
    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        wall = time.perf_counter() - started
        server.stop()

    statuses: dict[int, int] = {}
    for entry in emu.request_log:
        statuses[entry.status] = statuses.get(entry.status, 0) + 1
    total = args.threads * args.calls
    ideal = max(0.0, (total - args.capacity) / args.drain)
    figures: dict[str, Any] = {
        "bench": "bench_threads", "threads": args.threads, "requests": client.stats.requests,
        "server_503": statuses.get(503, 0), "client_503": client.stats.statuses.get(503, 0),
        "failures": len(failures), "server_statuses": statuses, "wall_seconds": round(wall, 2),
        "ideal_seconds": round(ideal, 2), "client_waited_seconds": round(client.stats.waited_seconds, 2),
        "requests_per_second": round(client.stats.requests / wall, 1), "capacity": args.capacity,
        "drain_per_second": args.drain, "control": args.control,
        "zero_503": statuses.get(503, 0) == 0 and not failures,
    }
    print(f"{args.threads} threads x {args.calls} calls: {figures['requests']} requests in {wall:.2f}s "
          f"(ideal {ideal:.2f}s at {args.drain}/s after a burst of {args.capacity}); "
          f"503 seen by server: {figures['server_503']}, failures: {len(failures)} {failures[:3]}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
