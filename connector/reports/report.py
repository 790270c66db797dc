"""`report(...)`: funnel, time-in-stage and aging reports as HTML (with charts), CSV or XLSX."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook
from pydantic import BaseModel

from connector.reports import html_report
from connector.reports.analytics import aging_report, funnel_report, time_in_stage_report
from connector.reports.catalog import names
from connector.reports.errors import ReportError
from connector.reports.export import check_format
from connector.reports.readonly import connect_readonly
from connector.reports.source import require_process
from connector.reports.writers import write_csv

KINDS = ("funnel", "time-in-stage", "aging", "all")
_TITLES = {"funnel": "funnel", "time-in-stage": "time in stage", "aging": "stuck items"}
REPORT_FORMATS = ("html", "csv", "xlsx")

Table = tuple[list[str], list[list[Any]]]


class ReportResult(BaseModel):
    """What a report wrote."""

    type_code: str
    kind: str
    format: str
    output: str
    data: dict[str, Any]  # the figures (JSON-able), for --json and the job log


def _funnel_table(rep: Any) -> Table:
    sum_names = sorted({name for f in rep.funnels for s in f.stages for name in s.sums})
    header = ["funnel", "funnel_name", "stage", "stage_name", "semantics", "count", "reached", "conversion",
              *[f"sum {n}" for n in sum_names]]
    rows = [
        [f.funnel, f.funnel_name, s.stage, s.stage_name, s.semantics, s.count, s.reached, s.conversion,
         *[s.sums.get(n) for n in sum_names]]
        for f in rep.funnels for s in f.stages
    ]
    return header, rows


def _time_table(rep: Any) -> Table:
    header = ["funnel", "funnel_name", "stage", "stage_name", "completed", "median_hours", "p90_hours",
              "current", "current_max_hours"]
    return header, [[getattr(r, h) for h in header] for r in rep.stages]


def _aging_table(rep: Any) -> Table:
    header = ["key", "id", "title", "funnel_name", "stage_name", "since", "days"]
    return header, [[getattr(r, h) for h in header] for r in rep.items]


_SECTIONS: dict[str, tuple[Callable[..., Any], Callable[[Any], Table], Callable[[Any], str]]] = {
    "funnel": (funnel_report, _funnel_table, html_report.funnel_section),
    "time-in-stage": (time_in_stage_report, _time_table, html_report.time_section),
    "aging": (aging_report, _aging_table, html_report.aging_section),
}


def build_reports(
    conn: sqlite3.Connection, type_code: str, kind: str, now: datetime | None = None, template: Any = None
) -> dict[str, Any]:
    """Compute the report models for a kind ('all' = every kind), keyed by kind."""
    require_process(conn, type_code)
    kinds = [k for k in _SECTIONS if kind in (k, "all")]
    return {k: _SECTIONS[k][0](conn, type_code, now=now, template=template) for k in kinds}


def report(
    db_path: str | Path,
    type_code: str,
    kind: str,
    fmt: str = "html",
    out: str | Path | IO[bytes] | None = None,
    now: datetime | None = None,
    template: Any = None,
) -> ReportResult:
    """Write a funnel / time-in-stage / aging report (or 'all') of one process from a store file.

    `template` (the process's Template) gives stage order, names and semantics; without it they
    come from the store's labels and stage history.
    """
    if kind not in KINDS:
        raise ReportError(f"unknown report {kind!r}; allowed: {', '.join(KINDS)}")
    fmt = check_format(fmt, REPORT_FORMATS)
    if fmt == "csv" and kind == "all":
        raise ReportError("a CSV file holds one table: choose funnel, time-in-stage or aging, or use xlsx")
    with closing(connect_readonly(db_path)) as conn:
        reports = build_reports(conn, type_code, kind, now, template)
        process_name = names(conn, type_code)[0]
    payload = _render(type_code, fmt, reports, process_name)
    target = _emit(payload, out)
    data = {k: r.model_dump(mode="json") for k, r in reports.items()}
    return ReportResult(type_code=type_code, kind=kind, format=fmt, output=target, data=data)


def _render(
    type_code: str, fmt: str, reports: dict[str, Any], process_name: str = ""
) -> Callable[[IO[bytes]], None]:
    """A function writing the chosen format to a binary stream."""
    tables = {k: _SECTIONS[k][1](r) for k, r in reports.items()}

    def write_html(f: IO[bytes]) -> None:
        generated = next(iter(reports.values())).generated_at
        sections = [_SECTIONS[k][2](r) for k, r in reports.items()]
        title = f"{process_name or type_code}: " + ", ".join(_TITLES[k] for k in reports)
        page = html_report.render_page(title, generated, sections, type_code=type_code)
        f.write(page.encode("utf-8"))

    def write_one_csv(f: IO[bytes]) -> None:
        ((header, rows),) = tables.values()
        write_csv(header, [rows], f, True, type_code)

    def write_book(f: IO[bytes]) -> None:
        book = Workbook(write_only=True)
        for kind, (header, rows) in tables.items():
            sheet = book.create_sheet(title=kind[:31])
            sheet.append(header)
            for row in rows:
                sheet.append(row)
        book.save(f)

    return {"html": write_html, "csv": write_one_csv, "xlsx": write_book}[fmt]


def _emit(write: Callable[[IO[bytes]], None], out: str | Path | IO[bytes] | None) -> str:
    """Run a writer on stdout, a file path (parents created) or a stream; return where it went."""
    if out is None:
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return "-"
    if isinstance(out, str | Path):
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            write(f)
        return str(path)
    write(out)
    return getattr(out, "name", "<stream>")
