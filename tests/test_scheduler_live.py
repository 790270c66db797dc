"""Scheduled jobs for real: the shipped jobs/*.toml and the scheduler API against a loopback emulator.

The config is config.example.toml with the `demo` portal's URL rewritten to the live emulator's, so
these tests prove the shipped examples work against `b24sync emulator serve`.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from connector.api import client_for
from connector.cli.main import main
from connector.config import load_config, resolve_portal
from connector.emulator import Emulator, EmulatorServer
from connector.scheduler import ApplyJob, ExportJob, JobEnv, JobRunner, SyncJob, load_jobs
from connector.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_URL = "http://127.0.0.1:8765/rest/1/demo/"
HR = "mappings/hr_candidates.toml"


def write_config(folder: Path, url: str) -> Path:
    """config.example.toml with the demo portal pointing at `url` (stores under `folder`/data)."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    assert EXAMPLE_URL in text
    path = folder / "b24sync.toml"
    path.write_text(text.replace(EXAMPLE_URL, url), encoding="utf-8")
    return path


def copy_project(folder: Path, enable_apply: bool = True) -> Path:
    """The shipped jobs folder and the template it names, as a user would copy them."""
    shutil.copytree(ROOT / "jobs", folder / "jobs")
    (folder / "mappings").mkdir()
    shutil.copy(ROOT / HR, folder / HR)
    if enable_apply:
        apply_file = folder / "jobs" / "apply_weekly.toml"
        text = apply_file.read_text(encoding="utf-8")
        assert "enabled = false" in text
        apply_file.write_text(text.replace("enabled = false", "enabled = true"), encoding="utf-8")
    return folder / "jobs"


def cli(capsys: Any, *args: str) -> tuple[int, Any]:
    code = main(["--json", *args])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else None)


