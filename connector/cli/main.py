"""The `b24sync` command: global options, portal resolution, exit codes, and `call`."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from typer.core import TyperArgument, TyperGroup

from connector.cli.errors import bug_line, describe, masked_traceback, write_crash_report
from connector.errors import (
    EXIT_BUG,
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_FAILED_ROWS,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
)

if TYPE_CHECKING:  # rich, the config's pydantic models and the client: imported when first used
    from rich.console import Console

    from connector.config import Config, PortalRef
    from connector.rest import Client

    stdout: Console  # `main.stdout` / `main.stderr`: made on first use by the module's __getattr__
    stderr: Console

_typer_click: ModuleType
try:  # typer >= 0.20 carries its own copy of click; its exceptions are not click's
    from typer._click import exceptions as _typer_click
except ImportError:  # pragma: no cover - older typer uses click itself
    import click

    _typer_click = click.exceptions

if TYPE_CHECKING:  # the click classes typer builds its commands from (annotations only)
    from typer._click import Command as ClickCommand
    from typer._click import Context as ClickContext
    from typer._click import Parameter as ClickParameter


__all__ = ["EXIT_BUG", "EXIT_CHANGES", "EXIT_ERROR", "EXIT_FAILED_ROWS", "EXIT_INTERRUPTED", "EXIT_LOCKED",
           "EXIT_OK", "EXIT_USAGE", "UsageError", "app", "main"]

AREAS = ("emulator_cmd", "template_cmd", "deploy_cmd", "sync_cmd", "report_cmd", "jobs_cmd", "demo_cmd",
         "doctor_cmd", "init_cmd")

# Help shows what to type, not Python types ("--portal NAME|URL", not "--portal <str>").
METAVARS = {
    "portal": "NAME|URL", "db": "FILE", "config": "FILE", "template": "FILE", "output": "FILE",
    "state": "FILE",
    "type": "CODE", "type_code": "CODE", "types": "CODE", "code": "CODE", "type_ref": "ID|CODE|TITLE",
    "jobs_dir": "DIR", "mappings": "DIR", "out": "DIR", "only": "NAME", "policy": "POLICY", "where": "SQL",
    "columns": "A,B,...", "fmt": "FORMAT", "host": "HOST", "port": "PORT", "limits": "PLAN", "faults": "SPEC",
    "tz": "OFFSET", "take": "SIDE", "seed": "N", "items": "N", "days": "N",
}

TYPER_EXITS = (typer.Exit, typer.Abort, _typer_click.ClickException)


def click_exits() -> tuple[type[BaseException], ...]:
    """typer's exits, and click's own once something has imported click (typer does not need it)."""
    click = sys.modules.get("click")
    if click is None:  # not imported: nothing can raise its exceptions
        return TYPER_EXITS
    return (*TYPER_EXITS, click.ClickException, click.exceptions.Exit, click.exceptions.Abort)


class B24Group(TyperGroup):
    """The root command: global options may stand anywhere, and no error leaves as a traceback."""

    argv: list[str] = []

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        _plain_metavars(self)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        self.argv = hoist_global_options(list(sys.argv[1:] if args is None else args))
        return super().main(args=self.argv, prog_name=prog_name or "b24sync", complete_var=complete_var,
                            standalone_mode=standalone_mode, windows_expand_args=windows_expand_args, **extra)

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except click_exits():
            raise
        except KeyboardInterrupt:
            console("stderr").print("interrupted: stopped before the command finished", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:  # `b24sync ... | head`: typer ends quietly
            raise
        except Exception as exc:  # noqa: BLE001 - every error leaves as one line and an exit code
            raise typer.Exit(report_failure(ctx, exc, self.argv)) from None


def _plain_metavars(command: ClickCommand) -> None:
    """Give every option and argument a metavar that names what to type (recursively)."""
    for param in command.params:
        if isinstance(param, TyperArgument):
            param.metavar = param.metavar or (param.name or "value").upper()
            param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]  # no "<list[Path]>"
            continue
        if param.metavar is not None or getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        param.metavar = METAVARS.get(param.name or "", _type_name(param))
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)


def _type_name(param: ClickParameter) -> str:
    desc = getattr(param, "type_descriptor", None)
    if desc is not None and desc.is_choice and desc.choices:
        return "|".join(str(c) for c in desc.choices)
    if desc is not None and desc.is_path:
        return "PATH"
    bare = param.bare_type() if hasattr(param, "bare_type") else ""
    return {"int": "N", "float": "NUMBER"}.get(str(bare), "TEXT")


def report_failure(ctx: ClickContext | None, exc: BaseException, argv: list[str]) -> int:
    """Print the one line for `exc` (and the traceback with -v for a bug); return the exit code."""
    from rich.markup import escape

    stderr = console("stderr")
    obj = (ctx.find_root().obj if ctx is not None else None) or {}
    verbose = int(obj.get("verbose") or 0) if isinstance(obj, dict) else 0
    facts = obj if isinstance(obj, dict) else {}
    known = describe(exc, facts.get("store"), facts.get("portal_host"))
    if known is not None:
        line, code = known
        if verbose >= 2:
            stderr.out(masked_traceback(exc), highlight=False)
        stderr.print(f"[bold red]error:[/] {escape(line)}", highlight=False)
        return code
    report = write_crash_report(exc, argv)
    if verbose:
        stderr.out(masked_traceback(exc), highlight=False)
    stderr.print(f"[bold red]error:[/] {escape(bug_line(exc, report))}", highlight=False)
    return EXIT_BUG


app = typer.Typer(
    name="b24sync",
    cls=B24Group,
    help="Bitrix24 smart processes: deploy templates, two-way sync with SQLite, local reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags shown as flags, not as "--json <bool>"
    context_settings={"help_option_names": ["-h", "--help"]},
)
_consoles: dict[str, Console] = {}


def console(stream: Literal["stdout", "stderr"]) -> Console:
    """The rich console printing to stdout or stderr, made on first use (`--help` needs no rich)."""
    if stream not in _consoles:
        from rich.console import Console

        _consoles[stream] = Console(stderr=stream == "stderr", soft_wrap=True)
    return _consoles[stream]


def __getattr__(name: str) -> Any:
    """`main.stdout` and `main.stderr`, the commands' consoles (see `console`)."""
    if name in ("stdout", "stderr"):
        return console(name)  # type: ignore[arg-type]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def _print_version(value: bool) -> None:
    if value:
        from connector import __version__

        typer.echo(f"b24sync {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Config file (default $B24SYNC_CONFIG or ./b24sync.toml)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True,
                          help="More logging: -v info and a bug's traceback, -vv debug and every traceback.")
    ] = 0,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """Bitrix24 smart processes: deploy templates, two-way sync with SQLite, local reports."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = {"config_path": config, "json": json_out, "verbose": verbose}


def get_config(ctx: typer.Context) -> Config:
    """The loaded config (read once per command)."""
    from connector.config import load_config

    obj = ctx.find_root().obj
    if "config" not in obj:
        obj["config"] = load_config(obj.get("config_path"))
    return obj["config"]


def json_mode(ctx: typer.Context) -> bool:
    """Whether `--json` was given."""
    return bool((ctx.find_root().obj or {}).get("json"))


def portal_ref(ctx: typer.Context, portal: str) -> PortalRef:
    """Resolve `--portal` (name or webhook URL)."""
    from connector.config import resolve_portal

    return resolve_portal(get_config(ctx), portal)


def portal_refs(ctx: typer.Context, portals: list[str] | None, all_portals: bool) -> list[PortalRef]:
    """Resolve a repeated `--portal` or `--all` into portals, in the order given."""
    from connector.config import resolve_portal

    config = get_config(ctx)
    names = list(portals or [])
    if all_portals and names:
        raise UsageError("give either --portal (may repeat) or --all, not both")
    if all_portals:
        names += [n for n in config.portals if n not in names]
    if not names:
        raise UsageError("give --portal NAME|URL (may repeat) or --all")
    return [resolve_portal(config, n) for n in names]


def open_client(ctx: typer.Context, portal: str | PortalRef) -> Client:
    """A REST client for the portal (one per portal per command); long limit pauses go to stderr."""
    from connector.api import client_for
    from connector.config import PortalRef

    ref = portal if isinstance(portal, PortalRef) else portal_ref(ctx, portal)
    _remember(ctx, portal_host=ref.key)
    client = client_for(ref)
    client.on_pause = lambda line: console("stderr").print(f"{ref.name}: {line}", markup=False,
                                                           highlight=False)
    return client


def _remember(ctx: typer.Context, **facts: Any) -> None:
    """Keep what the error messages name (the store file, the portal host) in the root context."""
    obj = ctx.find_root().obj
    if isinstance(obj, dict):
        obj.update(facts)


def store_path_of(ctx: typer.Context, portal: str | PortalRef) -> Path:
    """The portal's store file, found without its credentials (only the config or the URL is read)."""
    from connector.config import PortalRef

    if isinstance(portal, PortalRef):
        return portal.store
    config = get_config(ctx)
    if "://" not in portal and portal in config.portals:
        return config.store_path(portal)
    return portal_ref(ctx, portal).store


