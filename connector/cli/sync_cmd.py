"""`b24sync sync` and `b24sync conflicts list|resolve`."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from connector.cli import main

if TYPE_CHECKING:  # the API, the client and rich's bars and tables: imported by the command that runs
    from rich.console import Console
    from rich.progress import TaskID
    from rich.table import Table

    from connector.api import Portal
    from connector.rest import Client
    from connector.store.models import Conflict
    from connector.sync import SyncReport
    from connector.sync.engine import Progress as Progress_
    from connector.sync.rules import RuleFiring

PROGRESS_EVERY_ENV = "B24SYNC_PROGRESS_EVERY"
PROGRESS_EVERY = 30.0  # seconds between progress lines when stderr is not a terminal

PolicyOpt = Annotated[
    str | None,
    typer.Option(
        "--policy",
        help="Conflict policy: remote-wins, local-wins, newest-wins, merge, manual "
        "(default: the portal's conflict_policy in the config).",
    ),
]


class Tally:
    """Rows done so far per (phase, process), as the engine reports them; safe across threads."""

    def __init__(self) -> None:
        self.rows: Counter[tuple[str, str]] = Counter()
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def add(self, process: str, phase: str, rows: int) -> None:
        with self._lock:
            self.rows[(phase, process)] += rows

    def text(self) -> str:
        """E.g. "pull candidate 1200 rows, push car 50 rows" (empty when nothing moved yet)."""
        with self._lock:
            return ", ".join(f"{phase} {process} {n} rows" for (phase, process), n in self.rows.items())


class ProgressLines:
    """Off a terminal: one line every `every` seconds with the rows done and the time waited on limits."""

    def __init__(self, console: Console, portal: str, tally: Tally, client: Client, every: float) -> None:
        self.console, self.portal, self.tally, self.client, self.every = console, portal, tally, client, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="b24sync-progress", daemon=True)

    def __enter__(self) -> ProgressLines:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            elapsed = time.monotonic() - self.tally.started
            waited = getattr(getattr(self.client, "stats", None), "waited_seconds", 0.0)
            done = self.tally.text() or "no rows yet"
            line = f"sync {self.portal}: {elapsed:.0f} s: {done}; {waited:.0f} s waited on limits"
            self.console.print(line, markup=False, highlight=False)


def _progress(
    console: Console, portal: str, client: Client, tally: Tally
) -> tuple[AbstractContextManager[object], Progress_]:
    """Bars on a terminal, periodic lines elsewhere; and the callback the engine calls."""
    if not console.is_terminal:
        every = float(os.environ.get(PROGRESS_EVERY_ENV) or PROGRESS_EVERY)
        lines = ProgressLines(console, portal, tally, client, every) if every > 0 else nullcontext()
        return lines, tally.add
    from rich.progress import BarColumn, Progress, TextColumn

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} rows"),
        console=console,
        transient=True,
    )
    tasks: dict[tuple[str, str], TaskID] = {}

    def report(process: str, phase: str, rows: int) -> None:
        tally.add(process, phase, rows)
        key = (process, phase)
        if key not in tasks:
            tasks[key] = bars.add_task(f"{phase} {process}", total=None)
        bars.advance(tasks[key], rows)

    return bars, report


def _summary_table(report: SyncReport) -> Table:
    from rich.table import Table

    table = Table(title=f"sync {report.portal}")
    for col in ("process", "pulled", "created", "updated", "deleted", "tombstoned", "conflicts", "failed"):
        table.add_column(col, justify="right" if col != "process" else "left")
    for code, f in report.processes.items():
        table.add_row(
            code,
            str(f.pulled),
            str(f.created),
            str(f.updated),
            str(f.deleted_remote),
            str(f.tombstoned),
            str(f.conflicts),
            str(f.failed),
        )
    s = report.summary()
    table.caption = (
        f"pulled {s['pulled']}, pushed {s['pushed']}, deleted {s['deleted']}, "
        f"conflicts {s['conflicts']}, failed {s['failed']}, rules fired {s.get('fired', 0)}; "
        f"{s['requests']} HTTP requests, "
        f"{s['waited_seconds']} s waited on limits, {s['seconds']} s"
    )
    return table


def sync_command(
    ctx: typer.Context,
    portal: Annotated[str, typer.Option("--portal", "-p", help="Portal name or webhook URL.")],
    db: Annotated[Path | None, typer.Option("--db", help="The local store file.")] = None,
    types: Annotated[
        list[str] | None, typer.Option("--type", help="Only this process code (repeatable).")
    ] = None,
    template: Annotated[
        list[Path] | None, typer.Option("--template", help="Template FILE (repeatable); kept in the store.")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Full pull and deletion reconcile.")] = False,
    pull_only: Annotated[bool, typer.Option("--pull-only", help="Only pull from the portal.")] = False,
    push_only: Annotated[bool, typer.Option("--push-only", help="Only push local changes.")] = False,
    policy: PolicyOpt = None,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="Seconds to wait for another sync of the same store to finish (then exit code 75).",
        ),
    ] = 60.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what the stage rules would do; change nothing.")
    ] = False,
) -> None:
    """Two-way sync of items between the portal and the local store (one sync per store at a time)."""
    from connector.api import Portal

    ref = main.portal_ref(ctx, portal)
    path = main.resolve_db(ctx, ref, db)
    client = main.open_client(ctx, ref)
    tally = Tally()
    shown, report_cb = _progress(main.stderr, ref.name, client, tally)
    options: dict[str, Any] = {"types": types, "full": full, "pull_only": pull_only, "push_only": push_only,
                               "policy": policy, "wait": wait}
    with Portal(ref, client, store=path) as p:
        if dry_run:
            firings = p.sync(template, **options, dry_run=True)
            return _print_dry_run(ctx, firings)
        try:
            with shown:
                report = p.sync(template, **options, progress=report_cb)
        except KeyboardInterrupt:
            _interrupted(tally, path)
    main.emit(ctx, report.to_json(), lambda: _print_human(report))
    if report.failures:
        raise typer.Exit(main.EXIT_FAILED_ROWS)


def _interrupted(tally: Tally, path: Path) -> None:
    """Ctrl-C: say what was done and that the next run resumes; exit 130."""
    done = tally.text() or "no rows moved yet"
    main.stderr.print(
        f"interrupted after {time.monotonic() - tally.started:.0f} s: {done}. Every finished page and "
        f"write is kept in {path}; the next `b24sync sync` resumes from there.",
        markup=False, highlight=False,
    )
    raise typer.Exit(main.EXIT_INTERRUPTED)


def _print_dry_run(ctx: typer.Context, firings: list[RuleFiring]) -> None:
    """`sync --dry-run`: the stage rules' decisions now (sync/rules.py), nothing written."""
    data = {"dry_run": True, "would_fire": sum(f.status == "would-fire" for f in firings),
            "firings": [f.model_dump() for f in firings]}

    def human() -> None:
        main.stdout.print(f"dry run: {data['would_fire']} rule firing(s) would happen; nothing was changed")
        for f in firings:
            line = f"  {f.status} {f.rule} {f.entity} [{f.transition}]: {f.action} {f.result}"
            main.stdout.print(line.rstrip(), markup=False)

    main.emit(ctx, data, human)


