"""`b24sync doctor`: does this portal behave the way the connector needs?

Exit codes: 0 nothing differs, 5 differences (or a failed check), 1 could not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from connector.cli import main

if TYPE_CHECKING:
    from connector.doctor import DoctorReport


def register(app: typer.Typer) -> None:
    """Add the `doctor` command."""
    app.command("doctor")(doctor)


def doctor(
    ctx: typer.Context,
    portal: Annotated[str | None, typer.Option(
        "--portal", "-p", metavar="NAME|URL",
        help="A configured portal name, or a webhook URL https://host/rest/<user>/<code>/"),
    ] = None,
    sandbox: Annotated[bool, typer.Option(
        "--sandbox", help="Also create a temporary smart process (code b24sync_doctor_*), probe the "
                          "behaviours the connector depends on, compare them with the emulator, remove it."),
    ] = False,
    record: Annotated[Path | None, typer.Option(
        "--record", metavar="DIR",
        help="Write every exchange with the portal as JSON (secrets masked) in DIR."),
    ] = None,
) -> None:
    """Check a portal before anything else: read-only checks; with --sandbox, behaviour probes."""
    from rich.markup import escape

    from connector.api import Portal
    from connector.config import ConfigError
    from connector.doctor import EXIT_COULD_NOT_RUN, DoctorError

    try:
        if not portal:
            raise DoctorError("give --portal NAME|URL (a configured portal name or a webhook URL)")
        ref = main.portal_ref(ctx, portal)
        report = Portal(ref, main.open_client(ctx, ref)).doctor(sandbox=sandbox, record=record)
    except (DoctorError, ConfigError) as err:  # the doctor's own exit code: it could not run
        main.stderr.print(f"[bold red]error:[/] could not run: {escape(str(err))}", highlight=False)
        raise typer.Exit(EXIT_COULD_NOT_RUN) from None
    data: dict[str, Any] = report.model_dump(mode="json")
    data.update(differences=len(report.differences), exit_code=report.exit_code)
    main.emit(ctx, data, lambda: _print(report))
    raise typer.Exit(report.exit_code)


def _print(report: DoctorReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    from connector.doctor.compare import show

    checks = Table(title=f"b24sync doctor: {report.portal}")
    for column in ("check", "result", "status", "how"):
        checks.add_column(column)
    for check in report.checks:
        colour = {"ok": "green", "warn": "yellow", "fail": "red"}[check.status]
        checks.add_row(check.check, escape(check.result), f"[{colour}]{check.status}[/]", escape(check.how))
    main.stdout.print(checks)
    if report.mode == "sandbox":
        table = Table(title="behaviours (sandbox probes)")
        for column in ("behaviour", "portal", "emulator", "same/different"):
            table.add_column(column)
        for row in report.behaviours:
            verdict = "[green]same[/]" if row.same else "[bold red]different[/]"
            table.add_row(row.behaviour, escape(show(row.portal)), escape(show(row.emulator)), verdict)
        main.stdout.print(table)
        if report.leftovers_removed:
            main.stdout.print(f"removed {report.leftovers_removed} sandbox(es) left by an interrupted run")
    failed = len(report.failed_checks)
    summary = (f"{len(report.differences)} behaviour(s) differ from the emulator, {failed} check(s) failed"
               if report.exit_code else "nothing differs: the portal behaves the way the connector needs")
    main.stdout.print(summary)
    for row in report.differences:
        main.stdout.print(f"  differs: {row.behaviour}", highlight=False)
    for check in report.failed_checks:
        main.stdout.print(f"  failed: {check.check}: {escape(check.result)}", highlight=False)
    if report.record:
        main.stdout.print(f"exchanges recorded in {report.record} (secrets masked)")