def resolve_db(ctx: typer.Context, portal: str | PortalRef | None, db: Path | None) -> Path:
    """The store file: `--db`, else the portal's configured store (no credentials needed).

    Nothing is created here: `Portal` creates the store only for commands that change it.
    """
    if db is None:
        if portal is None:
            raise UsageError("give --db PATH or --portal NAME")
        db = store_path_of(ctx, portal)
    _remember(ctx, store=str(db))
    return db


def emit(ctx: typer.Context, data: Any, human: Any = None) -> None:
    """Print `data` as JSON with `--json`, else the human form (text, a rich renderable, or a callable)."""
    stdout = console("stdout")
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
    from connector.api import Portal

    ref = portal_ref(ctx, portal)
    response = Portal(ref, open_client(ctx, ref), store=ref.store).call(method, parsed)
    out: dict[str, Any] = {"result": response.result}
    for extra in ("total", "next"):
        if getattr(response, extra, None) is not None:
            out[extra] = getattr(response, extra)
    data = out if json_mode(ctx) else response.result
    console("stdout").out(json.dumps(data, ensure_ascii=False, indent=2, default=str), highlight=False)


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
    """Entry point of the `b24sync` console script: every error becomes one line and an exit code.

    Errors inside a command are handled by `B24Group.invoke` (so typer's CliRunner sees them too);
    this catches what happens around it (option parsing, Ctrl-C before a command starts).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="b24sync")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_ERROR)
    except KeyboardInterrupt:
        console("stderr").print("interrupted", highlight=False)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every error leaves as one line and an exit code
        return report_failure(None, exc, hoist_global_options(args))
    return EXIT_OK

