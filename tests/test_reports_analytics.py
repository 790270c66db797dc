"""Reports: funnel counts/sums/conversion, time in stage, aging, and the self-contained HTML page."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.stores import HIRING, add_item, candidate_template, create_store, sample_store

from connector.reports import ReportError, report
from connector.reports.analytics import aging_report, funnel_report, percentile, time_in_stage_report
from connector.store import Store
from connector.store.reader import StoreReader
from connector.sync.engine import remember_templates
from connector.templates import Template

NOW = datetime(2026, 1, 10, tzinfo=UTC)


@pytest.fixture
def conn(tmp_path: Path) -> StoreReader:
    return StoreReader.open(sample_store(tmp_path))


def by_stage(rep, funnel: str = "hiring") -> dict:  # type: ignore[no-untyped-def]
    (block,) = [f for f in rep.funnels if f.funnel == funnel]
    return {s.stage: s for s in block.stages}


def test_funnel_counts_sums_per_currency_and_conversion(conn: StoreReader) -> None:
    rep = funnel_report(conn, "candidate", now=NOW, template=candidate_template())
    stages = by_stage(rep)
    assert [s for s in stages] == [c for c, _n, _s in HIRING]  # template order
    assert stages["NEW"].count == 2 and stages["INTERVIEW"].count == 1 and stages["HIRED"].count == 1
    assert stages["NEW"].sums == {"salary USD": 1500.0}
    assert stages["HIRED"].sums == {"salary RUB": 100000.5}
    assert stages["NEW"].reached == 5  # c1..c5 (c6 is a tombstone)
    assert stages["NEW"].conversion == 0.4  # c1 and c2 went on; c3, c5 wait; c4 was rejected
    assert stages["INTERVIEW"].conversion == 0.5  # c1 hired, c2 still there
    assert stages["HIRED"].conversion is None and stages["REJECTED"].semantics == "failure"
    reserve = [f for f in rep.funnels if f.funnel == "reserve"][0]
    assert reserve.total == 0 and reserve.funnel_name == "Резерв"
    assert rep.money_fields == ["salary"]


def test_funnel_without_template_uses_what_ensure_process_recorded(conn: StoreReader) -> None:
    stages = by_stage(funnel_report(conn, "candidate", now=NOW))
    assert list(stages) == [c for c, _n, _s in HIRING]
    assert stages["HIRED"].semantics == "success" and stages["REJECTED"].semantics == "failure"
    assert stages["SCREENING"].stage_name.startswith("Телефонное интервью")


def test_time_in_stage_median_and_p90(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = create_store(path)
    for i, hours in enumerate([1, 2, 3, 4, 10]):
        add_item(db, f"k{i}", "INTERVIEW", history=[("NEW", "2026-01-01T00:00:00Z"),
                                                     ("INTERVIEW", f"2026-01-01T{hours:02d}:00:00Z")])
    rep = time_in_stage_report(StoreReader.open(path), "candidate", now=NOW, template=candidate_template())
    row = {r.stage: r for r in rep.stages}
    assert row["NEW"].completed == 5 and row["NEW"].median_hours == 3.0 and row["NEW"].p90_hours == 7.6
    assert row["INTERVIEW"].completed == 0 and row["INTERVIEW"].current == 5
    assert row["INTERVIEW"].current_max_hours == 9 * 24 - 1  # entered 01:00 on the 1st, now the 10th 00:00


def test_aging_lists_open_items_longest_first(conn: StoreReader) -> None:
    rep = aging_report(conn, "candidate", now=NOW, template=candidate_template())
    assert [i.key for i in rep.items] == ["c2", "c3", "c5"]  # c1 hired, c4 rejected, c6 deleted
    assert rep.items[0].days == 8.83 and rep.items[0].since == "2026-01-01T04:00:00Z"
    assert rep.items[2].since == "2026-01-09T00:00:00Z" and rep.items[2].id is None  # from moved_time


def test_html_report_is_self_contained_with_charts_and_figures(tmp_path: Path) -> None:
    out = tmp_path / "r" / "all.html"
    result = report(sample_store(tmp_path), "candidate", "all", "html", out, now=NOW,
                    template=candidate_template())
    page = out.read_text(encoding="utf-8")
    assert result.output == str(out) and page.count("<svg") == 2  # funnel bars + time in stage (one funnel)
    for external in ("<script", "<link", "src=", "http://", "https://", "@import", "url("):
        assert external not in page
    assert "Собеседование" in page and "Новый отклик" in page and "1\u202f500 $" in page
    # one duration unit per chart (medians of 4 h and 2 d read as 0.17 d and 2 d, not "4 h" next to "2 d")
    assert "40 %" in page and "медиана 0,17 дн · p90 0,3 дн · n=3" in page
    assert "медиана 2 дн · p90 2 дн" in page
    assert "<h1>Кандидаты: воронка, время в стадиях, зависшие элементы</h1>" in page  # the template's title
    assert "В этой воронке пока нет элементов." in page  # the empty reserve funnel
    # the long stage name is shortened in the chart, complete in the tooltip and the table
    long_name = HIRING[1][1]
    assert f"<title>{long_name}: 0</title>" in page and re.search(r">Телефонное интервью[^<]*…</text>", page)


def test_single_item_and_empty_process_render(tmp_path: Path) -> None:
    path = tmp_path / "one.db"
    db = create_store(path)
    buf = io.BytesIO()
    report(path, "candidate", "all", "html", buf, now=NOW)
    empty = buf.getvalue().decode()
    assert "В этой воронке пока нет элементов." in empty and "Открытых элементов нет." in empty
    assert "<svg" not in empty
    add_item(db, "only", "NEW", title="Единственный", created_time="2026-01-09T12:00:00Z")
    buf = io.BytesIO()
    result = report(path, "candidate", "funnel", "html", buf, now=NOW)
    page = buf.getvalue().decode()
    assert "Найм — 1 элемент</h3>" in page and "<svg" in page
    assert result.data["funnel"]["funnels"][0]["stages"][0]["count"] == 1


def test_report_csv_and_xlsx(tmp_path: Path) -> None:
    store = sample_store(tmp_path)
    report(store, "candidate", "funnel", "csv", tmp_path / "f.csv", now=NOW, template=candidate_template(),
           headers="codes", dialect="rfc4180")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "f.csv").read_text("utf-8-sig"))))
    assert (rows[0]["stage_name"], rows[0]["count"], rows[0]["conversion"]) == ("Новый отклик", "2", "0.4")
    report(store, "candidate", "all", "xlsx", tmp_path / "all.xlsx", now=NOW, headers="codes")
    book = openpyxl.load_workbook(tmp_path / "all.xlsx", read_only=True)
    assert book.sheetnames == ["воронка", "время в стадиях", "зависшие элементы"]
    aging = list(book["зависшие элементы"].iter_rows(values_only=True))
    assert aging[0][:3] == ("key", "id", "title") and aging[1][0] == "c2"


def test_report_bad_input(tmp_path: Path) -> None:
    store = sample_store(tmp_path)
    with pytest.raises(ReportError, match="allowed: funnel, time-in-stage, aging, all"):
        report(store, "candidate", "velocity", "html", io.BytesIO())
    with pytest.raises(ReportError, match="allowed: html, csv, xlsx"):
        report(store, "candidate", "funnel", "jsonl", io.BytesIO())
    with pytest.raises(ReportError, match="processes in this store: candidate, vacancy"):
        report(store, "cars", "funnel", "html", io.BytesIO())


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=30),
       q1=st.floats(0, 100), q2=st.floats(0, 100))
def test_percentile_is_bounded_and_monotone(values: list[float], q1: float, q2: float) -> None:
    lo, hi = sorted((q1, q2))
    a, b = percentile(values, lo), percentile(values, hi)
    assert a is not None and b is not None
    assert min(values) - 1e-6 <= a <= b + 1e-6 and b <= max(values) + 1e-6
    assert percentile(values, 0) == min(values) and percentile(values, 100) == max(values)


def _forget_recorded_stages(path: Path) -> None:
    """Make the file look like a store built before funnel order and stage meaning were recorded."""
    db = sqlite3.connect(path)
    db.execute("DELETE FROM _funnels")
    db.execute("DELETE FROM _stages")
    db.execute("UPDATE _processes SET signature = 'built by an earlier b24sync'")
    db.commit()
    db.close()


def test_a_store_made_before_shows_open_stages_in_history_order_until_ensure_process(tmp_path: Path) -> None:
    path = sample_store(tmp_path)
    _forget_recorded_stages(path)
    with StoreReader.open(path) as old:
        assert old.catalog("candidate").recorded is False
        stages = by_stage(funnel_report(old, "candidate", now=NOW))
    order = list(stages)
    assert order.index("NEW") < order.index("INTERVIEW") < order.index("HIRED")
    assert {s.semantics for s in stages.values()} == {"process"}  # never guessed from codes like HIRED
    assert stages["SCREENING"].stage_name.startswith("Телефонное интервью")  # names from the labels
    with Store.open(path) as store:
        assert store.ensure_process(candidate_template()) == []  # no column added, meaning recorded
    with StoreReader.open(path) as filled:
        stages = by_stage(funnel_report(filled, "candidate", now=NOW))
        assert filled.catalog("candidate").default_funnel == "hiring"
    assert list(stages) == [c for c, _n, _s in HIRING]
    assert stages["HIRED"].semantics == "success" and stages["REJECTED"].semantics == "failure"


def test_a_store_made_before_takes_the_meaning_from_the_template_sync_remembered(tmp_path: Path) -> None:
    path = sample_store(tmp_path)
    _forget_recorded_stages(path)
    with Store.open(path) as store:
        remember_templates(store, [candidate_template()])
    with StoreReader.open(path) as reader:
        stages = by_stage(funnel_report(reader, "candidate", now=NOW))
    assert list(stages) == [c for c, _n, _s in HIRING]
    assert stages["HIRED"].semantics == "success" and stages["SCREENING"].conversion is None


def test_stage_order_follows_the_declared_sort(tmp_path: Path) -> None:
    """Stages are ordered by the template's `sort` (the portal's order), then by their place in the file."""
    data = candidate_template().model_dump()
    hiring = data["funnels"][0]["stages"]
    hiring[0]["sort"], hiring[1]["sort"] = 25, 25  # NEW and SCREENING tie: file order decides
    hiring[2]["sort"] = 5  # INTERVIEW first
    path = tmp_path / "sorted.db"
    with Store.open(path) as store:
        store.ensure_process(Template.model_validate(data))
    with StoreReader.open(path) as reader:
        (funnel, _reserve) = reader.catalog("candidate").funnels
    assert [s.code for s in funnel.stages][:3] == ["INTERVIEW", "NEW", "SCREENING"]


def test_deleted_and_tombstoned_items_do_not_count_in_reached_or_time_in_stage(tmp_path: Path) -> None:
    """Stage history outlives the item: rows deleted locally and tombstones must not be counted."""
    path = tmp_path / "d.db"
    db = create_store(path)
    moves = [("NEW", "2026-01-01T00:00:00Z"), ("INTERVIEW", "2026-01-01T05:00:00Z"),
             ("OFFER", "2026-01-02T05:00:00Z")]
    add_item(db, "live", "OFFER", id=1, history=moves)
    add_item(db, "tomb", "OFFER", id=2, deleted=1, deleted_at="2026-01-03T00:00:00Z", history=moves)
    add_item(db, "gone", "OFFER", id=3, history=moves)
    db.conn.execute("DELETE FROM candidate WHERE key = 'gone'")  # deleted locally; its history stays
    db.close()
    conn = StoreReader.open(path)
    stages = by_stage(funnel_report(conn, "candidate", now=NOW, template=candidate_template()))
    reached = {s: stages[s].reached for s in ("NEW", "INTERVIEW", "OFFER")}
    assert reached == {"NEW": 1, "INTERVIEW": 1, "OFFER": 1}
    assert stages["OFFER"].count == 1 and stages["NEW"].conversion == 1.0
    times = time_in_stage_report(conn, "candidate", now=NOW, template=candidate_template())
    rows = {r.stage: r for r in times.stages}
    assert rows["NEW"].completed == 1 and rows["INTERVIEW"].completed == 1
    assert rows["OFFER"].current == 1
    aging = aging_report(conn, "candidate", now=NOW, template=candidate_template())
    assert [i.key for i in aging.items] == ["live"]
