"""`b24sync export` and `b24sync report`: local files from the store (reads only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

FileOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Output file (default: stdout).")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="The local store file (default: the portal's).")]
PortalOpt = Annotated[
    str | None, typer.Option("--portal", "-p", help="Portal name or webhook URL (selects its store).")
]
TypeOpt = Annotated[str, typer.Option("--type", "-t", help="Process code, e.g. candidate.")]


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


def export_command(
    ctx: typer.Context,
    type_code: TypeOpt,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, xlsx, jsonl or html.")] = "csv",
    portal: PortalOpt = None,
    db: DbOpt = None,
    output: FileOpt = None,
    where: Annotated[
        str | None, typer.Option("--where", help="SQL condition on the exported columns (read-only).")
    ] = None,
    columns: Annotated[
        str | None, typer.Option("--columns", help="Comma-separated columns, in this order.")
    ] = None,
    bom: Annotated[bool, typer.Option("--bom", help="Start CSV with a UTF-8 BOM (for Excel).")] = False,
    include_deleted: Annotated[
        bool, typer.Option("--include-deleted", help="Also export items deleted on the portal.")
    ] = False,
) -> None:
    """Export a process's items with labels (stage, funnel, option names, parent titles); no row caps."""
    from connector.reports import export

    main = _main()
    path = main.resolve_db(ctx, portal, db)
    if fmt == "xlsx" and output is None:
        raise main.UsageError("--format xlsx needs -o FILE (a workbook is not written to a terminal)")
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    result = _run(lambda: export(path, type_code, fmt, output, where=where, columns=cols, bom=bom,
                                 include_deleted=include_deleted))
    if output is not None:
        main.emit(ctx, result.model_dump(), f"{result.rows} rows of {type_code} written to {result.output}")


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
    days: Annotated[int, typer.Option("--days", help="contracts: 'expiring' horizon in days.")] = 30,
) -> None:
    """Funnel counts and sums, conversion, time in stage (median, p90) and items stuck longest;
    margin per deal (production cost vs deal amount); contracts per company by end date."""
    from connector.reports import report

    main = _main()
    path = main.resolve_db(ctx, portal, db)
    if kind in ("margin", "contracts"):  # issue 12: reports/margin.py, reports/contracts.py
        return _linked_report(main, ctx, kind, type_code, fmt, path, output, days)
    if type_code is None:
        raise main.UsageError("--type is required: the process code, e.g. --type candidate")
    tpl = None
    if template is not None:
        from connector.templates import load_template

        tpl = load_template(template)
    if fmt == "xlsx" and output is None:
        raise main.UsageError("--format xlsx needs -o FILE (a workbook is not written to a terminal)")
    result = _run(lambda: report(path, type_code, kind, fmt, output, template=tpl))
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
