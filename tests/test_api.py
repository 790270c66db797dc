"""The Python API mirrors the CLI: one Portal, plan/apply/sync/export/report/status."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

import connector
from connector import Portal
from connector.config import ConfigError
from connector.emulator import EmulatorServer

MAPPINGS = Path(__file__).parent.parent / "mappings"


def test_portal_round_trip_over_loopback(live_emulator: EmulatorServer, tmp_path: Path) -> None:
    db = tmp_path / "acme.db"
    with Portal.from_webhook(live_emulator.webhook_url, store=db) as portal:
        assert portal.key.startswith("127.0.0.1:")
        first = portal.plan(MAPPINGS / "hr_candidates.toml")
        assert first.has_changes
        applied = portal.apply(MAPPINGS / "hr_candidates.toml")
        assert applied.write_calls > 0
        assert not portal.plan(MAPPINGS / "hr_candidates.toml").has_changes
        with sqlite3.connect(db) as conn:  # any SQLite tool can add a row
            conn.execute("INSERT INTO candidate (title, funnel, stage, vacancy) VALUES (?, ?, ?, ?)",
                         ("Анна Смирнова", "hiring", "NEW", "Бухгалтер"))
        report = portal.sync(MAPPINGS / "hr_candidates.toml")
        assert report.pushed == 1 and not report.failures
        out = tmp_path / "c.csv"
        result = portal.export("candidate", "csv", out)
        assert result.rows == 1
        rows = list(csv.DictReader(out.open(encoding="utf-8-sig"), delimiter=";"))  # excel-ru, labels
        assert rows[0]["Название"] == "Анна Смирнова" and rows[0]["Вакансия"] == "Бухгалтер"
        # employees by name (user.get), as the CLI export with --portal shows them
        assert rows[0]["Ответственный"] == "Администратор"
        html = tmp_path / "f.html"
        portal.report("candidate", "funnel", "html", html)
        assert "<svg" in html.read_text(encoding="utf-8")
        assert portal.status().processes == {"candidate": 1}


def test_portal_from_config(tmp_path: Path, live_emulator: EmulatorServer) -> None:
    config = tmp_path / "b24sync.toml"
    config.write_text(
        f'[defaults]\nstore = "{tmp_path}/{{portal}}.db"\n'
        f'[portals.local]\nwebhook = "{live_emulator.webhook_url}"\nconflict_policy = "merge"\n',
        encoding="utf-8",
    )
    portal = Portal.from_config("local", config)
    assert portal.ref.store == tmp_path / "local.db"
    assert portal.ref.conflict_policy == "merge"
    assert "local" in repr(portal) and live_emulator.webhook_url not in repr(portal)


def test_from_webhook_plain_http_needs_allow_http(tmp_path: Path) -> None:
    url = "http://portal.example/rest/1/secretcode42/"
    with pytest.raises(ConfigError, match="plain http") as refused:
        Portal.from_webhook(url, store=tmp_path / "a.db")
    assert "secretcode42" not in str(refused.value)
    portal = Portal.from_webhook(url, store=tmp_path / "a.db", allow_http=True)
    assert portal.ref.allow_http and portal.client.auth.allow_http
    assert portal.client.auth.url("crm.type.list") == url + "crm.type.list"


def test_lazy_package_attribute() -> None:
    assert connector.Portal is Portal
    with pytest.raises(AttributeError):
        connector.Nothing  # noqa: B018


def test_cli_apply_prepares_the_store_for_plain_sql(live_emulator: EmulatorServer, tmp_path: Path) -> None:
    from connector.cli.main import main

    db = tmp_path / "p.db"
    url = live_emulator.webhook_url
    assert main(["apply", str(MAPPINGS / "contracts.toml"), str(MAPPINGS / "production.toml"),
                 "--portal", url, "--db", str(db), "--yes"]) == 0
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO contract (title, funnel, stage) VALUES ('Договор №1', 'sales', 'DRAFT')")
    assert main(["sync", "--portal", url, "--db", str(db)]) == 0  # no --template: apply remembered them
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT id IS NOT NULL FROM contract").fetchone() == (1,)
