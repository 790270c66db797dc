"""Exports: labels, formats, Russian text, BOM, --where safety, clear errors."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reports_helpers import add_item, create_store, sample_store

from connector.reports import ReportError, export


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return sample_store(tmp_path)


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def test_csv_has_labels_parent_titles_and_skips_tombstones(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.csv"
    result = export(store_path, "candidate", "csv", out, headers="codes", dialect="rfc4180")
    rows = {r["key"]: r for r in read_csv(out)}
    assert result.rows == 5 and set(rows) == {"c1", "c2", "c3", "c4", "c5"}  # c6 is a tombstone
    assert rows["c1"]["stage_name"] == "Принят" and rows["c1"]["funnel_name"] == "Найм"
    assert rows["c1"]["channel_label"] == "HeadHunter" and rows["c2"]["channel_label"] == "Рекомендация"
    assert rows["c1"]["parent_vacancy_title"] == "Механик"
    assert rows["c2"]["parent_vacancy_title"] == "Повар"  # parent known only by its local key
    assert rows["c2"]["title"] == 'Петров, "Пётр"'
    assert json.loads(rows["c5"]["skills"]) == ["сварка", "покраска"]


def test_bom_only_when_asked(store_path: Path, tmp_path: Path) -> None:
    export(store_path, "candidate", "csv", tmp_path / "plain.csv", dialect="rfc4180")
    export(store_path, "candidate", "csv", tmp_path / "bom.csv", dialect="rfc4180", bom=True)
    assert not (tmp_path / "plain.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert (tmp_path / "bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert "Иванов Иван".encode() in (tmp_path / "plain.csv").read_bytes()


def test_include_deleted_shows_tombstones(store_path: Path, tmp_path: Path) -> None:
    result = export(store_path, "candidate", "csv", tmp_path / "all.csv", include_deleted=True)
    assert result.rows == 6


def test_xlsx_keeps_russian_text_and_numbers(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.xlsx"
    export(store_path, "candidate", "xlsx", out, columns=["title", "stage_name", "salary", "salary_currency"],
           headers="codes")
    sheet = openpyxl.load_workbook(out, read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("title", "stage_name", "salary", "salary_currency")
    assert ("Иванов Иван", "Принят", 100000.5, "RUB") in rows
    assert len(rows) == 6


def test_jsonl_one_object_per_line_utf8(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.jsonl"
    columns = ["key", "title", "stage_name"]
    export(store_path, "candidate", "jsonl", out, where="stage = 'NEW'", columns=columns)
    raw = out.read_bytes()
    assert "Сидорова".encode() in raw  # not \u-escaped
    items = [json.loads(line) for line in raw.decode().splitlines()]
    assert {i["key"] for i in items} == {"c3", "c5"} and all(i["stage_name"] == "Новый отклик" for i in items)


def test_html_export_is_self_contained_and_escaped(store_path: Path) -> None:
    buf = io.BytesIO()
    result = export(store_path, "candidate", "html", buf, columns=["title", "stage_name"])
    page = buf.getvalue().decode()
    assert result.rows == 5 and "Петров, &quot;Пётр&quot;" in page
    for external in ("<script", "<link", "src=", "http://", "https://", "@import"):
        assert external not in page


def test_where_filters_on_labels_and_parent_titles(store_path: Path) -> None:
    buf = io.BytesIO()
    export(store_path, "candidate", "csv", buf, where="parent_vacancy_title = 'Механик'", columns=["key"],
           headers="codes", dialect="rfc4180")
    assert buf.getvalue().decode().split() == ["key", "c1"]


@pytest.mark.parametrize("where", [
    "1=1; DROP TABLE candidate",
    "1=1); DELETE FROM candidate; --",
    "id IN (SELECT id FROM candidate); UPDATE candidate SET title = 'x'",
    "(SELECT count(*) FROM pragma_journal_mode('delete')) > 0",
    "(SELECT load_extension('/tmp/evil')) IS NULL",
    "1=1 UNION SELECT * FROM candidate WHERE (SELECT writefile('/tmp/x', 'y'))",
])
def test_where_cannot_write_the_store(store_path: Path, where: str) -> None:
    before = hashlib.sha256(store_path.read_bytes()).hexdigest()
    with pytest.raises(ReportError, match="--where"):
        export(store_path, "candidate", "csv", io.BytesIO(), where=where)
    assert hashlib.sha256(store_path.read_bytes()).hexdigest() == before
    assert sqlite3.connect(store_path).execute("SELECT COUNT(*) FROM candidate").fetchone() == (6,)


def test_failed_where_leaves_no_output_file(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "never.csv"
    with pytest.raises(ReportError, match="'nope' is neither"):
        export(store_path, "candidate", "csv", out, where="nope = 1")
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_unknown_process_lists_the_valid_ones(store_path: Path) -> None:
    with pytest.raises(ReportError) as err:
        export(store_path, "candidat", "csv", io.BytesIO())
    assert "'candidat'" in str(err.value) and "candidate, vacancy" in str(err.value)


def test_unknown_column_lists_the_valid_ones(store_path: Path) -> None:
    with pytest.raises(ReportError) as err:
        export(store_path, "candidate", "csv", io.BytesIO(), columns=["title", "salry"])
    message = str(err.value)
    assert "'salry'" in message and "salary_currency" in message and "stage_name" in message


def test_unknown_format_and_missing_store(store_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="allowed: csv, xlsx, jsonl, html"):
        export(store_path, "candidate", "pdf", io.BytesIO())
    with pytest.raises(ReportError, match="store file not found"):
        export(tmp_path / "missing.db", "candidate", "csv", io.BytesIO())


def test_store_without_labels_view_exports_the_table(tmp_path: Path) -> None:
    conn = create_store(tmp_path / "s.db")
    conn.conn.execute("DROP VIEW candidate_labels")
    add_item(conn, "k", "NEW", title="Без подписей")
    buf = io.BytesIO()
    result = export(tmp_path / "s.db", "candidate", "csv", buf)
    assert result.rows == 1 and "stage_name" not in result.columns
    assert "Без подписей" in buf.getvalue().decode()


titles = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(titles, min_size=1, max_size=8))
def test_csv_round_trips_any_text(tmp_path: Path, values: list[str]) -> None:
    path = tmp_path / "p.db"
    path.unlink(missing_ok=True)
    conn = create_store(path)
    for i, value in enumerate(values):
        add_item(conn, f"k{i}", "NEW", title=value)
    conn.close()
    buf = io.BytesIO()
    export(path, "candidate", "csv", buf, columns=["key", "title"], bom=True, headers="codes",
           dialect="rfc4180", formula_guard=False)
    text = buf.getvalue().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["key", "title"]
    assert [r[1] for r in rows[1:]] == values
