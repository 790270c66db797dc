"""Benchmark: export 100,000 items from a store file to CSV and XLSX (rows/s, peak memory).

Builds a real store with `connector.store.Store` for the shipped hr_candidates template (process
table, triggers, `_labels`, the `candidate_labels` view, the template remembered as sync does), then
runs each export in a fresh subprocess and reads its wall time, CPU time and peak RSS. Exports are
the defaults a manager gets: labelled headers, excel-ru CSV (local times, decimal comma, formula
guard), XLSX with real dates in +03:00, money formats and user names.

Targets (issue 13): CSV >= 50,000 rows/s; XLSX >= 30,000 rows/s with flat memory (peak RSS at N/4
and at N about the same, under 200 MB). The machine is shared: each format runs TRIES times, the best
and the median are printed, with the load average. The last line printed is one JSON object.

`--compare-writers` also writes the same rows with other XLSX writers that are installed
(openpyxl write-only, xlsxwriter constant_memory, pyexcelerate, rustpy-xlsxwriter): the figures
behind the choice of writer recorded in docs/guide.md.
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

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
N = int(ARGS[0]) if ARGS else 100_000
COMPARE = "--compare-writers" in sys.argv
TRIES = 3  # the best and the median are reported: other processes share the CPUs
ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "mappings" / "hr_candidates.toml"


def build_store(path: Path, n: int) -> int:
    """A store built by `connector.store.Store` for the shipped `candidate` process (its real table,
    triggers, `_labels` and `candidate_labels` view), with n items; returns the number of columns."""
    from connector.store import Store
    from connector.sync.engine import remember_templates
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
         "salary_expected_currency": "RUB", "resume_url": f"https://hh.ru/r/{i}", "assigned_by_id": i % 5 + 1,
         "created_time": f"2026-01-{i % 28 + 1:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
         "updated_time": "2026-01-02T00:00:00Z", "moved_time": "2026-01-02T00:00:00Z"}
        for i in range(1, n + 1)
    )
    with Store.open(path) as store:
        store.ensure_process(template, lang="ru")
        remember_templates(store, [template])
        store.upsert_rows("candidate", rows)
        return len(store.conn.execute("SELECT * FROM candidate_labels LIMIT 1").description)


CHILD = """
import json, resource, sys, time
from connector.reports import export
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
users = {i: f"Сотрудник {i}" for i in range(1, 6)}
where = sys.argv[4] or None
start, cpu0 = time.perf_counter(), cpu()
result = export(sys.argv[1], "candidate", sys.argv[2], sys.argv[3], where=where, tz="+03:00", users=users)
seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu0
print(json.dumps({"rows": result.rows, "seconds": seconds, "cpu_seconds": cpu_seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_export(db: Path, fmt: str, out: Path, where: str = "") -> dict[str, float]:
    """One export in a fresh interpreter; its rows, seconds and peak RSS."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(db), fmt, str(out), where], check=True,
                          capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(db: Path, fmt: str, out: Path) -> dict[str, float]:
    """TRIES runs: the best wall rate, the median, rows per CPU-second and the peak RSS."""
    tries = [run_export(db, fmt, out) for _ in range(TRIES)]
    for i, one in enumerate(tries, 1):
        print(f"{fmt.upper()} try {i}: {one['rows']} rows in {one['seconds']:.2f} s wall = "
              f"{one['rows'] / one['seconds']:,.0f} rows/s, {one['cpu_seconds']:.2f} CPU-s, "
              f"load {os.getloadavg()[0]:.1f}")
    best = min(tries, key=lambda t: t["seconds"])
    return {
        "rows_per_s": best["rows"] / best["seconds"],
        "median_rows_per_s": statistics.median(t["rows"] / t["seconds"] for t in tries),
        "rows_per_cpu_s": best["rows"] / best["cpu_seconds"],
        "peak_rss_mb": max(t["peak_rss_mb"] for t in tries),
        "size_mb": out.stat().st_size / 1e6,
    }


def compare_writers(db: Path, tmp: Path) -> dict[str, float]:
    """Rows/s of each installed XLSX writer on the same rows (fetched once, all as exported)."""
    import io

    from connector.reports.columns import describe
    from connector.reports.formats import Display, parse_tz
    from connector.reports.readonly import open_store
    from connector.reports.source import build_query, iter_chunks
    from connector.reports.xlsx import write_book

    with open_store(db) as store:
        query = build_query(store, "candidate")
        columns = describe(store, "candidate", query.header)
        chunks = list(iter_chunks(store, query))
    rows = [row for chunk in chunks for row in chunk]
    results: dict[str, float] = {}

    def timed(name: str, write) -> None:  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        write()
        results[name] = round(len(rows) / (time.perf_counter() - start))
        print(f"writer {name}: {results[name]:,} rows/s (load {os.getloadavg()[0]:.1f})")

    timed("b24sync streaming SpreadsheetML", lambda: write_book(
        io.BytesIO(), [("x", columns, chunks)], Display(tz=parse_tz("+03:00"))))
    try:
        from openpyxl import Workbook

        def openpyxl_write() -> None:
            book = Workbook(write_only=True)
            sheet = book.create_sheet()
            for row in rows:
                sheet.append(row)
            book.save(tmp / "openpyxl.xlsx")
        timed("openpyxl write_only", openpyxl_write)
    except ImportError:
        pass
    try:
        import xlsxwriter

        def xlsxwriter_write() -> None:
            book = xlsxwriter.Workbook(str(tmp / "xw.xlsx"), {"constant_memory": True})
            sheet = book.add_worksheet()
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    if isinstance(value, str):
                        sheet.write_string(r, c, value)
                    elif value is not None:
                        sheet.write_number(r, c, value)
            book.close()
        timed("xlsxwriter constant_memory", xlsxwriter_write)
    except ImportError:
        pass
    try:
        from pyexcelerate import Workbook as FastBook

        def pyexcelerate_write() -> None:
            book = FastBook()
            book.new_sheet("x", data=rows)
            book.save(str(tmp / "pe.xlsx"))
        timed("pyexcelerate", pyexcelerate_write)
    except ImportError:
        pass
    try:
        import rustpy_xlsxwriter

        def rust_write() -> None:  # takes every row as a dict at once: memory is not flat
            records = [dict(zip(query.header, row, strict=True)) for row in rows]
            rustpy_xlsxwriter.write_worksheet(records, str(tmp / "rust.xlsx"))
        timed("rustpy-xlsxwriter (all rows in memory)", rust_write)
    except ImportError:
        pass
    return results


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        db = tmp / "bench.db"
        t0 = time.perf_counter()
        columns = build_store(db, N)
        print(f"store with {N} items ({columns} exported columns, from {TEMPLATE.name}) built in "
              f"{time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} CPUs")
        csv = measure(db, "csv", tmp / "out.csv")
        xlsx = measure(db, "xlsx", tmp / "out.xlsx")
        quarter = run_export(db, "xlsx", tmp / "quarter.xlsx", where=f"id <= {N // 4}")
        print(f"CSV : best {csv['rows_per_s']:,.0f} rows/s, median {csv['median_rows_per_s']:,.0f} rows/s "
              f"({csv['rows_per_cpu_s']:,.0f} rows per CPU-second), peak RSS {csv['peak_rss_mb']:.0f} MB, "
              f"{csv['size_mb']:.1f} MB")
        print(f"XLSX: best {xlsx['rows_per_s']:,.0f} rows/s, median {xlsx['median_rows_per_s']:,.0f} rows/s "
              f"({xlsx['rows_per_cpu_s']:,.0f} rows per CPU-second), peak RSS {xlsx['peak_rss_mb']:.0f} MB "
              f"(at {N // 4} rows: {quarter['peak_rss_mb']:.0f} MB), {xlsx['size_mb']:.1f} MB")
        load = os.getloadavg()[0]
        print(f"load average: {load:.1f} on {os.cpu_count()} CPUs (wall rates suffer when busy)")
        writers = compare_writers(db, tmp) if COMPARE else {}
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "items": N,
        "columns": columns,
        "csv_rows_per_s": round(csv["rows_per_s"]),
        "csv_rows_per_s_median": round(csv["median_rows_per_s"]),
        "csv_rows_per_cpu_s": round(csv["rows_per_cpu_s"]),
        "csv_ok": csv["rows_per_s"] >= 50_000,
        "csv_peak_rss_mb": round(csv["peak_rss_mb"], 1),
        "xlsx_rows_per_s": round(xlsx["rows_per_s"]),
        "xlsx_rows_per_s_median": round(xlsx["median_rows_per_s"]),
        "xlsx_rows_per_cpu_s": round(xlsx["rows_per_cpu_s"]),
        "xlsx_peak_rss_mb": round(xlsx["peak_rss_mb"], 1),
        "xlsx_peak_rss_mb_quarter": round(quarter["peak_rss_mb"], 1),
        "xlsx_ok": xlsx["rows_per_s"] >= 30_000 and xlsx["peak_rss_mb"] < 200,
        "writers_rows_per_s": writers,
        "builder_peak_rss_mb": round(own, 1),
        "load_average": round(load, 1),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
