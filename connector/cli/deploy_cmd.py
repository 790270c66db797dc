"""`b24sync plan | apply | drift | adopt`: deploy templates to one or many portals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from connector.cli import main as cli

FilesArg = Annotated[
    list[Path], typer.Argument(help="Template files (TOML), e.g. mappings/hr_candidates.toml.")
]
OptFilesArg = Annotated[list[Path] | None, typer.Argument(help="Limit to these templates' processes.")]
DestructiveOpt = Annotated[
    bool, typer.Option("--allow-destructive", help="Also delete what the template lacks.")
]


def _each_portal(
    ctx: typer.Context,
    portals: list[str] | None,
    all_portals: bool,
    db: Path | None,
    work: Callable[[Any, Any], tuple[dict[str, Any], int]],
) -> int:
    """Run `work(client, store)` per portal (own id map each); a summary table ends a multi-portal run."""
    from connector.store import Store

    refs = cli.portal_refs(ctx, portals, all_portals)
    if db is not None and len(refs) > 1:
        raise cli.UsageError("--db names one store file; with several portals each uses its configured store")
    rows, worst = [], 0
    for ref in refs:
        client = cli.open_client(ctx, ref)
        store = Store.open(cli.resolve_db(ctx, ref, db))
        try:
            summary, code = work(client, store)
        finally:
            close = getattr(store, "close", None)
            if callable(close):
                close()
        rows.append({"portal": ref.name, **summary})
        worst = max(worst, code)
    if len(rows) > 1:
        table = Table(title="summary")
        for key in rows[0]:
            table.add_column(key)
        for row in rows:
            table.add_row(*(str(row.get(k, "")) for k in rows[0]))
        cli.emit(ctx, {"summary": rows}, table)
    return worst


def plan_command(
    ctx: typer.Context,
    files: FilesArg,
    portal: cli.PortalsOpt = None,
    all_portals: cli.AllOpt = False,
    db: cli.DbOpt = None,
    allow_destructive: DestructiveOpt = False,
) -> None:
    """Show what apply would do, per object in code terms (exit 0 nothing to do, 2 changes)."""
    from connector.deploy import plan
    from connector.templates import load_templates

    templates = load_templates(files)

    def work(client: Any, store: Any) -> tuple[dict[str, Any], int]:
        p = plan(client, templates, store, allow_destructive=allow_destructive)
        cli.emit(ctx, p.to_json(), p.render())
        return p.counts(), cli.EXIT_USAGE if p.has_changes else cli.EXIT_OK

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
    """Apply templates: batched writes in dependency order; every portal id goes to the id map."""
    from connector.deploy import apply, plan
    from connector.templates import load_templates

    templates = load_templates(files)

    def work(client: Any, store: Any) -> tuple[dict[str, Any], int]:
        if not (yes or dry_run or cli.json_mode(ctx)):
            p = plan(client, templates, store, allow_destructive=allow_destructive)
            cli.stdout.print(p.render())
            if not p.has_changes:
                result = apply(client, templates, store, allow_destructive=allow_destructive)
                return {"writes": 0, "converged": True}, cli.EXIT_OK
            if not typer.confirm("Apply these changes?"):
                return {"writes": 0, "converged": "skipped"}, cli.EXIT_OK
        result = apply(client, templates, store, allow_destructive=allow_destructive, dry_run=dry_run)

        def human() -> None:
            cli.stdout.print(
                result.plan.render()
                if dry_run
                else f"{result.portal}: {result.write_calls} writes in {result.requests} requests"
                + ("" if result.converged else f"; still differs: {result.remaining}")
            )
            for c in result.manual:
                cli.stdout.print(f"  manual (not done): {c.note}", highlight=False)

        cli.emit(ctx, result.to_json(), human)
        summary = {"writes": result.write_calls, "requests": result.requests, "converged": result.converged}
        return summary, cli.EXIT_OK if result.converged or dry_run else cli.EXIT_ERROR

    raise typer.Exit(_each_portal(ctx, portal, all_portals, db, work))


def drift_command(
    ctx: typer.Context,
    files: OptFilesArg = None,
    portal: cli.PortalsOpt = None,
    all_portals: cli.AllOpt = False,
    db: cli.DbOpt = None,
) -> None:
    """List what changed on the portal by hand since the last apply (exit 2 on drift)."""
    from connector.deploy import drift
    from connector.templates import load_templates

    templates = load_templates(files) if files else None

    def work(client: Any, store: Any) -> tuple[dict[str, Any], int]:
        d = drift(client, store, templates)
        cli.emit(ctx, d.to_json(), d.render())
        return {"drift": len(d.items)}, cli.EXIT_USAGE if d.has_drift else cli.EXIT_OK

    raise typer.Exit(_each_portal(ctx, portal, all_portals, db, work))


def adopt_command(
    ctx: typer.Context,
    portal: cli.PortalOpt = ...,  # type: ignore[assignment]
    type_ref: Annotated[str, typer.Option("--type", "-t", help="entityTypeId, code or exact title.")] = ...,  # type: ignore[assignment]
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the TOML here.")] = None,
    db: cli.DbOpt = None,
) -> None:
    """Write a template from an existing smart process."""
    from connector.deploy import AdoptError, adopt
    from connector.store import Store
    from connector.templates import to_toml

    client = cli.open_client(ctx, portal)
    store = Store.open(cli.resolve_db(ctx, portal, db)) if db is not None else None
    try:
        template = adopt(client, type_ref, store)
    except AdoptError as exc:
        raise cli.UsageError(str(exc)) from None
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
