"""The store's read-only API (connector.store.reader): the catalog `ensure_process` records, labels,
rows and status as typed answers, and a file that no read can change."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.stores import HIRING, RESERVE, add_item, candidate_template, create_store, sample_store

from connector.store import Store, StoreError, StoreReader
from connector.templates import Template


def test_catalog_holds_funnels_and_stages_in_template_order_with_their_meaning(tmp_path: Path) -> None:
    with StoreReader.open(sample_store(tmp_path)) as reader:
        catalog = reader.catalog("candidate")
        assert reader.processes() == ["candidate", "vacancy"]
    assert catalog.recorded and catalog.default_funnel == "hiring"
    assert catalog.view == "candidate_labels" and catalog.language == "ru"
    assert {"funnel_name", "stage_name", "channel_label"} <= set(catalog.view_columns)
    assert catalog.money_fields() == ["salary"]
    hiring, reserve = catalog.funnels
    assert (hiring.code, hiring.default, reserve.code, reserve.default) == ("hiring", True, "reserve", False)
    assert [(s.code, s.semantics) for s in hiring.stages] == [(c, m) for c, _n, m in HIRING]
    assert [(s.code, s.semantics) for s in reserve.stages] == [(c, m) for c, _n, m in RESERVE]


def test_a_changed_template_changes_the_recorded_meaning(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    create_store(path).close()
    data = candidate_template().model_dump()
    data["funnels"][0]["stages"][3]["semantics"] = "success"  # OFFER now counts as won
    data["funnels"][0]["default"], data["funnels"][1]["default"] = False, True
    with Store.open(path) as store:
        store.ensure_process(Template.model_validate(data))
    with StoreReader.open(path) as reader:
        catalog = reader.catalog("candidate")
    hiring = catalog.funnels[0]
    assert [s.semantics for s in hiring.stages][3] == "success" and catalog.default_funnel == "reserve"


def test_labels_prefer_the_language_asked_then_star_then_en(tmp_path: Path) -> None:
    with StoreReader.open(sample_store(tmp_path)) as reader:
        ru, en = reader.labels("candidate", "ru"), reader.labels("candidate", "en")
        assert reader.labels("no_such_process", "ru").by_key == {}
    assert ru.get("stage", "INTERVIEW", "hiring") == "Собеседование"
    assert en.get("stage", "INTERVIEW", "hiring") == "Interview"  # the template names it in en too
    assert en.get("funnel", "hiring") == "Найм"  # only a Russian name: the first one is used
    assert ru.get("process", "candidate") == "Кандидаты" and ru.get("option", "hh", "channel") == "HeadHunter"


def test_rows_of_live_items_and_their_stage_visits(tmp_path: Path) -> None:
    with StoreReader.open(sample_store(tmp_path)) as reader:
        items = {i.key: i for i in reader.live_items("candidate")}
        visits = [(v.key, v.stage) for v in reader.stage_visits("candidate") if v.key == "c1"]
        counts = {(f, s): n for f, s, n in reader.stage_counts("candidate")}
        sums = reader.money_sums("candidate", "salary")
        assert reader.live_count("candidate") == 5 and reader.live_count("vacancy") == 2
    assert set(items) == {"c1", "c2", "c3", "c4", "c5"}  # c6 is a tombstone
    assert items["c5"].entered == "2026-01-09T00:00:00Z" and items["c3"].entered == "2026-01-05T00:00:00Z"
    assert visits == [("c1", "NEW"), ("c1", "INTERVIEW"), ("c1", "HIRED")]
    assert counts[("hiring", "NEW")] == 2 and ("hiring", "INTERVIEW") in counts
    assert ("hiring", "NEW", "USD", 1500.0) in sums


def test_status_reads_are_typed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with create_store(path) as store:
        run = store.run_start("sync", "portal.example", job="nightly")
        store.run_finish(run, "ok", {"pulled": 3})
        store.cursor_set("portal.example", "candidate", "2026-01-01T00:00:00Z")
        store.add_conflict("candidate", "k1", 1, ["title"], {"title": "a"}, {"title": "b"}, policy="manual")
        local = "INSERT INTO candidate (key, title, funnel, stage) VALUES (?, ?, 'hiring', 'NEW')"
        store.conn.execute(local, ("k9", "Local"))  # a local edit, as any SQLite client makes it
        (change,) = store.pending_changes("candidate")
        store.mark_failed(change.seqs, "value is required")
        store.conn.execute(local, ("k8", "Other"))
    with StoreReader.open(path) as reader:
        (last,) = reader.runs(5)
        (cursor,) = reader.cursors()
        (conflict,) = reader.open_conflicts(10)
        (failed,) = reader.failed_changes(10)
        pending = reader.pending_counts()
    assert (last.job, last.status, last.figures) == ("nightly", "ok", {"pulled": 3})
    assert (cursor.portal, cursor.tbl) == ("portal.example", "candidate")
    assert cursor.value == "2026-01-01T00:00:00Z"
    assert conflict.fields == ["title"]
    assert (conflict.local, conflict.remote) == ({"title": "a"}, {"title": "b"})
    assert (failed.key, failed.op, failed.error) == ("k9", "I", "value is required")
    assert "title" in failed.columns
    assert pending == {"candidate": 1}


def test_no_read_changes_the_file_and_writes_are_refused(tmp_path: Path) -> None:
    path = sample_store(tmp_path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with StoreReader.open(path) as reader:
        for tbl in reader.processes():
            reader.catalog(tbl), reader.labels(tbl, "ru"), reader.live_items(tbl), reader.template(tbl)
            list(reader.stage_visits(tbl)), reader.places_reached(tbl), reader.distinct_values(tbl, "title")
        reader.runs(5), reader.cursors(), reader.pending_counts(), reader.failed_changes(5)
        assert reader.open_conflicts(5) == []
        with pytest.raises(StoreError, match="no column.*company_id"):
            reader.client_items("candidate")
        with pytest.raises(StoreError, match="no column.*parent_deal"):
            reader.deal_costs("candidate", "salary")
        for sql in ("DELETE FROM candidate", "UPDATE _stages SET semantics = 'success'",
                    "DROP TABLE _funnels", "CREATE TABLE x (y)", "ATTACH DATABASE ':memory:' AS other"):
            with pytest.raises(sqlite3.DatabaseError):
                reader.conn.execute(sql)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_an_old_store_without_the_new_tables_reads_as_not_recorded(tmp_path: Path) -> None:
    """A file whose schema predates `_funnels`/`_stages` (and has no remembered template)."""
    path = sample_store(tmp_path)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE _funnels")
    db.execute("DROP TABLE _stages")
    db.commit()
    db.close()
    with StoreReader.open(path) as reader:
        catalog = reader.catalog("candidate")
    assert catalog.recorded is False and catalog.funnels == () and catalog.default_funnel is None


SEMANTICS = st.sampled_from(["process", "success", "failure"])
STAGES = st.lists(st.tuples(st.integers(0, 50), SEMANTICS), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(stages=STAGES)
def test_recorded_order_is_sort_then_template_place_and_meaning_is_kept(
    tmp_path_factory: pytest.TempPathFactory, stages: list[tuple[int, str]]
) -> None:
    template = Template.model_validate({
        "code": "deal_like", "title": {"en": "Deals"}, "language": "en",
        "funnels": [{"code": "main", "name": {"en": "Main"}, "stages": [
            {"code": f"S{i}", "name": {"en": f"Stage {i}"}, "sort": sort, "semantics": meaning}
            for i, (sort, meaning) in enumerate(stages)]}],
    })
    path = tmp_path_factory.mktemp("order") / "s.db"
    with Store.open(path) as store:
        store.ensure_process(template)
        add_item(store, "k", "S0", tbl="deal_like", funnel=None)
    with StoreReader.open(path) as reader:
        (funnel,) = reader.catalog("deal_like").funnels
    expected = sorted(range(len(stages)), key=lambda i: (stages[i][0], i))
    assert [s.code for s in funnel.stages] == [f"S{i}" for i in expected]
    assert [s.semantics for s in funnel.stages] == [stages[i][1] for i in expected]