def runs(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM _runs ORDER BY id")]
    finally:
        conn.close()


class PortalUsers:
    """People working on the (emulated) portal: add cards, move them, delete one."""

    def __init__(self, emu: Emulator, db: Path, key: str) -> None:
        self.emu = emu
        with Store.open(db) as store:
            self.etid = int(store.idmap.entry(key, "type", "candidate").extra["entityTypeId"])
            self.status = {
                code: str(store.idmap.entry(key, "stage", f"candidate.hiring.{code}").extra["status_id"])
                for code in ("NEW", "CALL", "INTERVIEW")
            }

    def add(self, title: str) -> int:
        reply = self.emu.call("crm.item.add", {"entityTypeId": self.etid, "fields": {"title": title}})
        return int(reply["result"]["item"]["id"])

    def move(self, item_id: int, stage: str) -> None:
        fields = {"stageId": self.status[stage]}
        self.emu.call("crm.item.update", {"entityTypeId": self.etid, "id": item_id, "fields": fields})

    def delete(self, item_id: int) -> None:
        self.emu.call("crm.item.delete", {"entityTypeId": self.etid, "id": item_id})

    def titles(self) -> list[str]:
        reply = self.emu.call("crm.item.list", {"entityTypeId": self.etid, "select": ["id", "title"]})
        return sorted(i["title"] for i in reply["result"]["items"])


def test_shipped_jobs_run_once_against_the_emulator(
    emulator: Emulator, live_emulator: EmulatorServer, tmp_path: Path, capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, live_emulator.webhook_url)
    jobs = copy_project(tmp_path)
    db = tmp_path / "data" / "demo.db"

    # 1. A fresh portal and no store: apply deploys, sync/reconcile fill, export/report run on an empty store.
    code, first = cli(capsys, "--config", str(config), "run", "--jobs", str(jobs), "--once")
    assert code == 0, first
    assert [o["job"] for o in first] == [
        "apply_weekly", "sync_demo", "reconcile_nightly", "export_daily", "report_daily"]
    assert all(o["status"] == "ok" for o in first), first
    assert first[0]["figures"]["converged"] is True and first[0]["figures"]["write_calls"] > 0

    # 2. People work on the portal and in the local file; the next run carries both ways.
    key = first[1]["figures"]["portal"]
    users = PortalUsers(emulator, db, key)
    ids = [users.add(t) for t in ("Анна Смирнова", "Борис Петров", "Вера Иванова")]
    emulator.clock.advance(3600)
    users.move(ids[0], "CALL")
    emulator.clock.advance(7200)
    users.move(ids[0], "INTERVIEW")
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO candidate (title, funnel, stage, vacancy, candidate_source) "
                 "VALUES ('Глеб Локальный', 'hiring', 'NEW', 'Механик', 'hh')")
    conn.commit()
    conn.close()
    emulator.clock.advance(60)

    code, second = cli(capsys, "--config", str(config), "run", "--jobs", str(jobs), "--once")
    assert code == 0, second
    by_job = {o["job"]: o for o in second}
    assert by_job["apply_weekly"]["figures"]["write_calls"] == 0  # idempotent re-apply
    assert by_job["sync_demo"]["figures"]["pulled"] == 3 and by_job["sync_demo"]["figures"]["pushed"] == 1
    assert by_job["reconcile_nightly"]["figures"]["deleted"] == 0
    assert by_job["export_daily"]["figures"]["rows"] == 4
    assert users.titles() == ["Анна Смирнова", "Борис Петров", "Вера Иванова", "Глеб Локальный"]

    # every run is one `_runs` row named after its job, with its figures (sync's own row is tagged)
    rows = runs(db)
    assert len(rows) == 10 and all(r["status"] == "ok" and r["finished_at"] for r in rows)
    assert [r["job"] for r in rows[5:]] == [o["job"] for o in second]
    sync_row = next(r for r in rows[5:] if r["job"] == "sync_demo")
    assert sync_row["kind"] == "sync" and json.loads(sync_row["figures"])["pushed"] == 1

    # the dated export: BOM for Excel, labels instead of codes, Russian text intact
    (csv_file,) = tmp_path.glob("reports/*/candidates.csv")
    assert csv_file.parent.name == datetime.now().strftime("%Y-%m-%d") or len(csv_file.parent.name) == 10
    raw = csv_file.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = io.StringIO(raw.decode("utf-8-sig"), newline="")
    exported = {r["Название"]: r for r in csv.DictReader(text, delimiter=";")}  # excel-ru: the template is ru
    assert set(exported) == {"Анна Смирнова", "Борис Петров", "Вера Иванова", "Глеб Локальный"}
    assert exported["Анна Смирнова"]["Стадия"] == "Собеседование"
    assert exported["Глеб Локальный"]["Воронка"] == "Подбор"
    assert exported["Глеб Локальный"]["Источник"] == "hh.ru"
    assert exported["Глеб Локальный"]["ID"]  # pushed, so it has its portal id now

    # the dated report: one self-contained page with both charts and the stage history's figures
    (html_file,) = tmp_path.glob("reports/*/candidate-report.html")
    page = html_file.read_text(encoding="utf-8")
    assert page.count("<svg") >= 2 and "Собеседование" in page and "Первый звонок" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page

    # 3. A card deleted on the portal: only the reconcile job sees it, and tombstones the row.
    users.delete(ids[1])
    code, third = cli(capsys, "--config", str(config), "run", "--jobs", str(jobs), "--once",
                      "--job", "reconcile_nightly", "--job", "export_daily")
    assert code == 0 and [o["job"] for o in third] == ["reconcile_nightly", "export_daily"]
    assert third[0]["figures"]["deleted"] == 1 and third[1]["figures"]["rows"] == 3
    with sqlite3.connect(db) as check:
        assert check.execute("SELECT deleted FROM candidate WHERE id = ?", (ids[1],)).fetchone() == (1,)

    # 4. `status` shows the runs by job, the cursor, and nothing pending or failed.
    code, status = cli(capsys, "--config", str(config), "status", "--portal", "demo")
    assert code == 0
    assert [r["job"] for r in status["last_runs"][:2]] == ["export_daily", "reconcile_nightly"]
    assert status["processes"] == {"candidate": 3} and status["pending_changes"] == {}
    assert status["failed_rows"] == [] and status["open_conflicts"] == []
    assert [c["tbl"] for c in status["cursors"]] == ["candidate"]


