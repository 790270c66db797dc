"""`b24sync export` and `b24sync report`: local files from the store (reads only)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from connector.cli import main

if TYPE_CHECKING:  # the API (store, reports) is imported by the command that runs, not by --help
    from connector.api import Portal

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


def _portal(ctx: typer.Context, portal: str | None, db: Path | None) -> Portal:
    """A Portal over the store of `--portal`/`--db`; the portal itself is only reached for names and
    its time zone (so a store-only export needs no credentials), and a failure to reach it is a warning."""
    from connector.api import Portal

    path = main.resolve_db(ctx, portal, db)
    if portal is None:
        return Portal(None, store=path)
    shown = urlsplit(portal).hostname or "portal" if "://" in portal else portal  # never the webhook code

    def warn(line: str) -> None:
        main.stderr.print(f"warning: {line}", markup=False, highlight=False)

    return Portal(None, store=path, open_client=lambda: main.open_client(ctx, portal), name=shown, warn=warn)


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
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    with _portal(ctx, portal, db) as p:
        result = p.export(type_code, fmt, output, where=where, columns=cols, bom=bom,
                          include_deleted=include_deleted, headers=headers, dialect=dialect,
                          formula_guard=formula_guard, tz=tz, offline=offline)
        if result.rows == 0 and p.never_synced(type_code):
            main.stderr.print(f"warning: the export is empty: {type_code} was never synced into "
                              f"{p.store_path}; run `b24sync sync` first", markup=False, highlight=False)
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
    tz: TzOpt = None,
    headers: HeadersOpt = "labels",
    dialect: DialectOpt = None,
    offline: OfflineOpt = False,
    days: Annotated[int, typer.Option("--days", help="contracts: 'expiring' horizon in days.")] = 30,
) -> None:
    """Funnel counts and sums, conversion, time in stage (median, p90) and items stuck longest;
    margin per deal (production cost vs deal amount); contracts per company by end date."""
    with _portal(ctx, portal, db) as p:
        result = p.report(type_code, kind, fmt, output, template=template, tz=tz, headers=headers,
                          dialect=dialect, offline=offline, days=days)
    if output is not None:
        linked = kind in ("margin", "contracts")  # their figures are long: the file has them
        data = result.model_dump(exclude={"data"} if linked else None)
        main.emit(ctx, data, f"{kind} report of {result.type_code} written to {result.output}")


def register(app: typer.Typer) -> None:
    """Add `export` and `report` to the b24sync app."""
    app.command("export")(export_command)
    app.command("report")(report_command)
