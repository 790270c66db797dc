"""The `b24sync` entry point: global options, `call`, exit codes, secrets kept out of output."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from connector.cli.main import hoist_global_options, main
from connector.emulator import EmulatorServer

Capture = pytest.CaptureFixture[str]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_call_over_loopback_prints_result(live_emulator: EmulatorServer, capsys: Capture) -> None:
    url = live_emulator.webhook_url
    code, out, _ = run(capsys, "call", "crm.type.add", '{"fields": {"title": "Авто"}}', "--portal", url)
    assert code == 0
    created = json.loads(out)["type"]
    assert created["title"] == "Авто" and created["entityTypeId"] == 1032
    code, out, _ = run(capsys, "--json", "call", "crm.type.list", "--portal", url)
    assert code == 0
    body = json.loads(out)
    assert [t["entityTypeId"] for t in body["result"]["types"]] == [1032]
    assert body["total"] == 1


def test_call_batch(live_emulator: EmulatorServer, capsys: Capture) -> None:
    cmd = {"a": "crm.type.add?fields[title]=A", "b": "crm.type.get?id=$result[a][type][id]"}
    batch = {"cmd": cmd, "halt": 0}
    code, out, _ = run(capsys, "call", "batch", json.dumps(batch), "--portal", live_emulator.webhook_url)
    assert code == 0
    result = json.loads(out)
    assert result["result"]["b"]["type"]["title"] == "A"
    assert result["result_error"] == []


def test_api_error_exits_1_without_secret(live_emulator: EmulatorServer, capsys: Capture) -> None:
    url = live_emulator.webhook_url
    secret = url.rstrip("/").rsplit("/", 1)[-1]
    code, out, err = run(capsys, "call", "crm.item.get", '{"entityTypeId": 1032, "id": 1}', "--portal", url)
    assert code == 1
    assert "NOT_FOUND" in err
    assert secret not in out + err


def test_wrong_webhook_code_is_an_auth_error(live_emulator: EmulatorServer, capsys: Capture) -> None:
    wrong = live_emulator.webhook_url.rstrip("/").rsplit("/", 1)[0] + "/wrongcode42/"
    code, out, err = run(capsys, "call", "crm.type.list", "--portal", wrong)
    assert code == 1
    assert "wrongcode42" not in out + err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["call", "crm.type.list", "not json", "--portal", "http://127.0.0.1:1/rest/1/x/"], "not valid JSON"),
        (["call", "crm.type.list", "[1]", "--portal", "http://127.0.0.1:1/rest/1/x/"], "JSON object"),
        (["call", "crm.type.list", "--portal", "nosuch"], "unknown portal 'nosuch'"),
        (["call", "crm.type.list", "--portal", "https://host/api/x"], "not a webhook URL"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err


def test_config_portal_and_unknown_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           live_emulator: EmulatorServer) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[portals.local]\nwebhook = "{live_emulator.webhook_url}"\n', encoding="utf-8")
    code, out, _ = run(capsys, "--config", str(config), "call", "crm.type.list", "--portal", "local")
    assert code == 0 and json.loads(out) == {"types": []}
    assert run(capsys, "no-such-command")[0] == 2


def test_console_script_help_lists_every_area() -> None:
    done = subprocess.run([sys.executable, "-m", "connector", "--help"], capture_output=True,
                          text=True, timeout=60, check=True)
    for command in ("call", "emulator", "template", "plan", "apply", "drift", "adopt", "sync", "conflicts",
                    "export", "report", "run", "status", "demo"):
        assert command in done.stdout, command


def test_emulator_http_log_hides_webhook_code(live_emulator: EmulatorServer, capsys: Capture,
                                              caplog: pytest.LogCaptureFixture) -> None:
    url = live_emulator.webhook_url
    secret = url.rstrip("/").rsplit("/", 1)[-1]
    with caplog.at_level(logging.DEBUG):
        assert run(capsys, "-vv", "call", "crm.type.list", "--portal", url)[0] == 0
    assert "/rest/1/****/crm.type.list" in caplog.text  # the emulator's own access log line
    assert secret not in caplog.text


def test_oauth_portal_refreshes_and_persists_tokens_through_the_cli(
        live_emulator: EmulatorServer, capsys: Capture, caplog: pytest.LogCaptureFixture, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """open_client's OAuth path: expired token -> emulator /oauth/token/ -> save_tokens -> next run."""
    emu, base = live_emulator.emulator, live_emulator.base_url
    first = emu.issue_token(base=base)
    token_file = tmp_path / "state" / "app.tokens.json"
    config = tmp_path / "c.toml"
    config.write_text(f'[portals.app]\nendpoint = "{base}/rest/"\nclient_id = "{emu.oauth.client_id}"\n'
                      f'token_url = "{base}/oauth/token/"\ntoken_file = "{token_file}"\n', encoding="utf-8")
    monkeypatch.setenv("B24SYNC_PORTAL_APP_ACCESS_TOKEN", first["access_token"])
    monkeypatch.setenv("B24SYNC_PORTAL_APP_REFRESH_TOKEN", first["refresh_token"])
    monkeypatch.setenv("B24SYNC_PORTAL_APP_CLIENT_SECRET", emu.oauth.client_secret)
    argv = ("-vv", "--config", str(config), "call", "crm.type.list", "--portal", "app")
    secrets = [emu.oauth.client_secret, first["access_token"], first["refresh_token"]]
    with caplog.at_level(logging.DEBUG):
        assert run(capsys, *argv)[:2] == (0, json.dumps({"types": []}, indent=2) + "\n")
        assert not token_file.exists()  # nothing refreshed yet
        emu.oauth.expire_all()
        code, out, err = run(capsys, *argv)
        assert code == 0 and json.loads(out) == {"types": []}
        second = json.loads(token_file.read_text(encoding="utf-8"))
        assert token_file.stat().st_mode & 0o777 == 0o600
        assert second["access_token"] not in secrets and second["refresh_token"] not in secrets
        secrets += [second["access_token"], second["refresh_token"]]
        # the env still holds the dead refresh token: the next run must use the token file's pair
        emu.oauth.expire_all()
        code, out, err2 = run(capsys, *argv)
        assert code == 0, err2
        third = json.loads(token_file.read_text(encoding="utf-8"))
        assert third["refresh_token"] != second["refresh_token"]
        secrets += [third["access_token"], third["refresh_token"]]
    assert "refreshing once" in caplog.text and "/oauth/token/" in caplog.text
    for secret in secrets:
        assert secret not in caplog.text + out + err + err2


