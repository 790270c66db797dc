"""End to end as a new integrator: the real `b24sync` console script against live emulator processes.

Every step runs `b24sync ...` in a subprocess (no in-process shortcuts) against `b24sync emulator serve
--port 0` subprocesses, and checks what a user would check: exit codes, the printed plan/drift, rows in
the SQLite store (edited with the plain `sqlite3` CLI when it is installed), items on the portal read
back through `b24sync call`, and the files written. No output may contain a webhook code.
"""

from __future__ import annotations

import csv
import json
import os
import select
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPINGS = ROOT / "mappings"
HR = str(MAPPINGS / "hr_candidates.toml")


def _console_script() -> str:
    """The installed `b24sync` entry point next to this interpreter (else on PATH)."""
    beside = Path(sys.executable).with_name("b24sync")
    found = str(beside) if beside.exists() else shutil.which("b24sync")
    if not found:
        pytest.skip("the b24sync console script is not installed (pip install -e .)")
    return found


@dataclass
class Run:
    """One finished `b24sync` command."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    """Runs the console script in a folder with a clean environment; keeps every output."""

    exe: str
    cwd: Path
    env: dict[str, str]
    runs: list[Run] = field(default_factory=list)

    def __call__(self, *args: Any, expect: int | None = 0, env: dict[str, str] | None = None) -> Run:
        argv = tuple(str(a) for a in args)
        proc = subprocess.run(
            [self.exe, *argv], cwd=self.cwd, env={**self.env, **(env or {})}, capture_output=True,
            text=True, timeout=120, stdin=subprocess.DEVNULL,
        )
        run = Run(argv, proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(run)
        if expect is not None:
            said = f"b24sync {' '.join(argv)} -> exit {run.code}, wanted {expect}"
            assert run.code == expect, f"{said}\n{run.text}"
        return run


class EmulatorProcess:
    """`b24sync emulator serve --port 0` in a subprocess; its webhook URL is the first stdout line."""

    def __init__(self, exe: str, cwd: Path, env: dict[str, str], state: Path | None = None) -> None:
        args = [exe, "emulator", "serve", "--port", "0"] + (["--state", str(state)] if state else [])
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            stdin=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline().strip() if ready else ""
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise AssertionError(f"emulator did not print its webhook URL first (got {line!r})")
        self.url = line
        self.code = line.rstrip("/").rsplit("/", 1)[-1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    """The user's environment minus any b24sync settings; a wide terminal so tables are not cut."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("B24SYNC_")}
    return {**clean, "COLUMNS": "220", "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"}


@pytest.fixture()
def cli(tmp_path: Path, env: dict[str, str]) -> Cli:
    return Cli(_console_script(), tmp_path, env)


@pytest.fixture()
def emulators(tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[..., EmulatorProcess]]:
    """Start emulator processes on demand; every one is stopped at teardown."""
    started: list[EmulatorProcess] = []

    def start(state: Path | None = None) -> EmulatorProcess:
        emu = EmulatorProcess(_console_script(), tmp_path, env, state)
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


def sql(db: Path, script: str) -> None:
    """Edit the store as a user would: the sqlite3 CLI (Python's sqlite3 when the CLI is missing)."""
    exe = shutil.which("sqlite3")
    if exe:
        done = subprocess.run([exe, str(db)], input=script, text=True, capture_output=True, timeout=30)
        assert done.returncode == 0 and not done.stderr, done.stderr
        return
    with sqlite3.connect(db) as conn:
        conn.executescript(script)


def rows(db: Path, query: str, *params: Any) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def idmap(db: Path, kind: str, code: str) -> tuple[int, dict[str, Any]]:
    """(portal id, extra) of one id-map record written by apply."""
    (row,) = rows(db, "SELECT portal_id, extra FROM _idmap WHERE kind = ? AND code = ?", kind, code)
    return int(row["portal_id"]), json.loads(row["extra"] or "{}")


def assert_no_secret(runs: list[Run], codes: list[str]) -> None:
    for run in runs:
        for code in codes:
            assert code not in run.text, f"webhook code leaked by b24sync {' '.join(run.args)}"


