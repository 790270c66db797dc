"""`b24sync demo`: the whole story on a local emulator, with files you can open afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from connector.cli import main


def register(app: typer.Typer) -> None:
    """Add the `demo` command."""
    app.command("demo")(demo)


def demo(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the store, exports and reports.")
    ] = Path("demo-out"),
    mappings: Annotated[
        Path, typer.Option("--mappings", help="Folder of templates to deploy.")
    ] = Path("mappings"),
    days: Annotated[int, typer.Option(min=1, max=60, help="Days of simulated portal activity.")] = 6,
    items: Annotated[int, typer.Option(min=1, max=500, help="Local rows inserted per process.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed (the story is reproducible).")] = 7,
) -> None:
    """Deploy the shipped templates to a loopback emulator, sync both ways for some days, write reports."""
    from connector.demo import run_demo

    if not mappings.is_dir() or not any(mappings.glob("*.toml")):
        raise main.UsageError(
            f"--mappings {mappings}: no *.toml templates there (run from the project folder)"
        )

    def say(message: str) -> None:
        if not main.json_mode(ctx):
            main.stderr.print(message, highlight=False)

    result = run_demo(mappings, out, days=days, items=items, seed=seed, say=say)

    def human() -> None:
        from rich.table import Table

        table = Table(title="b24sync demo")
        table.add_column("step")
        table.add_column("figures")
        for s in result.steps:
            figures = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.items() if k != "step")
            table.add_row(s["step"], figures)
        main.stdout.print(table)
        main.stdout.print(f"store: {result.store}  (open it with sqlite3 or Datasette)")
        for path in result.outputs:
            main.stdout.print(f"  {path}")

    main.emit(ctx, {"webhook_url": result.webhook_url, "store": result.store, "steps": result.steps,
                    "outputs": result.outputs}, human)
