"""The shipped jobs/ run from the README's steps (any emulator code), and an export or report of an
empty store that was never synced is never a plain "ok"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from connector.cli.main import main
from connector.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's checkout (templates and jobs), as the current folder, no config yet."""
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    shutil.copytree(ROOT / "jobs", tmp_path / "jobs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("B24SYNC_CONFIG", raising=False)
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main(["--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_shipped_jobs_work_with_a_random_emulator_code(
        clone: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        live_emulator: EmulatorServer) -> None:
    assert "/rest/1/demo/" not in live_emulator.webhook_url  # not the --code demo of config.example.toml
    monkeypatch.setenv("B24SYNC_PORTAL_DEMO_WEBHOOK", live_emulator.webhook_url)
    assert cli(capsys, "init", "demo")[0] == 0
    assert cli(capsys, "apply", "mappings/hr_candidates.toml", "--portal", "demo", "--yes")[0] == 0
    code, outcomes = cli(capsys, "run", "--jobs", "jobs", "--once")
    assert code == 0
    by_job = {o["job"]: o for o in outcomes}
    assert set(by_job) == {"sync_demo", "reconcile_nightly", "export_daily", "report_daily"}
    assert {o["status"] for o in outcomes} == {"ok"}, outcomes
    assert "note" not in by_job["export_daily"]["figures"]


def test_export_and_report_of_a_never_synced_store_say_so(
        clone: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        live_emulator: EmulatorServer) -> None:
    monkeypatch.setenv("B24SYNC_PORTAL_DEMO_WEBHOOK", live_emulator.webhook_url)
    assert cli(capsys, "init", "demo")[0] == 0
    assert cli(capsys, "apply", "mappings/hr_candidates.toml", "--portal", "demo", "--yes")[0] == 0
    # a wrong webhook code: the portal answers 401, so the sync jobs fail and nothing is pulled
    monkeypatch.setenv("B24SYNC_PORTAL_DEMO_WEBHOOK", live_emulator.webhook_url.replace("/1/", "/1/x"))
    code, outcomes = cli(capsys, "run", "--jobs", "jobs", "--once")
    assert code == 1
    by_job = {o["job"]: o for o in outcomes}
    assert by_job["sync_demo"]["status"] == "failed"
    for name in ("export_daily", "report_daily"):
        assert by_job[name]["status"] == "partial", by_job[name]
        assert "empty: candidate was never synced from portal 'demo'" in by_job[name]["figures"]["note"]
    assert by_job["export_daily"]["figures"]["rows"] == 0
    _, status = cli(capsys, "status", "--portal", "demo")
    recorded = {r["job"]: r["status"] for r in status["last_runs"] if r.get("job")}
    assert recorded["export_daily"] == "partial" and recorded["report_daily"] == "partial"
