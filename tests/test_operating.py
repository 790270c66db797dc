"""Issue 15 "Operating it": what an operator sees while b24sync runs, and what it leaves behind."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from test_cli_errors import HR, ROOT, cli, free_port, no_store_files, one_error_line, subprocess_cli
from test_rest_support import time_info
from test_sync_support import setup_processes

from connector.api import Portal
from connector.emulator import Emulator, EmulatorServer, serve
from connector.emulator.faults import FaultPlan
from connector.rest import Client, MethodLedger, RetryPolicy
from connector.scheduler import JobEnv, JobRunner, SyncJob
from connector.store import Store
from connector.templates import load_template, load_templates

BASE = "https://acme.example.com/rest/1/c0de/"


# -- b24sync run: one line per run, interval jobs at start ---------------------------------------


def _env(db: Path) -> JobEnv:
    return JobEnv(open_client=lambda _p: None, store_path=lambda _p, _db: db, portal_key=lambda _p: "p:1")


def _job(name: str, **extra: Any) -> SyncJob:
    return SyncJob(kind="sync", name=name, portal="demo", **extra)


def test_run_announces_start_outcome_figures_and_next_run(tmp_path: Path) -> None:
    lines: list[str] = []
    runner = JobRunner([_job("often", interval=3600)], _env(tmp_path / "p.db"),
                       runners={"sync": lambda job, env, store: {"pulled": 3, "pushed": 1}},
                       announce=lines.append)
    thread = threading.Thread(target=runner.run_forever, kwargs={"install_signals": False})
    thread.start()
    deadline = time.monotonic() + 10
    while len(lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    runner.stop()
    thread.join(10)
    assert not thread.is_alive()
    # the interval is an hour: this run is the one at start-up
    assert lines[0] == "job often (sync) started"
    assert lines[1].startswith("job often (sync): ok in ") and "pulled=3 pushed=1" in lines[1]
    next_run = datetime.strptime(lines[1].rsplit("next run ", 1)[1], "%Y-%m-%d %H:%M:%S")
    assert 3500 < (next_run - datetime.now()).total_seconds() <= 3600


def test_interval_jobs_can_wait_for_their_first_interval(tmp_path: Path) -> None:
    ran: list[str] = []
    for runner in (
        JobRunner([_job("a", interval=3600, run_at_start=False)], _env(tmp_path / "a.db"),
                  runners={"sync": lambda job, env, store: ran.append(job.name) or {}}),
        JobRunner([_job("b", interval=3600)], _env(tmp_path / "b.db"), run_at_start=False,
                  runners={"sync": lambda job, env, store: ran.append(job.name) or {}}),
        JobRunner([_job("c", cron="0 3 * * *")], _env(tmp_path / "c.db"),
                  runners={"sync": lambda job, env, store: ran.append(job.name) or {}}),
    ):
        thread = threading.Thread(target=runner.run_forever, kwargs={"install_signals": False})
        thread.start()
        time.sleep(0.6)
        runner.stop()
        thread.join(10)
    assert ran == []


def test_cli_run_prints_each_run_on_stderr(live_emulator: EmulatorServer, tmp_path: Path) -> None:
    setup_processes(live_emulator.emulator, load_templates([HR]))
    config = tmp_path / "b24sync.toml"
    config.write_text('[portals.demo]\nstore = "stores/demo.db"\n', encoding="utf-8")
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    job = f'kind = "sync"\nportal = "demo"\ninterval = "1h"\ntemplates = ["{HR}"]\n'
    (jobs / "pull.toml").write_text(job, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "B24SYNC_PORTAL_DEMO_WEBHOOK": live_emulator.webhook_url}
    proc = subprocess.Popen([sys.executable, "-m", "connector", "run", "--jobs", "jobs"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            seen.append(line)
            if "next run" in line or not line:
                break
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(seen)
    assert "running 1 job(s): pull" in text and "job pull (sync) started" in text
    (done,) = [line for line in seen if "next run" in line]
    assert "job pull (sync): ok in" in done and "pulled=0" in done and proc.returncode == 0


# -- long work off a terminal, limit pauses, Ctrl-C ----------------------------------------------


@pytest.fixture
def slow_portal() -> Any:
    """A served portal with the HR process and 300 candidates, where every request then takes 0.4 s."""
    emu = Emulator(limits="off")
    emu.seed_items(setup_processes(emu, load_templates([HR]))["candidate"], 300)
    emu.faults = emu.state.faults = FaultPlan.parse("slow=1.0:0.4", seed=1)  # slow only from now on
    server = serve(emu, "127.0.0.1", 0)
    try:
        yield server
    finally:
        server.stop()
        emu.close()


def test_ctrl_c_in_a_real_sync_prints_progress_then_what_was_done(slow_portal: EmulatorServer,
                                                                  tmp_path: Path) -> None:
    db = tmp_path / "hr.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "B24SYNC_PROGRESS_EVERY": "0.3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", "sync", "--portal", slow_portal.webhook_url, "--db", str(db),
         "--template", str(HR)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # a test run started in the background (`pytest &`) inherits SIGINT ignored, and Python then
        # never raises KeyboardInterrupt: give the child the default a user's terminal gives it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    first = proc.stderr.readline()  # off a terminal: a progress line every 0.3 s
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=30)
    seen = f"exit {proc.returncode}; stderr:\n{first}{rest}stdout:\n{out}"  # all of it, should one fail
    assert first.startswith("sync 127.0.0.1_") or first.startswith("sync 127.0.0.1:"), seen
    assert "s waited on limits" in first, seen
    assert proc.returncode == 130, seen
    assert "interrupted after" in rest and "the next `b24sync sync` resumes" in rest and str(db) in rest, seen
    assert "Traceback" not in rest and out == "", seen


def test_limit_pauses_of_a_few_seconds_are_announced() -> None:
    # server-behaviour.md §7: 429 OPERATION_TIME_LIMIT; the client waits until operating_reset_at
    now = [1_000_000.0]
    said: list[str] = []
    client = Client.from_webhook(BASE, sleep=lambda s: None, ledger=MethodLedger(clock=lambda: now[0]),
                                 retry=RetryPolicy(jitter=lambda: 1.0))
    client.on_pause = said.append
    with responses.RequestsMock() as rsps:
        timing = time_info(operating=100.0, operating_reset_at=now[0] + 41)
        rsps.post(BASE + "crm.item.add", json={"result": {"item": {}}, "time": timing})
        rsps.post(BASE + "crm.item.add", status=429,
                  json={"error": "OPERATION_TIME_LIMIT", "error_description": "x"})
        rsps.post(BASE + "crm.item.add", json={"result": {"item": {}}, "time": time_info(operating=1.0)})
        client.call("crm.item.add", {"fields": {}})
        client.call("crm.item.add", {"fields": {}})
    assert said == ["waiting 41 s for the operating-time limit of crm.item.add "
                    "(the portal's 10-minute budget per method)"]


def test_short_pauses_stay_quiet_and_the_bucket_says_which_plan() -> None:
    said: list[str] = []
    client = Client.from_webhook(BASE, sleep=lambda s: None)
    client.bucket._sleep = lambda s: None  # noqa: SLF001 - no real waiting in a test
    client.on_pause = said.append
    with responses.RequestsMock() as rsps:
        rsps.post(BASE + "crm.type.list", json={"result": {"types": []},
                                                "time": time_info(operating=0, operating_reset_at=1)})
        for _ in range(55):  # a cloud portal (operating present): 50 free, then 0.5 s more each
            client.call("crm.type.list")
    assert said == []
    client.bucket.saturate()
    for _ in range(10):
        client.bucket.reserve()
    with responses.RequestsMock() as rsps:
        rsps.post(BASE + "crm.type.list", json={"result": {"types": []}, "time": time_info(operating=0)})
        client.call("crm.type.list")
    (line,) = said
    expected = r"waiting \d+ s for the request-rate limit \(standard plan, 50 requests, 2 per second\)"
    assert re.fullmatch(expected, line), line


@pytest.mark.parametrize(("limits", "paced"), [("off", False), ("standard", True)])
def test_the_client_paces_itself_only_when_the_portal_runs_limits(limits: str, paced: bool) -> None:
    # server-behaviour.md §7: time.operating / operating_reset_at are in every successful answer only
    # when the limiter is active (always in the cloud); the emulator follows that (test_emulator_http)
    emu = Emulator(limits=limits, clock="virtual")
    waits: list[float] = []

    def wait(seconds: float) -> None:  # the portal's (virtual) time passes while the client waits
        waits.append(seconds)
        emu.clock.sleep(seconds)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        url = emu.register(rsps)
        client = Client.from_webhook(url, sleep=wait)
        client.bucket._sleep = wait  # noqa: SLF001 - no real waiting in a test
        for _ in range(80):
            client.call("crm.type.list")
    assert client.bucket_on is paced
    assert (sum(waits) > 10) is paced  # standard: 30 requests over the 50 burst wait about 0.5 s each


def test_a_503_turns_pacing_back_on() -> None:
    client = Client.from_webhook(BASE, sleep=lambda s: None, retry=RetryPolicy(jitter=lambda: 0.0))
    with responses.RequestsMock() as rsps:
        rsps.post(BASE + "crm.type.list", json={"result": {"types": []}, "time": time_info()})
        client.call("crm.type.list")
        assert client.bucket_on is False  # no `operating` in the answer: no limiter
        rsps.replace(responses.POST, BASE + "crm.type.list", status=503,
                     json={"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"})
        rsps.add(responses.POST, BASE + "crm.type.list", json={"result": {"types": []}, "time": time_info()})
        client.call("crm.type.list")
    assert client.bucket_on is True and client.bucket.level >= 50


def test_sync_json_prints_nothing_on_stderr(live_emulator: EmulatorServer, tmp_path: Path) -> None:
    setup_processes(live_emulator.emulator, load_templates([HR]))
    done = subprocess_cli("sync", "--json", "--portal", live_emulator.webhook_url,
                          "--db", str(tmp_path / "s.db"), "--template", str(HR), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["failed"] == 0


# -- the emulator --------------------------------------------------------------------------------


def test_emulator_is_quiet_when_a_client_goes_away(capsys: pytest.CaptureFixture[str],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    emu = Emulator(limits="off", faults="slow=1.0:0.3,seed=1")
    server = serve(emu, "127.0.0.1", 0)
    try:
        with caplog.at_level(logging.DEBUG, logger="connector.emulator.server"):
            for _ in range(3):
                sock = socket.create_connection((server.host, server.port))
                body = b'{"fields": {"title": "x"}}'
                path = server.webhook_url.split(str(server.port), 1)[1] + "crm.type.list"
                head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n")
                sock.sendall(head.encode() + body)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()  # reset: the answer, 0.3 s later, has nobody to go to
            deadline = time.monotonic() + 5
            while "went away" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        server.stop()
        emu.close()
    err = capsys.readouterr().err
    assert "went away" in caplog.text  # the server did meet the broken connection ...
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err  # ... quietly


def test_emulator_refuses_a_code_that_breaks_the_url() -> None:
    result = cli("emulator", "serve", "--code", "a b/c", "--port", "0")
    assert result.exit_code == 2
    assert "--code 'a b/c' cannot be a webhook code" in result.stderr and "letters, digits" in result.stderr


def test_emulator_on_every_interface_warns_and_prints_a_usable_url(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "connector", "emulator", "serve", "--host", "0.0.0.0",
                             "--port", "0", "--code", "abc123"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert url.startswith("http://127.0.0.1:") and url.endswith("/rest/1/abc123/")
    assert "warning: --host 0.0.0.0 serves on every network interface" in err


# -- stores: errors that name the file, read-only stores, no stray files -------------------------


def test_commands_that_only_read_create_no_store(live_emulator: EmulatorServer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = live_emulator.webhook_url
    assert cli("plan", str(HR), "--portal", url).exit_code == 5  # changes to make, and no store for it
    assert cli("drift", str(HR), "--portal", url).exit_code == 5
    for args in (["drift", "--portal", url], ["status", "--portal", url],
                 ["conflicts", "list", "--portal", url], ["export", "-t", "candidate", "--portal", url],
                 ["report", "funnel", "-t", "candidate", "--portal", url]):
        result = cli(*args)
        assert result.exit_code in (1, 2), (args, result.output)
        assert "data" in one_error_line(result.stderr), args  # names the store file it did not find
    assert no_store_files(tmp_path) == []
    assert cli("apply", str(HR), "--portal", url, "--yes").exit_code == 0  # a command that changes it may
    assert [p.name for p in (tmp_path / "data").iterdir()] != []


def test_status_needs_only_the_store_not_the_webhook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("B24SYNC_PORTAL_ACME_WEBHOOK", raising=False)
    (tmp_path / "b24sync.toml").write_text('[portals.acme]\nstore = "stores/acme.db"\n', encoding="utf-8")
    (tmp_path / "stores").mkdir()
    Store.open(tmp_path / "stores" / "acme.db").close()
    result = cli("status", "--portal", "acme")
    assert result.exit_code == 0, result.output
    assert "Store stores/acme.db" in result.stdout
    needs = cli("sync", "--portal", "acme")  # a command that talks to the portal still needs it
    assert needs.exit_code == 2 and "B24SYNC_PORTAL_ACME_WEBHOOK" in needs.stderr


# Runs the commands with CliRunner in one process and prints [[exit code, stdout, stderr], ...].
_RUN_ALL = """
import json, sys
from typer.testing import CliRunner
from connector.cli.main import app
runs = [CliRunner().invoke(app, argv) for argv in json.loads(sys.argv[1])]
print(json.dumps([[r.exit_code, r.stdout, r.stderr] for r in runs]))
"""


def _as_nobody(commands: list[list[str]]) -> list[tuple[int, str, str]] | None:
    """Run CLI commands as user `nobody` (file permissions bind only a user that is not root)."""
    python = shutil.which("python3.11", path="/usr/bin:/bin")
    site = next(Path(sys.prefix).glob("lib/python3*/site-packages"), None)
    if python is None or site is None:
        return None
    done = subprocess.run([python, "-c", _RUN_ALL, json.dumps(commands)], capture_output=True, text=True,
                          user=65534, cwd="/", timeout=60, env={"PYTHONPATH": f"{ROOT}:{site}"})
    if done.returncode != 0:  # nobody cannot run this python or import the checkout
        return None
    return [tuple(r) for r in json.loads(done.stdout)]


def test_a_read_only_store_in_a_read_only_folder_is_still_readable(tmp_path: Path) -> None:
    """`status`, `export` and `report` read it; `sync` says which file and why it cannot write."""
    folder = Path(tempfile_dir()) / "ro"
    folder.mkdir()
    store_file = folder / "acme.db"
    with Portal.from_webhook("https://acme.example.com/rest/1/c0de/", store=store_file) as portal:
        portal.store.ensure_process(load_template(HR))
    store_file.chmod(0o444)
    folder.chmod(0o555)
    commands = [
        ["status", "--db", str(store_file)],
        ["export", "-t", "candidate", "--db", str(store_file), "--headers", "codes", "--dialect", "rfc4180"],
        ["report", "funnel", "-t", "candidate", "--format", "csv", "--db", str(store_file)],
        ["sync", "--db", str(store_file), "--portal", f"http://127.0.0.1:{free_port()}/rest/1/x/"],
    ]
    try:
        if os.geteuid() == 0:
            results = _as_nobody(commands)
            if results is None:
                pytest.skip("running as root, and no python that user nobody may run")
        else:
            results = [(r.exit_code, r.stdout, r.stderr) for r in (cli(*argv) for argv in commands)]
        (status, export, report, sync) = results
        assert status[0] == 0 and "candidate (0 items)" in status[1], status
        assert export[0] == 0 and export[1].startswith(("title", "\ufefftitle", "id", "key")), export
        assert report[0] == 0, report
        line = one_error_line(sync[2])
        assert sync[0] == 1 and str(store_file) in line and "read-only" in line
        assert sorted(p.name for p in folder.iterdir()) == ["acme.db"]  # nothing written beside it
    finally:
        folder.chmod(0o755)
        store_file.chmod(0o644)
        shutil.rmtree(folder.parent)


def tempfile_dir() -> str:
    """A fresh folder others may enter (pytest's tmp_path is private to its user)."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="b24sync-ro-")
    os.chmod(folder, 0o755)
    return folder


def test_gitignore_keeps_store_side_files_out() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert {"*.db", "*.db-wal", "*.db-shm"} <= set(ignored)


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subs = getattr(command, "commands", {})
    paths = [prefix]
    for name, sub in subs.items():
        paths += _command_paths(sub, (*prefix, name))
    return paths


def test_help_names_what_to_type_not_python_types() -> None:
    from typer.main import get_command

    from connector.cli.main import app

    paths = _command_paths(get_command(app))
    assert ("sync",) in paths and ("emulator", "serve") in paths and ("conflicts", "resolve") in paths
    for path in paths:
        shown = cli(*path, "-h")
        assert shown.exit_code == 0, path
        types = re.search(r"<(str|int|float|bool|path|list\[[^]]*\]|Path)>", shown.stdout)
        assert types is None, (path, shown.stdout)
    sync_help = cli("sync", "--help").stdout
    assert "--portal NAME|URL" in sync_help and "--template FILE" in sync_help and "-h, --help" in sync_help


def test_version() -> None:
    from connector import __version__

    shown = cli("--version")
    assert shown.exit_code == 0 and shown.stdout.strip() == f"b24sync {__version__}"
