"""The production chapter of `b24sync demo`: deals move into EXECUTING, the stage rules create
production orders, the orders reach READY, the deals move on, and the margin report shows it."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connector.reports.margin import margin
from connector.rest import Client
from connector.store import Store
from connector.sync import sync
from connector.templates import Template

PROCESS = "production_order"
PRODUCTS = [("Стол дубовый", 42_000.0), ("Шкаф-купе", 65_000.0), ("Стеллаж", 18_500.0), ("Кровать", 54_000.0)]
CLIENTS = ["ООО «Мебельный двор»", "ИП Соколова", "ООО «Интерьер-Проект»"]


def production_story(
    client: Client,
    store: Store,
    key: str,
    templates: list[Template],
    rng: random.Random,
    step: Callable[..., None],
    say: Callable[[str], None],
) -> bool:
    """Run the chapter when the production template (with its rules) is deployed; False otherwise."""
    order = next((t for t in templates if t.code == PROCESS and t.rules), None)
    if order is None:
        return False
    made = client.batch_all(
        {
            f"c{i}": ("crm.item.add", {"entityTypeId": 4, "fields": {"title": name}})
            for i, name in enumerate(CLIENTS)
        }
    )
    companies = [int(made.results[f"c{i}"]["item"]["id"]) for i in range(len(CLIENTS))]
    lines = []
    for n in range(4):
        name, price = PRODUCTS[n % len(PRODUCTS)]
        qty = rng.randint(1, 5)
        lines.append((name, price, qty, companies[n % len(companies)]))
    made = client.batch_all(
        {
            f"d{n}": (
                "crm.item.add",
                {
                    "entityTypeId": 2,
                    "fields": {"title": f"{name} × {qty}", "companyId": company, "stageId": "PREPARATION"},
                },
            )
            for n, (name, _price, qty, company) in enumerate(lines)
        }
    )
    deals = [int(made.results[f"d{n}"]["item"]["id"]) for n in range(len(lines))]
    commands: dict[str, tuple[str, dict[str, Any]]] = {
        f"p{n}": (
            "crm.item.productrow.set",
            {
                "ownerType": "D",
                "ownerId": deal,
                "productRows": [{"productName": name, "price": price, "quantity": qty}],
            },
        )
        for n, (deal, (name, price, qty, _company)) in enumerate(zip(deals, lines, strict=True))
    }
    commands.update(
        {
            f"e{n}": ("crm.item.update", {"entityTypeId": 2, "id": deal, "fields": {"stageId": "EXECUTING"}})
            for n, deal in enumerate(deals[:3])
        }
    )
    client.batch_all(commands)
    amounts = {deal: price * qty for deal, (_name, price, qty, _company) in zip(deals, lines, strict=True)}
    only = [PROCESS]
    first = sync(client, store, templates, portal_key=key, policy="merge", only=only)
    created = sum(1 for f in first.firings if f["status"] == "done")
    sync(
        client, store, templates, portal_key=key, policy="merge", only=only
    )  # the next run pulls the new orders
    step("production: deals to EXECUTING", deals=len(deals), executing=3, orders_created=created)
    say(f"production: 3 of {len(deals)} deals entered EXECUTING; sync created {created} production order(s)")
    etid = _etid(store, key)
    cost = _field(store, key, "cost")
    ready = _status(store, key, "READY")
    orders = store.conn.execute(
        f'SELECT id, parent_deal FROM "{PROCESS}" WHERE parent_deal IS NOT NULL'
    ).fetchall()
    updates: dict[str, tuple[str, dict[str, Any]]] = {}
    for n, (order_id, deal) in enumerate(orders):
        fields: dict[str, Any] = {cost: f"{round(amounts.get(deal, 0) * rng.uniform(0.55, 0.95), 2)}|RUB"}
        if n < 2:
            fields["stageId"] = ready
        updates[f"o{n}"] = (
            "crm.item.update",
            {"entityTypeId": etid, "id": order_id, "fields": fields, "useOriginalUfNames": "Y"},
        )
    if updates:
        client.batch_all(updates)
    second = sync(client, store, templates, portal_key=key, policy="merge", only=only)
    moved = sum(1 for f in second.firings if f["status"] == "done" and "moved" in str(f["result"]))
    sync(client, store, templates, portal_key=key, policy="merge", only=only)  # the moved deals' stages
    step("production: orders READY", ready=min(2, len(orders)), deals_moved_on=moved)
    say(f"production: {min(2, len(orders))} order(s) READY; sync moved {moved} deal(s) to FINAL_INVOICE")
    return True


def margin_output(db: Path, out: Path) -> list[str]:
    """The margin report files of the chapter."""
    files = []
    for fmt in ("html", "xlsx"):
        target = out / f"{PROCESS}-margin.{fmt}"
        margin(db, PROCESS, fmt, target)
        files.append(str(target))
    return files


def _etid(store: Store, key: str) -> int:
    entry = store.idmap.entry(key, "type", PROCESS)
    assert entry is not None, f"{PROCESS} was not deployed"
    return int((entry.extra or {})["entityTypeId"])


def _field(store: Store, key: str, code: str) -> str:
    entry = store.idmap.entry(key, "field", f"{PROCESS}.{code}")
    assert entry is not None, f"field {PROCESS}.{code} was not deployed"
    return str((entry.extra or {})["field_name"])


def _status(store: Store, key: str, stage: str) -> str:
    entry = store.idmap.entry(key, "stage", f"{PROCESS}.production.{stage}")
    assert entry is not None, f"stage {PROCESS}.production.{stage} was not deployed"
    return str((entry.extra or {})["status_id"])
