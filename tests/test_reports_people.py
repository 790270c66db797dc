"""Employee names from `user.get` and the portal's time zone: emulator methods, mocked HTTP, the CLI
over a real loopback socket.

Source: the reference notes (bitrix24-rest.md, server-behaviour.md) and the doc fixtures say nothing
about `user.*`; the emulator's choices are listed in connector/emulator/users.py. The portal's offset
comes from `time.date_start` (server-behaviour.md: `date('c')` in the server time zone).
"""

from __future__ import annotations

import json
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import responses

from connector.cli.main import main
from connector.emulator import Emulator, EmulatorServer
from connector.emulator.users import add_user
from connector.reports.people import display_name, employee_ids, portal_people
from connector.rest import Client
from connector.store import Store
from connector.sync.engine import remember_templates
from connector.templates import load_template

HR = Path(__file__).resolve().parents[1] / "mappings" / "hr_candidates.toml"


def hr_store(path: Path) -> Path:
    template = load_template(HR)
    with Store.open(path) as store:
        store.ensure_process(template)
        remember_templates(store, [template])
        store.upsert_rows("candidate", [
            {"id": 1, "title": "Иванов", "funnel": "hiring", "stage": "NEW", "vacancy": "Механик",
             "assigned_by_id": 7, "interviewers": json.dumps([1, 8]), "created_time": "2026-11-25T06:16:48Z"},
            {"id": 2, "title": "Петров", "funnel": "hiring", "stage": "NEW", "vacancy": "Повар",
             "assigned_by_id": 1},
        ])
    return path


# ---- the emulator's user.get / user.current (users.py: the notes are silent; stricter choices) -----


def test_emulator_user_get_filters_pages_and_refuses_what_it_does_not_know(emulator: Emulator) -> None:
    for i in range(2, 122):
        add_user(emulator.state, i, f"Имя{i}", f"Фамилия{i}")
    page = emulator.call("user.get", {"FILTER": {"ID": [7, 1, 500]}})
    assert [u["ID"] for u in page["result"]] == ["1", "7"] and page["total"] == 2
    assert page["result"][1]["NAME"] == "Имя7" and page["result"][1]["LAST_NAME"] == "Фамилия7"
    first, second = emulator.call("user.get"), emulator.call("user.get", {"start": 50})
    assert len(first["result"]) == 50 and first["next"] == 50 and first["total"] == 121
    assert second["result"][0]["ID"] == "51" and second["next"] == 100
    assert emulator.call("user.get", {"ID": 5})["result"][0]["ID"] == "5"  # the old top-level form
    assert emulator.call("user.get", {"FILTER": {"NAME": "x"}})["error"] == "INVALID_FILTER"
    assert emulator.call("user.get", {"FILTER": {"ID": ["one"]}})["error"] == "INVALID_FILTER"
    me = emulator.call("user.current")
    assert me["result"]["ID"] == "1" and me["time"]["date_start"].endswith("+03:00")


# ---- the client side over mocked HTTP -----------------------------------------------------------

URL = "https://portal.example/rest/1/secretcode/"


def test_portal_people_asks_50_ids_a_call_and_reads_the_offset() -> None:
    calls: list[list[int]] = []

    def user_get(request: Any) -> tuple[int, dict[str, str], str]:
        ids = json.loads(request.body)["FILTER"]["ID"]
        calls.append(ids)
        users = [{"ID": str(i), "NAME": f"N{i}", "LAST_NAME": "", "EMAIL": ""} for i in ids if i != 3]
        body = {"result": users, "total": len(users),
                "time": {"start": 1.0, "finish": 1.1, "duration": 0.1, "processing": 0.05,
                         "date_start": "2026-12-02T14:00:00+05:00",
                         "date_finish": "2026-12-02T14:00:00+05:00"}}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, URL + "user.get", callback=user_get)
        people = portal_people(Client.from_webhook(URL), range(1, 121))
    assert [len(c) for c in calls] == [50, 50, 20] and calls[0][:3] == [1, 2, 3]
    assert people.tz == "+05:00" and people.users[120] == "N120" and 3 not in people.users


