"""`b24sync doctor`: read-only checks, sandbox probes compared with the emulator, cleanup, --record, replay.

The portal in these tests is the emulator on a real 127.0.0.1 socket (the user-facing path), or
mocked HTTP (`responses`) for portals the emulator cannot play (no `scope` rights, no admin).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from hypothesis import given
from hypothesis import strategies as st

from connector.cli.main import main
from connector.doctor import DoctorReport, run_doctor
from connector.doctor import sandbox as sandbox_module
from connector.doctor.cleanup import is_sandbox
from connector.doctor.probes import PROBES, Probe
from connector.doctor.record import MASK, load, mask
from connector.doctor.replay import IdMap, replay
from connector.emulator import Emulator, EmulatorServer, serve
from connector.emulator.deviations import NOOP_UPDATE_BUMPS, enable
from connector.emulator.registry import METHODS
from connector.rest import Client, OAuthAuth

Capture = pytest.CaptureFixture[str]
RECORDINGS = Path(__file__).parent / "doctor_recordings"  # folders users sent us (`doctor --record`)


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sandbox_types(emu: Emulator) -> list[str]:
    return [t.code for t in emu.state.types.values() if t.code.startswith("b24sync_doctor_")]


@pytest.fixture()
def live_emulator() -> Iterator[EmulatorServer]:
    """A fresh emulator on a 127.0.0.1 socket with the system clock (a real portal's clock moves by itself;
    the doctor waits a second for updatedTime to tick), stopped at teardown."""
    with serve(Emulator(), "127.0.0.1", 0) as server:
        yield server


@pytest.fixture()
def busy_portal() -> Iterator[tuple[Emulator, EmulatorServer]]:
    """A portal at -05:00 with two unrelated smart processes (so its ids differ from a fresh emulator's)
    and the leftover sandbox of an interrupted doctor run, served on a loopback socket."""
    emu = Emulator(tz="-05:00")
    for n in range(2):
        smart = emu.call("crm.type.add", {"fields": {"title": f"Other {n}", "isCategoriesEnabled": "Y"}})
        etid = smart["result"]["type"]["entityTypeId"]
        emu.call("crm.category.add", {"entityTypeId": etid, "fields": {"name": "second"}})
        for _ in range(3):
            emu.call("crm.item.add", {"entityTypeId": etid, "fields": {"title": "keep me"}})
    left = emu.call("crm.type.add", {"fields": {"title": "b24sync doctor 2026",
                                                "code": "b24sync_doctor_2026"}})["result"]["type"]
    emu.call("crm.item.add", {"entityTypeId": left["entityTypeId"], "fields": {"title": "x"}})
    server = serve(emu, "127.0.0.1", 0)
    try:
        yield emu, server
    finally:
        server.stop()


# -- sandbox against the emulator: everything the same --------------------------------------------
def test_sandbox_on_loopback_emulator_is_all_same_and_leaves_nothing(
        live_emulator: EmulatorServer, capsys: Capture) -> None:
    code, out, _ = run(capsys, "doctor", "--portal", live_emulator.webhook_url, "--sandbox", "--json")
    body = json.loads(out)
    assert code == 0, [r for r in body["behaviours"] if not r["same"]]
    assert body["differences"] == 0 and body["exit_code"] == 0
    assert [r["key"] for r in body["behaviours"]] == [p.key for p in PROBES]
    assert all(r["same"] for r in body["behaviours"])
    assert live_emulator.emulator.state.types == {}  # the sandbox type and its items are gone


def test_table_names_every_behaviour(live_emulator: EmulatorServer, capsys: Capture) -> None:
    code, out, _ = run(capsys, "doctor", "--portal", live_emulator.webhook_url, "--sandbox")
    assert code == 0
    flat = " ".join(out.split())
    for heading in ("check", "how", "behaviour", "portal", "emulator", "same/different", "may create"):
        assert heading in flat
    assert flat.count("│ same │") == len(PROBES)  # one verdict per behaviour
    assert "nothing differs" in flat and "different" not in flat.replace("same/different", "")


def test_observations_hold_what_the_server_rules_say(live_emulator: EmulatorServer) -> None:
    report = run_doctor(Client.from_webhook(live_emulator.webhook_url), sandbox=True)
    seen = {row.key: row.portal for row in report.behaviours}
    # server-behaviour.md §1 "Page size, start, next, total": start=-1 -> neither total nor next
    assert seen["keyset_paging"]["start=-1 total"] == "absent"
    assert seen["keyset_paging"]["start=-1 next"] == "absent"
    assert seen["keyset_paging"]["start=0 total"] == 2
    # server-behaviour.md §2 "updatedTime": a no-op update keeps updatedTime, a real change bumps it
    assert seen["noop_update"] == {"no-op update": "kept", "real change": "bumped"}
    # server-behaviour.md §3 crm.type.delete: refused with BX_ERROR while items exist
    assert seen["type_delete_refused"] == {"delete with items": "refused, error BX_ERROR"}
    # server-behaviour.md §1 "Field-name casing": generic camelCase and the special ufCrm_ form
    assert seen["uf_camel_keys"]["text"] == "ufCrm{T}DoctorText"
    assert seen["uf_camel_keys"]["mixed"] == "ufCrm_{T}_DOCTOR2"
    assert seen["batch_whole"] == {"get by $result[add][item][id]": "same item"}
    assert seen["batch_spaced"] == {"title": "A <id> B"}  # server-behaviour.md §6: stops at whitespace


# -- one deliberate deviation: exactly that difference -------------------------------------------
def test_deviated_emulator_reports_exactly_that_difference(capsys: Capture) -> None:
    emu = Emulator()
    enable(emu, [NOOP_UPDATE_BUMPS])
    with serve(emu, "127.0.0.1", 0) as server:
        code, out, _ = run(capsys, "--json", "doctor", "--portal", server.webhook_url, "--sandbox")
    body = json.loads(out)
    assert code == 5 and body["exit_code"] == 5
    different = [r for r in body["behaviours"] if not r["same"]]
    assert [r["key"] for r in different] == ["noop_update"]
    assert different[0]["portal"]["no-op update"] == "bumped"
    assert different[0]["emulator"]["no-op update"] == "kept"


def test_deviate_option_refuses_an_unknown_name(capsys: Capture) -> None:
    code, _, err = run(capsys, "emulator", "serve", "--port", "0", "--deviate", "no-such-thing")
    assert code == 2
    assert "unknown deviation 'no-such-thing'" in err and NOOP_UPDATE_BUMPS in err


# -- read-only mode writes nothing ---------------------------------------------------------------
def test_read_only_checks_write_nothing(live_emulator: EmulatorServer, capsys: Capture) -> None:
    emu = live_emulator.emulator
    code, out, _ = run(capsys, "doctor", "--portal", live_emulator.webhook_url, "--json")
    body = json.loads(out)
    assert code == 0 and body["mode"] == "read-only" and body["behaviours"] == []
    checks = {c["check"]: c for c in body["checks"]}
    assert checks["may create smart processes"]["result"] == "yes"
    assert "crm.type.fields" in checks["may create smart processes"]["how"]  # says how it knows
    assert checks["may create fields"]["result"] == "yes"
    assert checks["methods the connector uses"]["status"] == "ok"
    assert "offset +03:00" in checks["server time"]["result"]
    writes = [e for e in emu.request_log if e.method in METHODS and METHODS[e.method].write]
    assert writes, "the methods probe should have reached write methods"
    assert all(e.status != 200 for e in writes)  # every write was refused before it ran
    assert emu.state.types == {} and emu.state.user_fields == {}


# -- leftovers and interrupted runs -----------------------------------------------------------------
def test_leftover_sandbox_is_removed_and_nothing_else(busy_portal: tuple[Emulator, EmulatorServer]) -> None:
    emu, server = busy_portal
    report = run_doctor(Client.from_webhook(server.webhook_url), sandbox=True)
    assert report.leftovers_removed == 1
    assert sandbox_types(emu) == []
    others = [t for t in emu.state.types.values() if t.title.startswith("Other")]
    assert len(others) == 2 and all(len(emu.items(t.entity_type_id)) == 3 for t in others)
    assert report.exit_code == 0, report.differences


def test_run_interrupted_halfway_is_cleaned_up_by_the_next(live_emulator: EmulatorServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    emu, url = live_emulator.emulator, live_emulator.webhook_url

    def killed(sb: Any) -> Any:
        raise KeyboardInterrupt  # the user pressed Ctrl+C in the middle of the probes

    monkeypatch.setattr(sandbox_module, "remove", lambda sb: None)  # ... and the process died at once
    monkeypatch.setattr("connector.doctor.compare.PROBES", PROBES[:3] + (Probe("x", "x", killed),))
    with pytest.raises(KeyboardInterrupt):
        run_doctor(Client.from_webhook(url), sandbox=True)
    assert len(sandbox_types(emu)) == 1 and emu.items(emu.state.types[max(emu.state.types)].entity_type_id)
    monkeypatch.undo()
    report = run_doctor(Client.from_webhook(url), sandbox=True)
    assert report.leftovers_removed == 1 and sandbox_types(emu) == []
    assert report.exit_code == 0


# -- could not run: exit 1, fast ----------------------------------------------------------------------
def test_unreachable_portal_exits_1_fast(capsys: Capture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    started = time.monotonic()
    code, out, err = run(capsys, "doctor", "--portal", f"http://127.0.0.1:{port}/rest/1/abc123secret/")
    assert code == 1 and time.monotonic() - started < 15
    assert "could not run" in err and f"127.0.0.1:{port}" in err and "unreachable" in err
    assert "abc123secret" not in out + err


def test_refused_webhook_exits_1(live_emulator: EmulatorServer, capsys: Capture) -> None:
    url = live_emulator.webhook_url.replace(live_emulator.emulator.webhook_code, "wrongcode")
    code, _, err = run(capsys, "doctor", "--portal", url, "--sandbox")
    assert code == 1 and "refused the credentials" in err and "wrongcode" not in err


def test_record_folder_must_be_new_or_empty(live_emulator: EmulatorServer, tmp_path: Path,
                                            capsys: Capture) -> None:
    (tmp_path / "other.txt").write_text("mine")
    code, _, err = run(capsys, "doctor", "--portal", live_emulator.webhook_url, "--record", str(tmp_path))
    assert code == 1 and "--record" in err and (tmp_path / "other.txt").read_text() == "mine"


# -- mocked HTTP: a portal without rights --------------------------------------------------------------
PORTAL = "https://acme.bitrix24.test/rest/7/s3cr3tcode/"
TIME = {"start": 1, "finish": 1.0, "duration": 0.0, "processing": 0,
        "date_start": "2026-12-02T10:00:00+02:00", "date_finish": "2026-12-02T10:00:00+02:00",
        "operating": 0, "operating_reset_at": 2}


def _mock_portal(rsps: responses.RequestsMock, scopes: list[str], admin: bool) -> None:
    def answer(method: str, result: Any = None, status: int = 200, error: str | None = None) -> None:
        body = {"error": error, "error_description": "Access denied."} if error else {"result": result,
                                                                                         "time": TIME}
        rsps.add(responses.POST, PORTAL + method, json=body, status=status)

    answer("scope", scopes)
    if admin:
        answer("crm.type.fields", {"fields": {}})
    else:
        answer("crm.type.fields", status=400, error="ACCESS_DENIED")
    answer("userfieldconfig.getTypes", {"types": {}})
    answer("methods", ["batch", "crm.item.list"])


def test_mocked_portal_without_rights_fails_checks_and_refuses_sandbox(capsys: Capture) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        _mock_portal(rsps, ["crm"], admin=False)
        code, out, _ = run(capsys, "--json", "doctor", "--portal", PORTAL)
        body = json.loads(out)
        checks = {c["check"]: c for c in body["checks"]}
        assert code == 5
        assert checks["TLS"]["status"] == "ok" and "certificate verified" in checks["TLS"]["result"]
        assert checks["scopes"]["status"] == "fail" and "userfieldconfig" in checks["scopes"]["how"]
        assert checks["may create smart processes"]["result"] == "no (ACCESS_DENIED)"
        assert checks["may create fields"]["status"] == "fail"
        assert checks["methods the connector uses"]["status"] == "fail"
        assert "crm.type.add" in checks["methods the connector uses"]["result"]
        assert checks["server time"]["result"].startswith("2026-12-02T10:00:00+02:00 (offset +02:00")
        assert "operating-time budget active" in checks["limits"]["result"]
        code, _, err = run(capsys, "doctor", "--portal", PORTAL, "--sandbox")
        assert code == 1 and "needs rights" in err
        assert not [c for c in rsps.calls if "crm.type.add" in c.request.url]  # it never tried to write
    assert "s3cr3tcode" not in out + err


# -- --record: secrets masked, replay holds the emulator to it ---------------------------------------
def test_record_masks_secrets_and_replays_clean(busy_portal: tuple[Emulator, EmulatorServer],
                                                tmp_path: Path, capsys: Capture) -> None:
    emu, server = busy_portal
    folder = tmp_path / "rec"
    code, _, _ = run(capsys, "doctor", "--portal", server.webhook_url, "--sandbox", "--record", str(folder))
    assert code == 0
    text = "".join(p.read_text(encoding="utf-8") for p in folder.iterdir())
    assert emu.webhook_code not in text
    manifest, exchanges = load(folder)
    assert manifest["offset"] == "-05:00" and len(manifest["behaviours"]) == len(PROBES)
    assert {e["label"] for e in exchanges} >= {"checks", "leftovers", "setup", "teardown", "batch_glued"}
    assert any(e["method"] == "wait" for e in exchanges)
    # the busy portal's ids (type, entityTypeId, funnels) differ from a fresh emulator's: replay translates
    assert replay(folder) == []


def test_replay_catches_a_portal_that_behaves_differently(tmp_path: Path) -> None:
    emu = Emulator()
    enable(emu, [NOOP_UPDATE_BUMPS])
    folder = tmp_path / "rec"
    with serve(emu, "127.0.0.1", 0) as server:
        report: DoctorReport = run_doctor(Client.from_webhook(server.webhook_url), sandbox=True,
                                          record=folder)
    assert [r.key for r in report.differences] == ["noop_update"]
    problems = replay(folder)
    assert len(problems) == 1
    assert "crm.item.update (noop_update)" in problems[0] and "updatedTime" in problems[0]


def test_replay_refuses_a_folder_that_is_not_a_recording(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="manifest.json"):
        replay(tmp_path)


@pytest.mark.parametrize("folder", sorted(p.parent for p in RECORDINGS.glob("*/manifest.json")), ids=str)
def test_emulator_agrees_with_recorded_portals(folder: Path) -> None:
    """Recordings users sent (`b24sync doctor --sandbox --record DIR`): the emulator must answer the same."""
    assert replay(folder) == []


# -- masking (property) -------------------------------------------------------------------------------
SECRET = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=32)


@given(secret=SECRET, before=st.text(max_size=20), after=st.text(max_size=20))
def test_mask_removes_known_secrets_anywhere(secret: str, before: str, after: str) -> None:
    value = {"a": [f"{before}{secret}{after}"], "auth": secret, "n": 5,
             "url": f"https://x.test/f?fileId=1&auth={secret}&x=1", "hook": f"/rest/3/{secret}/crm.item.get"}
    masked = json.dumps(mask(value, (secret,)))
    assert secret not in masked
    assert json.loads(masked)["auth"] == MASK and json.loads(masked)["n"] == 5


@pytest.mark.parametrize(("row", "ours"), [
    ({"code": "b24sync_doctor_20261202101010abcd", "title": "b24sync doctor 20261202101010abcd"}, True),
    ({"code": "", "title": "b24sync doctor 20261202101010abcd"}, True),  # a portal that dropped the code
    ({"code": "b24sync_doctor_x", "title": "Candidates"}, False),  # someone else's title: not ours
    ({"code": "", "title": "b24sync doctor notes"}, False),
    ({"code": "candidate", "title": "Candidates"}, False),
])
def test_only_sandbox_types_are_recognised(row: dict[str, str], ours: bool) -> None:
    assert is_sandbox(row) is ours


def test_missing_portal_is_could_not_run(capsys: Capture) -> None:
    code, _, err = run(capsys, "doctor", "--sandbox")
    assert code == 1 and "give --portal" in err


# -- replay's id translation -------------------------------------------------------------------------
@given(type_ids=st.tuples(st.integers(1, 999), st.integers(1, 999)),
       etids=st.tuples(st.integers(515, 2000), st.integers(515, 2000)),
       cats=st.tuples(st.integers(1, 999), st.integers(1, 999)))
def test_id_map_translates_names_built_from_ids(type_ids: tuple[int, int], etids: tuple[int, int],
                                                cats: tuple[int, int]) -> None:
    (a, b), (e, f), (c, d) = type_ids, (2 * etids[0], 2 * etids[1]), cats
    ids = IdMap()
    ids.learn({"type": {"id": a, "entityTypeId": e}}, {"type": {"id": b, "entityTypeId": f}})
    ids.learn({"category": {"id": c}}, {"category": {"id": d}})
    assert ids.text(f"UF_CRM_{a}_DOCTOR_TEXT") == f"UF_CRM_{b}_DOCTOR_TEXT"
    assert ids.text(f"ufCrm{a}DoctorText") == f"ufCrm{b}DoctorText"
    assert ids.text(f"ufCrm_{a}_DOCTOR2") == f"ufCrm_{b}_DOCTOR2"
    assert ids.text(f"CRM_{a}") == f"CRM_{b}"
    assert ids.text(f"DT{e}_{c}:NEW") == f"DT{f}_{d}:NEW"
    assert ids.text(f"DYNAMIC_{e}_STAGE_{c}") == f"DYNAMIC_{f}_STAGE_{d}"
    request = ids.request("crm.item.update", {"entityTypeId": e, "id": 3, "fields": {"categoryId": str(c)}})
    assert request == {"entityTypeId": f, "id": 3, "fields": {"categoryId": str(d)}}
    assert ids.request("crm.type.delete", {"id": a}) == {"id": b}


def test_id_map_keeps_kinds_apart() -> None:
    ids = IdMap()
    ids.learn({"fields": {"UF_X": {"items": [{"ID": "81", "VALUE": "A"}]}}},
              {"fields": {"UF_X": {"items": [{"ID": "2", "VALUE": "A"}]}}})
    ids.learn({"items": [{"id": 81}]}, {"items": [{"id": 9}]})
    assert ids.kinds == {"option": {81: 2}, "item": {81: 9}}
    add = {"fields": {"UF_CRM_3_CHOICE": 81}}
    assert ids.request("crm.item.add", add) == {"fields": {"UF_CRM_3_CHOICE": 2}}
    assert ids.request("crm.item.get", {"id": 81}) == {"id": 9}
    cmd = ids.command("crm.item.get?entityTypeId=1032&id=81")
    assert cmd == "crm.item.get?entityTypeId=1032&id=9"


def test_sandbox_refused_halfway_leaves_nothing(live_emulator: EmulatorServer, capsys: Capture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # a field type the portal refuses (server-behaviour.md §5: `video` is restricted for crm)
    monkeypatch.setitem(sandbox_module.FIELDS, "film", ("DOCTOR_FILM", "video"))
    code, _, err = run(capsys, "doctor", "--portal", live_emulator.webhook_url, "--sandbox")
    assert code == 1 and "could not be set up" in err
    assert live_emulator.emulator.state.types == {}  # the half-made sandbox was removed at once


def test_oauth_app_sandbox_record_masks_tokens(live_emulator: EmulatorServer, tmp_path: Path) -> None:
    emu, base = live_emulator.emulator, live_emulator.base_url
    pair = emu.issue_token(base=base)
    app = Client(OAuthAuth(f"{base}/rest/", pair["access_token"], pair["refresh_token"], emu.oauth.client_id,
                           emu.oauth.client_secret, token_url=f"{base}/oauth/token/"))
    report = run_doctor(app, sandbox=True, record=tmp_path / "rec")
    checks = {c.check: c for c in report.checks}
    assert checks["auth"].result == "oauth" and "offline event queue" not in checks
    assert report.exit_code == 0, report.differences
    _, exchanges = load(tmp_path / "rec")
    assert all(e["request"].get("auth") == MASK for e in exchanges if e["method"] != "wait")
    text = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "rec").iterdir())
    for secret in (pair["access_token"], pair["refresh_token"], emu.oauth.client_secret):
        assert secret not in text


def test_table_names_the_difference(capsys: Capture) -> None:
    emu = Emulator()
    enable(emu, [NOOP_UPDATE_BUMPS])
    with serve(emu, "127.0.0.1", 0) as server:
        code, out, _ = run(capsys, "doctor", "--portal", server.webhook_url, "--sandbox")
    assert code == 5
    assert "differs: update: no-op keeps updatedTime" in out and out.count("differs:") == 1
    assert "1 behaviour(s) differ from the emulator, 0 check(s) failed" in " ".join(out.split())
