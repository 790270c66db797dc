"""`b24sync sync` and `b24sync conflicts` over a real loopback emulator, and the Python API over it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_sync_support import MAPPINGS, local_exec, local_insert, local_rows, portal_items, setup_processes

from connector.cli.main import main
from connector.config import portal_key
from connector.rest import Client
from connector.store import Store
from connector.sync import sync
from connector.templates import load_templates

CAR = str(MAPPINGS / "car_service.toml")


@pytest.fixture
def portal(live_emulator: Any) -> tuple[Any, str, dict[str, int]]:
    emu = live_emulator.emulator if hasattr(live_emulator, "emulator") else live_emulator.emu
    etids = setup_processes(emu, load_templates([CAR]))
    return emu, live_emulator.webhook_url, etids


def _run(capsys: Any, *args: str) -> tuple[int, Any]:
    code = main(["--json", *args])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else None)


def test_python_api_over_the_loopback_server(portal: tuple[Any, str, dict[str, int]], tmp_path: Path) -> None:
    emu, url, etids = portal
    emu.call("crm.item.add", {"entityTypeId": etids["car"], "fields": {"title": "Haval Jolion"}})
    client = Client.from_webhook(url, allow_http=True)
    with Store.open(tmp_path / "p.db") as store:
        first = sync(client, store, load_templates([CAR]), portal_key=portal_key(url))
        assert first.pulled == 1 and first.requests >= 1
        local_insert(tmp_path / "p.db", "car", {"title": "Chery Tiggo", "model": "Tiggo 7"})
        second = sync(client, store, None, portal_key=portal_key(url))  # templates come from the store
        assert second.pushed == 1
    assert sorted(i["title"] for i in portal_items(emu, etids["car"])) == ["Chery Tiggo", "Haval Jolion"]


def test_cli_sync_json_summary_then_failed_rows_exit_3(
    portal: tuple[Any, str, dict[str, int]], tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    emu, url, etids = portal
    cfg = tmp_path / "b24sync.toml"
    cfg.write_text(f'[portals.emu]\nwebhook = "{url}"\nallow_http = true\nstore = "{tmp_path / "emu.db"}"\n')
    emu.call("crm.item.add", {"entityTypeId": etids["car"], "fields": {"title": "Lada"}})
    code, data = _run(capsys, "--config", str(cfg), "sync", "--portal", "emu", "--template", CAR)
    assert code == 0 and data["pulled"] == 1 and data["failed"] == 0 and data["requests"] > 0
    assert set(data) >= {"pulled", "pushed", "deleted", "conflicts", "failed", "requests", "waited_seconds"}
    bad = local_insert(tmp_path / "emu.db", "car", {"title": "bad", "make": "tesla"})
    local_insert(tmp_path / "emu.db", "car", {"title": "bad stage", "stage": "NOPE"})
    code, data = _run(capsys, "--config", str(cfg), "sync", "--portal", "emu")
    assert code == 3
    errors = {f["key"]: f["error"] for f in data["failures"]}
    assert "unknown option 'tesla'" in errors.pop(bad)
    [(_, stage_error)] = errors.items()
    assert "unknown stage 'NOPE' in funnel 'cars'" in stage_error
    code, _ = _run(capsys, "--config", str(cfg), "sync", "--portal", "emu", "--policy", "bogus")
    assert code == 2


def test_cli_conflicts_list_and_resolve(
    portal: tuple[Any, str, dict[str, int]], tmp_path: Path, capsys: Any
) -> None:
    emu, url, etids = portal
    db = tmp_path / "c.db"
    item = emu.call("crm.item.add", {"entityTypeId": etids["car"], "fields": {"title": "A"}})["result"][
        "item"
    ]
    base = ["--db", str(db)]
    assert _run(capsys, "sync", "--portal", url, *base, "--template", CAR)[0] in (0, 1)
    if not local_rows(db, "car"):
        pytest.skip("plain-http webhook URLs need allow_http from a config file")
    local_exec(db, "UPDATE car SET title = 'local' WHERE id = ?", (item["id"],))
    emu.clock.advance(10)
    emu.call(
        "crm.item.update", {"entityTypeId": etids["car"], "id": item["id"], "fields": {"title": "remote"}}
    )
    code, _ = _run(capsys, "sync", "--portal", url, *base, "--policy", "manual")
    code, listed = _run(capsys, "conflicts", "list", *base)
    assert code == 0 and len(listed) == 1 and listed[0]["fields"] == ["title"]
    code, _ = _run(capsys, "conflicts", "resolve", str(listed[0]["id"]), "--take", "remote", *base)
    assert code == 0
    assert local_rows(db, "car")[0]["title"] == "remote"
    code, _ = _run(capsys, "conflicts", "resolve", "999", "--take", "remote", *base)
    assert code == 2


def test_cli_conflicts_list_all_shows_what_row_policies_overrode(
    portal: tuple[Any, str, dict[str, int]], tmp_path: Path, capsys: Any
) -> None:
    """remote-wins drops the local edit from the row, but never silently: `conflicts list --all` keeps it."""
    emu, url, etids = portal
    db = tmp_path / "p.db"
    cfg = tmp_path / "b24sync.toml"
    cfg.write_text(f'[portals.emu]\nwebhook = "{url}"\nallow_http = true\nstore = "{db}"\n')
    item = emu.call("crm.item.add", {"entityTypeId": etids["car"], "fields": {"title": "A"}})["result"][
        "item"
    ]
    common = ("--config", str(cfg))
    assert _run(capsys, *common, "sync", "--portal", "emu", "--template", CAR)[0] == 0
    local_exec(db, "UPDATE car SET title = 'local edit' WHERE id = ?", (item["id"],))
    emu.call(
        "crm.item.update", {"entityTypeId": etids["car"], "id": item["id"], "fields": {"title": "remote"}}
    )
    code, data = _run(capsys, *common, "sync", "--portal", "emu", "--policy", "remote-wins")
    assert code == 0 and data["conflicts"] == 1
    assert local_rows(db, "car")[0]["title"] == "remote"
    code, open_ = _run(capsys, *common, "conflicts", "list", "--portal", "emu")
    assert code == 0 and open_ == []
    code, everything = _run(capsys, *common, "conflicts", "list", "--portal", "emu", "--all")
    assert code == 0 and len(everything) == 1
    [c] = everything
    assert (c["policy"], c["status"], c["resolution"]) == ("remote-wins", "resolved", "remote")
    assert (
        c["local"]["title"] == "local edit" and c["remote"]["title"] == "remote" and c["fields"] == ["title"]
    )
    assert main([*common, "conflicts", "list", "--portal", "emu", "--all"]) == 0
    human = capsys.readouterr().out
    assert "remote-wins" in human and "resolved: remote" in human
