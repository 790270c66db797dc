"""`b24sync plan | apply | drift | adopt`: deploy templates to one or many portals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from connector.cli import main as cli
from connector.cli.errors import describe

if TYPE_CHECKING:  # the API (rest, store, deploy) is imported by the command that runs, not by --help
    from connector.api import Portal
    from connector.config import PortalRef

FilesArg = Annotated[
    list[Path], typer.Argument(help="Template files (TOML), e.g. mappings/hr_candidates.toml.")
]
OptFilesArg = Annotated[list[Path] | None, typer.Argument(help="Limit to these templates' processes.")]
DestructiveOpt = Annotated[
    bool, typer.Option("--allow-destructive", help="Also delete what the template lacks.")
]


@dataclass
class Outcome:
    """What one portal's run produced: a summary row, an exit code, JSON and a human rendering."""

    summary: dict[str, Any]
    code: int
    data: dict[str, Any]
    human: object = None  # text, a rich renderable, or a callable that prints


Work = Callable[["Portal"], Outcome]


def _each_portal(ctx: typer.Context, portals: list[str] | None, all_portals: bool, db: Path | None,
                 work: Work) -> int:
    """Run `work(portal)` per portal (own store and id map each); a summary table ends the run.

    With several portals a portal that fails with a known error (a b24sync error, a file or store
    error) is reported in the summary and the others still run; a bug stops the run. `--json` then
    prints one document: `{"portals": [...], "summary": [...]}`.
    """
    from rich.table import Table

    from connector.deploy.model import show

    refs = cli.portal_refs(ctx, portals, all_portals)
    if db is not None and len(refs) > 1:
        raise cli.UsageError("--db names one store file; with several portals each uses its configured store")
    if len(refs) == 1:
        outcome = _run_one(ctx, refs[0], db, work)
        cli.emit(ctx, outcome.data, outcome.human)
        return outcome.code
    rows, documents, worst = [], [], 0
    for ref in refs:
        try:
            outcome = _run_one(ctx, ref, None, work)
        except Exception as exc:  # noqa: BLE001 - one portal's failure must not stop the others
            known = describe(exc, portal=ref.key)
            if known is None:
                raise
            text, code = known
            outcome = Outcome({"error": text}, code, {"error": text}, f"error: {text}")
        summary = dict(outcome.summary)
        if "error" in summary:  # the full text was printed above; the table keeps one short line
            summary["error"] = _short(str(summary["error"]))
        rows.append({"portal": ref.name, **summary, "exit": outcome.code})
        documents.append({"name": ref.name, **outcome.data})
        worst = max(worst, outcome.code)
        if not cli.json_mode(ctx):
            cli.stdout.rule(f"portal {ref.name}")
            cli.emit(ctx, outcome.data, outcome.human)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    table = Table(title=f"summary: {len(rows)} portals")
    for key in columns:
        table.add_column(key)
    for row in rows:
        table.add_row(*(show(v) if isinstance(v := row.get(k, ""), bool) else str(v) for k in columns))
    cli.emit(ctx, {"portals": documents, "summary": rows}, table)
    return worst