def test_portal_people_without_ids_still_learns_the_time_zone() -> None:
    body = {"result": {"ID": "1", "NAME": "A"}, "time": {"date_start": "2026-12-02T06:00:00-03:30"}}
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, URL + "user.current", json=body)
        assert portal_people(Client.from_webhook(URL), []).tz == "-03:30"


def test_display_name_prefers_name_then_email_then_id() -> None:
    assert display_name({"ID": "3", "NAME": "Анна", "LAST_NAME": "Смирнова"}) == "Анна Смирнова"
    assert display_name({"ID": "3", "NAME": "", "LAST_NAME": "", "EMAIL": "a@x.ru"}) == "a@x.ru"
    assert display_name({"ID": "3"}) == "#3"


def test_employee_ids_come_from_every_employee_column(tmp_path: Path) -> None:
    assert employee_ids(hr_store(tmp_path / "hr.db"), "candidate") == {1, 7, 8}


def test_portal_people_against_the_emulator(emulator: Emulator, emu_url: str) -> None:
    add_user(emulator.state, 7, "Анна", "Смирнова")
    people = portal_people(Client.from_webhook(emu_url, allow_http=True), [1, 7, 8])
    assert people.users == {1: "Администратор", 7: "Анна Смирнова"} and people.tz == "+03:00"


# ---- the CLI over a real loopback socket ----------------------------------------------------------


def test_export_names_employees_and_shows_portal_time(live_emulator: EmulatorServer, tmp_path: Path,
                                                       capsys: Any) -> None:
    add_user(live_emulator.emulator.state, 7, "Анна", "Смирнова")
    db, out = hr_store(tmp_path / "hr.db"), tmp_path / "c.xlsx"
    code = main(["export", "--portal", live_emulator.webhook_url, "--db", str(db), "-t", "candidate",
                 "-f", "xlsx", "-o", str(out), "--columns", "title,assigned_by_id,interviewers,created_time"])
    assert code == 0, capsys.readouterr().err
    rows = list(openpyxl.load_workbook(out).active.iter_rows(values_only=True))
    assert rows[0] == ("Название", "Ответственный", "Интервьюеры", "Создан")
    assert rows[1] == ("Иванов", "Анна Смирнова", "Администратор, #8", datetime(2026, 11, 25, 9, 16, 48))
    code = main(["export", "--portal", live_emulator.webhook_url, "--db", str(db), "-t", "candidate",
                 "-f", "xlsx", "-o", str(out), "--columns", "assigned_by_id,created_time", "--offline"])
    assert code == 0
    rows = list(openpyxl.load_workbook(out).active.iter_rows(values_only=True))
    assert rows[1] == ("#7", datetime(2026, 11, 25, 6, 16, 48))  # offline: ids and UTC


def test_unreachable_portal_costs_only_the_names(tmp_path: Path, capsys: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    db, out = hr_store(tmp_path / "hr.db"), tmp_path / "c.csv"
    code = main(["export", "--portal", f"http://127.0.0.1:{port}/rest/1/secretcode/", "--db", str(db),
                 "-t", "candidate", "-o", str(out), "--columns", "title,assigned_by_id", "--tz", "+03:00"])
    err = capsys.readouterr().err
    assert code == 0 and "warning: user names and time zone not read" in " ".join(err.split())
    assert "secretcode" not in err  # the webhook code never appears in output
    assert out.read_text(encoding="utf-8-sig").splitlines()[1] == "Иванов;#7"


@pytest.mark.parametrize("kind", ["aging"])
def test_report_shows_times_in_the_portal_zone(
    live_emulator: EmulatorServer, tmp_path: Path, kind: str
) -> None:
    db, out = hr_store(tmp_path / "hr.db"), tmp_path / "r.html"
    code = main(["report", kind, "--portal", live_emulator.webhook_url, "--db", str(db), "-t", "candidate",
                 "-o", str(out)])
    page = out.read_text(encoding="utf-8")
    assert code == 0 and "В стадии с (UTC+03:00)" in page and "25.11.2026 09:16" in page
