"""Exports and reports a manager reads: labels in the template's language, real dates in the portal's
time zone, money with its currency, percentages, user names, CSV dialects, the readable HTML table."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.reports import ReportError, export, report
from connector.reports.formats import Display, parse_tz, tz_name
from connector.store import Store
from connector.sync.engine import remember_templates
from connector.templates import load_template

HR = Path(__file__).resolve().parents[1] / "mappings" / "hr_candidates.toml"
USERS = {1: "Администратор", 7: "Анна Смирнова"}


@pytest.fixture(params=["ru", "en"])
def hr_db(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The shipped hr template's store, labels in ru or en, with the template remembered by sync."""
    path = tmp_path / f"hr-{request.param}.db"
    template = load_template(HR)
    with Store.open(path) as store:
        store.ensure_process(template, lang=request.param)
        remember_templates(store, [template])
        store.upsert_rows("candidate", [
            {"id": 1, "title": "Иванов Иван", "funnel": "hiring", "stage": "OFFER", "candidate_source": "hh",
             "vacancy": "Механик", "salary_expected": 109000.0, "salary_expected_currency": "RUB",
             "experience_years": 2.5, "assigned_by_id": 7, "interviewers": json.dumps([1, 7]),
             "interview_at": "2026-11-25T06:16:48Z", "start_date": "2026-12-01",
             "created_time": "2026-11-25T21:30:00Z", "pd_consent": 1},
            {"id": 2, "title": "Петрова Анна", "funnel": "hiring", "stage": "NEW", "vacancy": "Повар",
             "salary_expected": 1500.5, "salary_expected_currency": "USD", "assigned_by_id": 99},
        ])
    return path


def lang_of(path: Path) -> str:
    return path.stem.split("-")[1]


