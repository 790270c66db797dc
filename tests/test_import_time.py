"""What start-up imports (issue 13): pinned by module name, never by time (bench/bench_startup.py times it).

Each probe runs in a fresh interpreter and reads `sys.modules` afterwards, so a heavy import that creeps
back onto a path (a top-level `import rich` in a command module, `sqlite_utils` in the store) fails here.
Each path is also checked for what it must load, so an empty or broken probe cannot pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SYNC_PATH = "import connector.rest, connector.store, connector.sync, connector.templates"
# never needed to sync: the CLI's printing, exports, the emulator, deploy, the store's sqlite_utils face
NOT_FOR_SYNC = ("sqlite_utils", "rich", "openpyxl", "click", "typer", "connector.reports",
                "connector.emulator", "connector.deploy", "connector.doctor", "connector.cli",
                "connector.api", "connector.crm.schema", "connector.store.reader")
# `--help` lists commands: nothing that only running one needs
NOT_FOR_HELP = ("rich", "pydantic", "requests", "urllib3", "sqlite_utils", "sqlite3", "openpyxl", "click",
                "connector.api", "connector.config", "connector.rest", "connector.store",
                "connector.templates", "connector.sync", "connector.reports", "connector.deploy",
                "connector.emulator", "connector.doctor", "connector.demo", "connector.scheduler")


def modules_after(code: str) -> set[str]:
    """The modules in `sys.modules` after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport json as _j, sys as _s\nprint(_j.dumps(sorted(_s.modules)))\n"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of `names` (packages count with their submodules) are in `modules`."""
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in modules))


def test_the_sync_path_imports_neither_cli_nor_reports_nor_sqlite_utils() -> None:
    modules = modules_after(SYNC_PATH)
    assert {"connector.sync.engine", "connector.store.store", "connector.rest.client", "requests"} <= modules
    assert loaded(modules, NOT_FOR_SYNC) == []


def test_the_cli_module_imports_no_command_machinery() -> None:
    modules = modules_after("import connector.cli.main")
    commands = {"connector.cli.sync_cmd", "connector.cli.report_cmd", "connector.cli.deploy_cmd"}
    assert {"typer", *commands} <= modules
    assert loaded(modules, NOT_FOR_HELP) == []


def test_help_lists_every_command_without_importing_them() -> None:
    code = ("import contextlib, io\nfrom connector.cli.main import main\nout = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n    code = main(['--help'])\n"
            "assert code == 0, code\nprint('HELP', repr(out.getvalue()))")
    modules = modules_after(code)
    assert loaded(modules, NOT_FOR_HELP) == []


def test_help_still_shows_the_commands() -> None:
    done = subprocess.run([sys.executable, "-m", "connector", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    for command in ("sync", "export", "plan", "apply", "emulator", "template", "doctor", "init"):
        assert f" {command} " in done.stdout or f" {command}\n" in done.stdout, command


def test_the_api_imports_no_http_until_a_client_is_made() -> None:
    """A store-only export, report or status needs no REST client (requests, urllib3)."""
    modules = modules_after("import connector.api")
    assert "connector.store.store" in modules
    assert loaded(modules, ("requests", "urllib3", "connector.rest", "rich", "sqlite_utils")) == []


def test_the_export_path_imports_no_http_and_no_emulator() -> None:
    modules = modules_after("from connector.reports import export")
    assert {"connector.reports.export", "connector.store.reader"} <= modules
    assert loaded(modules, ("requests", "urllib3", "connector.rest", "rich", "sqlite_utils", "click",
                            "connector.emulator", "connector.deploy", "connector.cli")) == []


@pytest.mark.parametrize(("code", "expected"), [
    ("from connector.store import Store\nStore.open(':memory:').db['t'].insert({'a': 1})", "sqlite_utils"),
    ("import connector.cli.main as m\nassert type(m.stderr).__name__ == 'Console'", "rich.console"),
    ("from connector.store import StoreReader\nassert StoreReader.__module__ == 'connector.store.reader'",
     "connector.store.reader"),
    ("from connector.api import client_for\nfrom connector.config import Config, resolve_portal\n"
     "client_for(resolve_portal(Config(), 'https://example.bitrix24.ru/rest/1/abc/'))", "requests"),
])
def test_what_is_lazy_still_arrives_when_used(code: str, expected: str) -> None:
    assert expected in modules_after(code)


def test_the_cli_module_names_no_other_attribute() -> None:
    import connector.cli.main as cli

    assert cli.stdout is cli.stdout and cli.stderr is not cli.stdout
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        cli.nothing  # noqa: B018 - the module's __getattr__ answers stdout and stderr only


def test_the_store_package_names_no_other_attribute() -> None:
    import connector.store as store

    with pytest.raises(AttributeError, match="no attribute 'Reader'"):
        store.Reader  # noqa: B018 - the package's __getattr__ answers StoreReader and ProcessCatalog only


def test_a_store_only_export_and_status_reach_for_no_http(tmp_path: Path) -> None:
    """`b24sync export --db` and `status --db` read the store only: no REST client, no sync engine."""
    from connector.store import Store
    from connector.sync.engine import remember_templates
    from connector.templates import load_template

    template = load_template(ROOT / "mappings" / "hr_candidates.toml")
    db, out = tmp_path / "hr.db", tmp_path / "hr.csv"
    with Store.open(db) as store:
        store.ensure_process(template, lang="ru")
        remember_templates(store, [template])
        store.upsert_rows("candidate", [{"id": 7, "title": "Иванов"}, {"id": 8, "title": "Петров"}])
    code = ("import contextlib, io\nfrom connector.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main(['export', '--db', {str(db)!r}, '-t', 'candidate', '-o', {str(out)!r}]) == 0\n"
            f"    assert main(['status', '--db', {str(db)!r}]) == 0")
    modules = modules_after(code)
    assert "Иванов" in out.read_text(encoding="utf-8-sig") and "connector.reports.export" in modules
    assert loaded(modules, ("requests", "urllib3", "connector.rest", "sqlite_utils", "connector.sync",
                            "connector.deploy", "connector.emulator")) == []
