"""`b24sync plan | apply | drift | adopt` over a real loopback emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connector.cli import main as cli_main
from connector.cli.main import main
from connector.emulator import serve

HR = "mappings/hr_candidates.toml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_plan_apply_drift_adopt_exit_codes(
    live_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, db = live_emulator.webhook_url, str(tmp_path / "p.db")
    base = ["--portal", url, "--db", db]
    code, out = run(capsys, "--json", "plan", HR, *base)
    assert code == 5 and json.loads(out)["has_changes"] is True
    code, out = run(capsys, "--json", "apply", HR, *base, "--yes")
    assert code == 0 and json.loads(out)["converged"] is True and json.loads(out)["manual"]
    code, out = run(capsys, "plan", HR, *base)
    assert code == 0 and "nothing to do" in out
    code, _ = run(capsys, "drift", *base)
    assert code == 0
    type_id = json.loads(run(capsys, "--json", "apply", HR, *base, "--dry-run")[1])["plan"]["processes"][0][
        "type_id"
    ]
    live_emulator.emulator.call(
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
    code, out = run(capsys, "--json", "drift", *base)
    assert code == 5 and any(i["code"].endswith("_BYHAND") for i in json.loads(out)["items"])
    target = tmp_path / "adopted.toml"
    code, _ = run(capsys, "adopt", "--portal", url, "--type", "Кандидаты", "-o", str(target), "--db", db)
    assert code == 0 and 'code = "candidate"' in target.read_text(encoding="utf-8")


def test_bad_template_is_a_usage_error(
    live_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'code = "x"\ntitle = { ru = "X" }\n[[funnels]]\ncode = "f"\nname = { ru = "F" }\n'
        '[[funnels.stages]]\ncode = "THIS_STAGE_CODE_IS_FAR_TOO_LONG"\nname = { ru = "S" }\n',
        encoding="utf-8",
    )
    code = main(["plan", str(bad), "--portal", live_emulator.webhook_url, "--db", str(tmp_path / "x.db")])
    assert code == 2
    assert "THIS_STAGE_CODE_IS_FAR_TOO_LONG" in capsys.readouterr().err


def test_drift_with_a_store_that_never_applied_here_exits_1_and_creates_no_file(
    live_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, fresh = live_emulator.webhook_url, tmp_path / "fresh.db"
    key = f"127.0.0.1:{live_emulator.port}"
    assert run(capsys, "apply", HR, "--portal", url, "--db", str(tmp_path / "p.db"), "--yes")[0] == 0
    code = main(["drift", "--portal", url, "--db", str(fresh)])
    err = capsys.readouterr().err
    assert code == 1 and "no drift" not in err
    assert f"no apply recorded for this portal ({key}) in {fresh}" in " ".join(err.split())
    assert not fresh.exists()
    code, out = run(capsys, "drift", HR, "--portal", url, "--db", str(fresh))  # FILEs: vs the templates
    assert code == 0 and "no drift" in out and "no apply recorded for this portal" in out


def test_drift_after_the_emulator_restarts_on_another_port_names_the_old_key(
    live_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "p.db")
    assert run(capsys, "apply", HR, "--portal", live_emulator.webhook_url, "--db", db, "--yes")[0] == 0
    old_key = f"127.0.0.1:{live_emulator.port}"
    live_emulator.stop()
    restarted = serve(live_emulator.emulator, "127.0.0.1", 0)  # same portal, new port
    try:
        code = main(["drift", "--portal", restarted.webhook_url, "--db", db])
        err = " ".join(capsys.readouterr().err.split())
    finally:
        restarted.stop()
    assert code == 1
    assert f"no apply recorded for this portal (127.0.0.1:{restarted.port})" in err
    assert f"records for {old_key} only" in err


def test_plan_with_nothing_to_do_is_one_line_and_values_are_for_people(
    live_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_main.stdout, "width", 400)  # one table row per line
    url, db = live_emulator.webhook_url, str(tmp_path / "p.db")
    code, out = run(capsys, "plan", "mappings/car_service.toml", "mappings/work_order.toml", "--portal", url)
    assert code == 5
    row = next(x for x in out.splitlines() if "relation work_order.deal->work_order" in x)
    assert "parent: (none) → deal; child: (none) → work_order" in row
    assert "work_order.2->" not in out and "None" not in out and "'Автомобиль'" not in out
    row = next(x for x in out.splitlines() if "section car.files" in x)
    assert "fields: (none) → docs, notes" in row
    assert "title: (none) → Автомобиль; isAutomationEnabled: (none) → true" in out
    assert run(capsys, "apply", HR, "--portal", url, "--db", db, "--yes")[0] == 0
    code, out = run(capsys, "plan", HR, "--portal", url, "--db", db)
    assert code == 0
    assert out.splitlines()[0] == f"nothing to do on 127.0.0.1:{live_emulator.port} (3 manual)"
    assert not any(ch in out for ch in "┏┃└")  # no empty table box


def test_apply_that_did_not_converge_lists_what_differs_as_lines_not_a_python_list(
    live_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import connector.deploy as deploy

    real = deploy.apply

    def half_done(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        result.converged = False
        result.remaining = ["update stage candidate.hiring.OFFER (name: Оффер → Предложение) [blocked: x]"]
        return result

    monkeypatch.setattr(deploy, "apply", half_done)
    monkeypatch.setattr(cli_main.stdout, "width", 400)
    db = str(tmp_path / "p.db")
    code, out = run(capsys, "apply", HR, "--portal", live_emulator.webhook_url, "--db", db, "--yes")
    assert code == 1
    differs = "update stage candidate.hiring.OFFER (name: Оффер → Предложение) [blocked: x]"
    assert f"still differs: {differs}" in out
    assert "['" not in out


def test_json_apply_without_yes_is_refused_and_writes_nothing(
    live_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--portal", live_emulator.webhook_url, "--db", str(tmp_path / "p.db")]
    assert main(["apply", HR, *base, "--json"]) == 2
    assert "add --yes" in capsys.readouterr().err
    assert live_emulator.emulator.call("crm.type.list", {})["result"]["types"] == []
