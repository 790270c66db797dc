"""Several portals in one run (`--portal` repeated, `--all`) over two live loopback emulators;
plan's human output (field-level differences, the manual checklist) and JSON / exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.cli.main import main
from connector.emulator import Emulator, serve
from connector.store import Store

HR = "mappings/hr_candidates.toml"


@pytest.fixture()
def two_portals(tmp_path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    servers = {
        "alpha": serve(Emulator(), host="127.0.0.1", port=0),
        "beta": serve(Emulator(), host="127.0.0.1", port=0),
    }
    try:
        lines = [f'[defaults]\nstore = "{tmp_path.as_posix()}/{{portal}}.db"\n']
        for name, server in servers.items():
            lines.append(f'[portals.{name}]\nwebhook = "{server.webhook_url}"\nallow_http = true\n')
        config = tmp_path / "b24sync.toml"
        config.write_text("\n".join(lines), encoding="utf-8")
        yield config, servers
    finally:
        for server in servers.values():
            server.stop()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def types_on(server: Any) -> list[str]:
    return [t["code"] for t in server.emulator.call("crm.type.list", {})["result"]["types"]]


def test_all_portals_plan_apply_drift_with_summary(
    two_portals: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, servers = two_portals
    cfg = ["--config", str(config)]
    code, out = run(capsys, *cfg, "--json", "plan", HR, "--all")
    doc = json.loads(out)  # one JSON document for the whole run
    assert code == 5
    assert [p["name"] for p in doc["portals"]] == ["alpha", "beta"]
    assert all(p["has_changes"] for p in doc["portals"])
    assert all(m["done"] is False for p in doc["portals"] for m in p["manual"])
    assert [(r["portal"], r["exit"]) for r in doc["summary"]] == [("alpha", 5), ("beta", 5)]
    assert types_on(servers["alpha"]) == [] and types_on(servers["beta"]) == []  # plan writes nothing

    code, out = run(capsys, *cfg, "apply", HR, "--portal", "alpha", "--portal", "beta", "--yes")
    assert code == 0
    assert "summary: 2 portals" in out and "portal alpha" in out and "portal beta" in out
    assert "NOT done" in out and "[ ]" in out
    assert types_on(servers["alpha"]) == ["candidate"] and types_on(servers["beta"]) == ["candidate"]
    for name, server in servers.items():  # each portal has its own store and id map
        store = Store.open(tmp_path / f"{name}.db")
        keys = store.idmap.portals()
        assert keys == [f"127.0.0.1:{server.port}"]
        assert store.idmap.get(keys[0], "type", "candidate") is not None

    code, out = run(capsys, *cfg, "plan", HR, "--all")
    assert code == 0 and out.count("nothing to do") == 2

    beta = servers["beta"].emulator
    type_id = beta.call("crm.type.list", {})["result"]["types"][0]["id"]
    beta.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": f"CRM_{type_id}",
                "fieldName": f"UF_CRM_{type_id}_BYHAND",
                "userTypeId": "string",
            },
        },
    )
    code, out = run(capsys, *cfg, "--json", "drift", "--all")
    doc = json.loads(out)
    assert code == 5
    assert [(r["portal"], r["drift"], r["exit"]) for r in doc["summary"]] == [("alpha", 0, 0), ("beta", 1, 5)]
    code, out = run(capsys, *cfg, "--json", "drift", "--portal", "alpha")
    assert code == 0 and json.loads(out)["has_drift"] is False


def test_one_failing_portal_does_not_stop_the_others(
    two_portals: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, servers = two_portals
    wrong = servers["alpha"].webhook_url.replace(servers["alpha"].emulator.webhook_code, "wrongcode")
    config.write_text(
        config.read_text(encoding="utf-8") + f'\n[portals.broken]\nwebhook = "{wrong}"\nallow_http = true\n',
        encoding="utf-8",
    )
    code, out = run(capsys, "--config", str(config), "--json", "apply", HR, "--all", "--yes")
    doc = json.loads(out)
    assert code == 1
    rows = {r["portal"]: r for r in doc["summary"]}
    assert rows["alpha"]["exit"] == 0 and rows["beta"]["exit"] == 0 and rows["broken"]["exit"] == 1
    assert "wrongcode" not in out  # the webhook secret never reaches the output
    assert types_on(servers["beta"]) == ["candidate"]


def test_db_with_several_portals_is_a_usage_error(
    two_portals: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = two_portals
    code = main(["--config", str(config), "plan", HR, "--all", "--db", str(tmp_path / "x.db")])
    assert code == 2 and "--db" in capsys.readouterr().err


def test_plan_prints_field_level_differences_and_the_manual_checklist(
    live_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--portal", live_emulator.webhook_url, "--db", str(tmp_path / "p.db")]
    assert run(capsys, "apply", HR, *base, "--yes")[0] == 0
    emu = live_emulator.emulator
    type_id = emu.call("crm.type.list", {})["result"]["types"][0]["id"]
    fields = emu.call("userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{type_id}"}})
    city = next(f for f in fields["result"]["fields"] if f["fieldName"].endswith("_CITY"))
    emu.call(
        "userfieldconfig.update",
        {
            "moduleId": "crm",
            "id": city["id"],
            "field": {"editFormLabel": {"ru": "Населённый пункт"}, "sort": 999},
        },
    )
    code, out = run(capsys, "plan", HR, *base)
    assert code == 5
    line = next(x for x in out.splitlines() if "candidate.city" in x)  # the table may wrap the details
    assert "update" in line and "sort: 999 → 500" in line
    assert "Населённый" in out and "Город" in out and "'Город'" not in out  # values for people, no reprs
    assert "Manual steps" in out and "not applied" in out
    assert out.count("[ ] CRM") == 3  # the three declared roles, unchecked
    code, out = run(capsys, "--json", "plan", HR, *base)
    doc = json.loads(out)
    assert code == 5 and doc["counts"]["update"] == 1 and doc["counts"]["manual"] == 3
    change = next(c for p in doc["processes"] for c in p["changes"] if c["code"] == "city")
    assert {d["attr"] for d in change["diffs"]} == {"label", "sort"}
    assert run(capsys, "apply", HR, *base, "--yes")[0] == 0
    code, out = run(capsys, "--json", "plan", HR, *base)
    assert code == 0 and json.loads(out)["has_changes"] is False


def test_dry_run_and_a_declined_confirmation_write_nothing(
    live_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ["--portal", live_emulator.webhook_url, "--db", str(tmp_path / "p.db")]
    emu = live_emulator.emulator
    code, out = run(capsys, "--json", "apply", HR, *base, "--dry-run")
    doc = json.loads(out)
    assert code == 0 and doc["dry_run"] is True and doc["write_calls"] == 0 and doc["commands"]
    assert emu.call("crm.type.list", {})["result"]["types"] == []
    monkeypatch.setattr("typer.confirm", lambda *a, **k: False)
    code, out = run(capsys, "apply", HR, *base)
    assert code == 0 and "skipped" in out and "create" in out
    assert emu.call("crm.type.list", {})["result"]["types"] == []
    monkeypatch.setattr("typer.confirm", lambda *a, **k: True)
    code, out = run(capsys, "apply", HR, *base)
    assert code == 0 and len(emu.call("crm.type.list", {})["result"]["types"]) == 1
    assert emu.webhook_code not in out  # the webhook secret never reaches the output
