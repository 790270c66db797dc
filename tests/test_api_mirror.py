"""`Portal.export(include_deleted=...)` and `Portal.report(template=...)` mirror the CLI's options."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from connector import Portal
from connector.emulator import EmulatorServer
from connector.templates import load_template

ROOT = Path(__file__).resolve().parents[1]
HR = ROOT / "mappings" / "hr_candidates.toml"


def test_export_with_and_without_tombstones(live_emulator: EmulatorServer, tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with Portal.from_webhook(live_emulator.webhook_url, store=db) as portal:
        portal.apply(HR)
        with sqlite3.connect(db) as conn:
            conn.executemany("INSERT INTO candidate (title, funnel, stage) VALUES (?, 'hiring', 'NEW')",
                             [("Анна",), ("Борис",)])
        conn.close()
        portal.sync(HR)
        etid = portal.store.idmap.entry(portal.key, "type", "candidate").extra["entityTypeId"]
        gone = portal.store.conn.execute("SELECT id FROM candidate WHERE title = 'Борис'").fetchone()[0]
        portal.client.call("crm.item.delete", {"entityTypeId": etid, "id": gone})
        assert portal.sync(HR, full=True).deleted == 1
        live = portal.export("candidate", "csv", tmp_path / "live.csv")
        every = portal.export("candidate", "csv", tmp_path / "all.csv", include_deleted=True)
    assert (live.rows, every.rows) == (1, 2)
    assert "Борис" not in (tmp_path / "live.csv").read_text(encoding="utf-8")
    assert "Борис" in (tmp_path / "all.csv").read_text(encoding="utf-8")


def test_report_takes_the_template(live_emulator: EmulatorServer, tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    template = load_template(HR)
    with Portal.from_webhook(live_emulator.webhook_url, store=db) as portal:
        portal.apply(HR)
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO candidate (title, funnel, stage) VALUES ('Анна', 'hiring', 'NEW')")
        conn.close()
        portal.sync(HR)
        by_file = portal.report("candidate", "funnel", "html", tmp_path / "a.html", template=HR)
        by_object = portal.report("candidate", "funnel", "html", tmp_path / "b.html", template=template)
    assert by_file.output == str(tmp_path / "a.html") and by_object.output == str(tmp_path / "b.html")
    html = (tmp_path / "a.html").read_text(encoding="utf-8")
    assert html == (tmp_path / "b.html").read_text(encoding="utf-8")
    hiring = template.funnel("hiring")
    names = [template.text(s.name) for s in sorted(hiring.stages, key=lambda s: s.sort)
             if s.semantics == "process"]
    positions = [html.find(name) for name in names]
    assert -1 not in positions and positions == sorted(positions), names  # the template's stage order


# -- every command that acts on a portal or a store is a Portal method with the same options ---------

COMMAND_METHOD = {
    "plan": "plan", "apply": "apply", "drift": "drift", "adopt": "adopt", "sync": "sync",
    "conflicts list": "conflicts", "conflicts resolve": "resolve_conflict", "export": "export",
    "report": "report", "status": "status", "call": "call", "doctor": "doctor",
}
# Which portal and store (the Portal itself), and what only a terminal needs.
CLI_ONLY = {"portal", "db", "all_portals"} | {"apply.yes", "adopt.output"}  # confirm; where the TOML goes
RENAMED = {"plan.files": "templates", "apply.files": "templates", "drift.files": "templates",
           "sync.template": "templates", "conflicts list.all_": "all"}
PYTHON_ONLY = {"sync.progress"}  # a callback: the CLI draws progress bars with it
DEFAULT_DIFFERS = {"report.type_code"}  # a positional parameter in Python (margin/contracts pass None)


def _cli_commands() -> dict[str, Any]:
    import typer.main

    from connector.cli.main import app

    found: dict[str, Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            if hasattr(sub, "commands"):
                walk(sub, (*path, name))
            else:
                found[" ".join((*path, name))] = sub

    walk(typer.main.get_command(app), ())
    return found


def _empty(value: Any) -> Any:
    return None if value in ((), []) else value


def test_every_portal_command_has_a_method_with_the_same_options() -> None:
    import inspect

    cli = _cli_commands()
    problems = []
    for path, method_name in COMMAND_METHOD.items():
        method = inspect.signature(getattr(Portal, method_name))
        python = {n: p for n, p in method.parameters.items() if n != "self"}
        for param in cli[path].params:
            key = f"{path}.{param.name}"
            if param.name in CLI_ONLY or key in CLI_ONLY:
                continue
            name = RENAMED.get(key, param.name)
            if name not in python:
                problems.append(f"{path}: option {param.name!r} has no Portal.{method_name}({name}=...)")
                continue
            default = python[name].default
            if (param.param_type_name == "option" and not param.required and key not in DEFAULT_DIFFERS
                    and _empty(param.default) != _empty(default)):
                problems.append(f"{path}: {param.name} defaults to {param.default!r}, "
                                f"Portal.{method_name} to {default!r}")
        options = {RENAMED.get(f"{path}.{p.name}", p.name) for p in cli[path].params}
        for name in python:
            if name not in options and f"{path}.{name}" not in PYTHON_ONLY:
                problems.append(f"Portal.{method_name}({name}=...) has no option in `b24sync {path}`")
    assert not problems, "\n".join(problems)


def test_portal_methods_return_typed_results() -> None:
    import inspect
    import typing

    from connector import api

    for method_name in COMMAND_METHOD.values():
        hints = typing.get_type_hints(getattr(Portal, method_name), vars(api) | _result_types())
        assert hints.get("return") not in (None, Any), f"Portal.{method_name} returns {hints.get('return')}"
        assert "Any" not in str(inspect.signature(getattr(Portal, method_name)).return_annotation)


def _result_types() -> dict[str, Any]:
    from connector.deploy import ApplyResult, Drift, Plan
    from connector.doctor import DoctorReport
    from connector.reports import ExportResult, ReportResult, StatusReport
    from connector.reports.people import PortalPeople
    from connector.rest import ApiResponse, Client
    from connector.store.models import Conflict
    from connector.sync import SyncReport
    from connector.sync.engine import Progress
    from connector.sync.rules import RuleFiring

    return {"ApplyResult": ApplyResult, "Drift": Drift, "Plan": Plan, "DoctorReport": DoctorReport,
            "ExportResult": ExportResult, "ReportResult": ReportResult, "StatusReport": StatusReport,
            "PortalPeople": PortalPeople, "Conflict": Conflict, "SyncReport": SyncReport,
            "Progress": Progress, "RuleFiring": RuleFiring, "ApiResponse": ApiResponse, "Client": Client}
