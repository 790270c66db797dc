"""`b24sync template validate|show` through the Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from connector.cli.template_cmd import register

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"
runner = CliRunner()


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
        ctx.obj = {"json": json_out}

    register(app)
    return app


def test_validate_shipped_mappings_exit_0() -> None:
    result = runner.invoke(make_app(), ["template", "validate", str(MAPPINGS)])
    assert result.exit_code == 0, result.output
    assert "OK: " in result.output and "candidate" in result.output


def test_validate_bad_file_exit_2_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('code = "x"\ntitle = { ru = "X" }\npreset = "nope"\nextra = 1\n', encoding="utf-8")
    result = runner.invoke(make_app(), ["template", "validate", str(bad)])
    assert result.exit_code == 2
    assert "2 problem(s)" in result.output
    assert "preset: unknown preset 'nope'" in result.output
    assert "extra: unknown key 'extra'" in result.output


def test_validate_json_from_global_flag(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('code = "x"\n', encoding="utf-8")
    result = runner.invoke(make_app(), ["--json", "template", "validate", str(bad)])
    assert result.exit_code == 2
    data = json.loads(result.output)
    assert data["ok"] is False
    assert data["problems"] == [
        {"file": str(bad), "path": "title", "message": "required key 'title' is missing"}
    ]


def test_validate_json_local_flag_ok() -> None:
    files = [str(MAPPINGS / "car_service.toml"), str(MAPPINGS / "work_order.toml")]
    result = runner.invoke(make_app(), ["template", "validate", "--json", *files])
    assert result.exit_code == 0
    assert json.loads(result.output) == {"ok": True, "templates": ["car", "work_order"], "problems": []}


def test_show_summary_and_json() -> None:
    result = runner.invoke(make_app(), ["template", "show", str(MAPPINGS / "hr_candidates.toml")])
    assert result.exit_code == 0, result.output
    assert "Кандидаты" in result.output and "HIRED" in result.output
    assert "manual steps" in result.output
    result = runner.invoke(make_app(), ["--json", "template", "show", str(MAPPINGS / "contracts.toml")])
    data = json.loads(result.output)
    assert data["code"] == "contract"
    assert [f["code"] for f in data["funnels"]] == ["sales", "purchase"]
    assert data["manual_steps"]


def test_validate_an_empty_folder_is_an_error_not_zero_valid(tmp_path: Path) -> None:
    empty = tmp_path / "emptydir"
    empty.mkdir()
    result = runner.invoke(make_app(), ["template", "validate", str(empty)])
    assert result.exit_code == 2, result.output
    assert f"no *.toml files in {empty}" in result.output and "OK" not in result.output


def test_validate_a_missing_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nosuch.toml"
    result = runner.invoke(make_app(), ["--json", "template", "validate", str(missing), str(MAPPINGS)])
    assert result.exit_code == 2, result.output
    doc = json.loads(result.output)
    assert doc["ok"] is False
    assert [(p["file"], p["message"]) for p in doc["problems"]] == [(str(missing), "no such file or folder")]
