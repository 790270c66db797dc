"""`b24sync export` of a process never synced into the store says so instead of a plain "0 rows"."""

from __future__ import annotations

from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from connector.cli.main import app
from connector.store import Store
from connector.sync import prepare_store
from connector.templates import load_template

HR = Path(__file__).resolve().parents[1] / "mappings" / "hr_candidates.toml"


def _export(db: Path, tmp_path: Path) -> Result:
    out = str(tmp_path / "o.csv")
    return CliRunner().invoke(app, ["export", "-t", "candidate", "--db", str(db), "-o", out])


def test_an_empty_never_synced_export_warns(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    with Store.open(db) as store:
        prepare_store(store, [load_template(HR)])
    result = _export(db, tmp_path)
    assert result.exit_code == 0
    assert "0 rows of candidate written" in result.stdout
    assert "never synced" in result.stderr and "b24sync sync" in result.stderr


def test_a_synced_store_draws_no_warning(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    with Store.open(db) as store:
        prepare_store(store, [load_template(HR)])
        store.cursor_set("portal", "candidate", "2026-01-01T00:00:00+00:00")
    result = _export(db, tmp_path)
    assert result.exit_code == 0 and "never synced" not in result.stderr
