"""The `b24sync` command: global options, portal resolution, exit codes, and `call`."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from connector.config import Config, ConfigError, PortalRef, load_config, resolve_portal

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FAILED_ROWS = 0, 1, 2, 3
AREAS = ("emulator_cmd", "template_cmd", "deploy_cmd", "sync_cmd", "report_cmd", "jobs_cmd", "demo_cmd",
         "doctor_cmd")

app = typer.Typer(
    name="b24sync",
    help="Bitrix24 smart processes: deploy templates, two-way sync with SQLite, local reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags shown as flags, not as "--json <bool>"
)
stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

PortalOpt = Annotated[
    str, typer.Option("--portal", "-p", help="A configured portal name, or a webhook URL https://host/rest/<user>/<code>/")
]
PortalsOpt = Annotated[
    list[str] | None,
    typer.Option("--portal", "-p", help="Portal name or webhook URL; repeat for several portals."),
]
AllOpt = Annotated[bool, typer.Option("--all", help="Every portal in the config file.")]
DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="The local store file (default: the portal's store in the config)."),
]


class UsageError(Exception):
    """Bad command-line input: exit code 2."""


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Config file (default $B24SYNC_CONFIG or ./b24sync.toml)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More logging (-v info, -vv debug).")
    ] = 0,
) -> None:
    """Bitrix24 smart processes: deploy templates, two-way sync with SQLite, local reports."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = {"config_path": config, "json": json_out, "verbose": verbose}


def get_config(ctx: typer.Context) -> Config:
    """The loaded config (read once per command)."""
    obj = ctx.find_root().obj
    if "config" not in obj:
        obj["config"] = load_config(obj.get("config_path"))
    return obj["config"]


def json_mode(ctx: typer.Context) -> bool:
    """Whether `--json` was given."""
    return bool((ctx.find_root().obj or {}).get("json"))


def portal_ref(ctx: typer.Context, portal: str) -> PortalRef:
    """Resolve `--portal` (name or webhook URL)."""
    return resolve_portal(get_config(ctx), portal)


def portal_refs(ctx: typer.Context, portals: list[str] | None, all_portals: bool) -> list[PortalRef]:
    """Resolve a repeated `--portal` or `--all` into portals, in the order given."""
    config = get_config(ctx)
    names = list(portals or [])
    if all_portals and names:
        raise UsageError("give either --portal (may repeat) or --all, not both")
    if all_portals:
        names += [n for n in config.portals if n not in names]
    if not names:
        raise UsageError("give --portal NAME|URL (may repeat) or --all")
    return [resolve_portal(config, n) for n in names]


def open_client(ctx: typer.Context, portal: str | PortalRef) -> Any:
    """A REST client for the portal (one per portal per command)."""
    from connector.api import client_for

    return client_for(portal if isinstance(portal, PortalRef) else portal_ref(ctx, portal))


def resolve_db(ctx: typer.Context, portal: str | PortalRef | None, db: Path | None) -> Path:
    """The store file: `--db`, else the portal's configured store; its folder is created."""
    if db is None:
        if portal is None:
            raise UsageError("give --db PATH or --portal NAME")
        ref = portal if isinstance(portal, PortalRef) else portal_ref(ctx, portal)
        db = ref.store
    db.parent.mkdir(parents=True, exist_ok=True)
    return db


def emit(ctx: typer.Context, data: Any, human: Any = None) -> None:
    """Print `data` as JSON with `--json`, else the human form (text, a rich renderable, or a callable)."""
    if json_mode(ctx):
        stdout.out(json.dumps(data, ensure_ascii=False, indent=2, default=str), highlight=False)
    elif callable(human):
        human()
    elif human is not None:
        stdout.print(human)
    else:
        stdout.out(json.dumps(data, ensure_ascii=False, indent=2, default=str), highlight=False)


@app.command("call")
def call_command(
    ctx: typer.Context,
    method: Annotated[str, typer.Argument(help="REST method, e.g. crm.item.list or batch.")],
    params: Annotated[str, typer.Argument(metavar="PARAMS_JSON", help="Parameters as a JSON object.")] = "{}",
    portal: PortalOpt = ...,  # type: ignore[assignment]
) -> None:
    """Make one REST call through the client (limits, retries) and print the JSON result."""
    try:
        parsed = json.loads(params)
    except json.JSONDecodeError as exc:
        raise UsageError(f"PARAMS_JSON is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise UsageError("PARAMS_JSON must be a JSON object, e.g. '{\"entityTypeId\": 1032}'")
    client = open_client(ctx, portal)
    response = client.call(method, parsed)
    out: dict[str, Any] = {"result": response.result}
    for extra in ("total", "next"):
        if getattr(response, extra, None) is not None:
            out[extra] = getattr(response, extra)
    data = out if json_mode(ctx) else response.result
    stdout.out(json.dumps(data, ensure_ascii=False, indent=2, default=str), highlight=False)


AREAS += ("init_cmd",)  # `init` and `portal add`


def _register_areas() -> None:
    for area in AREAS:
        try:
            module = importlib.import_module(f"connector.cli.{area}")
        except ModuleNotFoundError as exc:
            if exc.name == f"connector.cli.{area}":
                continue
            raise
        register: Callable[[typer.Typer], None] = module.register
        register(app)
    for group in app.registered_groups:  # sub-apps (emulator, template, conflicts) get plain help too
        if group.typer_instance is not None:
            group.typer_instance.rich_markup_mode = None


_register_areas()


def _exit_code_for(exc: BaseException) -> int | None:
    """Map known errors to exit codes (2 bad input, 1 runtime failure); None for a bug (traceback)."""
    import sqlite3

    from connector.rest import B24Error
    from connector.store import StoreError

    if isinstance(exc, (UsageError, ConfigError, ValueError)):  # TemplateError, JobConfigError, ... too
        return EXIT_USAGE
    if isinstance(exc, (B24Error, StoreError, sqlite3.Error, OSError, RuntimeError)):
        return EXIT_ERROR
    return None


GLOBAL_FLAGS = ("--json", "--verbose", "-v", "-vv", "-vvv")
GLOBAL_WITH_VALUE = ("--config", "-c")


def hoist_global_options(argv: list[str]) -> list[str]:
    """Let `--json`, `-v` and `--config FILE` stand anywhere: `plan F --json` means `--json plan F`."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest += argv[i:]
            break
        if token in GLOBAL_FLAGS or token.startswith("--config="):
            front.append(token)
        elif token in GLOBAL_WITH_VALUE and i + 1 < len(argv):
            front += [token, argv[i + 1]]
            i += 1
        else:
            rest.append(token)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `b24sync` console script: known errors become a message and an exit code."""
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args, prog_name="b24sync")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_ERROR)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - every known error leaves as a message and an exit code
        code = _exit_code_for(exc)
        if code is None:
            raise
        stderr.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return code
    return EXIT_OK

