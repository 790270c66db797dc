"""`b24sync emulator serve`: run a fake portal on a loopback port until SIGINT/SIGTERM."""

from __future__ import annotations

import ipaddress
import re
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import typer

CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # it goes into the URL path: /rest/1/<code>/


def _check_code(code: str | None) -> None:
    if code is not None and not CODE_RE.match(code):
        raise ValueError(f"--code {code!r} cannot be a webhook code: use 1 to 64 letters, digits, '_' or '-' "
                         "(it is part of the URL path)")


def _wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


emulator_app = typer.Typer(
    help="A local fake Bitrix24 portal for trying templates and jobs.", no_args_is_help=True
)


@emulator_app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)."),
    port: int = typer.Option(8765, help="TCP port (0 = any free port)."),
    state: Path | None = typer.Option(
        None, "--state", help="SQLite file that keeps the portal across restarts."
    ),
    limits: str = typer.Option("off", help="Rate limits: off | standard | enterprise."),
    faults: str | None = typer.Option(None, help="Fault spec, e.g. '5xx=0.05,drop=crm.item.add:0.1,seed=7'."),
    code: str | None = typer.Option(None, help="Webhook code (default: random, or the one kept in --state)."),
    tz: str = typer.Option("+03:00", help="Portal UTC offset."),
    deviate: list[str] | None = typer.Option(None, "--deviate", hidden=True),  # emulator/deviations.py
) -> None:
    """Serve a portal; prints its webhook URL as the first line, then runs until interrupted."""
    from connector.emulator import Emulator, serve
    from connector.emulator.server import settle_heap

    try:
        _check_code(code)
        emu = Emulator(
            limits=limits, faults=faults, tz=tz, state_file=str(state) if state else None, webhook_code=code
        )
        if deviate:
            from connector.emulator.deviations import enable

            enable(emu, deviate)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    settle_heap()  # this process only serves the loaded portal: its state leaves the cyclic GC's walks
    try:
        server = serve(emu, host, port)
    except OSError as err:
        typer.echo(f"error: cannot listen on {host}:{port}: {err.strerror or err}", err=True)
        raise typer.Exit(1) from None
    url = server.webhook_url
    if _wildcard(host):
        bound = server.base_url.split("//", 1)[1].rsplit(":", 1)[0]  # the host part of http://host:port
        url = url.replace(f"//{bound}:", "//127.0.0.1:", 1)  # 0.0.0.0 is no address to connect to
        print(
            f"warning: --host {host} serves on every network interface: anyone who can reach this machine "
            "and learns the webhook code can use this portal; b24sync clients on other machines also need "
            "allow_http = true. Use the default 127.0.0.1 unless you mean that.",
            file=sys.stderr,
            flush=True,
        )
    print(url, flush=True)
    print(
        f"emulator: limits={limits} faults={faults or 'none'} state={state or 'memory'}; Ctrl+C to stop",
        file=sys.stderr,
        flush=True,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        emu.close()


def register(app: typer.Typer) -> None:
    """Add the `emulator` command group to the main CLI."""
    app.add_typer(emulator_app, name="emulator")
