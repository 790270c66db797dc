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
    kind: Annotated[str, typer.Argument(help="funnel, time-in-stage, aging or all.")],
    type_code: TypeOpt,
    fmt: Annotated[str, typer.Option("--format", "-f", help="html, csv or xlsx.")] = "html",
    portal: PortalOpt = None,
    db: DbOpt = None,
    output: FileOpt = None,
    template: Annotated[
        Path | None, typer.Option("--template", help="The process template (stage order and names).")
    ] = None,
) -> None:
    """Funnel counts and sums, conversion, time in stage (median, p90) and items stuck longest."""
    from connector.reports import report

    main = _main()
    path = main.resolve_db(ctx, portal, db)
    tpl = None
    if template is not None:
        from connector.templates import load_template

        tpl = load_template(template)
    if fmt == "xlsx" and output is None:
        raise main.UsageError("--format xlsx needs -o FILE (a workbook is not written to a terminal)")
    result = _run(lambda: report(path, type_code, kind, fmt, output, template=tpl))
    if output is not None:
        main.emit(ctx, result.model_dump(), f"{kind} report of {type_code} written to {result.output}")


def register(app: typer.Typer) -> None:
    """Add `export` and `report` to the b24sync app."""
    app.command("export")(export_command)
    app.command("report")(report_command)
