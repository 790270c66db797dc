"""`b24sync export` and `b24sync report`: local files from the store (reads only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

FileOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Output file (default: stdout).")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="The local store file (default: the portal's).")]
PortalOpt = Annotated[
    str | None, typer.Option("--portal", "-p", help="Portal name or webhook URL (selects its store; user "
                             "names and the time zone are read from it).")
]
TypeOpt = Annotated[str, typer.Option("--type", "-t", help="Process code, e.g. candidate.")]
TzOpt = Annotated[
    str | None, typer.Option("--tz", help="Time zone for dates and times, e.g. +03:00 or Europe/Moscow "
                             "(default: the portal's, else UTC).")
]
HeadersOpt = Annotated[
    str, typer.Option("--headers", help="labels (the template's, in its language) or codes.")
]
DialectOpt = Annotated[
    str | None, typer.Option("--dialect", help="CSV: excel-ru (';', BOM, decimal comma), excel (',', BOM) "
                             "or rfc4180 (',', no BOM, stored values). Default: excel-ru for a Russian "
                             "template, else excel.")
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", help="Do not ask the portal for user names and its time zone.")
]


def _main() -> Any:
    from connector.cli import main

    return main


def _run(call: Any) -> Any:
    """Turn a ReportError into a usage error (exit 2) with its message."""
    from connector.reports import ReportError

    main = _main()
    try:
        return call()
    except ReportError as exc:
        raise main.UsageError(str(exc)) from None


def _people(
    ctx: typer.Context, portal: str | None, path: Path, type_code: str, offline: bool, names: bool = True
) -> Any:
    """User names (when `names`) and the portal's time zone, when a portal is given and reachable;
    else empty."""
    from connector.reports import ReportError
    from connector.reports.people import PortalPeople, employee_ids, portal_people
    from connector.rest.retry import RetryPolicy

    if portal is None or offline:
        return PortalPeople()
    main = _main()
    try:
        ids = employee_ids(path, type_code) if names else set()
        client = main.open_client(ctx, portal)
        client.retry = RetryPolicy(max_attempts=2, max_total=5.0)  # names are optional: do not wait long
        return portal_people(client, ids)
    except ReportError:
        return PortalPeople()  # the export itself reports what is wrong with the store or process
    except Exception as exc:  # noqa: BLE001 — any failure to reach the portal only costs the names
        reason = type(exc).__name__ if "://" in portal else (str(exc).splitlines() or [""])[0]
        shown = urlsplit(portal).hostname if "://" in portal else portal  # never the webhook code
        main.stderr.print(f"warning: user names and time zone not read from portal {shown!r} ({reason}); "
                          "employees show as #id, times in UTC unless --tz", markup=False, highlight=False)
        return PortalPeople()


def export_command(
    ctx: typer.Context,
    type_code: TypeOpt,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, xlsx, jsonl or html.")] = "csv",
    portal: PortalOpt = None,
    db: DbOpt = None,
    output: FileOpt = None,
    where: Annotated[
        str | None, typer.Option("--where", help="One condition on the exported columns, e.g. "
                                 "\"stage_name = 'Оффер'\" (no subqueries; reads only this process's rows).")
    ] = None,
    columns: Annotated[
        str | None, typer.Option("--columns", help="Comma-separated column codes, in this order.")
    ] = None,
    bom: Annotated[bool, typer.Option("--bom", help="Start CSV with a UTF-8 BOM (any dialect).")] = False,
    include_deleted: Annotated[
        bool, typer.Option("--include-deleted", help="Also export items deleted on the portal.")
    ] = False,
    headers: HeadersOpt = "labels",
    dialect: DialectOpt = None,
    formula_guard: Annotated[
        bool, typer.Option("--formula-guard/--no-formula-guard",
                           help="CSV: prefix text starting with = + - @ tab or CR with ' so spreadsheets do "
                           "not run it (on by default; turn off for machine consumers).")
    ] = True,
    tz: TzOpt = None,
    offline: OfflineOpt = False,
) -> None:
    """Export a process's items with labels (stage, funnel, option names, parent titles); no row caps."""
    from connector.reports import export

    main = _main()
    path = main.resolve_db(ctx, portal, db)
    if fmt == "xlsx" and output is None:
        raise main.UsageError("--format xlsx needs -o FILE (a workbook is not written to a terminal)")
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    people = _people(ctx, portal, path, type_code, offline)
    result = _run(lambda: export(path, type_code, fmt, output, where=where, columns=cols, bom=bom,
                                 include_deleted=include_deleted, headers=headers, dialect=dialect,
                                 formula_guard=formula_guard, tz=tz or people.tz, users=people.users))
    if result.rows == 0 and _never_synced(path, type_code):
        main.stderr.print(f"warning: the export is empty: {type_code} was never synced into {path}; run "
                          "`b24sync sync` first", markup=False, highlight=False)
    if output is not None:
        main.emit(ctx, result.model_dump(), f"{result.rows} rows of {type_code} written to {result.output}")


