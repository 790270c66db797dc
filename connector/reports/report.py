"""`report(...)`: funnel, time-in-stage and aging reports as HTML (with charts), CSV or XLSX."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from connector.reports import html_report
from connector.reports.analytics import (
    AgingReport,
    FunnelReport,
    TimeInStageReport,
    aging_report,
    funnel_report,
    time_in_stage_report,
)
from connector.reports.catalog import label_text, names
from connector.reports.columns import HEADER_MODES, Column, language
from connector.reports.errors import ReportError
from connector.reports.export import check_choice, check_format, display_for
from connector.reports.formats import Display, tz_name
from connector.reports.i18n import text
from connector.reports.readonly import open_store, require_process
from connector.reports.writers import DIALECTS, WriteOptions, default_dialect, write_csv
from connector.reports.xlsx import XlsxBook
from connector.store.reader import StoreReader
from connector.templates import Template

KINDS = ("funnel", "time-in-stage", "aging", "all")
REPORT_FORMATS = ("html", "csv", "xlsx")

Table = tuple[list[Column], list[list[Any]]]
Report = FunnelReport | TimeInStageReport | AgingReport


class ReportResult(BaseModel):
    """What a report wrote."""

    type_code: str
    kind: str
    format: str
    output: str
    data: dict[str, Any]  # the figures (JSON-able), for --json and the job log


def _col(code: str, key: str, lang: str, kind: str = "text", **extra: Any) -> Column:
    return Column(code, text(key, lang, **extra) if extra else text(key, lang), kind)  # type: ignore[arg-type]


def _funnel_table(rep: FunnelReport, lang: str, codes: bool = False) -> Table:
    sum_names = sorted({name for f in rep.funnels for s in f.stages for name in s.sums})
    columns = [
        _col("funnel", "col.funnel_code", lang), _col("funnel_name", "col.funnel", lang),
        _col("stage", "col.stage_code", lang), _col("stage_name", "col.stage", lang),
        _col("semantics", "col.semantics", lang), _col("count", "col.count", lang, "integer"),
        _col("reached", "col.reached", lang, "integer"),
        _col("conversion", "col.conversion", lang, "percent"),
    ]
    for key in sum_names:
        field, _sep, currency = key.partition(" ")
        label = rep.field_labels.get(field, field)
        columns.append(Column(f"sum {key}", text("col.sum", lang, name=label, currency=currency).rstrip(", "),
                              "money", fixed_currency=currency or None))
    rows = [
        [f.funnel, f.funnel_name, s.stage, s.stage_name,
         s.semantics if codes else text(f"semantics.{s.semantics}", lang), s.count,
         s.reached, s.conversion, *[s.sums.get(n) for n in sum_names]]
        for f in rep.funnels for s in f.stages
    ]
    return columns, rows


def _time_table(rep: TimeInStageReport, lang: str) -> Table:
    columns = [
        _col("funnel", "col.funnel_code", lang), _col("funnel_name", "col.funnel", lang),
        _col("stage", "col.stage_code", lang), _col("stage_name", "col.stage", lang),
        _col("completed", "col.completed", lang, "integer"),
        _col("median_hours", "col.median_hours", lang, "number"),
        _col("p90_hours", "col.p90_hours", lang, "number"), _col("current", "col.current", lang, "integer"),
        _col("current_max_hours", "col.current_max_hours", lang, "number"),
    ]
    return columns, [[getattr(r, c.code) for c in columns] for r in rep.stages]


def _aging_table(rep: AgingReport, lang: str, tz: str = "UTC") -> Table:
    columns = [
        _col("key", "col.key", lang), _col("id", "col.id", lang, "integer"), _col("title", "col.item", lang),
        _col("funnel_name", "col.funnel", lang), _col("stage_name", "col.stage", lang),
        _col("since", "col.since", lang, "datetime", tz=tz), _col("days", "col.days", lang, "number"),
    ]
    return columns, [[getattr(r, c.code) for c in columns] for r in rep.items]


_BUILDERS: dict[str, Callable[..., Report]] = {
    "funnel": funnel_report, "time-in-stage": time_in_stage_report, "aging": aging_report,
}


def _section(rep: Report, show: Display) -> str:
    """The HTML section of one report."""
    if isinstance(rep, FunnelReport):
        return html_report.funnel_section(rep, show)
    if isinstance(rep, TimeInStageReport):
        return html_report.time_section(rep, show)
    return html_report.aging_section(rep, show)


def build_reports(
    store: StoreReader, type_code: str, kind: str, now: datetime | None = None,
    template: Template | None = None,
) -> dict[str, Report]:
    """Compute the report models for a kind ('all' = every kind), keyed by kind."""
    require_process(store, type_code)
    kinds = [k for k in _BUILDERS if kind in (k, "all")]
    return {k: _BUILDERS[k](store, type_code, now=now, template=template) for k in kinds}


def report(
    db_path: str | Path,
    type_code: str,
    kind: str,
    fmt: str = "html",
    out: str | Path | IO[bytes] | None = None,
    now: datetime | None = None,
    template: Template | None = None,
    *,
    tz: tzinfo | str | None = None,
    headers: str = "labels",
    dialect: str | None = None,
) -> ReportResult:
    """Write a funnel / time-in-stage / aging report (or 'all') of one process from a store file.

    `template` (the process's Template) gives stage order, names and semantics; without it they
    come from the store's labels and stage history. The report speaks the template's language
    (Russian or English); `tz` is the portal's time zone for the times shown (UTC when not known).
    `headers` and `dialect` are as for `export` (CSV and XLSX tables).
    """
    if kind not in KINDS:
        raise ReportError(f"unknown report {kind!r}; allowed: {', '.join(KINDS)}")
    fmt = check_format(fmt, REPORT_FORMATS)
    check_choice(headers, HEADER_MODES, "--headers")
    if fmt == "csv" and kind == "all":
        raise ReportError("a CSV file holds one table: choose funnel, time-in-stage or aging, or use xlsx")
    with open_store(db_path) as store:
        reports = build_reports(store, type_code, kind, now, template)
        lang = language(store, type_code, template)
        process_name = names(store, type_code, lang)[0]
    if template is not None:
        process_name = label_text(template.title, lang) or process_name
    chosen = check_choice(dialect or default_dialect(lang), DIALECTS, "--dialect")
    show = display_for(lang, tz, None)
    payload = _render(type_code, fmt, reports, process_name, show, headers, chosen)
    target = _emit(payload, out)
    data = {k: r.model_dump(mode="json") for k, r in reports.items()}
    return ReportResult(type_code=type_code, kind=kind, format=fmt, output=target, data=data)


def _render(
    type_code: str, fmt: str, reports: dict[str, Report], process_name: str, show: Display, headers: str,
    dialect: str,
) -> Callable[[IO[bytes]], None]:
    """A function writing the chosen format to a binary stream."""
    lang = show.lang

    def table(rep: Report) -> Table:
        if isinstance(rep, AgingReport):
            return _aging_table(rep, lang, tz_name(show.tz))
        if isinstance(rep, FunnelReport):
            return _funnel_table(rep, lang, codes=headers == "codes")
        return _time_table(rep, lang)

    def write_html(f: IO[bytes]) -> None:
        generated = next(iter(reports.values())).generated_at
        sections = [_section(r, show) for r in reports.values()]
        title = f"{process_name or type_code}: " + ", ".join(text(f"title.{k}", lang) for k in reports)
        page = html_report.render_page(title, generated, sections, type_code=type_code, show=show)
        f.write(page.encode("utf-8"))

    def write_one_csv(f: IO[bytes]) -> None:
        ((_kind, rep),) = reports.items()
        columns, rows = table(rep)
        opts = WriteOptions(title=type_code, headers=headers, dialect=dialect, display=show)
        write_csv(columns, [rows], f, opts)

    def write_book(f: IO[bytes]) -> None:
        book = XlsxBook(f, lang)
        for kind, rep in reports.items():
            columns, rows = table(rep)
            book.write_sheet(text(f"title.{kind}", lang), columns, [rows], show, headers)
        book.close()

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
