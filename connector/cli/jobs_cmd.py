"""`b24sync run` (scheduled jobs from jobs/*.toml) and `b24sync status`."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from connector.cli import main

if TYPE_CHECKING:
    from connector.scheduler import JobEnv


def job_env(ctx: typer.Context) -> JobEnv:
    """The JobEnv of the CLI: portals, clients and store files from the config."""
    from connector.scheduler import JobEnv

    def store_path(portal: str, db: str | None) -> Path:
        return main.resolve_db(ctx, portal, Path(db) if db else None)

    return JobEnv(
        open_client=lambda portal: main.open_client(ctx, portal),
        store_path=store_path,
        portal_key=lambda portal: main.portal_ref(ctx, portal).key,
        default_policy=lambda portal: main.portal_ref(ctx, portal).conflict_policy,
    )


def run_command(
    ctx: typer.Context,
    jobs_dir: Annotated[Path, typer.Option("--jobs", help="Folder of job files (*.toml).")] = Path("jobs"),
    once: Annotated[bool, typer.Option("--once", help="Run every job once, then exit.")] = False,
    only: Annotated[
        list[str] | None, typer.Option("--job", help="Only this job (by name; repeatable).")
    ] = None,
    no_run_at_start: Annotated[
        bool,
        typer.Option("--no-run-at-start", help="Interval jobs wait one interval before their first run."),
    ] = False,
) -> None:
    """Run the scheduled jobs (sync, reconcile, export, report, apply) until SIGTERM/SIGINT.

    Every run prints one line when it starts and one when it ends (outcome, figures, next run) on
    stderr. Interval jobs run once at start-up, unless --no-run-at-start or `run_at_start = false`.
    """
    from connector.scheduler import JobRunner, load_jobs

    jobs = load_jobs(jobs_dir, portals=set(main.get_config(ctx).portals))
    if only:
        unknown = sorted(set(only) - {j.name for j in jobs})
        if unknown:
            names = ", ".join(j.name for j in jobs) or "none"
            raise main.UsageError(f"unknown job(s) {', '.join(unknown)}; jobs in {jobs_dir}: {names}")
        jobs = [j for j in jobs if j.name in only]
    if not jobs:
        raise main.UsageError(f"no enabled jobs in {jobs_dir}")
    def announce(line: str) -> None:
        main.stderr.print(f"{datetime.now():%Y-%m-%d %H:%M:%S} {line}", markup=False, highlight=False)

    runner = JobRunner(jobs, job_env(ctx), announce=None if once else announce,
                       run_at_start=not no_run_at_start)
    if not once:
        main.stderr.print(f"running {len(jobs)} job(s): {', '.join(j.name for j in jobs)}; Ctrl-C to stop")
        runner.run_forever()
        return
    outcomes = runner.run_once()
    data = [asdict(o) for o in outcomes]

    def human() -> None:
        for o in outcomes:
            shown = ", ".join(f"{k}={v}" for k, v in o.figures.items())
            line = f"{o.job} ({o.kind}): {o.status} {shown} {o.error or ''}"
            main.stdout.print(line.rstrip(), markup=False)

    main.emit(ctx, data, human)
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(main.EXIT_ERROR)


def status_command(
    ctx: typer.Context,
    portal: Annotated[str | None, typer.Option("--portal", "-p", help="Portal name or webhook URL.")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="The local store file.")] = None,
) -> None:
    """Last runs, cursors, pending local changes, open conflicts and failed rows."""
    from connector.api import Portal
    from connector.reports.status import render_status

    report = Portal(None, store=main.resolve_db(ctx, portal, db)).status()
    main.emit(ctx, report.model_dump(), lambda: main.stdout.out(render_status(report), highlight=False))


def register(app: typer.Typer) -> None:
    """Add `run` and `status` to the b24sync app."""
    app.command("run")(run_command)
    app.command("status")(status_command)
