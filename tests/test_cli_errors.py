"""Issue 9 §4: every class of error reaches the user as one line and a documented exit code.

Each error goes through the CLI: typer's CliRunner (in-process) and, for the user-facing ones, a
real `python -m connector` subprocess. No traceback, no secret, no stray store file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from typer.testing import CliRunner

from connector.cli.main import app
from connector.emulator import EmulatorServer
from connector.rest import RetryPolicy

ROOT = Path(__file__).resolve().parent.parent
HR = ROOT / "mappings" / "hr_candidates.toml"
SECRET = "s3cretC0de42"
REMOTE = f"https://acme.example.com/rest/1/{SECRET}/"


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    """Run the CLI in-process with typer's CliRunner."""
    return CliRunner().invoke(app, list(args), env=env)


def subprocess_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
                   timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m connector ARGS` as a user would (stdout/stderr are pipes, not a terminal)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "connector", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def free_port() -> int:
    """A loopback port nobody listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_error_line(stderr: str) -> str:
    """The stderr of a failed command: exactly one `error:` line and no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def no_store_files(folder: Path) -> list[str]:
    found = folder.rglob("*")
    return sorted(str(p.relative_to(folder)) for p in found if ".db" in p.name or p.name == "data")


# -- the portal and the network ------------------------------------------------------------------


def test_refused_loopback_port_fails_fast_names_host_and_leaves_no_store(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/rest/1/{SECRET}/"
    started = time.monotonic()
    done = subprocess_cli("sync", "--portal", url, "--template", str(HR), cwd=tmp_path)
    elapsed = time.monotonic() - started
    line = one_error_line(done.stderr)
    assert done.returncode == 1
    assert f"127.0.0.1:{port}" in line and "refused" in line and SECRET not in done.stdout + done.stderr
    assert elapsed < 8, f"took {elapsed:.1f}s"  # the interpreter start included; no 13 s of retries
    assert no_store_files(tmp_path) == []


@pytest.mark.parametrize("command", [["apply", str(HR), "--yes"], ["plan", str(HR)], ["drift", str(HR)],
                                     ["adopt", "--type", "1"]])
def test_refused_portal_leaves_no_store_for_any_deploy_command(command: list[str], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    port = free_port()
    result = cli(*command, "--portal", f"http://127.0.0.1:{port}/rest/1/{SECRET}/")
    assert result.exit_code == 1, result.output
    assert f"127.0.0.1:{port}" in one_error_line(result.stderr) and "refused" in result.stderr
    assert no_store_files(tmp_path) == []


@pytest.mark.parametrize(
    ("raised", "detail"),
    [
        (requests.ConnectTimeout("connect timed out"), "no answer to the connection attempt"),
        (requests.exceptions.SSLError("certificate verify failed"), "TLS failed"),
    ],
)
def test_unreachable_portal_says_unreachable_at_once(raised: Exception, detail: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with responses.RequestsMock() as rsps:
        rsps.post(REMOTE + "crm.type.list", body=raised)
        started = time.monotonic()
        result = cli("call", "crm.type.list", "--portal", REMOTE)
        assert len(rsps.calls) == 1  # never answered: no retries
    line = one_error_line(result.stderr)
    assert result.exit_code == 1 and time.monotonic() - started < 3
    assert "acme.example.com" in line and "unreachable" in line and detail in line and SECRET not in line


def test_refused_after_the_portal_answered_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail-fast applies only before the first answer; a portal that answered may just be restarting."""
    from connector.rest import Client

    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=3, jitter=lambda: 0)
    client = Client.from_webhook(REMOTE, sleep=sleeps.append, retry=policy)
    refused = requests.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    with responses.RequestsMock() as rsps:
        rsps.post(REMOTE + "crm.type.list", json={"result": {"types": []}})
        rsps.post(REMOTE + "crm.type.get", body=refused)
        rsps.post(REMOTE + "crm.type.get", json={"result": {"type": {"id": 1}}})
        client.call("crm.type.list")
        assert client.call("crm.type.get", {"id": 1}).result == {"type": {"id": 1}}
    assert client.stats.retries == 1 and sleeps == [0.5]


def test_rejected_webhook_is_one_line_about_credentials(live_emulator: EmulatorServer, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # server-behaviour.md §7: a bad webhook answers 401 INVALID_CREDENTIALS
    monkeypatch.chdir(tmp_path)
    wrong = live_emulator.webhook_url.rsplit("/", 2)[0] + f"/{SECRET}/"
    result = cli("sync", "--portal", wrong, "--template", str(HR))
    line = one_error_line(result.stderr)
    assert result.exit_code == 1 and "refused the credentials" in line and "INVALID_CREDENTIALS" in line
    assert "B24SYNC_PORTAL_<NAME>_WEBHOOK" in line and SECRET not in result.output
    assert no_store_files(tmp_path) == []  # a failed first sync leaves no store file


def test_access_denied_says_which_rights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # server-behaviour.md §7: REST-level AccessException is 403 ACCESS_DENIED
    monkeypatch.chdir(tmp_path)
    with responses.RequestsMock() as rsps:
        rsps.post(REMOTE + "crm.type.list", status=403,
                  json={"error": "ACCESS_DENIED", "error_description": "Access denied!"})
        result = cli("call", "crm.type.list", "--portal", REMOTE)
    line = one_error_line(result.stderr)
    assert result.exit_code == 1 and "acme.example.com denied access" in line and "`crm` scope" in line


def test_html_pages_after_retries_are_no_usable_answer(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    quick = RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.01)
    monkeypatch.setattr("connector.rest.client.RetryPolicy", lambda: quick)
    page = "<html><head><title>502 Bad Gateway</title></head></html>"
    with responses.RequestsMock() as rsps:
        rsps.post(REMOTE + "crm.type.list", status=502, body=page, content_type="text/html")
        result = cli("call", "crm.type.list", "--portal", REMOTE)
    line = one_error_line(result.stderr)
    assert result.exit_code == 1 and "gave no usable answer" in line and "HTML" in line and "-vv" in line


# -- the store and files -------------------------------------------------------------------------


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    junk = tmp_path / "notes.db"
    junk.write_text("these are my notes, not a database\n" * 100, encoding="utf-8")
    for args in (["status", "--db", str(junk)], ["conflicts", "list", "--db", str(junk)],
                 ["sync", "--db", str(junk), "--portal", f"http://127.0.0.1:{free_port()}/rest/1/x/"]):
        result = cli(*args)
        line = one_error_line(result.stderr)
        assert result.exit_code == 1, (args, result.stderr)
        assert str(junk) in line and "not an SQLite database" in line and "--db" in line
    assert junk.read_text(encoding="utf-8").startswith("these are my notes")  # untouched


def test_a_folder_given_as_store_is_named_with_the_reason(tmp_path: Path,
                                                          live_emulator: EmulatorServer) -> None:
    folder = tmp_path / "stores"
    folder.mkdir()
    result = cli("sync", "--db", str(folder), "--portal", live_emulator.webhook_url, "--template", str(HR))
    line = one_error_line(result.stderr)
    assert result.exit_code == 1 and str(folder) in line and "it is a folder, not a file" in line


def test_file_errors_name_the_file_and_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*_args: Any, **_kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(tmp_path / "out" / "x.csv"))

    monkeypatch.setattr("connector.reports.status", denied)
    result = cli("status", "--db", str(tmp_path / "s.db"))
    line = one_error_line(result.stderr)
    assert result.exit_code == 1 and "x.csv: Permission denied; check the permissions" in line


# -- bugs: a crash report, not a traceback --------------------------------------------------------


def test_a_bug_prints_one_line_and_writes_a_masked_crash_report(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    crashes = tmp_path / "crashes"
    monkeypatch.setenv("B24SYNC_CRASH_DIR", str(crashes))
    monkeypatch.setenv("B24SYNC_PORTAL_ACME_REFRESH_TOKEN", "refr3shT0ken")

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise KeyError(f"lost at {REMOTE}crm.item.list?auth=tok3nValue after refr3shT0ken")

    monkeypatch.setattr("connector.reports.status", broken)
    result = cli("status", "--db", str(tmp_path / "s.db"))
    line = one_error_line(result.stderr)
    assert result.exit_code == 4 and "unexpected error KeyError" in line and "a bug in b24sync" in line
    (report,) = crashes.glob("crash-*.txt")
    assert str(report) in line
    text = report.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "broken" in text and "b24sync 0." in text
    for secret in (SECRET, "tok3nValue", "refr3shT0ken"):
        assert secret not in text + line
    assert "/rest/1/***/crm.item.list?auth=*** after ***" in text

    verbose = cli("-v", "status", "--db", str(tmp_path / "s.db"))
    assert verbose.exit_code == 4 and "Traceback (most recent call last)" in verbose.stderr
    assert SECRET not in verbose.stderr and verbose.stderr.strip().splitlines()[-1].startswith("error: ")


def test_a_bug_in_a_real_process_exits_4_with_the_report_path(tmp_path: Path) -> None:
    script = ("import sys, connector.reports as r\n"
              "def boom(*a, **k): raise ZeroDivisionError('division by zero')\n"
              "r.status = boom\n"
              "from connector.cli.main import main\nsys.exit(main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", script, "status", "--db", "s.db"], cwd=tmp_path, text=True,
                          capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "B24SYNC_CRASH_DIR": str(tmp_path)})
    line = one_error_line(done.stderr)
    assert done.returncode == 4 and "ZeroDivisionError" in line
    (report,) = tmp_path.glob("crash-*.txt")
    assert str(report) in line and "boom" in report.read_text(encoding="utf-8")


# -- Ctrl-C ---------------------------------------------------------------------------------------


def test_ctrl_c_during_sync_says_what_was_done_and_exits_130(live_emulator: EmulatorServer, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted_sync(*_args: Any, progress: Any = None, **_kwargs: Any) -> Any:
        progress("candidate", "pull", 50)
        progress("candidate", "push", 7)
        raise KeyboardInterrupt

    monkeypatch.setattr("connector.sync.sync", interrupted_sync)
    db = tmp_path / "s.db"
    result = cli("sync", "--db", str(db), "--portal", live_emulator.webhook_url, "--template", str(HR))
    assert result.exit_code == 130
    assert "interrupted after" in result.stderr
    assert "pull candidate 50 rows, push candidate 7 rows" in result.stderr
    assert f"kept in {db}" in result.stderr and "the next `b24sync sync` resumes" in result.stderr
    assert "Traceback" not in result.stderr


def test_json_mode_errors_are_still_one_line_on_stderr(tmp_path: Path) -> None:
    done = subprocess_cli("--json", "call", "crm.type.list", "--portal",
                          f"http://127.0.0.1:{free_port()}/rest/1/x/", cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == "" and "refused" in one_error_line(done.stderr)
    with pytest.raises(json.JSONDecodeError):
        json.loads(done.stderr)


# -- the same line and exit code in-process and in a real process ---------------------------------


def _scenario(kind: str, folder: Path, webhook: str) -> tuple[list[str], int, str]:
    """(argv, exit code, text the one error line must hold) for one class of error.

    A refused portal and a bug have their own real-process tests above.
    """
    if kind == "credentials":  # server-behaviour.md §7: bad webhook -> 401 INVALID_CREDENTIALS
        return ["call", "crm.type.list", "--portal", webhook.rsplit("/", 2)[0] + "/wrong/"], 1, \
            "refused the credentials"
    if kind == "store":
        (folder / "junk.db").write_bytes(b"\x00junk" * 200)
        junk = folder / "junk.db"
        return ["status", "--db", str(junk)], 1, f"store {junk}: not an SQLite database"
    if kind == "file":
        from connector.store import Store
        from connector.templates import load_template

        (folder / "out").mkdir()
        with Store.open(folder / "ok.db") as store:
            store.ensure_process(load_template(HR))
        report = ["report", "funnel", "-t", "candidate", "--db", str(folder / "ok.db"),
                  "-o", str(folder / "out")]
        return report, 1, "out: Is a directory; it is a folder; give a file"
    if kind == "template":
        (folder / "bad.toml").write_text("code = [\n", encoding="utf-8")
        return ["plan", str(folder / "bad.toml"), "--portal", webhook], 2, \
            f"{folder / 'bad.toml'}: TOML syntax error: Invalid value"
    assert kind == "config"
    return ["--config", str(folder / "nope.toml"), "status", "--portal", "acme"], 2, \
        f"config file not found: {folder / 'nope.toml'}"


@pytest.mark.parametrize("kind", ["credentials", "store", "file", "template", "config"])
def test_each_error_class_reads_the_same_in_process_and_in_a_real_process(
        kind: str, live_emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_sync_support import setup_processes

    from connector.templates import load_templates

    setup_processes(live_emulator.emulator, load_templates([HR]))
    monkeypatch.chdir(tmp_path)
    argv, code, text = _scenario(kind, tmp_path, live_emulator.webhook_url)
    in_process = cli(*argv)
    real = subprocess_cli(*argv, cwd=tmp_path)
    for exit_code, stderr in ((in_process.exit_code, in_process.stderr), (real.returncode, real.stderr)):
        assert exit_code == code, stderr
        assert text in stderr and "Traceback" not in stderr, stderr
        one_error_line(stderr)
