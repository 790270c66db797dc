"""`b24sync plan | apply | drift | adopt`: deploy templates to one or many portals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from connector.cli import main as cli
from connector.cli.errors import describe

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
    human: Any = None


# Errors that end one portal's run without stopping the others in a multi-portal run.
PORTAL_ERRORS = ("B24Error", "SchemaWriteError", "StoreError", "ConfigError", "OSError", "DriftError")

Work = Callable[[Any, Any], Outcome]
MissingStore = Callable[[Any, Path], Outcome]


def _each_portal(
    ctx: typer.Context,
    portals: list[str] | None,
    all_portals: bool,
    db: Path | None,
    work: Work,
    missing: MissingStore | None = None,
) -> int:
    """Run `work(client, store)` per portal (own store and id map each); a summary table ends the run.

    With several portals a failing portal is reported in the summary and the others still run;
    `--json` then prints one document: `{"portals": [...], "summary": [...]}`. When `missing` is
    given (commands that only read), a store file that does not exist is not created:
    `missing(client, path)` runs instead. Otherwise a store created by a run that fails before the
    portal ever answered is removed again.
    """
    from connector.deploy.model import show
    from connector.store import Store

    refs = cli.portal_refs(ctx, portals, all_portals)
    if db is not None and len(refs) > 1:
        raise cli.UsageError("--db names one store file; with several portals each uses its configured store")
    if len(refs) == 1:
        outcome = _run_one(ctx, refs[0], db, work, Store, missing)
        cli.emit(ctx, outcome.data, outcome.human)
        return outcome.code
    rows, documents, worst = [], [], 0
    for ref in refs:
        try:
            outcome = _run_one(ctx, ref, None, work, Store, missing)
        except Exception as exc:  # noqa: BLE001 - one portal's failure must not stop the others
            if not {c.__name__ for c in type(exc).__mro__} & set(PORTAL_ERRORS):
                raise
            known = describe(exc, portal=ref.key)
            text = known[0] if known is not None else str(exc)
            outcome = Outcome({"error": text}, cli.EXIT_ERROR, {"error": text}, f"error: {text}")
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


def _run_one(
    ctx: typer.Context, ref: Any, db: Path | None, work: Work, store_cls: Any, missing: MissingStore | None
) -> Outcome:
    client = cli.open_client(ctx, ref)
    path = cli.resolve_db(ctx, ref, db)
    if missing is not None and str(path) != ":memory:" and not path.exists():
        return missing(client, path)
    with cli.new_store_guard(path, client):
        store = store_cls.open(path)
        try:
            return work(client, store)
        finally:
            close = getattr(store, "close", None)
            if callable(close):
                close()


def plan_command(
    ctx: typer.Context,
    files: FilesArg,
    portal: cli.PortalsOpt = None,
    all_portals: cli.AllOpt = False,
    db: cli.DbOpt = None,
    allow_destructive: DestructiveOpt = False,
) -> None:
    """Show what apply would do, per object in code terms (exit 0 nothing to do, 5 changes)."""
    from connector.deploy import plan
    from connector.templates import load_templates

    templates = load_templates(files)

    def work(client: Any, store: Any) -> Outcome:
        p = plan(client, templates, store, allow_destructive=allow_destructive)
        code = cli.EXIT_CHANGES if p.has_changes else cli.EXIT_OK
        return Outcome(p.counts(), code, p.to_json(), p.render())

    def missing(client: Any, path: Path) -> Outcome:  # plan only reads: no store file is created
        return work(client, None)

    raise typer.Exit(_each_portal(ctx, portal, all_portals, db, work, missing))


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
    from connector.deploy import apply, plan
    from connector.sync import prepare_store
    from connector.templates import load_templates

    templates = load_templates(files)
    if cli.json_mode(ctx) and not (yes or dry_run):
        raise cli.UsageError("apply with --json cannot ask for confirmation: add --yes (or --dry-run)")

    def work(client: Any, store: Any) -> Outcome:
        if not (yes or dry_run):
            p = plan(client, templates, store, allow_destructive=allow_destructive)
            cli.stdout.print(p.render())
            if p.has_changes and not typer.confirm("Apply these changes?"):
                summary = {"writes": 0, "converged": "skipped"}
                return Outcome(summary, cli.EXIT_OK, {"skipped": True, "plan": p.to_json()}, "skipped")
        result = apply(client, templates, store, allow_destructive=allow_destructive, dry_run=dry_run)
        if not dry_run:
            prepare_store(store, templates)

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
    from connector.deploy import drift, portal_key_of
    from connector.deploy.drift import no_apply_recorded
    from connector.templates import load_templates

    templates = load_templates(files) if files else None

    def work(client: Any, store: Any) -> Outcome:
        d = drift(client, store, templates)
        code = cli.EXIT_CHANGES if d.has_drift else cli.EXIT_OK
        return Outcome({"drift": len(d.items)}, code, d.to_json(), d.render())

    def missing(client: Any, path: Path) -> Outcome:
        if templates is None:
            raise no_apply_recorded(portal_key_of(client), f"{path} (the file does not exist)", [])
        return work(client, None)

    raise typer.Exit(_each_portal(ctx, portal, all_portals, db, work, missing))


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
    from connector.deploy import AdoptError, adopt
    from connector.store import Store
    from connector.templates import to_toml

    client = cli.open_client(ctx, portal)
    path = cli.resolve_db(ctx, portal, db)
    with cli.new_store_guard(path, client):
        store = Store.open(path)
        try:
            template = adopt(client, type_ref, store, code=code)
        except AdoptError as exc:
            raise cli.UsageError(str(exc)) from None
        finally:
            store.close()
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
