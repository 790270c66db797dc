"""Benchmark: what the stage rules cost a sync (issue 12). Deploy production.toml to a loopback emulator,
put N deals into EXECUTING, then time three syncs: the one that creates the N orders, the one that
pulls them, and a quiet one (rules settled: the per-sync overhead). Last line: one JSON object."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.config import portal_key  # noqa: E402
from connector.deploy import apply  # noqa: E402
from connector.emulator import Emulator, serve  # noqa: E402
from connector.rest import Client  # noqa: E402
from connector.store import Store  # noqa: E402
from connector.sync import sync  # noqa: E402
from connector.templates import load_templates  # noqa: E402

DEALS = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def main() -> dict[str, object]:
    templates = load_templates([ROOT / "mappings" / "production.toml"])
    emu = Emulator()
    server = serve(emu)
    try:
        client = Client.from_webhook(server.webhook_url, allow_http=True, sleep=lambda _s: None)
        key = portal_key(server.webhook_url)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(Path(tmp) / "bench.db")
            apply(client, templates, store)
            commands = {
                f"d{i}": (
                    "crm.item.add",
                    {"entityTypeId": 2, "fields": {"title": f"Deal {i}", "stageId": "EXECUTING"}},
                )
                for i in range(DEALS)
            }
            client.batch_all(commands)
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                report = sync(client, store, templates, portal_key=key)
                runs.append((report.requests, time.perf_counter() - t0, report.summary()["fired"]))
            store.close()
    finally:
        server.stop()
    orders = len(list(emu.items(next(iter(emu.state.types.values())).entity_type_id)))
    figures = {
        "deals": DEALS,
        "orders": orders,
        "firing_sync_requests": runs[0][0],
        "firing_sync_seconds": round(runs[0][1], 3),
        "fired": runs[0][2],
        "pull_sync_requests": runs[1][0],
        "quiet_sync_requests": runs[2][0],
        "quiet_sync_seconds": round(runs[2][1], 3),
        "quiet_fired": runs[2][2],
    }
    for name, value in figures.items():
        print(f"{name}: {value}")
    return figures


if __name__ == "__main__":
    print(json.dumps(main()))