def test_oauth_with_a_dead_refresh_token_exits_1_naming_no_secret(
        live_emulator: EmulatorServer, capsys: Capture, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    emu, base = live_emulator.emulator, live_emulator.base_url
    pair = emu.issue_token(base=base)
    config = tmp_path / "c.toml"
    config.write_text(f'[portals.app]\nendpoint = "{base}/rest/"\nclient_id = "{emu.oauth.client_id}"\n'
                      f'token_url = "{base}/oauth/token/"\n', encoding="utf-8")
    monkeypatch.setenv("B24SYNC_PORTAL_APP_ACCESS_TOKEN", pair["access_token"])
    monkeypatch.setenv("B24SYNC_PORTAL_APP_REFRESH_TOKEN", "not-a-live-refresh-token")
    monkeypatch.setenv("B24SYNC_PORTAL_APP_CLIENT_SECRET", emu.oauth.client_secret)
    emu.oauth.expire_all()
    code, out, err = run(capsys, "--config", str(config), "call", "crm.type.list", "--portal", "app")
    assert code == 1 and "invalid_grant" in err
    for secret in (pair["access_token"], "not-a-live-refresh-token", emu.oauth.client_secret):
        assert secret not in out + err


def test_plain_http_portal_is_a_usage_error_and_unreachable_portal_a_runtime_error(
        capsys: Capture, caplog: pytest.LogCaptureFixture, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.rest import RetryPolicy

    monkeypatch.chdir(tmp_path)
    remote = "http://portal.example.com/rest/1/hid3code/"
    code, out, err = run(capsys, "call", "crm.type.list", "--portal", remote)
    assert code == 2 and "plain http" in err and "hid3code" not in out + err
    quick = RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.01)
    monkeypatch.setattr("connector.rest.client.RetryPolicy", lambda: quick)
    closed = "http://127.0.0.1:9/rest/1/hid3code/"  # port 9 (discard) is closed: connection refused
    with caplog.at_level(logging.DEBUG):
        code, out, err = run(capsys, "-vv", "call", "crm.type.list", "--portal", closed)
    assert code == 1 and "127.0.0.1:9" in err and "refused" in err
    assert "hid3code" not in out + err + caplog.text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["plan", "f.toml", "--json"], ["--json", "plan", "f.toml"]),
        (
            ["sync", "-vv", "--portal", "p", "--config", "c.toml"],
            ["-vv", "--config", "c.toml", "sync", "--portal", "p"],
        ),
        (["call", "m", "--", "--json"], ["call", "m", "--", "--json"]),
        (["--json", "status"], ["--json", "status"]),
    ],
)
def test_global_options_may_follow_the_command(argv: list[str], expected: list[str]) -> None:
    assert hoist_global_options(argv) == expected


def test_json_after_the_command(live_emulator: EmulatorServer, capsys: Capture) -> None:
    code, out, _ = run(capsys, "call", "crm.type.list", "--portal", live_emulator.webhook_url, "--json")
    assert code == 0 and json.loads(out)["total"] == 0


def test_all_and_portal_together_is_a_usage_error(capsys: Capture, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[portals.a]\nwebhook = "http://127.0.0.1:1/rest/1/x/"\n', encoding="utf-8")
    plan = str(Path(__file__).parent.parent / "mappings" / "hr_candidates.toml")
    code, _, err = run(capsys, "--config", str(config), "plan", plan, "--all", "--portal", "a")
    assert code == 2 and "not both" in err