def _short(text: str, limit: int = 60) -> str:
    """The first line of an error, cut to `limit` characters, for a summary table cell."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _run_one(ctx: typer.Context, ref: PortalRef, db: Path | None, work: Work) -> Outcome:
    from connector.api import Portal

    client = cli.open_client(ctx, ref)
    with Portal(ref, client, store=cli.resolve_db(ctx, ref, db)) as portal:
        return work(portal)


def plan_command(
    ctx: typer.Context,
    files: FilesArg,
    portal: cli.PortalsOpt = None,
    all_portals: cli.AllOpt = False,
    db: cli.DbOpt = None,
    allow_destructive: DestructiveOpt = False,
) -> None:
    """Show what apply would do, per object in code terms (exit 0 nothing to do, 5 changes)."""
    from connector.api import load

    templates = load(files)

    def work(portal: Portal) -> Outcome:
        p = portal.plan(templates, allow_destructive=allow_destructive)
        code = cli.EXIT_CHANGES if p.has_changes else cli.EXIT_OK
        return Outcome(p.counts(), code, p.to_json(), p.render())

    raise typer.Exit(_each_portal(ctx, portal, all_portals, db, work))


def apply_command(
    ctx: typer.Context,
    files: FilesArg,
    portal: cli.PortalsOpt = None,
    all_portals: cli.AllOpt = False,
    db: cli.DbOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan and list the calls; write nothing.")
    ] = False,
    allow_destructive: DestructiveOpt = False,
) -> None:
    """Apply templates: batched writes in dependency order; every portal id goes to the id map.

    Without --yes (and without --json) the plan is shown and confirmed per portal.
    """
    from connector.api import load

    templates = load(files)
    if cli.json_mode(ctx) and not (yes or dry_run):
        raise cli.UsageError("apply with --json cannot ask for confirmation: add --yes (or --dry-run)")

    def work(portal: Portal) -> Outcome:
        if not (yes or dry_run):
            p = portal.plan(templates, allow_destructive=allow_destructive)
            cli.stdout.print(p.render())
            if p.has_changes and not typer.confirm("Apply these changes?"):
                summary = {"writes": 0, "converged": "skipped"}
                return Outcome(summary, cli.EXIT_OK, {"skipped": True, "plan": p.to_json()}, "skipped")
        result = portal.apply(templates, allow_destructive=allow_destructive, dry_run=dry_run)

        def human() -> None:
            if dry_run:
                cli.stdout.print(result.plan.render())
            else:
                line = f"{result.portal}: {result.write_calls} writes in {result.requests} requests"
                if not result.converged:
                    line += f"; still differs: {'; '.join(result.remaining)}"
                cli.stdout.print(line, markup=False, highlight=False)
            if result.manual and not dry_run:
                cli.stdout.print("Manual steps (REST cannot set CRM role permissions; NOT done):")
            for c in result.manual if not dry_run else []:
                cli.stdout.print(f"  [ ] {c.note}", highlight=False)

        summary = {"writes": result.write_calls, "requests": result.requests, "converged": result.converged}
        code = cli.EXIT_OK if result.converged or dry_run else cli.EXIT_ERROR
        return Outcome(summary, code, result.to_json(), human)

    raise typer.Exit(_each_portal(ctx, portal, all_portals, db, work))


def drift_command(
    ctx: typer.Context,
    files: OptFilesArg = None,
    portal: cli.PortalsOpt = None,
    all_portals: cli.AllOpt = False,
    db: cli.DbOpt = None,
) -> None:
    """List what changed on the portal by hand since the last apply (exit 5 on drift).

    With FILEs, only their processes, and the portal is also compared with the templates. Without
    FILEs, a store with no apply recorded for this portal is an error (exit 1), never "no drift".
    """
    from connector.api import load

    templates = load(files) if files else None

    def work(portal: Portal) -> Outcome:
        d = portal.drift(templates)
        code = cli.EXIT_CHANGES if d.has_drift else cli.EXIT_OK
        return Outcome({"drift": len(d.items)}, code, d.to_json(), d.render())

    raise typer.Exit(_each_portal(ctx, portal, all_portals, db, work))


def adopt_command(
    ctx: typer.Context,
    portal: cli.PortalOpt = ...,  # type: ignore[assignment]
    type_ref: Annotated[str, typer.Option("--type", "-t", help="entityTypeId, code or exact title.")] = ...,  # type: ignore[assignment]
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the TOML here.")] = None,
    code: Annotated[
        str | None, typer.Option("--code", help="Process code for the template (default: from the portal).")
    ] = None,
    db: cli.DbOpt = None,
) -> None:
    """Write a template from an existing smart process and record its ids in the portal's id map."""
    from connector.api import Portal
    from connector.templates import to_toml

    client = cli.open_client(ctx, portal)
    with Portal(cli.portal_ref(ctx, portal), client, store=cli.resolve_db(ctx, portal, db)) as p:
        template = p.adopt(type_ref, code=code)
    text = to_toml(template)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        cli.emit(ctx, {"written": str(output), "code": template.code}, f"wrote {output} ({template.code})")
    else:
        cli.emit(ctx, {"code": template.code, "toml": text}, lambda: cli.stdout.out(text, highlight=False))


def register(app: typer.Typer) -> None:
    """Add plan / apply / drift / adopt to the `b24sync` app."""
    app.command("plan")(plan_command)
    app.command("apply")(apply_command)
    app.command("drift")(drift_command)
    app.command("adopt")(adopt_command)
