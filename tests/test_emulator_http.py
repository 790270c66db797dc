"""Emulator over HTTP: responses adapter, loopback server, auth, OAuth, state file, CLI, fuzzing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.emulator import Emulator, EmulatorServer, serve
from connector.emulator.server import route


def test_responses_adapter_accepts_json_form_and_query(emu_url: str) -> None:
    r = requests.post(emu_url + "crm.type.add.json", json={"fields": {"title": "Cars"}})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json; charset=utf-8"
    etid = r.json()["result"]["type"]["entityTypeId"]
    r = requests.post(emu_url + "crm.item.add", data={"entityTypeId": etid, "fields[title]": "<b>&'"})
    assert r.json()["result"]["item"]["title"] == "<b>&'"
    assert "\\u003Cb\\u003E\\u0026\\u0027" in r.text  # Json::encode HEX flags
    r = requests.get(
        emu_url + "crm.item.list", params={"entityTypeId": etid, "select[]": "title", "start": "-1"}
    )
    assert r.json()["result"] == {"items": [{"title": "<b>&'"}]}


def test_wrong_webhook_code_is_401_but_unknown_method_is_404_first(emulator: Emulator, emu_url: str) -> None:
    bad = emu_url.replace(emulator.webhook_code, "wrong")
    r = requests.get(bad + "crm.type.list")
    assert r.status_code == 401 and r.json()["error"] == "INVALID_CREDENTIALS"
    r = requests.get(bad + "crm.type.nothing")
    assert r.status_code == 404 and r.json() == {
        "error": "ERROR_METHOD_NOT_FOUND",
        "error_description": "Method not found!",
    }
    r = requests.post(emu_url + "crm.item.get", json={"entityTypeId": 1032})
    assert r.status_code == 400 and r.json()["error"] == "100"


def test_dropped_response_raises_connection_error_after_the_write(emulator: Emulator, emu_url: str) -> None:
    requests.post(emu_url + "crm.type.add", json={"fields": {"title": "X"}})
    emulator.faults.drop_next("crm.item.add")
    with pytest.raises(requests.ConnectionError):
        requests.post(emu_url + "crm.item.add", json={"entityTypeId": 1032, "fields": {"xmlId": "k"}})
    assert [r["XML_ID"] for r in emulator.items(1032)] == ["k"]


def test_injected_faults_reach_the_client(emulator: Emulator, emu_url: str) -> None:
    emulator.faults.inject_next("html", "crm.type.list")
    r = requests.get(emu_url + "crm.type.list")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    emulator.faults.inject_next("truncate", "crm.type.list")
    r = requests.get(emu_url + "crm.type.list")
    with pytest.raises(ValueError):
        json.loads(r.text)
    emulator.faults.inject_next("503", "crm.type.list")
    assert requests.get(emu_url + "crm.type.list").status_code == 503


def test_oauth_tokens_expire_and_refresh(emulator: Emulator) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        emulator.register(rsps)
        base = "https://emulator.bitrix24.test"
        tokens = emulator.issue_token()
        r = requests.post(base + "/rest/crm.type.list", json={"auth": tokens["access_token"]})
        assert r.status_code == 200
        assert requests.post(base + "/rest/crm.type.list", json={"auth": "nope"}).status_code == 401
        assert requests.get(base + "/rest/crm.type.list").json()["error"] == "NO_AUTH_FOUND"
        emulator.clock.advance(3601)  # type: ignore[attr-defined]
        r = requests.get(base + "/rest/crm.type.list", params={"auth": tokens["access_token"]})
        assert r.status_code == 401 and r.json() == {
            "error": "expired_token",
            "error_description": "The access token provided has expired",
        }
        refresh = {
            "grant_type": "refresh_token",
            "client_id": emulator.oauth.client_id,
            "client_secret": emulator.oauth.client_secret,
            "refresh_token": tokens["refresh_token"],
        }
        fresh = requests.get(base + "/oauth/token/", params=refresh).json()
        assert fresh["access_token"] != tokens["access_token"] and fresh["expires_in"] == 3600
        assert (
            requests.get(base + "/rest/crm.type.list", params={"auth": fresh["access_token"]}).status_code
            == 200
        )
        reused = requests.get(base + "/oauth/token/", params=refresh)
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        wrong = requests.get(base + "/oauth/token/", params={**refresh, "client_secret": "x"})
        assert wrong.status_code == 401


def test_app_only_methods_refuse_webhooks(emulator: Emulator) -> None:
    assert emulator.call("event.get", {})["error"] == "WRONG_AUTH_TYPE"


def test_live_server_keyset_and_drop(live_emulator: EmulatorServer) -> None:
    url = live_emulator.webhook_url
    assert url.startswith("http://127.0.0.1:")
    requests.post(url + "crm.type.add", json={"fields": {"title": "Live"}}, timeout=5)
    live_emulator.emulator.seed_items(1032, 60)
    r = requests.post(
        url + "crm.item.list",
        timeout=5,
        json={
            "entityTypeId": 1032,
            "start": -1,
            "order": {"id": "ASC"},
            "filter": {">id": 50},
            "select": ["id"],
        },
    )
    assert [row["id"] for row in r.json()["result"]["items"]] == list(range(51, 61))
    live_emulator.emulator.faults.drop_next("crm.item.add")
    with pytest.raises(requests.ConnectionError):
        requests.post(url + "crm.item.add", json={"entityTypeId": 1032, "fields": {}}, timeout=5)
    assert requests.get(url + "crm.type.list", timeout=5).status_code == 200  # still serving


def test_state_file_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "portal.db"
    emu = Emulator(clock="virtual", state_file=str(path))
    tid = emu.call("crm.type.add", {"fields": {"title": "Kept"}})["result"]["type"]["id"]
    emu.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {"entityId": f"CRM_{tid}", "fieldName": f"UF_CRM_{tid}_X", "userTypeId": "string"},
        },
    )
    emu.call("crm.item.add", {"entityTypeId": 1032, "fields": {"title": "one", "ufCrm3X": "v"}})
    emu.call("crm.item.add", {"entityTypeId": 1032, "fields": {"title": "two"}})
    emu.call("crm.item.delete", {"entityTypeId": 1032, "id": 2})
    emu.seed_items(1032, 3)
    code = emu.webhook_code
    emu.close()
    again = Emulator(clock="virtual", state_file=str(path))
    assert again.webhook_code == code
    rows = again.call("crm.item.list", {"entityTypeId": 1032, "select": ["id", "title", "ufCrm3X"]})
    assert [r["id"] for r in rows["result"]["items"]] == [1, 3, 4, 5]
    assert rows["result"]["items"][0] == {"id": 1, "title": "one", "ufCrm3X": "v"}
    assert again.call("crm.item.add", {"entityTypeId": 1032, "fields": {}})["result"]["item"]["id"] == 6
    assert again.call("crm.type.add", {"fields": {"title": "n"}})["result"]["type"]["entityTypeId"] == 1034
    assert [h["ownerId"] for h in again.stage_history] == [1, 2, 6]  # seeding writes no history
    again.close()


def test_state_file_errors_are_clear(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite" * 100)
    with pytest.raises(ValueError, match="not an emulator state database"):
        Emulator(state_file=str(junk))
    with pytest.raises(ValueError, match="is a directory"):
        Emulator(state_file=str(tmp_path))


def test_cli_serve_prints_url_first_and_stops_on_sigterm(tmp_path: Path) -> None:
    code = (
        "import typer, sys; from connector.cli.emulator_cmd import register; app = typer.Typer(); "
        "register(app); app(sys.argv[1:])"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "emulator",
            "serve",
            "--port",
            "0",
            "--code",
            "abc",
            "--state",
            str(tmp_path / "s.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("http://127.0.0.1:") and first.endswith("/rest/1/abc/")
        r = requests.post(first + "crm.type.add", json={"fields": {"title": "cli"}}, timeout=5)
        assert r.json()["result"]["type"]["entityTypeId"] == 1032
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == 0
    assert Emulator(state_file=str(tmp_path / "s.db")).state.type_by_etid(1032) is not None


def _keep_alive_call(sock: socket.socket, port: int) -> bytes:
    """One keep-alive request on a raw socket; returns the whole response (headers and body)."""
    body = b"{}"
    sock.sendall(
        b"POST /rest/1/abc/crm.type.list HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: keep-alive\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (port, len(body), body)
    )
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    sizes = [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")]
    length = int(sizes[0].split(b":")[1])
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest


def test_stop_hangs_up_idle_keep_alive_connections() -> None:
    """After stop() no handler keeps serving an idle keep-alive client (its writes would be lost)."""
    before = set(threading.enumerate())
    server = serve(Emulator(webhook_code="abc"), "127.0.0.1", 0)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        assert _keep_alive_call(sock, server.port).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
        sock.settimeout(1.0)
        assert sock.recv(1024) == b""  # EOF: the server closed the connection, not a 30 s idle timeout
    finally:
        sock.close()
    handlers = [t for t in set(threading.enumerate()) - before if t.name.endswith("(process_request_thread)")]
    for t in handlers:
        t.join(timeout=1.0)
    assert not [t for t in handlers if t.is_alive()]  # without the hang-up: alive until a 30 s timeout


def test_cli_serve_exits_within_a_second_of_sigterm_with_a_client_connected() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", "emulator", "serve", "--port", "0", "--code", "abc"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            assert _keep_alive_call(sock, port).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
            elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert elapsed < 1.0, f"emulator serve took {elapsed:.2f} s to exit after SIGTERM"


def test_cli_rejects_bad_limits(tmp_path: Path) -> None:
    code = (
        "import typer, sys; from connector.cli.emulator_cmd import register; app = typer.Typer(); "
        "register(app); app(sys.argv[1:])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "emulator", "serve", "--limits", "gold"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).parent.parent,
    )
    assert out.returncode == 2 and "unknown plan 'gold'" in out.stderr


ALLOWED_STATUSES = {200, 400, 401, 403, 404, 405, 413, 429, 500, 503}
segment = st.sampled_from(
    [
        "rest",
        "1",
        "crm.item.list",
        "crm.type.add",
        "batch",
        "oauth",
        "token",
        "",
        "x.json",
        "%00",
        "..",
        "crm.item.add",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parts=st.lists(segment, max_size=5),
    query=st.text(max_size=40),
    body=st.one_of(
        st.binary(max_size=80),
        st.text(max_size=80).map(str.encode),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
            max_leaves=8,
        ).map(lambda v: json.dumps({"fields": v, "cmd": v}).encode()),
    ),
    ctype=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "", "text/plain"]),
    verb=st.sampled_from(["GET", "POST", "PUT"]),
)
def test_fuzz_http_surface_never_crashes(
    emulator: Emulator, parts: list[str], query: str, body: bytes, ctype: str, verb: str
) -> None:
    if not emulator.state.types:
        emulator.call("crm.type.add", {"fields": {"title": "F"}})
    path = "/" + "/".join(parts)
    if parts[:1] == ["rest"] and len(parts) > 2:
        path = f"/rest/1/{emulator.webhook_code}/" + "/".join(parts[2:])
    resp = route(emulator, verb, path, query, body, ctype, "https://emulator.bitrix24.test")
    assert resp.status in ALLOWED_STATUSES and resp.status != 500
    assert isinstance(json.loads(resp.body), dict | list)


def test_a_crashed_request_is_logged_without_the_webhook_code(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from connector.emulator import server

    def crash(*_args: object) -> dict[str, object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(server, "decode_params", crash)
    path = f"/rest/1/{emulator.webhook_code}/crm.type.list"
    with caplog.at_level("ERROR", logger=server.log.name):
        resp = route(emulator, "POST", path, "", b"", "", "https://emulator.bitrix24.test")
    assert resp.status == 500 and json.loads(resp.body)["error"] == "INTERNAL_SERVER_ERROR"
    assert "request to /rest/1/****/crm.type.list failed" in caplog.text
    assert emulator.webhook_code not in caplog.text


def test_fuzz_live_socket_garbage_does_not_stop_the_server(emulator: Emulator) -> None:
    import socket

    server = serve(emulator)
    try:
        for junk in (
            b"\x00\x01garbage\r\n\r\n",
            b"GET /rest/1/x/crm.type.list HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
        ):
            with socket.create_connection((server.host, server.port), timeout=5) as s:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.recv(1024)
        assert requests.get(server.webhook_url + "crm.type.list", timeout=5).status_code == 200
    finally:
        server.stop()


def test_state_file_keeps_event_bindings_offline_queue_and_tokens(tmp_path: Path) -> None:
    path = tmp_path / "portal.db"
    emu = Emulator(clock="virtual", state_file=str(path))
    pair = emu.issue_token()

    def send(e: Emulator, method: str, params: dict, token: str | None = None) -> dict:
        if token is None:
            resp = route(
                e,
                "POST",
                f"/rest/1/{e.webhook_code}/{method}",
                "",
                json.dumps(params).encode(),
                "application/json",
                "https://x.test",
            )
        else:
            resp = route(
                e,
                "POST",
                f"/rest/{method}",
                "",
                json.dumps({**params, "auth": token}).encode(),
                "application/json",
                "https://x.test",
            )
        return json.loads(resp.body)

    send(
        emu,
        "event.bind",
        {"event": "ONCRMDYNAMICITEMUPDATE", "handler": "https://h.test/x"},
        pair["access_token"],
    )
    send(emu, "event.bind", {"event": "ONCRMDYNAMICITEMADD", "event_type": "offline"}, pair["access_token"])
    emu.events.deliverer = lambda url, form: None
    send(emu, "crm.type.add", {"fields": {"title": "T"}})
    send(emu, "crm.item.add", {"entityTypeId": 1032, "fields": {"title": "a"}})
    send(emu, "crm.item.add", {"entityTypeId": 1032, "fields": {"title": "b"}})
    reserved = send(emu, "event.offline.get", {"clear": 0, "limit": 1}, pair["access_token"])["result"]
    app_token = emu.events.application_token
    emu.close()

    again = Emulator(clock="virtual", state_file=str(path))
    access = pair["access_token"]
    bound = send(again, "event.get", {}, access)  # the access token survives the restart
    assert sorted((b["event"], b["offline"]) for b in bound["result"]) == [
        ("ONCRMDYNAMICITEMADD", 1),
        ("ONCRMDYNAMICITEMUPDATE", 0),
    ]
    assert again.events.application_token == app_token
    rows = send(again, "event.offline.list", {}, access)["result"]
    assert [(r["EVENT_NAME"], r["PROCESS_ID"]) for r in rows] == [
        ("ONCRMDYNAMICITEMADD", reserved["process_id"]),
        ("ONCRMDYNAMICITEMADD", ""),
    ]
    assert (
        send(again, "event.offline.clear", {"process_id": reserved["process_id"]}, access)["result"] is True
    )
    # the refresh token survives too, and a used one is gone after the next restart
    status, fresh = again.oauth.exchange(
        {
            "grant_type": "refresh_token",
            "client_id": again.oauth.client_id,
            "client_secret": again.oauth.client_secret,
            "refresh_token": pair["refresh_token"],
        },
        again.clock.now(),
        again.domain,
        "https://x.test",
    )
    assert status == 200
    again.close()
    third = Emulator(clock="virtual", state_file=str(path))
    assert len(send(third, "event.offline.list", {}, fresh["access_token"])["result"]) == 1
    status, _ = third.oauth.exchange(
        {
            "grant_type": "refresh_token",
            "client_id": third.oauth.client_id,
            "client_secret": third.oauth.client_secret,
            "refresh_token": pair["refresh_token"],
        },
        third.clock.now(),
        third.domain,
        "https://x.test",
    )
    assert status == 400
    third.close()


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    """`b24sync emulator serve ARGS` through the real entry point; returns (process, first line)."""
    code = "import sys; from connector.cli.main import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "emulator", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=Path(__file__).parent.parent,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _stop_cli(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_cli_serve_limits_faults_and_state_end_to_end(tmp_path: Path) -> None:
    """--faults drops the answer of an applied write, --limits refuses a burst with 503 and adds
    `operating` to `time`, --state brings the same portal (and webhook code) back after a restart."""
    state = str(tmp_path / "portal.db")
    proc, url = _start_cli(
        "--state", state, "--limits", "standard", "--faults", "drop=crm.item.add:1.0,seed=3"
    )
    try:
        assert url.startswith("http://127.0.0.1:") and "/rest/1/" in url
        typ = requests.post(url + "crm.type.add", json={"fields": {"title": "E2E"}}, timeout=5).json()
        assert "operating" in typ["time"] and "operating_reset_at" in typ["time"]
        etid = typ["result"]["type"]["entityTypeId"]
        with pytest.raises(requests.ConnectionError):  # the write is applied, the answer is lost
            requests.post(
                url + "crm.item.add", json={"entityTypeId": etid, "fields": {"title": "lost"}}, timeout=5
            )
        listed = requests.post(url + "crm.item.list", json={"entityTypeId": etid}, timeout=5).json()
        assert [i["title"] for i in listed["result"]["items"]] == ["lost"]
        statuses = [requests.get(url + "crm.type.list", timeout=5).status_code for _ in range(60)]
        assert 503 in statuses and statuses[0] == 200  # 50 + a little drain, then refusals
        refused = requests.get(url + "crm.type.list", timeout=5)
        assert refused.status_code == 503 and refused.json()["error"] == "QUERY_LIMIT_EXCEEDED"
    finally:
        _stop_cli(proc)
    proc, again = _start_cli("--state", state)  # no --code: the kept one is used; limits off now
    try:
        assert again.split("/rest/")[1] == url.split("/rest/")[1]
        listed = requests.post(again + "crm.item.list", json={"entityTypeId": etid}, timeout=5).json()
        assert [i["title"] for i in listed["result"]["items"]] == ["lost"]
        assert "operating" not in listed["time"]
        added = requests.post(again + "crm.item.add", json={"entityTypeId": etid, "fields": {}}, timeout=5)
        assert added.json()["result"]["item"]["id"] == 2  # no fault plan now; ids continue
    finally:
        _stop_cli(proc)


def test_cli_rejects_a_bad_fault_spec_naming_what_is_allowed(tmp_path: Path) -> None:
    code = "import sys; from connector.cli.main import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run(
        [sys.executable, "-c", code, "emulator", "serve", "--faults", "explode=0.5"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).parent.parent,
    )
    assert out.returncode == 2 and "explode" in out.stderr and "5xx" in out.stderr
