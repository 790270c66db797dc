"""Exports from a store built by `connector.store.Store`: the fast label columns equal the view's, and
crm link fields get the linked items' titles."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from connector.reports import export, report
from connector.store import Store
from connector.sync.engine import remember_templates
from connector.templates import load_templates

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"
FILES = ["car_service.toml", "work_order.toml", "production.toml", "contracts.toml", "hr_candidates.toml"]


def insert(conn: sqlite3.Connection, tbl: str, **values: Any) -> None:
    cols, marks = ", ".join(f'"{c}"' for c in values), ", ".join("?" * len(values))
    conn.execute(f'INSERT INTO "{tbl}" ({cols}) VALUES ({marks})', list(values.values()))


@pytest.fixture(params=["ru", "en"])
def store_file(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """Every shipped process in one store (view language ru or en), with awkward values."""
    path = tmp_path / "s.db"
    templates = load_templates([MAPPINGS / f for f in FILES])
    with Store.open(path) as store:
        for t in templates:
            store.ensure_process(t, lang=request.param)
        remember_templates(store, templates)
    conn = sqlite3.connect(path)
    insert(conn, "car", key="c1", id=7, title="Лада Веста", stage="NEW")
    insert(conn, "car", key="c2", id=8, title=None, stage="NO_SUCH_STAGE")
    insert(conn, "production_order", key="p1", id=5, title="Заказ №5", funnel="standard", stage="NEW")
    insert(conn, "work_order", key="w1", id=1, title="ТО-1", funnel=None, stage="WORK", parent_car=7,
           work_types=json.dumps(["diagnostics", "no_such_option"]))
    insert(conn, "work_order", key="w2", title="Без стадии", funnel=None, stage=None, work_types="not json")
    insert(conn, "work_order", key="w3", title="Только ключ", stage="BOOKED", parent_car_key="c2")
    insert(conn, "candidate", key="k1", title="Анна", funnel="hiring", stage="INTERVIEW",
           candidate_source="referral", score="no_such", reject_reason=None)
    insert(conn, "candidate", key="k2", title="Борис", funnel="reserve", stage="POOL", candidate_source=None)
    insert(conn, "candidate", key="k3", title="Вера", funnel="nope", stage="INTERVIEW", candidate_source="hh")
    insert(conn, "contract", key="d1", title="Договор 1",
           related_orders=json.dumps(["production_order:5", "deal:12", "production_order:99"]))
    insert(conn, "contract", key="d2", title="Договор 2", related_orders="[]")
    conn.commit()
    conn.close()
    return path


def exported(path: Path, tbl: str) -> list[dict[str, Any]]:
    buf = io.BytesIO()
    export(path, tbl, "jsonl", buf)
    return [json.loads(line) for line in buf.getvalue().decode().splitlines()]


@pytest.mark.parametrize("tbl", ["car", "work_order", "production_order", "contract", "candidate"])
def test_fast_labels_equal_the_labels_view(store_file: Path, tbl: str) -> None:
    conn = sqlite3.connect(store_file)
    conn.row_factory = sqlite3.Row
    view = [dict(r) for r in conn.execute(f'SELECT * FROM "{tbl}_labels" WHERE deleted = 0 ORDER BY rowid')]
    rows = exported(store_file, tbl)
    assert len(rows) == len(view) > 0
    for got, want in zip(rows, view, strict=True):
        assert {k: got[k] for k in want} == want


def test_labels_follow_the_view_language(store_file: Path) -> None:
    conn = sqlite3.connect(store_file)
    lang = conn.execute("SELECT lang FROM _processes WHERE tbl = 'candidate'").fetchone()[0]
    anna = next(r for r in exported(store_file, "candidate") if r["key"] == "k1")
    assert anna["stage_name"] == {"ru": "Собеседование", "en": "Interview"}[lang]
    assert anna["candidate_source_label"] == {"ru": "Рекомендация", "en": "Referral"}[lang]
    assert anna["score_label"] is None  # an unknown option code has no label (as in the view)


def test_crm_links_and_parents_get_titles(store_file: Path) -> None:
    contracts = {r["key"]: r for r in exported(store_file, "contract")}
    titles = json.loads(contracts["d1"]["related_orders_title"])
    assert titles == ["Заказ №5", "deal:12", "production_order:99"]  # unknown or unstored: the raw link
    assert json.loads(contracts["d2"]["related_orders_title"]) == []
    orders = {r["key"]: r for r in exported(store_file, "work_order")}
    assert orders["w1"]["parent_car_title"] == "Лада Веста"
    assert orders["w3"]["parent_car_title"] is None  # the parent row exists but has no title


def test_where_sees_fast_label_columns(store_file: Path) -> None:
    buf = io.BytesIO()
    conn = sqlite3.connect(store_file)
    lang = conn.execute("SELECT lang FROM _processes WHERE tbl = 'candidate'").fetchone()[0]
    name = {"ru": "Собеседование", "en": "Interview"}[lang]
    export(store_file, "candidate", "csv", buf, where=f"stage_name = '{name}'", columns=["key"],
           headers="codes", dialect="rfc4180")
    assert buf.getvalue().decode().split() == ["key", "k1"]


def test_report_page_uses_process_and_field_names(store_file: Path) -> None:
    conn = sqlite3.connect(store_file)
    lang = conn.execute("SELECT lang FROM _processes WHERE tbl = 'candidate'").fetchone()[0]
    conn.execute("UPDATE candidate SET salary_expected = 120000, salary_expected_currency = 'RUB' "
                 "WHERE key = 'k1'")
    conn.commit()
    page = io.BytesIO()
    report(store_file, "candidate", "funnel", "html", page)
    html = page.getvalue().decode()
    names = {"ru": ("Кандидаты: воронка", "Ожидаемая зарплата", "сумма", "120\u202f000", "₽"),
             "en": ("Candidates: funnel", "Expected salary", "sum of", "120,000", "RUB")}
    title, salary, sum_of, amount, sign = names[lang]
    assert f"<h1>{title}</h1>" in html and "<code>candidate</code>" in html and f'lang="{lang}"' in html
    assert f'<th scope="col">Σ {salary}, RUB</th>' in html and f"{sum_of} «{salary}»" in html
    assert f'<td class="n">{amount}</td>' in html and f"1 · {amount} {sign}</text>" in html
    cars = io.BytesIO()
    report(store_file, "car", "funnel", "html", cars)
    assert "Σ" not in cars.getvalue().decode()  # a process without money fields


def contract_template() -> Any:
    templates = load_templates([MAPPINGS / "production.toml", MAPPINGS / "contracts.toml"])
    return next(t for t in templates if t.code == "contract")


def contract_store(path: Path, *, deployed: bool) -> Path:
    """The contract process without a remembered template; optionally with deploy's `_idmap` entries."""
    template = contract_template()
    with Store.open(path) as store:
        store.ensure_process(template)
        if deployed:
            for sort, funnel in enumerate(template.funnels):
                store.idmap.set("p.test", "funnel", f"contract.{funnel.code}", sort,
                                extra={"name": "x", "sort": (sort + 1) * 100})
                for stage in funnel.stages:
                    store.idmap.set("p.test", "stage", f"contract.{funnel.code}.{stage.code}", 1,
                                    extra={"sort": stage.sort, "semantics": stage.semantics, "name": "x"})
        store.conn.execute("INSERT INTO contract (key, title, stage) VALUES ('a', 'Договор', 'DRAFT')")
    return path