BROKEN = """\
code = "repair"
title = { ru = "Ремонт" }
presett = "scratch"

[flags]
isStagesEnabled = true

[[fields]]
code = "device"
type = "strng"
label = { ru = "Устройство" }

[[funnels]]
code = "main"
name = { ru = "Заявки" }

[[funnels.stages]]
code = "NEW"
name = { ru = "Новая" }

[[funnels.stages]]
code = "DONE"
name = { ru = "Готово" }
semantics = "success"

[[access]]
role = "Мастер"
permissions = { read = "everyone" }
"""


def test_deploy_story_validate_plan_apply_drift_adopt_and_many_portals(
    cli: Cli, emulators: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    # 1. Validate: the shipped templates pass; a broken one names file, TOML path and what is allowed.
    assert "OK: 5 template(s) valid" in cli("template", "validate", MAPPINGS).out
    (tmp_path / "broken.toml").write_text(BROKEN, encoding="utf-8")
    bad = cli("template", "validate", "broken.toml", expect=2).text
    assert "broken.toml: fields[0].type: unknown field type 'strng'; allowed: string, integer" in bad
    assert "broken.toml: presett: unknown key 'presett'; allowed keys: code, title" in bad
    assert "access[0].permissions.read: unknown level 'everyone'; allowed: none, own" in bad
    assert "funnels[0].stages: a funnel needs at least one stage with semantics = \"failure\"" in bad

    one, two = emulators(), emulators()
    db1, db2 = tmp_path / "one.db", tmp_path / "two.db"

    # 2. Plan on an empty portal: exit 5, one line per object, the access rules as a manual checklist.
    plan = cli("plan", HR, "--portal", one.url, "--db", db1, expect=5).out
    assert "field candidate.vacancy" in plan and "stage candidate.hiring.INTERVIEW" in plan
    assert "Manual steps" in plan and "[ ] CRM → Settings → Access permissions → role «Рекрутер»" in plan

    # 3. Apply (its JSON carries the plan it executed), then the same plan has nothing to do (exit 0).
    applied = cli("--json", "apply", HR, "--portal", one.url, "--db", db1, "--yes").json()
    assert applied["converged"] is True and applied["write_calls"] > 20 and applied["dry_run"] is False
    changes = [c for p in applied["plan"]["processes"] for c in p["changes"]]
    vacancy = next(c for c in changes if c["kind"] == "field" and c["code"] == "vacancy")
    assert vacancy["action"] == "create"
    assert {"attr": "type", "old": None, "new": "string"} in vacancy["diffs"]
    assert len(applied["manual"]) == 3 and not any(m["done"] for m in applied["manual"])
    assert "nothing to do" in cli("plan", HR, "--portal", one.url, "--db", db1).out
    type_id, type_extra = idmap(db1, "type", "candidate")
    stage_id, _ = idmap(db1, "stage", "candidate.hiring.INTERVIEW")
    assert len(rows(db1, "SELECT 1 FROM _idmap WHERE kind = 'field' AND code LIKE 'candidate.%'")) == 14

    # 4. Hand edits on the portal through `b24sync call`, then drift finds both (exit 5).
    field = {"entityId": f"CRM_{type_id}", "fieldName": f"UF_CRM_{type_id}_HOBBY", "userTypeId": "string",
             "editFormLabel": {"ru": "Хобби"}}
    cli("call", "userfieldconfig.add", json.dumps({"moduleId": "crm", "field": field}), "--portal", one.url)
    cli("call", "crm.status.update", json.dumps({"id": stage_id, "fields": {"NAME": "Интервью"}}),
        "--portal", one.url)
    drift = cli("--json", "drift", "--portal", one.url, "--db", db1, expect=5).json()
    seen = {(i["kind"], i["change"], i["code"]) for i in drift["items"]}
    assert ("field", "added", f"UF_CRM_{type_id}_HOBBY") in seen
    stage = next(i for i in drift["items"] if i["code"] == "hiring.INTERVIEW")
    assert stage["change"] == "edited" and stage["diffs"] == [
        {"attr": "name", "old": "Собеседование", "new": "Интервью"}
    ]

    # 5. Adopt the hand-edited process into a template and reproduce it on a second portal.
    assert "wrote adopted.toml" in cli("adopt", "--portal", one.url, "--db", db1, "--type", "candidate",
                                       "-o", "adopted.toml").out
    adopted = (tmp_path / "adopted.toml").read_text(encoding="utf-8")
    assert 'code = "candidate"' in adopted and 'code = "hobby"' in adopted and '"Интервью"' in adopted
    cli("apply", "adopted.toml", "--portal", two.url, "--db", db2, "--yes")
    cli("plan", "adopted.toml", "--portal", two.url, "--db", db2, expect=0)
    tid2, extra2 = idmap(db2, "type", "candidate")
    etid = extra2["entityTypeId"]
    batch = {"halt": 0, "cmd": {
        "types": "crm.type.list",
        "fields": f"userfieldconfig.list?moduleId=crm&filter[entityId]=CRM_{tid2}",
        "cats": f"crm.category.list?entityTypeId={etid}",
        "ghost": f"crm.item.get?entityTypeId={etid}&id=999",
    }}
    answer = cli("call", "batch", json.dumps(batch), "--portal", two.url).json()
    names = {f["fieldName"] for f in answer["result"]["fields"]["fields"]}
    assert f"UF_CRM_{tid2}_HOBBY" in names and len(names) == 15
    assert sorted(c["name"] for c in answer["result"]["cats"]["categories"]) == ["Кадровый резерв", "Подбор"]
    assert answer["result_error"]["ghost"]["error"] == "NOT_FOUND"
    titles = [t["title"] for t in answer["result"]["types"]["types"] if t["code"] == "candidate"]
    assert titles == ["Кандидаты"]

    # 6. Both portals from a config file, webhooks from the environment: the shipped template wins back
    #    the stage name on both; the hand-made field stays (deleting it needs --allow-destructive).
    (tmp_path / "b24sync.toml").write_text(
        '[defaults]\nstore = "stores/{portal}.db"\n\n'
        '[portals.first]\nplan = "standard"\n\n[portals.second]\n',
        encoding="utf-8",
    )
    portals = {"B24SYNC_PORTAL_FIRST_WEBHOOK": one.url, "B24SYNC_PORTAL_SECOND_WEBHOOK": two.url}
    multi = cli("--json", "apply", HR, "--all", "--yes", env=portals).json()
    assert [(s["portal"], s["exit"]) for s in multi["summary"]] == [("first", 0), ("second", 0)]
    assert (tmp_path / "stores" / "first.db").exists() and (tmp_path / "stores" / "second.db").exists()
    again = cli("--json", "plan", HR, "--portal", "first", "--portal", "second", env=portals).json()
    assert [(s["portal"], s["update"], s["blocked"], s["exit"]) for s in again["summary"]] == [
        ("first", 0, 1, 0), ("second", 0, 1, 0)]
    hobby = [c for p in again["portals"][1]["processes"] for c in p["changes"] if c["kind"] == "field"]
    assert len(hobby) == 1 and hobby[0]["action"] == "delete" and hobby[0]["blocked"] is True

    assert_no_secret(cli.runs, [one.code, two.code])


def test_sync_story_store_edits_conflicts_tombstones_exports_reports_jobs_restart(
    cli: Cli, emulators: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    emu = emulators(state=tmp_path / "emu.db")
    db = tmp_path / "hr.db"
    cli("apply", HR, "--portal", emu.url, "--db", db, "--yes")
    type_id, type_extra = idmap(db, "type", "candidate")
    etid = type_extra["entityTypeId"]
    _, offer = idmap(db, "stage", "candidate.hiring.OFFER")

    # 1. Apply created the local tables: rows inserted with plain SQL are pushed by sync.
    sql(db, """
        INSERT INTO candidate (title, funnel, stage, candidate_source, vacancy, pd_consent, city)
          VALUES ('Иванов Иван', 'hiring', 'NEW', 'hh', 'Python developer', 1, 'Москва');
        INSERT INTO candidate (title, funnel, stage, candidate_source, vacancy, pd_consent)
          VALUES ('Петрова Анна', 'hiring', 'INTERVIEW', 'referral', 'QA engineer', 1);
        INSERT INTO candidate (title, funnel, stage, candidate_source, vacancy, pd_consent)
          VALUES ('Сидоров', 'reserve', 'POOL', 'avito', 'Analyst', 1);
        INSERT INTO candidate (title, funnel, stage, candidate_source, vacancy, pd_consent)
          VALUES ('Плохая стадия', 'hiring', 'NOPE', 'hh', 'X', 1);
    """)
    failed = cli("sync", "--portal", emu.url, "--db", db, "--template", HR, expect=3)
    assert "unknown stage 'NOPE' in funnel 'hiring'; known: NEW, CALL, INTERVIEW" in failed.text
    assert "failed 1" in failed.out
    sql(db, "UPDATE candidate SET stage = 'CALL' WHERE title = 'Плохая стадия';")
    fixed = cli("--json", "sync", "--portal", emu.url, "--db", db).json()
    assert fixed["pushed"] == 1 and fixed["failed"] == 0
    ids = {r["title"]: r["id"] for r in rows(db, "SELECT title, id FROM candidate")}
    assert all(ids.values()) and len(ids) == 4

    def portal_items() -> dict[str, dict[str, Any]]:
        params = {"entityTypeId": etid, "select": ["id", "title", "stageId", f"ufCrm{type_id}City",
                                                   f"ufCrm{type_id}Vacancy"]}
        got = cli("call", "crm.item.list", json.dumps(params), "--portal", emu.url).json()["items"]
        return {i["title"]: i for i in got}

    assert sorted(portal_items()) == sorted(ids)

    # 2. Edits on both sides: a remote stage move, one field changed on both sides (a conflict under
    #    --policy manual), a local edit and a local delete.
    city = f"ufCrm{type_id}City"
    def update(title: str, fields: dict[str, Any]) -> None:
        params = {"entityTypeId": etid, "id": ids[title], "fields": fields}
        cli("call", "crm.item.update", json.dumps(params), "--portal", emu.url)

    update("Иванов Иван", {city: "Санкт-Петербург"})
    update("Петрова Анна", {"stageId": offer["status_id"]})
    sql(db, """
        UPDATE candidate SET city = 'Новосибирск' WHERE title = 'Иванов Иван';
        UPDATE candidate SET vacancy = 'Senior analyst' WHERE title = 'Сидоров';
        DELETE FROM candidate WHERE title = 'Плохая стадия';
    """)
    both = cli("--json", "sync", "--portal", emu.url, "--db", db, "--policy", "manual").json()
    assert both["conflicts"] == 1 and both["failed"] == 0
    on_portal = portal_items()
    assert "Плохая стадия" not in on_portal
    assert on_portal["Сидоров"][f"ufCrm{type_id}Vacancy"] == "Senior analyst"
    assert rows(db, "SELECT stage FROM candidate WHERE title = 'Петрова Анна'")[0]["stage"] == "OFFER"

    (conflict,) = cli("--json", "conflicts", "list", "--db", db).json()
    assert conflict["fields"] == ["city"] and conflict["status"] == "open"
    assert (conflict["local"]["city"], conflict["remote"]["city"]) == ("Новосибирск", "Санкт-Петербург")
    assert "resolved" in cli("conflicts", "resolve", conflict["id"], "--take", "remote", "--db", db).out
    cli("sync", "--portal", emu.url, "--db", db)
    assert rows(db, "SELECT city FROM candidate WHERE title = 'Иванов Иван'")[0]["city"] == "Санкт-Петербург"

    # 3. An item deleted on the portal becomes a tombstone on the next full sync.
    gone_id = json.dumps({"entityTypeId": etid, "id": ids["Сидоров"]})
    cli("call", "crm.item.delete", gone_id, "--portal", emu.url)
    full = cli("--json", "sync", "--portal", emu.url, "--db", db, "--full").json()
    assert full["processes"]["candidate"]["tombstoned"] == 1
    (gone,) = rows(db, "SELECT deleted, deleted_at FROM candidate WHERE title = 'Сидоров'")
    assert gone["deleted"] == 1 and gone["deleted_at"]

    # 4. Exports: a filtered CSV with a BOM, XLSX, JSON lines with the tombstone; bad inputs exit 2.
    where = "stage_name = 'Оффер' OR city = 'Санкт-Петербург'"
    cli("export", "--db", db, "-t", "candidate", "--where", where,
        "--columns", "title,stage_name,city", "--bom", "--headers", "codes", "--dialect", "rfc4180",
        "-o", "sel.csv")
    raw = (tmp_path / "sel.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert sorted(csv.reader(raw.decode("utf-8-sig").splitlines())) == sorted([
        ["title", "stage_name", "city"], ["Иванов Иван", "Резюме получено", "Санкт-Петербург"],
        ["Петрова Анна", "Оффер", ""]])
    cli("export", "--db", db, "-t", "candidate", "-f", "xlsx", "-o", "all.xlsx", "--headers", "codes")
    openpyxl = pytest.importorskip("openpyxl")
    sheet = openpyxl.load_workbook(tmp_path / "all.xlsx").active
    header = [c.value for c in sheet[1]]
    assert {"title", "stage_name", "candidate_source_label"} <= set(header) and sheet.max_row == 3
    lines = cli("export", "--db", db, "-t", "candidate", "-f", "jsonl", "--include-deleted",
                "--columns", "title,deleted").out.splitlines()
    assert sorted((d["title"], d["deleted"]) for d in map(json.loads, lines)) == [
        ("Иванов Иван", 0), ("Петрова Анна", 0), ("Сидоров", 1)]
    assert "unknown column(s) 'nosuch'" in cli("export", "--db", db, "-t", "candidate", "--columns",
                                               "title,nosuch", expect=2).err
    cli("export", "--db", db, "-t", "candidate", "--where", "1=1; DELETE FROM candidate", expect=2)
    assert len(rows(db, "SELECT 1 FROM candidate")) == 3

    # 5. Reports and status.
    funnel = list(csv.DictReader(cli("report", "funnel", "--db", db, "-t", "candidate", "-f", "csv",
                                     "--headers", "codes", "--dialect", "rfc4180")
                                 .out.lstrip("\ufeff").splitlines()))
    counts = {(r["funnel"], r["stage"]): int(r["count"]) for r in funnel}
    assert (counts[("hiring", "OFFER")], counts[("hiring", "NEW")], counts[("reserve", "POOL")]) == (1, 1, 0)
    cli("report", "all", "--db", db, "-t", "candidate", "-o", "report.html")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "Оффер" in html
    status = cli("--json", "status", "--db", db).json()
    assert status["processes"] == {"candidate": 2} and status["last_runs"][0]["kind"] == "sync"

    # 6. Scheduled jobs once, from a config file whose portal webhook comes from the environment.
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs.toml").write_text(f'[portals.hr]\nstore = "{db.name}"\n', encoding="utf-8")
    (tmp_path / "jobs" / "sync.toml").write_text(
        f'kind = "sync"\nportal = "hr"\ninterval = "2m"\ntemplates = ["{HR}"]\n', encoding="utf-8")
    (tmp_path / "jobs" / "export.toml").write_text(
        'kind = "export"\nportal = "hr"\ncron = "0 7 * * *"\ntype = "candidate"\nformat = "csv"\n'
        'output = "out/{portal}-{type}.csv"\ncolumns = ["title", "stage_name"]\n', encoding="utf-8")
    ran = cli("--config", "jobs.toml", "run", "--once", "--jobs", "jobs",
              env={"B24SYNC_PORTAL_HR_WEBHOOK": emu.url}).out
    assert "sync (sync): ok" in ran and "export (export): ok rows=2" in ran
    assert "Петрова Анна;Оффер" in (tmp_path / "out" / "hr-candidate.csv").read_text(encoding="utf-8-sig")

    # 7. Restart the emulator on the same state file: same webhook code, the items survived.
    emu.stop()
    again = emulators(state=tmp_path / "emu.db")
    assert again.code == emu.code
    emu = again
    assert sorted(portal_items()) == ["Иванов Иван", "Петрова Анна"]
    verbose = cli("-vv", "sync", "--portal", emu.url, "--db", db)
    assert "DEBUG" in verbose.err and "/rest/1/***/" in verbose.err
    assert len(rows(db, "SELECT 1 FROM candidate WHERE deleted = 0")) == 2

    assert_no_secret(cli.runs, [emu.code])
