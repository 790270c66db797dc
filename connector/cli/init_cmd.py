"""`b24sync init NAME` and `b24sync portal add NAME`: write the config file, never a secret into it.

The file names the environment variable that holds the portal's webhook URL (`webhook_env`); the
URL itself, with its secret code, stays in the environment.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from connector.cli import main

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PLANS = ("standard", "enterprise")

HEADER = """\
# b24sync configuration, written by `b24sync init`. Every setting: config.example.toml.
# Secrets never live here: each portal names the environment variable that holds its webhook URL.

[defaults]
store = "data/{portal}.db"          # each portal's local SQLite store; {portal} is the portal's name
conflict_policy = "newest-wins"     # remote-wins | local-wins | newest-wins | merge | manual
"""

portal_app = typer.Typer(help="Portals in the config file.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The portal's name, used as --portal NAME.")]
EnvOpt = Annotated[
    str | None,
    typer.Option("--webhook-env", metavar="VAR",
                 help="Variable holding the webhook URL (default B24SYNC_PORTAL_<NAME>_WEBHOOK)."),
]
PlanOpt = Annotated[str, typer.Option("--plan", metavar="standard|enterprise", help="The portal's plan.")]
StoreOpt = Annotated[
    str | None, typer.Option("--store", metavar="PATH", help="Its local store (default: data/<NAME>.db).")
]


def config_target(ctx: typer.Context) -> Path:
    """The file to write: `--config FILE`, else $B24SYNC_CONFIG, else ./b24sync.toml."""
    from connector.config import CONFIG_ENV, DEFAULT_CONFIG_FILES  # the config's models: not for --help

    given = (ctx.find_root().obj or {}).get("config_path")
    return Path(given or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_FILES[0])


def portal_section(name: str, webhook_env: str | None, plan: str, store: str | None) -> str:
    """The `[portals.NAME]` TOML section; raises the CLI's UsageError on a bad name, variable or plan."""
    from connector.config import env_name

    usage = main.UsageError
    if "://" in name:  # never echo a URL: its path holds the webhook's secret code
        raise usage("NAME is the portal's name, not its URL: put the URL in the environment "
                    "(export B24SYNC_PORTAL_<NAME>_WEBHOOK=...) and run `b24sync init NAME`")
    if not NAME_RE.match(name):
        raise usage(f"portal name {name!r} is not allowed: use letters, digits, '-' and '_' "
                    "(starting with a letter or digit), e.g. acme or client-2")
    variable = webhook_env or env_name(name, "WEBHOOK")
    if not ENV_RE.match(variable):
        raise usage(f"--webhook-env {variable!r} is not an environment variable name: "
                    "use letters, digits and '_' (not starting with a digit)")
    if plan not in PLANS:
        raise usage(f"--plan {plan!r} is not a plan; allowed: {', '.join(PLANS)}")
    settings = [
        (f"plan = {json.dumps(plan)}", "standard (50 requests, drains 2/s) | enterprise (250, 5/s)"),
        (f"webhook_env = {json.dumps(variable)}", "the variable holding https://<portal>/rest/<user>/<code>/"),
    ]
    if store:
        settings.append((f"store = {json.dumps(store, ensure_ascii=False)}", "its local SQLite store"))
    width = max(36, *(len(line) + 2 for line, _ in settings))
    lines = [f"[portals.{name}]", *(f"{line.ljust(width)}# {note}" for line, note in settings)]
    return "\n".join(lines) + "\n"


def write_checked(path: Path, text: str, name: str) -> None:
    """Write `text` to `path` only if it loads as a config with portal `name` (via a temporary file)."""
    from connector.config import ConfigError, load_config

    if path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(text, encoding="utf-8")
        try:
            config = load_config(temp)
        except ConfigError as exc:
            raise ConfigError(f"{path} left unchanged: the new text would not load: {exc}") from None
        if name not in config.portals:
            raise ConfigError(f"{path} left unchanged: the new text has no portal {name!r}")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _report(ctx: typer.Context, path: Path, name: str, variable: str, verb: str) -> None:
    """Say what was written and whether the variable is set (its value redacted, never shown)."""
    from connector.config import DEFAULT_CONFIG_FILES, WEBHOOK_RE, redact

    value = os.environ.get(variable)
    data: dict[str, Any] = {"config": str(path), "portal": name, "webhook_env": variable,
                            "webhook_env_set": bool(value)}
    if value:
        data["webhook"] = redact(value)
        state = f"${variable} is set ({redact(value)})"
        if not WEBHOOK_RE.match(value):
            state += "; it does not look like https://<portal>/rest/<user>/<code>/ — fix it before use"
    else:
        state = (f"${variable} is not set yet: export {variable}=https://<portal>/rest/<user>/<code>/ "
                 "(the incoming webhook's URL)")

    config = "" if str(path) == DEFAULT_CONFIG_FILES[0] else f" --config {path}"

    def human() -> None:
        main.stdout.print(f"{verb} {path}: portal {name!r}; its webhook URL is read from ${variable}",
                          markup=False, highlight=False)
        main.stdout.print(f"{state}. Try: b24sync{config} call crm.type.list --portal {name}",
                          markup=False, highlight=False)

    main.emit(ctx, data, human)


def init_command(
    ctx: typer.Context,
    name: NameArg,
    webhook_env: EnvOpt = None,
    plan: PlanOpt = "standard",
    store: StoreOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config file.")] = False,
) -> None:
    """Write the config file (./b24sync.toml or --config FILE) with one portal; secrets stay in the env."""
    from connector.config import env_name

    path = config_target(ctx)
    section = portal_section(name, webhook_env, plan, store)
    if path.exists() and not force:
        raise main.UsageError(f"{path} already exists; `b24sync init` does not overwrite it without --force "
                              f"(to add a portal to it: b24sync portal add {name})")
    write_checked(path, HEADER + "\n" + section, name)
    _report(ctx, path, name, webhook_env or env_name(name, "WEBHOOK"), "wrote")


@portal_app.command("add")
def portal_add_command(
    ctx: typer.Context,
    name: NameArg,
    webhook_env: EnvOpt = None,
    plan: PlanOpt = "standard",
    store: StoreOpt = None,
) -> None:
    """Add a portal to the config file (created if missing); an existing portal is never replaced."""
    from connector.config import env_name, load_config

    path = config_target(ctx)
    section = portal_section(name, webhook_env, plan, store)
    if not path.exists():
        init_command(ctx, name, webhook_env, plan, store, force=False)
        return
    config = load_config(path)
    if name in config.portals:
        raise main.UsageError(f"portal {name!r} is already in {path}; edit its [portals.{name}] section")
    text = path.read_text(encoding="utf-8")
    write_checked(path, text + ("" if text.endswith("\n") or not text else "\n") + "\n" + section, name)
    _report(ctx, path, name, webhook_env or env_name(name, "WEBHOOK"), "added to")


def register(app: typer.Typer) -> None:
    """Add `init` and `portal add` to the b24sync app."""
    app.command("init")(init_command)
    app.add_typer(portal_app, name="portal")
