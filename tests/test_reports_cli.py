"""`b24sync export`, `report` and `status` on a store built by `connector.store.Store`: outputs, JSON,
exit codes and messages for bad input."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from connector.cli.main import main
from connector.store import Store
from connector.templates import load_template

HR = Path(__file__).resolve().parents[1] / "mappings" / "hr_candidates.toml"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The candidate process with three local rows, one failed push, an open conflict and two runs."""
    path = tmp_path / "hr.db"
    with Store.open(path) as store:
        store.ensure_process(load_template(HR), lang="ru")
        for title, stage, source in (("Анна", "NEW", "hh"), ("Борис", "INTERVIEW", "referral"),
                                     ("Вера", "OFFER", None)):
            store.conn.execute(
                "INSERT INTO candidate (key, title, funnel, stage, candidate_source, vacancy) "
                "VALUES (?, ?, 'hiring', ?, ?, 'Механик')", (title.lower(), title, stage, source))
        failed = [c for c in store.pending_changes("candidate") if c.key == "вера"]
        store.mark_failed([s for c in failed for s in c.seqs], "UF_CRM_5_VACANCY: value is required")
        store.add_conflict("candidate", "анна", 11, ["title"], {"title": "Анна"}, {"title": "Анна К."})
        store.cursor_set("127.0.0.1:8765", "candidate", "2026-03-01T10:00:00+03:00")
        run = store.run_start("sync", "127.0.0.1:8765", job="sync_demo")
        store.run_finish(run, "partial", {"pulled": 4, "pushed": 1, "failed": 1})
    return path


def cli(capsys: Any, *args: str, as_json: bool = True) -> tuple[int, str, str]:
    code = main(["--json", *args] if as_json else list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_export_csv_with_columns_where_and_bom(db: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "c.csv"
    columns = "title,stage_name,candidate_source_label"
    code, stdout, _ = cli(capsys, "export", "--db", str(db), "--type", "candidate", "-o", str(out), "--bom",
                          "--columns", columns, "--where", "stage <> 'OFFER'", "--headers", "codes",
                          "--dialect", "rfc4180")
    assert code == 0 and json.loads(stdout)["rows"] == 2
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows == [["title", "stage_name", "candidate_source_label"],
                    ["Анна", "Резюме получено", "hh.ru"], ["Борис", "Собеседование", "Рекомендация"]]


def test_export_to_stdout_and_xlsx(db: Path, tmp_path: Path, capsys: Any) -> None:
    code, stdout, _ = cli(capsys, "export", "--db", str(db), "--type", "candidate", "--format", "jsonl",
                          "--columns", "title,funnel_name", as_json=False)
    assert code == 0
    assert [json.loads(line) for line in stdout.splitlines()][0] == {"title": "Анна", "funnel_name": "Подбор"}
    code, _, err = cli(capsys, "export", "--db", str(db), "--type", "candidate", "--format", "xlsx")
    assert code == 2 and "needs -o FILE" in err
    book = tmp_path / "c.xlsx"
    code, _, _ = cli(capsys, "export", "--db", str(db), "--type", "candidate", "-f", "xlsx", "-o", str(book),
                     "--headers", "codes")
    assert code == 0
    rows = list(openpyxl.load_workbook(book, read_only=True).active.iter_rows(values_only=True))
    assert len(rows) == 4 and "stage_name" in rows[0] and "Собеседование" in rows[2]


@pytest.mark.parametrize(("args", "message"), [
    (["--type", "candidat"], "unknown process 'candidat'; processes in this store: candidate"),
    (["--type", "candidate", "--columns", "title,salry"],
     "unknown column(s) 'salry'; valid columns: key, id"),
    (["--type", "candidate", "--where", "1=1; DROP TABLE candidate"], "--where must be one SQL condition"),
    (["--type", "candidate", "--where", "nope = 1"], "--where may use the exported columns"),
    (["--type", "candidate", "--format", "pdf"], "unknown format 'pdf'; allowed: csv, xlsx, jsonl, html"),
])
def test_export_bad_input_exits_2_with_a_clear_message(db: Path, capsys: Any, args: list[str],
                                                       message: str) -> None:
    before = db.read_bytes()
    code, stdout, err = cli(capsys, "export", "--db", str(db), *args)
    assert code == 2 and message in " ".join(err.split()) and not stdout
    assert db.read_bytes() == before


def test_report_cli_writes_html_and_json_figures(db: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "r" / "funnel.html"
    code, stdout, _ = cli(capsys, "report", "funnel", "--db", str(db), "--type", "candidate", "-o", str(out))
    assert code == 0
    data = json.loads(stdout)
    stages = {s["stage"]: s["count"] for s in data["data"]["funnel"]["funnels"][0]["stages"]}
    assert stages["NEW"] == 1 and stages["INTERVIEW"] == 1 and stages["OFFER"] == 1
    page = out.read_text(encoding="utf-8")
    assert "<h1>Кандидаты: воронка</h1>" in page and "<svg" in page
    code, _, err = cli(capsys, "report", "velocity", "--db", str(db), "--type", "candidate", "-o", str(out))
    assert code == 2 and "allowed: funnel, time-in-stage, aging, all" in err
    code, _, err = cli(capsys, "report", "all", "--db", str(db), "--type", "candidate", "-f", "csv")
    assert code == 2 and "a CSV file holds one table" in err


def test_status_shows_runs_cursors_pending_conflicts_and_failed_rows(db: Path, capsys: Any) -> None:
    code, stdout, _ = cli(capsys, "status", "--db", str(db))
    assert code == 0
    data = json.loads(stdout)
    assert data["processes"] == {"candidate": 3}
    assert data["last_runs"][0]["job"] == "sync_demo" and data["last_runs"][0]["figures"]["pulled"] == 4
    assert data["cursors"][0]["value"] == "2026-03-01T10:00:00+03:00"
    assert data["pending_changes"] == {"candidate": 2}
    assert [f["key"] for f in data["failed_rows"]] == ["вера"]
    assert "value is required" in data["failed_rows"][0]["error"]
    assert [c["key"] for c in data["open_conflicts"]] == ["анна"]
    code, human, _ = cli(capsys, "status", "--db", str(db), as_json=False)
    assert code == 0
    for line in ("Processes: candidate (3 items)", "sync_demo partial", "Pending local changes: candidate: 2",
                 "Open conflicts: 1", "Failed rows: 1",
                 "127.0.0.1:8765 candidate: 2026-03-01T10:00:00+03:00"):
        assert line in human
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM _runs").fetchone() == (1,)  # status only reads


def test_status_of_a_missing_store_is_a_usage_error(tmp_path: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "status", "--db", str(tmp_path / "none.db"))
    assert code == 2 and "store file not found" in err
