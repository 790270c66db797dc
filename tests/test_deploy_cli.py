"""`b24sync plan | apply | drift | adopt` over a real loopback emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connector.cli.main import main

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
    assert code == 2 and json.loads(out)["has_changes"] is True
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
    assert code == 2 and any(i["code"].endswith("_BYHAND") for i in json.loads(out)["items"])
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
