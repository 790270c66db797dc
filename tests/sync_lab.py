"""A small test process ("lab") on the emulator, a store, and transport hooks for the issue-10 tests.

The lab template has one field of each kind the sync contract cares about: a plain string, a 64-bit
integer, single and multiple money, a multiple string, an enumeration, two funnels with stages.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import responses
from test_sync_support import local_exec, portal_items, setup_processes

from connector.emulator import Emulator
from connector.rest import Client
from connector.store import Store
from connector.sync import sync
from connector.sync.engine import resolve_maps
from connector.templates import loads_template

LAB_TOML = """
code = "lab"
title = { ru = "Лаборатория", en = "Lab" }
language = "ru"
preset = "scratch"

[flags]
isStagesEnabled = true
isCategoriesEnabled = true

[[fields]]
code = "note"
type = "string"
label = { ru = "Заметка", en = "Note" }

[[fields]]
code = "big"
type = "integer"
label = { ru = "Число", en = "Number" }

[[fields]]
code = "amount"
type = "money"
label = { ru = "Сумма", en = "Amount" }

[[fields]]
code = "prices"
type = "money"
multiple = true
label = { ru = "Цены", en = "Prices" }

[[fields]]
code = "tags"
type = "string"
multiple = true
label = { ru = "Метки", en = "Tags" }

[[fields]]
code = "kind"
type = "enumeration"
label = { ru = "Вид", en = "Kind" }
options = [
  { code = "a", label = { ru = "А", en = "A" } },
  { code = "b", label = { ru = "Б", en = "B" } },
]

[[funnels]]
code = "main"
name = { ru = "Основная", en = "Main" }
default = true

[[funnels.stages]]
code = "NEW"
name = { ru = "Новая", en = "New" }

[[funnels.stages]]
code = "WORK"
name = { ru = "В работе", en = "Work" }

[[funnels.stages]]
code = "CHECK"
name = { ru = "Проверка", en = "Check" }

[[funnels.stages]]
code = "DONE"
name = { ru = "Готово", en = "Done" }
semantics = "success"

[[funnels.stages]]
code = "FAIL"
name = { ru = "Провал", en = "Failed" }
semantics = "failure"

[[funnels]]
code = "side"
name = { ru = "Побочная", en = "Side" }

[[funnels.stages]]
code = "NEW"
name = { ru = "Новая", en = "New" }

[[funnels.stages]]
code = "ALT"
name = { ru = "Другая", en = "Alt" }

[[funnels.stages]]
code = "DONE"
name = { ru = "Готово", en = "Done" }
semantics = "success"

[[funnels.stages]]
code = "FAIL"
name = { ru = "Провал", en = "Failed" }
semantics = "failure"
"""
LAB = loads_template(LAB_TOML, "lab.toml")


class Hook(requests.Session):
    """The transport seam: run `before`/`after` around the `nth` request whose URL holds `method`."""

    def __init__(
        self,
        method: str,
        *,
        before: Callable[[], None] | None = None,
        after: Callable[[], None] | None = None,
        nth: int = 1,
    ) -> None:
        super().__init__()
        self.method, self.before, self.after, self.nth, self.seen = method, before, after, nth, 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        hit = self.method in (request.url or "") or self.method in _body(request)
        if hit:
            self.seen += 1
        fire = hit and self.seen == self.nth
        if fire and self.before:
            self.before()
        resp = super().send(request, **kwargs)
        if fire and self.after:
            self.after()
        return resp


def _body(request: requests.PreparedRequest) -> str:
    body = request.body
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return body or ""


class Lab:
    """The lab process (and any extra templates) on an in-process emulator, with one store file."""

    def __init__(self, emu: Emulator, url: str, db: Path, templates: list[Any]) -> None:
        self.emu, self.url, self.db, self.templates = emu, url, db, templates
        self.etids = setup_processes(emu, templates)
        types = {t["entityTypeId"]: t["id"] for t in emu.call("crm.type.list", {})["result"]["types"]}
        self.type_ids = {code: types[etid] for code, etid in self.etids.items()}
        self.store = Store.open(db)

    # ---- runs ----
    def client(self, session: requests.Session | None = None) -> Client:
        return Client.from_webhook(self.url, session=session) if session else Client.from_webhook(self.url)

    def sync(self, session: requests.Session | None = None, store: Store | None = None, **kw: Any) -> Any:
        return sync(self.client(session), store or self.store, self.templates, portal_key="emu", **kw)

    def pmap(self, code: str = "lab") -> Any:
        return resolve_maps(self.client(), self.store, self.templates, "emu")[code]

    # ---- the portal side ----
    def uf(self, field: str, code: str = "lab") -> str:
        return f"UF_CRM_{self.type_ids[code]}_{field.upper()}"

    def stage_id(self, funnel: str, stage: str, code: str = "lab") -> str:
        return self.pmap(code).stages[funnel][stage]

    def category(self, funnel: str, code: str = "lab") -> int:
        return self.pmap(code).funnels[funnel]

    def add_remote(self, fields: dict[str, Any], code: str = "lab") -> int:
        res = self.emu.call(
            "crm.item.add", {"entityTypeId": self.etids[code], "fields": fields, "useOriginalUfNames": "Y"}
        )
        assert "error" not in res, res
        return int(res["result"]["item"]["id"])

    def update_remote(self, item_id: int, fields: dict[str, Any], code: str = "lab") -> dict[str, Any]:
        res = self.emu.call(
            "crm.item.update",
            {"entityTypeId": self.etids[code], "id": item_id, "fields": fields, "useOriginalUfNames": "Y"},
        )
        assert "error" not in res, res
        return dict(res["result"]["item"])

    def delete_remote(self, item_id: int, code: str = "lab") -> None:
        self.emu.call("crm.item.delete", {"entityTypeId": self.etids[code], "id": item_id})

    def items(self, code: str = "lab") -> list[dict[str, Any]]:
        return portal_items(self.emu, self.etids[code])

    def item(self, item_id: int, code: str = "lab") -> dict[str, Any]:
        [found] = [i for i in self.items(code) if i["id"] == item_id]
        return found

    # ---- the local side (a plain SQLite client, like any user tool) ----
    def local(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        local_exec(self.db, sql, args)

    def insert(self, values: dict[str, Any], code: str = "lab") -> str:
        conn = sqlite3.connect(self.db)
        try:
            cols = ", ".join(f'"{c}"' for c in values)
            conn.execute(
                f'INSERT INTO "{code}" ({cols}) VALUES ({", ".join("?" for _ in values)})',
                list(values.values()),
            )
            conn.commit()
            return str(
                conn.execute(f'SELECT key FROM "{code}" WHERE rowid = last_insert_rowid()').fetchone()[0]
            )
        finally:
            conn.close()

    def rows(self, code: str = "lab", where: str = "1") -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.db)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(f'SELECT * FROM "{code}" WHERE {where} ORDER BY id')]
        finally:
            conn.close()

    def row(self, item_id: int, code: str = "lab") -> dict[str, Any]:
        [found] = self.rows(code, f"id = {int(item_id)}")
        return found


@contextmanager
def lab_env(tmp: Path, templates: list[Any] | None = None, name: str = "lab.db") -> Iterator[Lab]:
    """The lab (or given) templates on a fresh in-process emulator served on `responses`."""
    emu = Emulator(limits="off", clock="virtual")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        url = emu.register(rsps)
        lab = Lab(emu, url, tmp / name, templates or [LAB])
        try:
            yield lab
        finally:
            lab.store.close()


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
