"""Store benchmark: engine-path bulk upsert (unlogged) and logged user writes.

Usage: python bench/bench_store.py [N]   (default N = 100000)
Prints figures; the last line is one JSON object.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.store import Store  # noqa: E402
from connector.templates.model import Template  # noqa: E402

TEMPLATE = Template.model_validate({
    "code": "car", "title": {"ru": "Автомобиль"}, "flags": {"isClientEnabled": True},
    "relations": {"parents": ["deal"]},
    "fields": [
        {"code": "vin", "type": "string", "label": {"ru": "VIN"}},
        {"code": "mileage", "type": "integer", "label": {"ru": "Пробег"}},
        {"code": "price", "type": "money", "label": {"ru": "Цена"}},
        {"code": "insured", "type": "boolean", "label": {"ru": "Страховка"}},
        {"code": "sold_on", "type": "date", "label": {"ru": "Продан"}},
        {"code": "color", "type": "enumeration", "label": {"ru": "Цвет"},
         "options": [{"code": "red", "label": {"ru": "Красный"}}]},
        {"code": "extras", "type": "enumeration", "multiple": True, "label": {"ru": "Опции"},
         "options": [{"code": "abs", "label": {"ru": "АБС"}}]},
    ],
    "funnels": [{"code": "main", "name": {"ru": "Основная"}, "stages": [
        {"code": "NEW", "name": {"ru": "Новая"}},
        {"code": "WON", "name": {"ru": "Успех"}, "semantics": "success"},
        {"code": "LOST", "name": {"ru": "Провал"}, "semantics": "failure"}]}],
})


def pulled_row(i: int, rev: int) -> dict[str, Any]:
    return {
        "id": i, "title": f"Car {i} r{rev}", "funnel": "main", "stage": "NEW" if i % 3 else "WON",
        "assigned_by_id": 1 + i % 17, "created_time": "2026-01-02T03:04:05Z",
        "updated_time": f"2026-01-0{2 + rev}T03:04:05Z", "moved_time": None,
        "vin": f"VIN{i:012d}", "mileage": i * 10 + rev, "price": 1000.0 + i, "price_currency": "RUB",
        "insured": i % 2, "sold_on": "2026-01-02", "color": "red", "extras": '["abs"]',
        "parent_deal": i % 500 or None, "contact_ids": f"[{i % 1000}]", "company_id": None,
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.db")
        store.ensure_process(TEMPLATE)

        t0, c0 = time.perf_counter(), time.process_time()
        store.upsert_rows("car", (pulled_row(i, 0) for i in range(1, n + 1)))
        insert_s, insert_cpu = time.perf_counter() - t0, time.process_time() - c0

        t0 = time.perf_counter()
        store.upsert_rows("car", (pulled_row(i, 1) for i in range(1, n + 1)))
        update_s = time.perf_counter() - t0
        unlogged = store.conn.execute("SELECT count(*) FROM _changes").fetchone()[0]

        t0 = time.perf_counter()
        scanned = sum(1 for _ in store.conn.execute("SELECT * FROM car_labels"))
        view_s = time.perf_counter() - t0

        k = min(10_000, n)
        user = sqlite3.connect(store.path, isolation_level=None)
        t0 = time.perf_counter()
        user.execute("BEGIN")
        user.executemany("UPDATE car SET mileage = mileage + 1, vin = ? WHERE id = ?",
                         [(f"X{i}", i) for i in range(1, k + 1)])
        user.execute("COMMIT")
        logged_s = time.perf_counter() - t0
        user.close()

        t0 = time.perf_counter()
        pending = store.pending_changes("car")
        pending_s = time.perf_counter() - t0
        size_mb = Path(store.path).stat().st_size / 1e6
        store.close()

    figures = {
        "rows": n,
        "engine_insert_rows_per_s": round(n / insert_s),
        "engine_update_rows_per_s": round(n / update_s),
        "engine_insert_rows_per_cpu_s": round(n / insert_cpu),
        "engine_writes_logged": unlogged,
        "labels_view_rows_per_s": round(scanned / view_s),
        "user_updates": k,
        "user_updates_logged_per_s": round(k / logged_s),
        "pending_changes_rows": len(pending),
        "pending_changes_s": round(pending_s, 3),
        "db_mb": round(size_mb, 1),
    }
    cpu_rate = figures["engine_insert_rows_per_cpu_s"]
    print(f"engine insert: {n} rows in {insert_s:.2f}s = {figures['engine_insert_rows_per_s']} rows/s "
          f"({cpu_rate} rows per CPU second; other load on the host slows wall time)")
    print(f"engine update: {n} rows in {update_s:.2f}s = {figures['engine_update_rows_per_s']} rows/s")
    print(f"engine writes in the change log: {unlogged} (must be 0)")
    print(f"labels view scan: {scanned} rows in {view_s:.2f}s = {figures['labels_view_rows_per_s']} rows/s")
    rate = figures["user_updates_logged_per_s"]
    print(f"user updates with triggers: {k} in {logged_s:.2f}s = {rate} rows/s")
    print(f"pending_changes over {len(pending)} rows: {pending_s:.3f}s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
