"""Formula injection (XLSX text is text, CSV neutralised the OWASP way) and `export --where` scoping."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import sqlite3
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reports_helpers import add_item, create_store, sample_store

from connector.reports import ReportError, export
from connector.reports.formats import neutralise
from connector.reports.where import check_where
from connector.store.reader import StoreReader

# Issue 15: a CRM item title planted through a web form, and the other formula starts OWASP lists.
HOSTILE = ['=HYPERLINK("http://evil.example","Нажми")', "=1+2", "+1+2", "-2+3", "@SUM(A1:A9)",
           "\t=1+2", "\r=1+2", "=cmd|' /C calc'!A0"]


def hostile_store(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.db"
    conn = create_store(path)
    for i, title in enumerate(HOSTILE):
        add_item(conn, f"h{i}", "NEW", id=i + 1, title=title, salary=-5.0, salary_currency="RUB")
    add_item(conn, "plain", "NEW", id=99, title="-5", salary=1.5, salary_currency="RUB")
    conn.close()
    return path


def test_xlsx_text_cells_are_never_formulas(tmp_path: Path) -> None:
    out = tmp_path / "x.xlsx"
    export(hostile_store(tmp_path), "candidate", "xlsx", out, columns=["title", "salary"])
    sheet_xml = zipfile.ZipFile(out).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml  # no formula element at all
    book = openpyxl.load_workbook(out)  # full mode: formulas would show as data_type 'f'
    cells = [row for row in book.active.iter_rows(min_row=2)]
    assert [c[0].value for c in cells] == [*HOSTILE, "-5"]
    assert {c[0].data_type for c in cells} == {"s"}
    assert {c[1].value for c in cells} == {-5.0, 1.5} and {c[1].data_type for c in cells} == {"n"}


def test_csv_neutralises_formula_starts_but_not_numbers(tmp_path: Path) -> None:
    path = hostile_store(tmp_path)
    buf = io.BytesIO()
    export(path, "candidate", "csv", buf, columns=["title", "salary"], headers="codes", dialect="rfc4180")
    rows = list(csv.reader(io.StringIO(buf.getvalue().decode(), newline="")))[1:]
    assert [r[0] for r in rows] == ["'" + t for t in HOSTILE] + ["-5"]  # "-5" is a number, not a formula
    assert {r[1] for r in rows} == {"-5.0", "1.5"}  # numbers stay numbers
    ru = io.BytesIO()
    export(path, "candidate", "csv", ru, columns=["title", "salary"], dialect="excel-ru")
    ru_rows = list(csv.reader(io.StringIO(ru.getvalue().decode("utf-8-sig"), newline=""), delimiter=";"))
    assert ru_rows[1] == ["'" + HOSTILE[0], "-5"] and ru_rows[-1] == ["-5", "1,5"]


def test_formula_guard_can_be_turned_off_for_machines(tmp_path: Path) -> None:
    buf = io.BytesIO()
    export(hostile_store(tmp_path), "candidate", "csv", buf, columns=["title"], headers="codes",
           dialect="rfc4180", formula_guard=False)
    rows = list(csv.reader(io.StringIO(buf.getvalue().decode(), newline="")))[1:]
    assert [r[0] for r in rows] == [*HOSTILE, "-5"]


@given(st.text(max_size=30))
def test_neutralise_property(text: str) -> None:
    out = neutralise(text)
    if out != text:  # only ever a leading quote, and only before a formula start
        assert out == "'" + text and text[:1] in ("=", "+", "-", "@", "\t", "\r")
    else:
        assert not text.startswith(("=", "@", "\t", "\r")) or text == ""


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=25), min_size=1, max_size=6))
def test_xlsx_round_trips_any_text_as_text(tmp_path: Path, values: list[str]) -> None:
    path = tmp_path / "p.db"
    path.unlink(missing_ok=True)
    conn = create_store(path)
    for i, value in enumerate(values):
        add_item(conn, f"k{i:02d}", "NEW", title=value)
    conn.close()
    out = tmp_path / "p.xlsx"
    export(path, "candidate", "xlsx", out, columns=["key", "title"])
    rows = list(openpyxl.load_workbook(out).active.iter_rows(min_row=2))
    legal = [
        "".join(ch for ch in v if ch in "\t\n\r" or (ord(ch) >= 32 and ch not in "\ufffe\uffff"))
        for v in values
    ]
    by_key = {r[0].value: r[1] for r in rows}
    assert [by_key[f"k{i:02d}"].value for i in range(len(values))] == legal
    assert all(by_key[k].data_type in ("s", "n") for k in by_key)  # never 'f'


# ---- export --where ---------------------------------------------------------------------------

ESCAPES = [
    "1=0) UNION SELECT name FROM sqlite_master --",  # issue 14, verbatim
    "1=0) UNION SELECT name FROM sqlite_master",
    "1=1 UNION SELECT name FROM sqlite_master",
    "title IN (SELECT title FROM vacancy)",
    "key = (SELECT key FROM _conflicts LIMIT 1)",
    "EXISTS (SELECT 1 FROM _changes)",
    "title = (SELECT sql FROM sqlite_schema)",
    "1=1 /* comment */",
    "1=0 -- trailing comment",
    "title = char(65)",
    "candidate.title = 'x'",
    "title = 'a') OR (1=1",
    "(title = 'x'",
    "title = 'x'))",
    'title = "vacancy"',
    "stage = 'NEW' ORDER BY 1",
    "1=1 LIMIT 1",
    "title = $x",
]


@pytest.mark.parametrize("where", ESCAPES)
def test_where_cannot_read_other_tables(tmp_path: Path, where: str) -> None:
    store = sample_store(tmp_path)
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    out = io.BytesIO()
    with pytest.raises(ReportError, match="--where"):
        export(store, "candidate", "csv", out, where=where)
    assert out.getvalue() == b""  # nothing was written, not even the header
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before


@pytest.mark.parametrize(("where", "keys"), [
    ("stage_name = 'Принят' OR channel_label = 'Рекомендация'", {"c1", "c2"}),
    ("salary > 1000 AND title LIKE '%ов%'", {"c1", "c2", "c3"}),
    ("CAST(salary AS INTEGER) BETWEEN 1000 AND 95000", {"c2", "c3"}),
    ('"stage_name" = \'Новый отклик\' AND title LIKE \'%Анна%\'', {"c3"}),
    ("title = 'x) UNION SELECT name FROM sqlite_master --'", set()),  # inside a string it is just text
    ("coalesce(channel, 'none') = 'none' AND id IS NOT NULL", {"c4"}),
])
def test_where_still_filters_on_the_exported_columns(tmp_path: Path, where: str, keys: set[str]) -> None:
    buf = io.BytesIO()
    export(sample_store(tmp_path), "candidate", "jsonl", buf, where=where, columns=["key"])
    assert {line.split('"')[3] for line in buf.getvalue().decode().splitlines()} == keys


def test_where_errors_name_the_problem() -> None:
    columns = ["key", "title"]
    with pytest.raises(ReportError, match="UNION .*not allowed"):
        check_where("1=1 UNION SELECT 1", columns)
    with pytest.raises(ReportError, match=re.escape("')' without its '('")):
        check_where("1=0) OR (1=1", columns)
    with pytest.raises(ReportError, match="'sqlite_master' is neither"):
        check_where("title = sqlite_master", columns)
    with pytest.raises(ReportError, match="comment"):
        check_where("1=1 -- x", columns)


SQLISH = st.lists(st.sampled_from([
    "title", "key", "stage_name", "salary", "=", "<>", "'x'", "'a'')'", "1", "(", ")", "AND", "OR", "NOT",
    "SELECT", "name", "FROM", "sqlite_master", "UNION", "_changes", "--", "/*", ";", ",", "IN", "LIKE",
    "lower(", "char(", ".", "*", "\"title\"", "\"_runs\"", "x'41'", "EXISTS",
]), min_size=1, max_size=12).map(" ".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=SQLISH)
def test_any_where_reads_only_candidate_rows(tmp_path: Path, where: str) -> None:
    """Whatever the condition, the export returns candidate keys or refuses: never another table."""
    store = tmp_path / "fuzz.db"
    if not store.exists():
        sample_store(tmp_path).rename(store)
    buf = io.BytesIO()
    try:
        export(store, "candidate", "jsonl", buf, where=where, columns=["key"])
    except ReportError as err:
        assert "--where" in str(err) and "\n" not in str(err)
        return
    keys = {line.split('"')[3] for line in buf.getvalue().decode().splitlines()}
    assert keys <= {"c1", "c2", "c3", "c4", "c5"}


def test_the_authorizer_also_scopes_reads(tmp_path: Path) -> None:
    """Second line of defence: even SQL that got past the parser could read only process tables."""
    with StoreReader.open(sample_store(tmp_path)) as store:
        for sql in ("SELECT name FROM sqlite_master", "SELECT * FROM _changes", "SELECT * FROM _runs",
                    "SELECT * FROM _stages", "SELECT * FROM candidate JOIN _base USING (key)"):
            with pytest.raises(sqlite3.DatabaseError, match="not authorized|prohibited"):
                store.select_public(sql)
        assert next(store.select_public("SELECT COUNT(*) FROM candidate")) == [(6,)]
        assert store.runs(5) == []  # the store's own typed reads are not scoped
        with pytest.raises(sqlite3.DatabaseError, match="not authorized|prohibited|readonly"):
            store.conn.execute("DELETE FROM candidate")  # and nothing writes, in or out of the scope