def test_shipped_jobs_find_their_templates_from_another_folder(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # `mappings/...` is not here: it is found next to the jobs folder
    jobs = {j.name: j for j in load_jobs(ROOT / "jobs", portals={"demo"})}
    assert Path(jobs["sync_demo"].templates[0]) == ROOT / HR


def live_env(config: Path, now: datetime | None = None) -> JobEnv:
    """The JobEnv the CLI builds, without the CLI: clients and stores from the config file."""
    cfg = load_config(config)
    return JobEnv(
        open_client=lambda portal: client_for(resolve_portal(cfg, portal)),
        store_path=lambda portal, db: Path(db) if db else resolve_portal(cfg, portal).store,
        portal_key=lambda portal: resolve_portal(cfg, portal).key,
        default_policy=lambda portal: resolve_portal(cfg, portal).conflict_policy,
        now=lambda: now or datetime(2026, 3, 2, 7, 0),
    )


def test_scheduler_api_runs_real_jobs_on_their_schedules(
    emulator: Emulator, live_emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, live_emulator.webhook_url)
    db = tmp_path / "data" / "demo.db"
    env = live_env(config)
    template = str(ROOT / HR)
    deploy = ApplyJob(kind="apply", name="deploy", portal="demo", interval="1h", templates=[template])
    assert JobRunner([deploy], env).run_once()[0].status == "ok"
    with sqlite3.connect(db) as conn:  # a scheduled apply prepares the store as `b24sync apply` does
        assert conn.execute("SELECT count(*) FROM candidate").fetchone() == (0,)
        assert conn.execute("SELECT code FROM _sync_templates").fetchall() == [("candidate",)]
    users = PortalUsers(emulator, db, env.portal_key("demo"))
    for title in ("Дарья", "Егор"):
        users.add(title)

    jobs = [
        SyncJob(kind="sync", name="often", portal="demo", interval=0.3, templates=[template]),
        ExportJob(kind="export", name="dump", portal="demo", interval=0.4, type="candidate", format="jsonl",
                  output="out/{date:%Y-%m-%d}/{type}.jsonl"),
        ExportJob(kind="export", name="broken", portal="demo", interval=0.4, type="vacancy",
                  output="out/vacancy.csv"),
    ]
    runner = JobRunner(jobs, env)
    thread = threading.Thread(target=runner.run_forever, kwargs={"install_signals": False})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = {r["job"] for r in runs(db) if r["finished_at"]}
            dump = tmp_path / "out/2026-03-02/candidate.jsonl"
            # the apply prepared the store, so a dump may run before the first sync pulled: wait for both rows
            rows = dump.read_text(encoding="utf-8").splitlines() if dump.exists() else []
            if {"often", "dump"} <= done and len(rows) == 2:
                break
            time.sleep(0.1)
    finally:
        runner.stop()
        thread.join(30)
    assert not thread.is_alive()
    rows = [r for r in runs(db) if r["job"] != "deploy"]
    by_job: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_job.setdefault(r["job"], []).append(r)
    assert by_job["often"][0]["status"] == "ok" and json.loads(by_job["often"][0]["figures"])["pulled"] == 2
    assert all(r["status"] == "failed" and "unknown process 'vacancy'" in r["error"]
               for r in by_job["broken"])
    assert all(r["finished_at"] for r in rows)  # stop() let every running step finish and record
    lines = (tmp_path / "out/2026-03-02/candidate.jsonl").read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines]
    assert sorted(i["title"] for i in items) == ["Дарья", "Егор"]


def test_cli_run_until_sigterm_against_the_emulator(
    live_emulator: EmulatorServer, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, live_emulator.webhook_url)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "sync_fast.toml").write_text(
        f'kind = "sync"\nportal = "demo"\ninterval = "1s"\ntemplates = ["{ROOT / HR}"]\n', encoding="utf-8")
    code, applied = cli(capsys, "--config", str(config), "apply", str(ROOT / HR), "--portal", "demo", "--yes")
    assert code == 0, applied
    db = tmp_path / "data" / "demo.db"
    command = [sys.executable, "-m", "connector", "--config", str(config), "run", "--jobs", str(jobs)]
    proc = subprocess.Popen(command,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and proc.poll() is None:
            if any(r["job"] == "sync_fast" for r in runs(db)):
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "running 1 job(s): sync_fast" in err and "finishing the running step" in err
    synced = [r for r in runs(db) if r["job"] == "sync_fast"]
    assert synced and all(r["status"] == "ok" and r["finished_at"] for r in synced)


def test_a_failing_job_records_its_error_without_the_webhook_secret(tmp_path: Path, capsys: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    secret = "s3cr3tWebhookCode"
    config = write_config(tmp_path, f"http://127.0.0.1:{port}/rest/1/{secret}/")
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "sync.toml").write_text(
        f'kind = "sync"\nportal = "demo"\ninterval = "1h"\ntemplates = ["{ROOT / HR}"]\n', encoding="utf-8")
    code = main(["--config", str(config), "run", "--jobs", str(jobs), "--once"])
    out, err = capsys.readouterr()
    assert code == 1 and "sync (sync): failed" in out and "connection refused" in out.lower()
    (row,) = runs(tmp_path / "data" / "demo.db")
    assert row["status"] == "failed" and "crm.type.list" in row["error"]
    assert secret not in out + err + row["error"] + row["figures"]
