"""Issue 12, stage rules: the template format, and the engine against the emulator over HTTP (loopback)
and through the `b24sync sync` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from connector.cli.main import main
from connector.config import portal_key
from connector.deploy import apply, plan
from connector.rest import Client
from connector.store import Store
from connector.store import entities as firings_store
from connector.sync import sync
from connector.templates import TemplateError, load_templates, loads_template
from connector.templates.writer import to_toml

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"
PRODUCTION = str(MAPPINGS / "production.toml")
TEMPLATES = load_templates([PRODUCTION])


# -- the format ---------------------------------------------------------------------------------------
def test_production_ships_the_two_rules_of_the_issue() -> None:
    [t] = TEMPLATES
    create, move = t.rules
    assert (create.kind, create.parent, create.parent_funnel, create.parent_stage) == (
        "create_child",
        "deal",
        "default",
        "EXECUTING",
    )
    assert {"title", "client", "amount", "products", "responsible"} == set(create.copy_fields)
    assert (move.kind, move.child_stage, move.parent_stage, move.backwards, move.reopen) == (
        "move_parent",
        "READY",
        "FINAL_INVOICE",
        False,
        False,
    )
    assert loads_template(to_toml(t)) == t  # the writer keeps the rules


def test_every_rule_mistake_is_reported_with_its_path() -> None:
    text = Path(PRODUCTION).read_text(encoding="utf-8") + (
        "\n[[rules]]\ncode = 'bad rule'\nkind = 'move_parnt'\nparent = 'lead'\nchild_stage = 'DONE'\n"
        "copy_fields = ['x']\nsurprise = 1\n"
        "\n[[rules]]\ncode = 'order_for_deal'\nkind = 'children_done'\nparent_stage = 'won'\n"
        "copy_fields = ['title']\n"
        "\n[[rules]]\ncode = 'late'\nkind = 'create_child'\nparent_stage = 'EXECUTING'\n"
        "child_funnel = 'nope'\ntitle = 'Order {deal}'\n"
    )
    with pytest.raises(TemplateError) as err:
        loads_template(text, "p.toml")
    found = {p.path: p.message for p in err.value.problems}
    assert "allowed: create_child, move_parent, children_done" in found["rules[2].kind"]
    assert "allowed keys:" in found["rules[2].surprise"]
    assert "^[a-z]" in found["rules[2].code"]
    assert "allowed: deal" in found["rules[2].parent"]
    assert "allowed: NEW, MATERIALS" in found["rules[2].child_stage"]
    assert "allowed: title, client" in found["rules[2].copy_fields[0]"]
    assert "used twice" in found["rules[3].code"]
    assert "needs 'when'" in found["rules[3].when"]
    assert "no meaning" in found["rules[3].copy_fields"]
    assert "^[A-Z]" in found["rules[3].parent_stage"]
    assert "allowed: production" in found["rules[4].child_funnel"]
    assert "{parent_title}" in found["rules[4].title"]
    assert all(p.file == "p.toml" for p in err.value.problems)


# -- the engine over a real loopback socket ----------------------------------------------------------
class Portal:
    """A deployed production template on a loopback emulator, a client and a store."""

    def __init__(self, server: Any, db: Path, templates: list[Any] = TEMPLATES) -> None:
        self.templates = templates
        self.emu = server.emulator
        self.url = server.webhook_url
        self.client = Client.from_webhook(self.url, allow_http=True)
        self.store = Store.open(db)
        self.key = portal_key(self.url)
        assert apply(self.client, templates, self.store).converged
        self.etid = next(
            t.entity_type_id for t in self.emu.state.types.values() if t.code == "production_order"
        )
        self.stage = {
            s.name: s.status_id for s in self.emu.state.stages.values() if s.entity_id.startswith("DYNAMIC")
        }

    def call(self, method: str, params: dict[str, Any]) -> Any:
        body = self.emu.call(method, params)
        assert "error" not in body, body
        return body["result"]

    def deal(self, stage: str = "NEW", **fields: Any) -> int:
        return int(
            self.call("crm.item.add", {"entityTypeId": 2, "fields": {"stageId": stage, **fields}})["item"][
                "id"
            ]
        )

    def move(self, etid: int, item_id: int, stage: str) -> None:
        self.call("crm.item.update", {"entityTypeId": etid, "id": item_id, "fields": {"stageId": stage}})

    def deal_stage(self, deal_id: int) -> str:
        return str(self.call("crm.item.get", {"entityTypeId": 2, "id": deal_id})["item"]["stageId"])

    def orders(self, deal_id: int | None = None) -> list[dict[str, Any]]:
        rows = [dict(r) for r in self.emu.items(self.etid)]
        return [r for r in rows if deal_id is None or r.get("PARENT_ID_2") == deal_id]

    def sync(self) -> Any:
        return sync(self.client, self.store, self.templates, portal_key=self.key)


@pytest.fixture
def portal(live_emulator: Any, tmp_path: Path) -> Any:
    p = Portal(live_emulator, tmp_path / "rules.db")
    yield p
    p.store.close()


READY = "Готово к отгрузке"


def test_deal_entering_executing_gets_exactly_one_order(portal: Portal) -> None:
    company = portal.call("crm.item.add", {"entityTypeId": 4, "fields": {"title": "ACME"}})["item"]["id"]
    contact = portal.call("crm.item.add", {"entityTypeId": 3, "fields": {"name": "Ann"}})["item"]["id"]
    deal = portal.deal(
        "NEW", title="Tables x10", companyId=company, contactIds=[contact], opportunity=5000, assignedById=7
    )
    portal.call(
        "crm.item.productrow.set",
        {
            "ownerType": "D",
            "ownerId": deal,
            "productRows": [{"productName": "Table", "price": 500, "quantity": 10}],
        },
    )
    assert portal.sync().firings == []  # not at EXECUTING yet
    portal.move(2, deal, "EXECUTING")
    first = portal.sync()
    assert first.summary()["fired"] == 1 and first.to_json()["firings"][0]["status"] == "done"
    [order] = portal.orders(deal)
    # issue 12 rule 1: parentId2 is the deal, the title contains the deal's, the client is the deal's,
    # it starts at the production funnel's first stage
    assert (
        "Tables x10" in order["TITLE"]
        and order["COMPANY_ID"] == company
        and order["CONTACT_IDS"] == [contact]
    )
    assert order["STAGE_ID"] == portal.stage["Новый заказ в производство"] and order["ASSIGNED_BY_ID"] == 7
    rows = portal.call(
        "crm.item.productrow.list", {"filter": {"=ownerType": f"T{portal.etid:x}", "=ownerId": order["ID"]}}
    )
    assert [(r["productName"], r["quantity"]) for r in rows["productRows"]] == [("Table", 10)]
    # running sync again changes nothing more; away and back creates no second order
    again = portal.sync()
    assert again.summary()["fired"] == 0 and len(portal.orders(deal)) == 1
    portal.move(2, deal, "PREPARATION")
    portal.sync()
    portal.move(2, deal, "EXECUTING")
    portal.sync()
    assert len(portal.orders(deal)) == 1
    # the order was pulled into the store, its deal copied read-only with labels
    [stored] = [d for d in firings_store.deals(portal.store) if d["id"] == deal]
    assert (stored["title"], stored["stage"], stored["stage_label"], stored["funnel"]) == (
        "Tables x10",
        "EXECUTING",
        "In progress",
        "General",
    )
    assert firings_store.companies(portal.store)[company] == "ACME"


def test_ready_order_moves_its_deal_forward_only(portal: Portal) -> None:
    deals = {name: portal.deal("EXECUTING", title=name) for name in ("open", "won", "later")}
    portal.sync()  # one order each
    portal.move(2, deals["won"], "WON")
    portal.move(2, deals["later"], "FINAL_INVOICE")
    for deal in deals.values():
        [order] = portal.orders(deal)
        portal.move(portal.etid, order["ID"], portal.stage[READY])
    report = portal.sync()
    assert portal.deal_stage(deals["open"]) == "FINAL_INVOICE"
    assert portal.deal_stage(deals["won"]) == "WON"  # closed: never moved
    assert portal.deal_stage(deals["later"]) == "FINAL_INVOICE"
    by_deal = {f["result"].split()[0]: f for f in report.firings if f["rule"].endswith("deal_on_ready")}
    assert by_deal[f"deal:{deals['won']}"]["status"] == "skipped"
    assert "closed (WON)" in by_deal[f"deal:{deals['won']}"]["result"]
    # a deal already at a later stage is left alone too
    late = portal.deal("EXECUTING", title="late")
    portal.sync()
    portal.move(2, late, "FINAL_INVOICE")
    portal.call(
        "crm.status.add",
        {"fields": {"ENTITY_ID": "DEAL_STAGE", "STATUS_ID": "SHIPPING", "NAME": "Shipping", "SORT": 55}},
    )
    portal.move(2, late, "SHIPPING")
    portal.move(portal.etid, portal.orders(late)[0]["ID"], portal.stage[READY])
    portal.sync()
    assert portal.deal_stage(late) == "SHIPPING"
    assert portal.sync().summary()["fired"] == 0  # settled: nothing fires again


class LoseCreateAnswer(requests.Session):
    """A transport that loses the answer of the first request creating an item (the portal applied it)."""

    lost = False

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        resp = super().send(request, **kwargs)
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        if not self.lost and "crm.item.add" in body:
            self.lost = True
            raise requests.ConnectionError("connection reset after the request was sent")
        return resp


def test_a_lost_create_response_makes_no_second_order(portal: Portal) -> None:
    deal = portal.deal("EXECUTING", title="Lost")
    # the batch creating the order runs, its answer never arrives
    portal.client = Client.from_webhook(portal.url, allow_http=True, session=LoseCreateAnswer())
    first = portal.sync()
    assert [f["status"] for f in first.firings] == ["pending"] and len(portal.orders(deal)) == 1
    second = portal.sync()
    assert [f["status"] for f in second.firings] == ["done"] and "found" in second.firings[0]["result"]
    assert len(portal.orders(deal)) == 1


def test_a_kill_between_create_and_record_makes_no_second_order(portal: Portal, monkeypatch: Any) -> None:
    deal = portal.deal("EXECUTING", title="Killed")

    def killed(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("killed")  # the process dies after the portal write, before the record

    monkeypatch.setattr(firings_store, "finish_firing", killed)
    with pytest.raises(SystemExit):
        portal.sync()
    monkeypatch.undo()
    assert len(portal.orders(deal)) == 1
    [firing] = firings_store.firings(portal.store, rule="production_order.order_for_deal")
    assert firing.status == "pending"
    portal.sync()
    assert len(portal.orders(deal)) == 1
    [firing] = firings_store.firings(portal.store, rule="production_order.order_for_deal")
    assert firing.status == "done" and firing.attempts == 2


def test_plan_checks_rule_targets_against_the_portal(portal: Portal) -> None:
    the_plan = plan(portal.client, TEMPLATES, portal.store)
    notes = [c for c in the_plan.changes if c.code.startswith("rules.")]
    assert [c.action for c in notes] == ["note", "note"] and "EXECUTING" in notes[0].note
    text = (
        Path(PRODUCTION)
        .read_text(encoding="utf-8")
        .replace('parent_stage = "FINAL_INVOICE"', 'parent_stage = "INVOICED"')
    )
    broken = loads_template(text)
    manual = [c for c in plan(portal.client, [broken], portal.store).manual if c.code.startswith("rules.")]
    assert len(manual) == 1 and "no stage 'INVOICED'" in manual[0].note and "FINAL_INVOICE" in manual[0].note


# -- through the command ------------------------------------------------------------------------------
def _run(capsys: Any, *args: str) -> tuple[int, Any]:
    code = main(["--json", *args])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else None)


def test_sync_dry_run_shows_what_would_fire_and_changes_nothing(
    portal: Portal, capsys: Any, tmp_path: Path
) -> None:
    deal = portal.deal("EXECUTING", title="Dry")
    db = str(tmp_path / "rules.db")
    code, out = _run(capsys, "sync", "--portal", portal.url, "--db", db, "--dry-run")
    assert code != 0  # no template given and none remembered yet: a clear usage error
    code, out = _run(
        capsys, "sync", "--portal", portal.url, "--db", db, "--dry-run", "--template", PRODUCTION
    )
    assert code == 0 and out["dry_run"] is True and out["would_fire"] == 1
    assert out["firings"][0]["entity"] == f"deal:{deal}" and out["firings"][0]["status"] == "would-fire"
    assert portal.orders(deal) == []
    code, out = _run(capsys, "sync", "--portal", portal.url, "--db", db, "--template", PRODUCTION)
    assert code == 0 and out["fired"] == 1 and len(portal.orders(deal)) == 1
    code, out = _run(capsys, "sync", "--portal", portal.url, "--db", db, "--dry-run")
    assert out["would_fire"] == 0


def test_children_done_moves_the_deal_when_all_orders_succeed(live_emulator: Any, tmp_path: Path) -> None:
    text = Path(PRODUCTION).read_text(encoding="utf-8") + (
        '\n[[rules]]\ncode = "won_when_all_ready"\nkind = "children_done"\nwhen = "all_success"\n'
        'parent_stage = "WON"\n'
    )
    p = Portal(live_emulator, tmp_path / "done.db", [loads_template(text)])
    try:
        deal = p.deal("EXECUTING", title="Two orders")
        p.sync()
        second = p.call(
            "crm.item.add", {"entityTypeId": p.etid, "fields": {"title": "extra", "parentId2": deal}}
        )
        [first] = [o for o in p.orders(deal) if o["ID"] != second["item"]["id"]]
        p.move(p.etid, first["ID"], p.stage[READY])
        p.sync()
        assert p.deal_stage(deal) == "FINAL_INVOICE"  # one of two orders ready: not won yet
        p.move(p.etid, second["item"]["id"], p.stage[READY])
        report = p.sync()
        assert p.deal_stage(deal) == "WON"
        assert [f["status"] for f in report.firings if f["rule"].endswith("won_when_all_ready")] == ["done"]
        assert p.sync().summary()["fired"] == 0
    finally:
        p.store.close()
