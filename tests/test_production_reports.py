"""Issue 12, reports: margin per deal for production orders, contracts per company; both built from a
store that `sync` filled from the emulator (deals, companies and end dates pulled read-only)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from openpyxl import load_workbook

from connector.cli.main import main
from connector.deploy import apply, portal_key_of
from connector.emulator import Emulator
from connector.reports import ReportError
from connector.reports.contracts import FLAG_EXPIRED, FLAG_EXPIRING, contracts
from connector.reports.margin import margin
from connector.rest import Client
from connector.store import Store
from connector.sync import sync
from connector.templates import load_templates

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


def _deployed(
    rsps: Any, db: Path, names: list[str]
) -> tuple[Emulator, Client, Store, list[Any], dict[str, int]]:
    emu = Emulator(limits="off", clock="virtual")
    client = Client.from_webhook(emu.register(rsps), sleep=lambda _s: None)
    templates = load_templates([str(MAPPINGS / n) for n in names])
    store = Store.open(db)
    assert apply(client, templates, store).converged
    etids = {t.code: t.entity_type_id for t in emu.state.types.values()}
    return emu, client, store, templates, etids


def _ok(emu: Emulator, method: str, params: dict[str, Any]) -> Any:
    body = emu.call(method, params)
    assert "error" not in body, body
    return body["result"]


def _uf(emu: Emulator, etid: int, code: str) -> str:
    smart = next(t for t in emu.state.types.values() if t.entity_type_id == etid)
    [uf] = [f for f in emu.state.fields_of(f"CRM_{smart.id}") if (f.xml_id or "").endswith(f":{code}")]
    return uf.field_name


def test_margin_per_deal_and_per_stage(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        emu, client, store, templates, etids = _deployed(rsps, db, ["production.toml"])
        etid, cost = etids["production_order"], _uf(emu, etids["production_order"], "cost")
        a = _ok(
            emu,
            "crm.item.add",
            {"entityTypeId": 2, "fields": {"title": "A", "opportunity": 1000, "stageId": "EXECUTING"}},
        )
        _ok(
            emu,
            "crm.item.add",
            {"entityTypeId": 2, "fields": {"title": "B", "opportunity": 500, "stageId": "EXECUTING"}},
        )
        key = portal_key_of(client)
        sync(client, store, templates, portal_key=key)  # the rule creates one order per deal
        extra = {"title": "A, part 2", "parentId2": a["item"]["id"]}
        _ok(emu, "crm.item.add", {"entityTypeId": etid, "fields": extra, "useOriginalUfNames": "Y"})
        for item in emu.items(etid):
            money = "300|RUB" if item["PARENT_ID_2"] == a["item"]["id"] else "650|RUB"
            _ok(
                emu,
                "crm.item.update",
                {"entityTypeId": etid, "id": item["ID"], "fields": {cost: money}, "useOriginalUfNames": "Y"},
            )
        sync(client, store, None, portal_key=key)
        store.close()
    result = margin(db, "production_order", "html", tmp_path / "m.html")
    by_title = {d["title"]: d for d in result.data["deals"]}
    # deal A: 1000 against two orders of 300; deal B: 500 against 650 (a loss)
    assert (by_title["A"]["orders"], by_title["A"]["production_cost"], by_title["A"]["margin"]) == (
        2,
        600,
        400,
    )
    assert (by_title["B"]["margin"], by_title["B"]["margin_percent"]) == (-150, -30.0)
    [stage] = result.data["stages"]
    assert (stage["stage"], stage["stage_name"], stage["deals"], stage["margin"]) == (
        "EXECUTING",
        "In progress",
        2,
        250,
    )
    page = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert "Margin per deal" in page and "Totals per deal stage" in page and "<script" not in page
    out = io.BytesIO()
    margin(db, "production_order", "csv", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    # numbers as people read them (a negative number is not formula-guarded)
    assert {r["title"]: r["margin"] for r in rows} == {"A": "400", "B": "-150"}
    margin(db, "production_order", "xlsx", tmp_path / "m.xlsx")
    book = load_workbook(tmp_path / "m.xlsx")
    assert book.sheetnames == ["deals", "stages"] and book["stages"].max_row == 2
    with pytest.raises(ReportError, match="money fields: cost"):
        margin(db, "production_order", cost_field="price")


def test_contracts_expiring_first_and_expired_open_flagged(tmp_path: Path, capsys: Any) -> None:
    db = tmp_path / "c.db"
    today = date(2026, 3, 1)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        emu, client, store, templates, etids = _deployed(rsps, db, ["production.toml", "contracts.toml"])
        etid = etids["contract"]
        acme = _ok(emu, "crm.item.add", {"entityTypeId": 4, "fields": {"title": "ACME"}})["item"]["id"]
        beta = _ok(emu, "crm.item.add", {"entityTypeId": 4, "fields": {"title": "Beta"}})["item"]["id"]
        default = emu.state.default_category(etid)
        assert default is not None
        funnel = emu.state.stages_of(f"DYNAMIC_{etid}_STAGE_{default.id}")
        stages = {s.name: s.status_id for s in funnel}
        number = _uf(emu, etid, "contract_no")

        def contract(no: str, company: int, end: date, stage: str) -> None:
            fields = {
                "title": no,
                number: no,
                "companyId": company,
                "closedate": end.isoformat(),
                "stageId": stages[stage],
            }
            _ok(emu, "crm.item.add", {"entityTypeId": etid, "fields": fields, "useOriginalUfNames": "Y"})

        active = next(n for n in stages if n.startswith("Действует"))
        done = next(s.name for s in funnel if s.semantics == "S")
        contract("A-1", acme, today + timedelta(days=200), active)
        contract("B-1", beta, today + timedelta(days=10), active)  # expiring within 30 days
        contract("B-2", beta, today - timedelta(days=5), active)  # expired, still open
        contract("B-3", beta, today - timedelta(days=50), done)  # expired and closed: fine
        sync(client, store, templates, portal_key=portal_key_of(client))
        store.close()
    rep = contracts(db, "contract", "html", tmp_path / "c.html", today=today).data
    order = [(r["company"], r["contract_no"], r["flag"]) for r in rep["rows"]]
    assert order == [
        ("Beta", "B-2", FLAG_EXPIRED),
        ("Beta", "B-1", FLAG_EXPIRING),
        ("Beta", "B-3", ""),
        ("ACME", "A-1", ""),
    ]
    assert "EXPIRED BUT OPEN" in (tmp_path / "c.html").read_text(encoding="utf-8")
    narrow = contracts(db, "contract", "csv", io.BytesIO(), days=5, today=today).data
    assert [r["flag"] for r in narrow["rows"] if r["contract_no"] == "B-1"] == [""]
    # the command: --days, default type `contract`, a clear error for a bad horizon
    code = main(
        ["--json", "report", "contracts", "--db", str(db), "-f", "csv", "-o", str(tmp_path / "c.csv")]
    )
    assert code == 0 and json.loads(capsys.readouterr().out)["kind"] == "contracts"
    code = main(["report", "contracts", "--db", str(db), "--days", "-1", "-o", str(tmp_path / "x.html")])
    assert code != 0 and "--days must be 0 or more" in capsys.readouterr().err


def test_demo_tells_the_production_story(tmp_path: Path) -> None:
    import random

    from connector.demo.production import margin_output, production_story

    db = tmp_path / "demo.db"
    steps: dict[str, dict[str, Any]] = {}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        emu, client, store, templates, etids = _deployed(rsps, db, ["production.toml"])
        told = production_story(
            client,
            store,
            portal_key_of(client),
            templates,
            random.Random(3),
            lambda name, **figures: steps.setdefault(name, figures),
            lambda _m: None,
        )
        store.close()
    assert told and steps["production: deals to EXECUTING"]["orders_created"] == 3
    assert steps["production: orders READY"]["deals_moved_on"] == 2
    assert sorted(emu.state.table(2).rows[d]["STAGE_ID"] for d in emu.state.table(2).rows) == [
        "EXECUTING",
        "FINAL_INVOICE",
        "FINAL_INVOICE",
        "PREPARATION",
    ]
    files = margin_output(db, tmp_path)
    page = Path(files[0]).read_text(encoding="utf-8")
    assert "Final invoice" in page and "In progress" in page and files[1].endswith(".xlsx")