@pytest.mark.parametrize("deployed", [False, True])
def test_an_item_without_funnel_counts_in_the_default_funnel(tmp_path: Path, deployed: bool) -> None:
    path = contract_store(tmp_path / "c.db", deployed=deployed)
    data = report(path, "contract", "all", "html", io.BytesIO()).data
    funnels = {f["funnel"]: f for f in data["funnel"]["funnels"]}
    assert "" not in funnels and funnels["sales"]["total"] == 1  # the view's default funnel, not a new one
    assert funnels["sales"]["funnel_name"] == "С клиентами" and funnels["purchase"]["total"] == 0
    assert [i["funnel_name"] for i in data["aging"]["items"]] == ["С клиентами"]


def test_without_a_template_stage_order_and_semantics_come_from_the_deploy_id_map(tmp_path: Path) -> None:
    template = contract_template()
    path = contract_store(tmp_path / "c.db", deployed=True)
    data = report(path, "contract", "funnel", "html", io.BytesIO()).data
    (sales,) = [f for f in data["funnel"]["funnels"] if f["funnel"] == "sales"]
    expected = [s for s in template.funnel("sales").stages]
    assert [s["stage"] for s in sales["stages"]] == [s.code for s in expected]
    assert [s["semantics"] for s in sales["stages"]] == [s.semantics for s in expected]
    assert sales["stages"][0]["stage_name"] == "Черновик"  # names still from `_labels`
