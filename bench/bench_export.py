"""Benchmark: export 100,000 items from a store file to CSV (rows/s) and XLSX (peak memory).

Builds a store in the docs/CONTRACTS.md layout (process table + `_labels` + `<code>_labels` view),
then runs each export in a fresh subprocess and reads its peak RSS (resource.getrusage).
Targets: CSV >= 50,000 rows/s; XLSX peak RSS < 200 MB. The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
STAGES = [("NEW", "Новый отклик"), ("SCREENING", "Телефонное интервью"), ("INTERVIEW", "Собеседование"),
          ("OFFER", "Оффер"), ("HIRED", "Принят"), ("REJECTED", "Отказ")]


def build_store(path: Path, n: int) -> None:
    """A `candidate` process with n items and Russian labels."""
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE _labels (tbl TEXT, kind TEXT, scope TEXT, code TEXT, lang TEXT, label TEXT,
                              PRIMARY KEY (tbl, kind, scope, code, lang));
        CREATE TABLE candidate (key TEXT PRIMARY KEY, id INTEGER UNIQUE, title TEXT, funnel TEXT, stage TEXT,
            assigned_by_id INTEGER, created_time TEXT, updated_time TEXT, moved_time TEXT,
            deleted INTEGER NOT NULL DEFAULT 0, deleted_at TEXT, salary REAL, salary_currency TEXT,
            source TEXT, phone TEXT, comment TEXT);
    """)
    labels = [("candidate", "funnel", "", "hiring", "ru", "Найм")]
    labels += [("candidate", "stage", "hiring", code, "ru", name) for code, name in STAGES]
    labels += [("candidate", "option", "source", c, "ru", n) for c, n in (("hh", "HeadHunter"),
                                                                          ("friend", "Рекомендация"))]
    conn.executemany("INSERT INTO _labels VALUES (?, ?, ?, ?, ?, ?)", labels)
    look = ("(SELECT l.label FROM _labels l WHERE l.tbl = 'candidate' AND l.kind = '{k}' AND l.scope = {s} "
            "AND l.code = {c} LIMIT 1)")
    conn.execute(
        "CREATE VIEW candidate_labels AS SELECT t.*, "
        + look.format(k="funnel", s="''", c="t.funnel") + " AS funnel_name, "
        + look.format(k="stage", s="t.funnel", c="t.stage") + " AS stage_name, "
        + look.format(k="option", s="'source'", c="t.source") + " AS source_label FROM candidate t"
    )
    rnd = random.Random(1)
    rows = (
        (f"{i:032x}", i, f"Кандидат Иванов-{i}", "hiring", rnd.choice(STAGES)[0], 1, "2026-01-01T00:00:00Z",
         "2026-01-02T00:00:00Z", "2026-01-02T00:00:00Z", 0, None, rnd.randint(50, 300) * 1000.0, "RUB",
         rnd.choice(("hh", "friend")), f"+7 900 {i:07d}", "Комментарий, с запятой и \"кавычками\"")
        for i in range(1, n + 1)
    )
    conn.executemany(f"INSERT INTO candidate VALUES ({', '.join('?' * 16)})", rows)
    conn.commit()
    conn.close()


CHILD = """
import json, resource, sys, time
from connector.reports import export
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
start, cpu0 = time.perf_counter(), cpu()
result = export(sys.argv[1], "candidate", sys.argv[2], sys.argv[3], bom=True)
seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu0
print(json.dumps({"rows": result.rows, "seconds": seconds, "cpu_seconds": cpu_seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_export(db: Path, fmt: str, out: Path) -> dict[str, float]:
    """One export in a fresh interpreter; its rows, seconds and peak RSS."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(db), fmt, str(out)], check=True,
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        build_store(db, N)
        print(f"store with {N} items built in {time.perf_counter() - t0:.1f} s")
        csv = run_export(db, "csv", Path(tmp) / "out.csv")
        csv_rate = csv["rows"] / csv["seconds"]
        csv_cpu_rate = csv["rows"] / csv["cpu_seconds"]
        size_mb = (Path(tmp) / "out.csv").stat().st_size / 1e6
        print(f"CSV : {csv['rows']} rows in {csv['seconds']:.2f} s wall = {csv_rate:,.0f} rows/s "
              f"({csv_cpu_rate:,.0f} rows per CPU-second), peak RSS {csv['peak_rss_mb']:.0f} MB, "
              f"{size_mb:.1f} MB")
        xlsx = run_export(db, "xlsx", Path(tmp) / "out.xlsx")
        print(f"XLSX: {xlsx['rows']} rows in {xlsx['seconds']:.2f} s wall ({xlsx['cpu_seconds']:.1f} CPU-s), "
              f"peak RSS {xlsx['peak_rss_mb']:.0f} MB")
        load = os.getloadavg()[0]
        print(f"load average: {load:.1f} on {os.cpu_count()} CPUs (wall rates suffer when busy)")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "items": N,
        "csv_rows_per_s": round(csv_rate),
        "csv_rows_per_cpu_s": round(csv_cpu_rate),
        "csv_ok": csv_rate >= 50_000,
        "csv_peak_rss_mb": round(csv["peak_rss_mb"], 1),
        "xlsx_seconds": round(xlsx["seconds"], 2),
        "xlsx_cpu_seconds": round(xlsx["cpu_seconds"], 2),
        "xlsx_peak_rss_mb": round(xlsx["peak_rss_mb"], 1),
        "xlsx_ok": xlsx["peak_rss_mb"] < 200,
        "builder_peak_rss_mb": round(own, 1),
        "load_average": round(load, 1),
    }))


if __name__ == "__main__":
    main()
