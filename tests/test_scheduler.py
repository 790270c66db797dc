"""Scheduler: job-file validation, dispatch with fakes, runs in _runs, no overlap, graceful SIGTERM."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from test_reports_helpers import sample_store

from connector.scheduler import (
    JobConfigError,
    JobEnv,
    JobRunner,
    SyncJob,
    cron_trigger,
    load_job,
    load_jobs,
    parse_interval,
)
from connector.store import Store

ROOT = Path(__file__).resolve().parents[1]


def env_for(db: Path, now: datetime | None = None) -> JobEnv:
    return JobEnv(open_client=lambda portal: f"client:{portal}", store_path=lambda portal, _db: db,
                  portal_key=lambda portal: f"{portal}.test", now=lambda: now or datetime(2026, 3, 1, 7, 0))


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_shipped_example_jobs_are_valid() -> None:
    jobs = load_jobs(ROOT / "jobs", portals={"demo"})
    kinds = {j.kind for j in jobs}
    assert {"sync", "reconcile", "export", "report"} <= kinds  # apply_weekly ships disabled
    assert all(j.portal == "demo" for j in jobs)


@pytest.mark.parametrize(("text", "expected"), [
    ('kind = "backup"\nportal = "demo"\ninterval = "1h"\n', "key 'kind': unknown kind 'backup'; allowed: sync"),  # noqa: E501
    ('portal = "demo"\ninterval = "1h"\n', "key 'kind' is missing"),
    ('kind = "sync"\nportal = "demo"\ncron = "61 * * * *"\n', "key 'cron': bad cron expression '61 * * * *'"),
    ('kind = "sync"\nportal = "demo"\ncron = "0 3 * *"\n', "expected 5 fields"),
    ('kind = "sync"\nportal = "demo"\ninterval = "soon"\n', "key 'interval': bad interval 'soon'"),
    ('kind = "sync"\nportal = "demo"\n', "give exactly one of 'interval'"),
    ('kind = "sync"\nportal = "demo"\ninterval = 60\ncron = "* * * * *"\n', "give exactly one of 'interval'"),
    ('kind = "sync"\nportal = "demo"\ninterval = 60\nprocesess = ["a"]\n', "key 'procesess': unknown key; allowed keys: kind, name, portal"),  # noqa: E501
    ('kind = "sync"\nportal = "acme"\ninterval = 60\n', "key 'portal': unknown portal 'acme'; configured portals: demo"),  # noqa: E501
    ('kind = "sync"\nportal = "demo"\ninterval = 60\npolicy = "mine"\n', "key 'policy'"),
    ('kind = "export"\nportal = "demo"\ninterval = 60\ntype = "car"\noutput = "r/{day}.csv"\n', "key 'output'"),  # noqa: E501
    ('kind = "export"\nportal = "demo"\ninterval = 60\noutput = "r.csv"\n', "key 'type': Field required"),
    ('kind = "report"\nportal = "demo"\ninterval = 60\ntype = "car"\noutput = "r.html"\nformat = "pdf"\n',
     "key 'format'"),
    ('kind = "apply"\nportal = "demo"\ninterval = 60\ntemplates = []\n', "key 'templates'"),
    ('kind = "sync"\nportal = "demo"\ninterval = [60\n', "not a readable TOML file"),
    ('kind = "apply"\nportal = "demo"\ncron = "0 6 * * 1"\ntemplates = ["mappings/nope.toml"]\n',
     "key 'templates': template file not found: 'mappings/nope.toml'"),
    ('kind = "sync"\nportal = "demo"\ninterval = 60\ntemplates = ["bad_job.toml"]\n',
     "key 'templates': template 'bad_job.toml' is invalid"),
])
def test_invalid_job_files_are_refused_naming_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "jobs", "bad_job.toml", text)
    with pytest.raises(JobConfigError) as err:
        load_job(path, portals={"demo"})
    message = str(err.value)
    assert str(path) in message and expected in message


def test_all_problems_are_reported_at_once_and_names_are_unique(tmp_path: Path) -> None:
    folder = tmp_path / "jobs"
    write(folder, "a.toml", 'kind = "sync"\nportal = "demo"\ninterval = "5m"\nname = "same"\n')
    write(folder, "b.toml", 'kind = "sync"\nportal = "demo"\ninterval = "5m"\nname = "same"\n')
    write(folder, "c.toml", 'kind = "nope"\nportal = "demo"\ninterval = "5m"\n')
    with pytest.raises(JobConfigError) as err:
        load_jobs(folder, portals={"demo"})
    assert "b.toml: key 'name': job name 'same'" in str(err.value) and "c.toml: key 'kind'" in str(err.value)
    with pytest.raises(JobConfigError, match="jobs folder not found"):
        load_jobs(tmp_path / "missing")


def test_intervals_and_crontab_weekdays() -> None:
    assert [parse_interval(v) for v in (90, "30s", "15m", "2h", "1d", "1.5m")] == [90, 30, 900, 7200, 86400, 90]  # noqa: E501
    with pytest.raises(ValueError):
        parse_interval("0")
    # crontab: 0 and 7 are Sunday, 1 is Monday (APScheduler 3 alone would read 1 as Tuesday)
    monday_9 = cron_trigger("0 9 * * 1").get_next_fire_time(None, datetime(2026, 3, 4).astimezone())
    assert monday_9.weekday() == 0 and monday_9.hour == 9
    assert cron_trigger("0 9 * * 0").get_next_fire_time(None, datetime(2026, 3, 4).astimezone()).weekday() == 6  # noqa: E501


def sync_job(name: str, **kw: Any) -> SyncJob:
    return SyncJob(kind="sync", name=name, portal="demo", interval=kw.pop("interval", 60), **kw)


def runs(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute("SELECT * FROM _runs ORDER BY id")]


def test_one_failing_job_does_not_stop_the_others_and_every_run_is_recorded(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    seen: list[tuple[str, Any]] = []

    def fake_sync(job: Any, env: JobEnv, store: Any) -> dict[str, Any]:
        seen.append((job.name, env.open_client(job.portal)))
        if job.name == "broken":
            raise RuntimeError("portal said no")
        return {"pulled": 3, "pushed": 1}

    jobs = [sync_job("broken"), sync_job("fine")]
    outcomes = JobRunner(jobs, env_for(db), runners={"sync": fake_sync}).run_once()
    assert [(o.job, o.status) for o in outcomes] == [("broken", "failed"), ("fine", "ok")]
    assert outcomes[0].error == "RuntimeError: portal said no" and seen[1] == ("fine", "client:demo")
    rows = runs(db)
    assert [(r["job"], r["kind"], r["status"], r["portal"]) for r in rows] == [
        ("broken", "sync", "failed", "demo.test"), ("fine", "sync", "ok", "demo.test")]
    assert rows[0]["error"] == "RuntimeError: portal said no"
    assert json.loads(rows[1]["figures"])["pulled"] == 3 and rows[1]["finished_at"]


def test_a_run_the_api_records_itself_is_tagged_not_duplicated(tmp_path: Path) -> None:
    db = tmp_path / "p.db"

    def self_recording_sync(job: Any, env: JobEnv, store: Any) -> dict[str, Any]:
        run_id = store.run_start("sync", "demo.test")  # like connector.sync.sync does
        store.run_finish(run_id, "partial", {"failed": 2})
        return {"failed": 2, "status": "partial"}

    outcome = JobRunner([sync_job("nightly")], env_for(db), runners={"sync": self_recording_sync}).run_once()[0]  # noqa: E501
    assert outcome.status == "partial"
    assert [(r["job"], r["status"]) for r in runs(db)] == [("nightly", "partial")]


def test_export_and_report_jobs_write_dated_files_and_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: E501
    db = sample_store(tmp_path)
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "jobs"
    write(folder, "export.toml", """
        kind = "export"
        portal = "demo"
        cron = "0 7 * * *"
        type = "candidate"
        output = "out/{date:%Y-%m-%d}/{type}.csv"
        where = "stage = 'NEW'"
    """)
    write(folder, "report.toml", """
        kind = "report"
        portal = "demo"
        interval = "1d"
        type = "candidate"
        output = "out/{date:%Y-%m-%d}/{job}.html"
    """)
    write(folder, "bad_type.toml", """
        kind = "report"
        portal = "demo"
        interval = "1d"
        type = "cars"
        output = "out/cars.html"
    """)
    outcomes = JobRunner(load_jobs(folder, {"demo"}), env_for(db)).run_once()
    by_job = {o.job: o for o in outcomes}
    assert by_job["export"].figures == {"rows": 2, "output": "out/2026-03-01/candidate.csv"}
    assert (tmp_path / "out/2026-03-01/candidate.csv").read_text().count("\n") == 3
    assert "<svg" in (tmp_path / "out/2026-03-01/report.html").read_text()
    assert by_job["bad_type"].status == "failed" and "processes in this store: candidate" in by_job["bad_type"].error  # noqa: E501
    assert {r["job"]: r["status"] for r in runs(db)} == {"bad_type": "failed", "export": "ok", "report": "ok"}


def test_scheduler_jobs_never_overlap_and_coalesce(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    Store.open(db).close()
    state = {"running": 0, "max": 0, "runs": 0}
    lock = threading.Lock()

    def slow(job: Any, env: JobEnv, store: Any) -> dict[str, Any]:
        with lock:
            state["running"] += 1
            state["max"] = max(state["max"], state["running"])
        time.sleep(0.6)
        with lock:
            state["running"] -= 1
            state["runs"] += 1
        return {}

    runner = JobRunner([sync_job("slow", interval=0.1, misfire_grace_time=5)], env_for(db), runners={"sync": slow})  # noqa: E501
    (aps_job,) = runner.build_scheduler().get_jobs()
    assert (aps_job.max_instances, aps_job.coalesce, aps_job.misfire_grace_time) == (1, True, 5)
    thread = threading.Thread(target=runner.run_forever, kwargs={"install_signals": False})
    thread.start()
    time.sleep(1.5)
    runner.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert state["max"] == 1 and 1 <= state["runs"] <= 3 and state["running"] == 0
    assert len(runs(db)) == state["runs"]  # the stopping scheduler let the running step finish and record


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_lets_the_running_step_finish_then_exits_cleanly(tmp_path: Path, signum: int) -> None:
    db = tmp_path / "p.db"
    started, finished = tmp_path / "started", tmp_path / "finished"
    script = textwrap.dedent(f"""
        import time
        from datetime import datetime
        from pathlib import Path
        from connector.scheduler import JobEnv, JobRunner, SyncJob

        def step(job, env, store):
            Path({str(started)!r}).write_text("x")
            time.sleep(1.0)
            Path({str(finished)!r}).write_text("x")
            return {{"pulled": 1}}

        env = JobEnv(open_client=lambda p: None, store_path=lambda p, d: Path({str(db)!r}),
                     portal_key=lambda p: p)
        job = SyncJob(kind="sync", name="step", portal="demo", interval=0.2)
        JobRunner([job], env, runners={{"sync": step}}).run_forever()
        print("clean exit")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), proc.stderr.read() if proc.poll() is not None else "job never started"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "clean exit" in out and finished.exists()
    assert [r["status"] for r in runs(db)][-1] == "ok" and all(r["finished_at"] for r in runs(db))