def _never_synced(path: Path, type_code: str) -> bool:
    """No pull of this process ever reached the store (no cursor for it from any portal)."""
    from connector.reports import status

    return not any(c.get("tbl") == type_code for c in status(path).cursors)


def report_command(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="funnel, time-in-stage, aging, all, margin or contracts.")],
    type_code: Annotated[
        str | None, typer.Option("--type", "-t", help="Process code, e.g. candidate (contracts: contract).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="html, csv or xlsx.")] = "html",
    portal: PortalOpt = None,
    db: DbOpt = None,
    output: FileOpt = None,
    template: Annotated[
        Path | None, typer.Option("--template", help="The process template (stage order and names).")
    ] = None,
    tz: TzOpt = None,
    headers: HeadersOpt = "labels",
    dialect: DialectOpt = None,
    offline: OfflineOpt = False,
    days: Annotated[int, typer.Option("--days", help="contracts: 'expiring' horizon in days.")] = 30,
) -> None:
    """Funnel counts and sums, conversion, time in stage (median, p90) and items stuck longest;
    margin per deal (production cost vs deal amount); contracts per company by end date."""
    from connector.reports import report

    main = _main()
    path = main.resolve_db(ctx, portal, db)
    if kind in ("margin", "contracts"):  # reports/margin.py, reports/contracts.py
        return _linked_report(main, ctx, kind, type_code, fmt, path, output, days)
    if type_code is None:
        raise main.UsageError("--type is required: the process code, e.g. --type candidate")
    tpl = None
    if template is not None:
        from connector.templates import load_template

        tpl = load_template(template)
    if fmt == "xlsx" and output is None:
        raise main.UsageError("--format xlsx needs -o FILE (a workbook is not written to a terminal)")
    zone = tz or _people(ctx, portal, path, type_code, offline, names=False).tz  # reports show no employees
    result = _run(lambda: report(path, type_code, kind, fmt, output, template=tpl, tz=zone, headers=headers,
                                 dialect=dialect))
    if output is not None:
        main.emit(ctx, result.model_dump(), f"{kind} report of {type_code} written to {result.output}")


def _linked_report(main: Any, ctx: Any, kind: str, type_code: str | None, fmt: str, path: Any, output: Any,
                   days: int) -> None:
    """`report margin` / `report contracts`: reports that join synced items with their deals/companies."""
    if fmt == "xlsx" and output is None:
        raise main.UsageError("--format xlsx needs -o FILE (a workbook is not written to a terminal)")
    if kind == "margin":
        from connector.reports.margin import margin

        result = _run(lambda: margin(path, type_code or "production_order", fmt, output))
    else:
        from connector.reports.contracts import contracts

        result = _run(lambda: contracts(path, type_code or "contract", fmt, output, days=days))
    if output is not None:
        main.emit(ctx, {k: v for k, v in result.model_dump().items() if k != "data"},
                  f"{kind} report of {result.type_code} written to {result.output}")


def register(app: typer.Typer) -> None:
    """Add `export` and `report` to the b24sync app."""
    app.command("export")(export_command)
    app.command("report")(report_command)
