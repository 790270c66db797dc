"""Deal funnels and system entities by code: a funnel by name ("default" = the default funnel), a
stage by code (`EXECUTING` -> `EXECUTING` in funnel 0, `C5:EXECUTING` in funnel 5); reads of deals,
companies and contacts by id.

https://apidocs.bitrix24.com/api-reference/crm/universal/category/crm-category-list.html
https://apidocs.bitrix24.com/api-reference/crm/status/crm-status-list.html
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from connector.crm.naming import from_yn
from connector.errors import InputError

if TYPE_CHECKING:  # the schema's pydantic models are imported when funnels are read
    from connector.crm.schema import PortalFunnel, PortalStage
    from connector.rest import Client

DEAL = 2
DEFAULT_FUNNEL = "default"
_SEMANTICS = {"S": "success", "F": "failure"}


class FunnelError(InputError, LookupError):
    """A deal funnel or stage a rule names that the portal does not have."""


def deal_funnels(client: Client) -> list[PortalFunnel]:
    """Every deal funnel of the portal with its stages (one crm.category.list + one crm.status.list each)."""
    from connector.crm.schema import PortalFunnel, PortalStage

    cats = client.call("crm.category.list", {"entityTypeId": DEAL}).result or {}
    out: list[PortalFunnel] = []
    for cat in cats.get("categories") or []:
        cid = int(cat["id"])
        entity = f"DEAL_STAGE_{cid}" if cid else "DEAL_STAGE"
        rows = client.call("crm.status.list", {"filter": {"ENTITY_ID": entity}}).result or []
        stages = [
            PortalStage(
                id=int(r["ID"]),
                status_id=str(r["STATUS_ID"]),
                code=str(r["STATUS_ID"]).rpartition(":")[2],
                name=str(r.get("NAME") or ""),
                sort=int(r.get("SORT") or 0),
                color=str(r.get("COLOR") or ""),
                semantics=_SEMANTICS.get(str(r.get("SEMANTICS") or ""), "process"),  # type: ignore[arg-type]
            )
            for r in rows
        ]
        stages.sort(key=lambda s: (s.sort, s.id))
        out.append(
            PortalFunnel(
                id=cid,
                name=str(cat.get("name") or ""),
                is_default=from_yn(cat.get("isDefault")),
                stages=stages,
            )
        )
    return out


class MetaStore(Protocol):
    """The part of `connector.store.Store` this module uses (crm sits below the store)."""

    def meta_get(self, key: str) -> str | None: ...

    def meta_set(self, key: str, value: str) -> None: ...


def cached_deal_funnels(
    client: Client, store: MetaStore | None, portal: str, *, refresh: bool = False
) -> list[PortalFunnel]:
    """The portal's deal funnels, kept in the store's `_meta` so a sync makes no schema reads;
    re-read when asked (a stage a rule names is missing, `sync --full`); without a store, always read."""
    from connector.crm.schema import PortalFunnel

    key = f"rules.deal_funnels.{portal}"
    raw = None if refresh or store is None else store.meta_get(key)
    if raw:
        try:
            return [PortalFunnel.model_validate(f) for f in json.loads(raw)]
        except (ValueError, TypeError):
            pass
    funnels = deal_funnels(client)
    if store is not None:
        store.meta_set(key, json.dumps([f.model_dump(mode="json") for f in funnels], ensure_ascii=False))
    return funnels


def find_funnel(funnels: list[PortalFunnel], name: str) -> PortalFunnel:
    """The funnel a rule names: "default" = the portal's default deal funnel, else by name."""
    for f in funnels:
        if (name == DEFAULT_FUNNEL and f.is_default) or f.name == name:
            return f
    names = ", ".join(repr(f.name) for f in funnels) or "none"
    raise FunnelError(f"the portal has no deal funnel {name!r}; use 'default' or one of: {names}")


def find_stage(funnel: PortalFunnel, code: str) -> PortalStage:
    """A stage of `funnel` by code."""
    stage = funnel.stage(code)
    if stage is None:
        codes = ", ".join(s.code for s in funnel.stages)
        raise FunnelError(f"deal funnel {funnel.name!r} has no stage {code!r}; stages: {codes}")
    return stage


def items_by_id(
    client: Client, entity_type_id: int, ids: Iterable[int], select: list[str]
) -> dict[int, dict[str, Any]]:
    """Items of one type by id (50 ids per crm.item.list page)."""
    wanted = sorted({int(i) for i in ids if i})
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(wanted), 50):
        chunk = wanted[start : start + 50]
        params = {"entityTypeId": entity_type_id, "filter": {"@id": chunk}, "select": ["id", *select]}
        for item in client.iter_list("crm.item.list", params, rows_key="items"):
            out[int(item["id"])] = item
    return out