def test_xlsx_has_labels_real_dates_in_portal_time_money_and_names(hr_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.xlsx"
    result = export(hr_db, "candidate", "xlsx", out, tz="+03:00", users=USERS)
    assert result.time_zone == "UTC+03:00"
    sheet = openpyxl.load_workbook(out).active
    header = [c.value for c in sheet[1]]
    cells = {h: c for h, c in zip(header, sheet[2], strict=True)}
    ru = lang_of(hr_db) == "ru"
    title, stage, salary, created, interview, start, who, team, consent = (
        ("Название", "Стадия", "Ожидаемая зарплата", "Создан", "Дата собеседования", "Дата выхода",
         "Ответственный", "Интервьюеры", "Согласие на обработку ПДн") if ru else
        ("Title", "Stage", "Expected salary", "Created", "Interview at", "Start date", "Responsible",
         "Interviewers", "Personal data consent"))
    assert cells[title].value == "Иванов Иван" and cells[stage].value in ("Оффер", "Offer")
    assert "candidate_source_label" not in header and "title" not in header
    # 06:16:48Z on a +03:00 portal is 09:16:48 there; 21:30Z is already the next day
    assert cells[interview].value == datetime(2026, 11, 25, 9, 16, 48) and cells[interview].is_date
    assert cells[created].value == datetime(2026, 11, 26, 0, 30) and "hh:mm" in cells[created].number_format
    assert cells[start].value == datetime(2026, 12, 1) and cells[start].number_format in ("dd.mm.yyyy",
                                                                                         "yyyy-mm-dd")
    assert cells[salary].value == 109000.0 and cells[salary].data_type == "n"
    assert "₽" in cells[salary].number_format
    assert "$" in sheet.cell(3, header.index(salary) + 1).number_format  # the second row's currency
    assert cells[who].value == "Анна Смирнова" and cells[team].value == "Администратор, Анна Смирнова"
    assert cells[consent].value is True
    assert sheet.cell(3, header.index(who) + 1).value == "#99"  # a user the portal did not name
    assert sheet.freeze_panes == "A2"


def test_codes_on_request(hr_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.xlsx"
    export(hr_db, "candidate", "xlsx", out, headers="codes")
    header = [c.value for c in openpyxl.load_workbook(out).active[1]]
    assert {"title", "stage_name", "candidate_source_label", "salary_expected"} <= set(header)
    with pytest.raises(ReportError, match="unknown --headers 'ids'; allowed: labels, codes"):
        export(hr_db, "candidate", "xlsx", tmp_path / "x.xlsx", headers="ids")


def test_csv_dialects(hr_db: Path) -> None:
    cols = ["title", "salary_expected", "interview_at", "assigned_by_id"]
    out = {}
    for dialect in ("excel-ru", "excel", "rfc4180"):
        buf = io.BytesIO()
        export(hr_db, "candidate", "csv", buf, columns=cols, dialect=dialect, tz="+03:00", users=USERS)
        out[dialect] = buf.getvalue()
    ru = list(csv.reader(io.StringIO(out["excel-ru"].decode("utf-8-sig"), newline=""), delimiter=";"))
    assert out["excel-ru"].startswith(b"\xef\xbb\xbf") and b"\r\n" in out["excel-ru"]
    assert ru[1][1:] == ["109000", "25.11.2026 09:16", "Анна Смирнова"]
    assert ru[2][1] == "1500,5"  # a decimal comma for Russian Excel
    en = list(csv.reader(io.StringIO(out["excel"].decode("utf-8-sig"), newline="")))
    assert out["excel"].startswith(b"\xef\xbb\xbf") and en[1][1] == "109000" and en[2][1] == "1500.5"
    machine = list(csv.reader(io.StringIO(out["rfc4180"].decode(), newline="")))
    assert not out["rfc4180"].startswith(b"\xef\xbb\xbf")
    assert machine[1][1:] == ["109000.0", "2026-11-25T06:16:48Z", "7"]  # stored values for machines
    default = io.BytesIO()
    export(hr_db, "candidate", "csv", default, columns=cols, tz="+03:00", users=USERS)
    expected = "excel-ru" if lang_of(hr_db) == "ru" else "excel"
    assert default.getvalue() == out[expected]  # the template language's default dialect
    with pytest.raises(ReportError, match="unknown --dialect 'tsv'; allowed: excel-ru, excel, rfc4180"):
        export(hr_db, "candidate", "csv", io.BytesIO(), dialect="tsv")


def test_html_export_is_a_readable_table(hr_db: Path) -> None:
    buf = io.BytesIO()
    export(hr_db, "candidate", "html", buf, tz="Europe/Moscow", users=USERS)
    page = buf.getvalue().decode()
    ru = lang_of(hr_db) == "ru"
    assert f'<html lang="{lang_of(hr_db)}">' in page
    assert "position:sticky" in page and ".scroll{overflow:auto" in page  # sticky header, both scrolls
    heads = [h.split(">")[-1] for h in page.split("</th>")[:-1]]
    first = ["ID", "Название", "Воронка", "Стадия"] if ru else ["ID", "Title", "Funnel", "Stage"]
    assert heads[:4] == first
    assert not any(h.endswith(("(код)", "(code)")) for h in heads)  # codes left out by default
    assert ("109\u202f000 ₽" if ru else "109,000 RUB") in page and "Анна Смирнова" in page
    assert ("25.11.2026 09:16" if ru else "2026-11-25 09:16") in page and "Europe/Moscow" in page
    chosen = io.BytesIO()
    export(hr_db, "candidate", "html", chosen, columns=["title", "stage"])
    assert chosen.getvalue().decode().count("</th>") == 2  # --columns is the chooser


def test_report_chrome_follows_the_template_language(hr_db: Path, tmp_path: Path) -> None:
    page = io.BytesIO()
    report(hr_db, "candidate", "all", "html", page, tz="+05:00")
    html = page.getvalue().decode()
    if lang_of(hr_db) == "ru":
        for text in ("Кандидаты: воронка, время в стадиях, зависшие элементы", "Воронка: элементы по стадиям",
                     "Время в стадиях", "Дольше всего без движения", "UTC+05:00", "Прошли дальше"):
            assert text in html
        assert "Funnel" not in html and "items" not in html
    else:
        for text in ("Candidates: funnel, time in stage, stuck items", "Funnel: items per stage",
                     "Stuck longest", "UTC+05:00", "Hiring — 2 items", "Offer", "Résumé received"):
            assert text in html
        assert "Подбор" not in html and "Оффер" not in html  # stage and funnel names in English too
    book = tmp_path / "r.xlsx"
    report(hr_db, "candidate", "funnel", "xlsx", book)
    sheet = openpyxl.load_workbook(book).worksheets[0]
    header = [c.value for c in sheet[1]]
    conversion = header.index("Прошли дальше" if lang_of(hr_db) == "ru" else "Went on further") + 1
    assert sheet.cell(2, conversion).number_format == "0.0%"
    sums = [h for h in header if h.startswith("Σ")]
    assert sums and all("sum " not in h for h in header)
    money_col = header.index(sums[0]) + 1
    assert any(sheet.cell(r, money_col).value for r in range(2, sheet.max_row + 1))


def test_time_zone_inputs() -> None:
    assert tz_name(parse_tz("+03:00")) == "UTC+03:00" and tz_name(parse_tz("UTC")) == "UTC"
    assert tz_name(parse_tz("-0930")) == "UTC-09:30" and tz_name(parse_tz("Europe/Moscow")) == "Europe/Moscow"
    for bad in ("Mars/Base", "+25:00", "three"):
        with pytest.raises(ReportError, match="time zone"):
            parse_tz(bad)


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_number_style_round_trips(value: int) -> None:
    ru = Display(lang="ru").number(value)
    assert int(ru.replace("\u202f", "")) == value
    en = Display(lang="en").number(value)
    assert int(en.replace(",", "")) == value


def test_dates_keep_the_calendar_day(hr_db: Path, tmp_path: Path) -> None:
    """A date field is a calendar day: no time zone shift (only datetimes move to the portal's zone)."""
    out = tmp_path / "d.xlsx"
    export(hr_db, "candidate", "xlsx", out, columns=["start_date"], tz="-11:00")
    assert openpyxl.load_workbook(out).active.cell(2, 1).value.date() == date(2026, 12, 1)


def test_xlsx_continues_on_a_new_sheet_past_the_row_limit() -> None:
    """Excel holds 1,048,576 rows a sheet: the rest goes on `<title> (2)`, each with its header."""
    from connector.reports.columns import Column
    from connector.reports.xlsx import XlsxBook

    buf = io.BytesIO()
    book = XlsxBook(buf)
    chunks = [[(i, f"t{i}") for i in range(0, 4)], [(i, f"t{i}") for i in range(4, 6)], [(6, "t6")]]
    written = book.write_sheet("Кандидаты", [Column("id", "ID", "integer"), Column("title", "Название")],
                               chunks, Display(), max_rows=3)
    book.close()
    sheets = openpyxl.load_workbook(buf).worksheets
    assert written == 7 and [s.title for s in sheets] == ["Кандидаты", "Кандидаты (2)", "Кандидаты (3)"]
    assert [[r[0] for r in s.iter_rows(values_only=True)] for s in sheets] == [
        ["ID", 0, 1, 2], ["ID", 3, 4, 5], ["ID", 6]]


def test_a_money_column_alone_still_gets_its_currency(hr_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.xlsx"
    result = export(hr_db, "candidate", "xlsx", out, columns=["salary_expected"])
    sheet = openpyxl.load_workbook(out).active
    assert result.columns == ["salary_expected"] and sheet.max_column == 1  # the currency is not shown
    assert "₽" in sheet.cell(2, 1).number_format and "$" in sheet.cell(3, 1).number_format