def _print_human(report: SyncReport) -> None:
    main.stdout.print(_summary_table(report))
    for firing in report.firings:
        main.stdout.print(f"rule {firing['rule']} {firing['entity']} [{firing['transition']}]: "
                          f"{firing['status']} {firing['result']}", markup=False)
    for w in report.warnings:
        main.stdout.print(f"warning: {w}", markup=False)
    for f in report.failures:
        main.stdout.print(f"failed {f.direction} {f.process} key={f.key} id={f.id}: {f.error}", markup=False)


def _store_portal(ctx: typer.Context, portal: str | None, db: Path | None) -> Portal:
    """A Portal over the store of `--portal`/`--db` (no credentials needed: only the store is used)."""
    from connector.api import Portal

    return Portal(None, store=main.resolve_db(ctx, portal, db), name=portal)


conflicts_app = typer.Typer(help="Items changed on both sides: list and resolve.", no_args_is_help=True)


@conflicts_app.command("list")
def conflicts_list(
    ctx: typer.Context,
    portal: Annotated[str | None, typer.Option("--portal", "-p", help="Portal name or webhook URL.")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="The local store file.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include resolved conflicts.")] = False,
) -> None:
    """Conflicts recorded by sync (open ones by default)."""
    with _store_portal(ctx, portal, db) as p:
        rows = p.conflicts(all=all_)
    data = [c.model_dump() for c in rows]

    def human() -> None:
        if not rows:
            main.stdout.print("no conflicts" if all_ else "no open conflicts (--all shows resolved ones)")
        for c in rows:
            main.stdout.print(_conflict_line(c), markup=False, soft_wrap=True)

    main.emit(ctx, data, human)


def _conflict_line(c: Conflict) -> str:
    """One conflict on one line: where, which fields, the policy and outcome, and both sides' values."""
    state = "open" if c.status == "open" else f"resolved: {c.resolution}"
    fields = c.fields or sorted(set(c.local) | set(c.remote))
    local = {f: c.local.get(f) for f in fields}
    remote = {f: c.remote.get(f) for f in fields}
    return (
        f"#{c.id} {c.tbl} key={c.key} id={c.portal_id or '-'} [{c.policy}, {state}] "
        f"fields {', '.join(fields)}; local {json.dumps(local, ensure_ascii=False)}; "
        f"remote {json.dumps(remote, ensure_ascii=False)}"
    )


@conflicts_app.command("resolve")
def conflicts_resolve(
    ctx: typer.Context,
    conflict_id: Annotated[int, typer.Argument(help="Conflict id from `conflicts list`.")],
    take: Annotated[str, typer.Option("--take", help="local, remote or merged.")],
    portal: Annotated[str | None, typer.Option("--portal", "-p", help="Portal name or webhook URL.")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="The local store file.")] = None,
) -> None:
    """Settle a conflict; the next `sync` pushes the chosen values."""
    with _store_portal(ctx, portal, db) as p:
        c = p.resolve_conflict(conflict_id, take)
    main.emit(ctx, c.model_dump(), f"conflict {conflict_id} resolved: {take}")


def register(app: typer.Typer) -> None:
    """Add `sync` and `conflicts` to the b24sync app."""
    app.command("sync")(sync_command)
    app.add_typer(conflicts_app, name="conflicts")
