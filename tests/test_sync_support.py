"""Helpers for the sync tests: a minimal process setup on the emulator, sample values, transports."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from connector.constants import SYSTEM_ENTITY_TYPES
from connector.crm.naming import uf_name, yn
from connector.sync.maps import stage_roles
from connector.templates import FLAG_NAMES, Field, RelationRef, Template

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


def setup_processes(emu: Any, templates: list[Any]) -> dict[str, int]:
    """Create the templates' types, fields, funnels and stages on the emulator (in-process calls).

    Template stages occupying the system NEW/SUCCESS/FAIL stages are not added: sync maps them.
    Returns process code -> entityTypeId.
    """
    etids: dict[str, int] = dict(SYSTEM_ENTITY_TYPES)

    def resolve(code: str) -> int:
        return etids[code]

    type_ids: dict[str, int] = {}
    for t in templates:  # parents first (callers pass them in that order)
        res = emu.call("crm.type.add", {"fields": _type_fields(t, etids)})
        ptype = res["result"]["type"]
        etids[t.code] = int(ptype["entityTypeId"])
        type_ids[t.code] = int(ptype["id"])
    for t in templates:
        type_id = type_ids[t.code]
        for f in t.fields:
            payload = _userfield(t, f, type_id, resolve)
            out = emu.call("userfieldconfig.add", {"moduleId": "crm", "field": payload})
            assert "error" not in out, out
        cats = emu.call("crm.category.list", {"entityTypeId": etids[t.code]})["result"]["categories"]
        default = next(c for c in cats if c.get("isDefault") in ("Y", True))
        for fu in t.funnels:
            if fu.default:
                cid = int(default["id"])
                emu.call(
                    "crm.category.update",
                    {
                        "entityTypeId": etids[t.code],
                        "id": cid,
                        "fields": {"name": fu.name.get("ru", fu.code)},
                    },
                )
            else:
                out = emu.call(
                    "crm.category.add",
                    {"entityTypeId": etids[t.code], "fields": {"name": fu.name.get("ru", fu.code)}},
                )
                cid = int(out["result"]["category"]["id"])
            roles = stage_roles(fu)
            for n, st in enumerate(fu.stages):
                if st.code in roles or st.code in ("NEW", "SUCCESS", "FAIL", "PREPARATION", "CLIENT"):
                    continue
                out = emu.call(
                    "crm.status.add",
                    {
                        "fields": {
                            "ENTITY_ID": f"DYNAMIC_{etids[t.code]}_STAGE_{cid}",
                            "STATUS_ID": st.code,
                            "NAME": st.name.get("ru", st.code) if isinstance(st.name, dict) else str(st.name),
                            "SORT": 15 + n,
                            **({"SEMANTICS": "F"} if st.semantics == "failure" else {}),
                        }
                    },
                )
                assert "error" not in out, out
    return {k: v for k, v in etids.items() if k not in SYSTEM_ENTITY_TYPES}


def _type_fields(t: Template, etids: dict[str, int]) -> dict[str, Any]:
    """`fields` of crm.type.add; relations and linkedUserFields take "true"/"false" on write."""
    def rel(r: RelationRef) -> dict[str, Any]:
        return {"entityTypeId": etids[r.target], "isChildrenListEnabled": _tf(r.children_list)}

    return {
        "title": t.title_text, "code": t.code, **{name: yn(t.flags[name]) for name in FLAG_NAMES},
        "relations": {"parent": [rel(r) for r in t.relations.parents],
                      "child": [rel(r) for r in t.relations.children]},
        "linkedUserFields": {k: _tf(v) for k, v in t.linked_user_fields.items()},
    }


def _userfield(t: Template, f: Field, type_id: int, resolve: Callable[[str], int]) -> dict[str, Any]:
    """`field` of userfieldconfig.add (camelCase keys) for one template field."""
    payload: dict[str, Any] = {
        "entityId": f"CRM_{type_id}", "fieldName": uf_name(type_id, f.code), "userTypeId": f.type,
        "xmlId": f.xml_id, "sort": f.sort, "multiple": yn(f.multiple), "mandatory": yn(f.required),
        "showFilter": f.show_filter_code, "showInList": yn(f.show_in_list), "editInList": "Y",
        "isSearchable": "N", "editFormLabel": dict(f.label), "listColumnLabel": dict(f.label),
        "listFilterLabel": dict(f.label), "helpMessage": dict(f.help), "settings": f.settings(resolve),
    }
    if f.type == "enumeration":
        payload["enum"] = [{"value": t.text(o.label), "xmlId": o.code, "sort": o.sort, "def": yn(o.default)}
                           for o in f.options]
    return payload


def _tf(value: bool) -> str:
    return "true" if value else "false"


def sample_value(field: Any, n: int) -> Any:
    """A local column value for one field (store form), varied by n."""
    t = field.type
    if t in ("string", "address"):
        v: Any = f"значение {field.code} {n}"
    elif t == "url":
        v = f"https://example.ru/{field.code}/{n}"
    elif t in ("integer", "employee"):
        v = 100 + n
    elif t == "double":
        v = 1.5 + n
    elif t == "boolean":
        v = n % 2
    elif t == "date":
        v = f"2026-03-{(n % 27) + 1:02d}"
    elif t == "datetime":
        v = f"2026-03-{(n % 27) + 1:02d}T10:{n % 60:02d}:00Z"
    elif t == "enumeration":
        v = field.options[n % len(field.options)].code
    elif t == "crm":
        v = f"deal:{n + 1}"
    else:
        return None
    if field.multiple:
        return json.dumps([v], ensure_ascii=False)
    return v


def row_values(template: Any, n: int) -> dict[str, Any]:
    """Local values for every writable field of a template (money split into two columns)."""
    out: dict[str, Any] = {"title": f"{template.code} #{n}"}
    for f in template.fields:
        if f.type == "money":
            out[f.code] = 1000.0 + n
            out[f"{f.code}_currency"] = "RUB"
        elif f.type != "file":
            out[f.code] = sample_value(f, n)
    return out


def local_insert(db: Path, tbl: str, values: dict[str, Any]) -> str:
    """INSERT through plain sqlite3 (like any user tool); returns the generated key."""
    conn = sqlite3.connect(db)
    try:
        cols = ", ".join(f'"{c}"' for c in values)
        conn.execute(
            f'INSERT INTO "{tbl}" ({cols}) VALUES ({", ".join("?" for _ in values)})', list(values.values())
        )
        conn.commit()
        return str(conn.execute(f'SELECT key FROM "{tbl}" WHERE rowid = last_insert_rowid()').fetchone()[0])
    finally:
        conn.close()


def local_exec(db: Path, sql: str, args: tuple[Any, ...] = ()) -> None:
    """One write through plain sqlite3."""
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def local_rows(db: Path, tbl: str, where: str = "1") -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f'SELECT * FROM "{tbl}" WHERE {where} ORDER BY id')]
    finally:
        conn.close()


def portal_items(emu: Any, etid: int) -> list[dict[str, Any]]:
    """Every item of a type on the emulator (useOriginalUfNames=Y), paging through 50-row pages."""
    out: list[dict[str, Any]] = []
    last = 0
    while True:
        res = emu.call(
            "crm.item.list",
            {
                "entityTypeId": etid,
                "select": ["*", "UF_*"],
                "order": {"id": "ASC"},
                "filter": {">id": last},
                "start": -1,
                "useOriginalUfNames": "Y",
            },
        )
        items = res["result"]["items"]
        out.extend(items)
        if len(items) < 50:
            return out
        last = items[-1]["id"]


class Killed(BaseException):
    """Simulates SIGKILL after a request reached the server (not an Exception: nothing catches it)."""


class KillAfter(requests.Session):
    """A transport that lets the k-th request reach the server, then kills the run."""

    def __init__(self, k: int, exc: type[BaseException] = Killed) -> None:
        super().__init__()
        self.k, self.n, self.exc = k, 0, exc

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        resp = super().send(request, **kwargs)
        self.n += 1
        if self.n == self.k:
            raise self.exc(f"killed after request {self.k}")
        return resp


class DropResponse(requests.Session):
    """A transport that loses the response of the k-th request after the server applied it."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k, self.n = k, 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        resp = super().send(request, **kwargs)
        self.n += 1
        if self.n == self.k:
            raise requests.ConnectionError("connection reset after the request was sent")
        return resp
