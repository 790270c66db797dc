"""Benchmark: export 100,000 items from a store file to CSV (rows/s) and XLSX (peak memory).

Builds a real store with `connector.store.Store` for the shipped hr_candidates template (process
table, triggers, `_labels`, the `candidate_labels` view), then runs each export in a fresh
subprocess and reads its peak RSS (resource.getrusage).
Targets: CSV >= 50,000 rows/s; XLSX peak RSS < 200 MB. The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
CSV_TRIES = 3  # the best and the median are reported: other processes share the CPUs
ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "mappings" / "hr_candidates.toml"


def build_store(path: Path, n: int) -> int:
    """A store built by `connector.store.Store` for the shipped `candidate` process (its real table,
    triggers, `_labels` and `candidate_labels` view), with n items; returns the number of columns."""
    from connector.store import Store
    from connector.templates import load_template

    template = load_template(TEMPLATE)
    hiring = template.funnels[0]
    stages = [s.code for s in hiring.stages]
    sources = ["hh", "avito", "referral", "telegram", None]
    rnd = random.Random(1)
    rows = (
        {"id": i, "title": f"Кандидат Иванов-{i}", "funnel": hiring.code, "stage": rnd.choice(stages),
         "candidate_source": rnd.choice(sources), "vacancy": "Механик, старший смены", "city": "Москва",
         "experience_years": rnd.randint(0, 20) / 2, "salary_expected": rnd.randint(50, 300) * 1000.0,
         "salary_expected_currency": "RUB", "resume_url": f"https://hh.ru/r/{i}",
         "created_time": "2026-01-01T00:00:00Z", "updated_time": "2026-01-02T00:00:00Z",
         "moved_time": "2026-01-02T00:00:00Z"}
        for i in range(1, n + 1)
    )
    with Store.open(path) as store:
        store.ensure_process(template, lang="ru")
        store.upsert_rows("candidate", rows)
        return len(store.conn.execute("SELECT * FROM candidate_labels LIMIT 1").description)


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
                          capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        columns = build_store(db, N)
        print(f"store with {N} items ({columns} exported columns, from {TEMPLATE.name}) built in "
              f"{time.perf_counter() - t0:.1f} s")
        tries = [run_export(db, "csv", Path(tmp) / "out.csv") for _ in range(CSV_TRIES)]
        for i, one in enumerate(tries, 1):
            print(f"CSV try {i}: {one['rows']} rows in {one['seconds']:.2f} s wall = "
                  f"{one['rows'] / one['seconds']:,.0f} rows/s, {one['cpu_seconds']:.2f} CPU-s")
        csv = min(tries, key=lambda t: t["seconds"])
        csv_rate = csv["rows"] / csv["seconds"]
        csv_cpu_rate = csv["rows"] / csv["cpu_seconds"]
        median_rate = statistics.median(t["rows"] / t["seconds"] for t in tries)
        size_mb = (Path(tmp) / "out.csv").stat().st_size / 1e6
        print(f"CSV : best {csv_rate:,.0f} rows/s, median {median_rate:,.0f} rows/s "
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
        "columns": columns,
        "csv_rows_per_s": round(csv_rate),
        "csv_rows_per_s_median": round(median_rate),
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
