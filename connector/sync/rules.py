"""Stage rules at work: after the pull, keep synced processes and their parent deals in step.

`after_pull` is the one hook `sync()` calls. It copies the linked deals, companies and contacts into
the store (read-only, for reports), then runs every `[[rules]]` of the synced templates once.

Guarantees (docs/templates.md "Stage rules"):
- once per transition: each firing is keyed (portal, rule, entity, transition) in `_rule_firings`;
  a key that is done or skipped never fires again, so moving a deal away and back creates nothing;
- crash safety: the key is written `pending` and committed before the portal write; a created child
  carries the xmlId `b24sync:rule:<rule>:<parent id>`, so after a kill or a lost response the next run
  finds the child by xmlId instead of creating a second one;
- no loops: a run evaluates each rule once over what the portal showed at its start, every key fires
  at most once, and moves go forward only (unless a rule says `backwards = true`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from connector.crm import deals as dealmod
from connector.crm.items import (
    WRITE_OUTCOME_UNKNOWN,
    ProcessMap,
    WriteOp,
    find_by_xml_ids,
    list_items,
    to_date_text,
    write_items,
)
from connector.crm.naming import short_code
from connector.rest.errors import B24Error
from connector.store import entities
from connector.store import rows as table_rows

if TYPE_CHECKING:
    from connector.crm.schema import PortalFunnel, PortalStage
    from connector.rest import Client
    from connector.store import Store
    from connector.sync.report import SyncReport
    from connector.templates import Template
    from connector.templates.rules import Rule

DEAL = dealmod.DEAL
BATCH = 50  # parents per batch of creates
# an error answer, or no answer: the rule's optional extras (linked copies, product rows) are skipped
PORTAL_ERRORS: tuple[type[BaseException], ...] = (B24Error, *WRITE_OUTCOME_UNKNOWN)
_DEAL_SELECT = [
    "title",
    "categoryId",
    "stageId",
    "opportunity",
    "currencyId",
    "companyId",
    "contactIds",
    "assignedById",
    "begindate",
    "closedate",
    "createdTime",
    "updatedTime",
]
_ROW_KEYS = (
    "productId",
    "productName",
    "price",
    "quantity",
    "discountTypeId",
    "discountRate",
    "discountSum",
    "taxRate",
    "taxIncluded",
    "measureCode",
    "measureName",
    "sort",
)


class RuleFiring(BaseModel):
    """What one rule did (or, in a dry run, would do) for one entity in this run."""

    rule: str
    process: str
    entity: str  # "deal:42" or "<process>:7"
    transition: str
    action: str
    status: str  # done | skipped | failed | pending | would-fire | would-skip
    result: str = ""
    child_id: int | None = None


def _needs(rule: Rule, name: str) -> str:
    """A key the rule's kind requires (the template check makes sure it is there); KeyError if not."""
    value = getattr(rule, name)
    if not isinstance(value, str):
        raise KeyError(f"a {rule.kind} rule needs {name!r}")
    return value


def xml_id_for(rule: str, parent_id: int) -> str:
    """The sync key of the child a create_child rule makes for one parent."""
    return f"b24sync:rule:{rule}:{parent_id}"


def after_pull(
    client: Client,
    store: Store,
    templates: list[Template],
    maps: dict[str, ProcessMap],
    report: SyncReport,
    *,
    portal: str,
) -> None:
    """The sync hook: the rules (their firings go to the report), then linked entities into the store."""
    if any(getattr(t, "rules", None) for t in templates):
        engine = RuleEngine(client, store, portal=portal, warn=report.warnings.append)
        report.firings.extend(f.model_dump() for f in engine.run(templates, maps))
    try:  # after the rules, so the stored deals show the stages the rules moved them to
        pull_linked(client, store, templates, maps, portal=portal)
    except PORTAL_ERRORS as exc:
        report.warnings.append(f"linked deals/companies/contacts not refreshed: {exc}")


class RuleEngine:
    """Runs the rules of some templates once against one portal."""

    def __init__(
        self,
        client: Client,
        store: Store,
        *,
        portal: str,
        dry_run: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.client, self.store, self.portal, self.dry_run = client, store, portal, dry_run
        self.warn = warn or (lambda _msg: None)
        self._funnels: list[PortalFunnel] | None = None
        self._fresh = False
        self.firings: list[RuleFiring] = []

    @property
    def funnels(self) -> list[PortalFunnel]:
        if self._funnels is None:
            self._funnels = dealmod.cached_deal_funnels(self.client, self.store, self.portal)
        return self._funnels

    def _resolve(self, funnel_name: str, stage_code: str) -> tuple[PortalFunnel, PortalStage]:
        """A deal funnel and stage by name/code; a miss re-reads the portal's funnels once per run."""
        try:
            funnel = dealmod.find_funnel(self.funnels, funnel_name)
            return funnel, dealmod.find_stage(funnel, stage_code)
        except dealmod.FunnelError:
            if self._fresh:
                raise
            self._funnels = dealmod.cached_deal_funnels(self.client, self.store, self.portal, refresh=True)
            self._fresh = True
            funnel = dealmod.find_funnel(self.funnels, funnel_name)
            return funnel, dealmod.find_stage(funnel, stage_code)

    def run(self, templates: list[Template], maps: dict[str, ProcessMap]) -> list[RuleFiring]:
        """Every rule of every template, in file order; a rule that cannot resolve is a warning."""
        for t in templates:
            pmap = maps.get(t.code)
            if pmap is None:
                continue
            for rule in t.rules:
                try:
                    if rule.parent != "deal" or DEAL not in pmap.parents.values():
                        raise dealmod.FunnelError(f"process {t.code!r} has no deal parent on this portal")
                    handler = {
                        "create_child": self._create_child,
                        "move_parent": self._move_parent,
                        "children_done": self._children_done,
                    }[rule.kind]
                    handler(t, pmap, rule)
                except (dealmod.FunnelError, KeyError) as exc:
                    self.warn(f"rule {t.code}.{rule.code} skipped: {exc}")
        return self.firings

    # -- helpers ---------------------------------------------------------------------------------
    def _child_funnel(self, t: Template, pmap: ProcessMap, rule: Rule) -> tuple[str, int | None]:
        code = rule.child_funnel or pmap.default_funnel or next(iter(pmap.stages), None)
        if code is None:
            raise dealmod.FunnelError(f"process {t.code!r} has no funnel on this portal")
        return code, pmap.funnels.get(code)

    def _record(self, firing: RuleFiring, etid: int, entity_id: int) -> None:
        self.firings.append(firing)
        if not self.dry_run and firing.status != "pending":
            entities.finish_firing(
                self.store,
                self.portal,
                firing.rule,
                etid,
                entity_id,
                firing.transition,
                firing.status,
                firing.result,
                firing.child_id,
            )

    def _open(self, rule_key: str, etid: int, transition: str) -> tuple[set[int], list[int]]:
        """Entity ids whose firing is settled (done/skipped), and those left unfinished (pending after a
        kill or a lost answer, failed): these are completed even if the entity has moved on since."""
        states = entities.firing_states(self.store, self.portal, rule_key, etid, transition)
        settled = {i for i, f in states.items() if f.status in ("done", "skipped")}
        return settled, sorted(i for i in states if i not in settled)

    # -- create_child ----------------------------------------------------------------------------
    def _create_child(self, t: Template, pmap: ProcessMap, rule: Rule) -> None:
        funnel, stage = self._resolve(rule.parent_funnel, _needs(rule, "parent_stage"))
        key = f"{t.code}.{rule.code}"
        params = {
            "entityTypeId": DEAL,
            "filter": {"categoryId": funnel.id, "stageId": stage.status_id},
            "select": ["id", *_DEAL_SELECT],
        }
        parents = list(self.client.iter_list("crm.item.list", params, rows_key="items"))
        settled, unfinished = self._open(key, DEAL, stage.code)
        seen = {int(d["id"]) for d in parents}
        parents += dealmod.items_by_id(
            self.client, DEAL, [i for i in unfinished if i not in seen], _DEAL_SELECT
        ).values()
        todo = [d for d in parents if int(d["id"]) not in settled]
        if not todo:
            return
        action = f"create {t.code}"
        if self.dry_run:
            for d in todo:
                self.firings.append(
                    RuleFiring(
                        rule=key,
                        process=t.code,
                        entity=f"deal:{d['id']}",
                        transition=stage.code,
                        action=action,
                        status="would-fire",
                    )
                )
            return
        child_funnel, category = self._child_funnel(t, pmap, rule)
        first = self._first_stage(t, pmap, child_funnel, rule.child_stage)
        for start in range(0, len(todo), BATCH):
            chunk = todo[start : start + BATCH]
            existing = find_by_xml_ids(self.client, pmap, [xml_id_for(key, int(d["id"])) for d in chunk])
            fields = {int(d["id"]): self._child_fields(rule, pmap, d, key, category, first) for d in chunk}
            self._create_chunk(t, pmap, rule, key, stage.code, fields, existing)

    def _create_chunk(
        self,
        t: Template,
        pmap: ProcessMap,
        rule: Rule,
        key: str,
        transition: str,
        fields: dict[int, dict[str, Any]],
        existing: dict[str, dict[str, Any]],
    ) -> None:
        """Create the children of up to 50 parents in one batch (those not found by xmlId), then copy
        product rows in two more batches; every firing is pending before the batch is sent."""
        firings = {
            deal_id: RuleFiring(
                rule=key,
                process=t.code,
                entity=f"deal:{deal_id}",
                transition=transition,
                action=f"create {t.code}",
                status="done",
            )
            for deal_id in fields
        }
        for deal_id in fields:
            entities.begin_firing(self.store, self.portal, key, DEAL, deal_id, transition)
        children = {d: existing[xml_id_for(key, d)] for d in fields if xml_id_for(key, d) in existing}
        found = set(children)
        ops = [WriteOp(op="add", ref=str(d), fields=f) for d, f in fields.items() if d not in children]
        try:
            results = write_items(self.client, pmap, ops)
        except WRITE_OUTCOME_UNKNOWN as exc:
            for op in ops:  # created or not: the next run looks them up by xmlId
                firing = firings.pop(int(op.ref))
                firing.status, firing.result = "pending", f"answer lost ({exc}); checked again next run"
                self.firings.append(firing)
            results = []
        for res in results:
            deal_id = int(res.ref)
            if res.item:
                children[deal_id] = res.item
            else:
                firing = firings.pop(deal_id)
                firing.status, firing.result = "failed", res.error or "crm.item.add returned no item"
                self._record(firing, DEAL, deal_id)
        copied: dict[int, int] = {}
        if "products" in rule.copy_fields and children:
            try:
                copied = self._copy_products(pmap.entity_type_id, children, found)
            except PORTAL_ERRORS as exc:
                self.warn(f"rule {key}: product rows not copied: {exc}")
        for deal_id, firing in firings.items():
            child_id = int(children[deal_id]["id"])
            firing.child_id = child_id
            firing.result = f"{'found' if deal_id in found else 'created'} {t.code}:{child_id}"
            if copied.get(deal_id):
                firing.result += f" with {copied[deal_id]} product rows"
            self._record(firing, DEAL, deal_id)

    def _first_stage(self, t: Template, pmap: ProcessMap, funnel_code: str, code: str | None) -> str | None:
        stages = pmap.stages.get(funnel_code) or {}
        if code is None:
            tf = next((f for f in t.funnels if f.code == funnel_code), None)
            code = tf.stages[0].code if tf and tf.stages else next(iter(stages), None)
        return stages.get(code) if code else None

    def _child_fields(
        self,
        rule: Rule,
        pmap: ProcessMap,
        deal: dict[str, Any],
        key: str,
        category: int | None,
        stage: str | None,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "xmlId": xml_id_for(key, int(deal["id"])),
            f"parentId{DEAL}": int(deal["id"]),
        }
        if category is not None:
            fields["categoryId"] = category
        if stage is not None:
            fields["stageId"] = stage
        copy = set(rule.copy_fields)
        if "title" in copy:
            fields["title"] = rule.child_title(str(deal.get("title") or ""))
        if "client" in copy and pmap.clients:
            fields["companyId"] = deal.get("companyId") or 0
            fields["contactIds"] = list(deal.get("contactIds") or [])
        if "amount" in copy:
            fields.update(
                opportunity=deal.get("opportunity") or 0,
                currencyId=deal.get("currencyId"),
                isManualOpportunity="Y",
            )
        if "responsible" in copy and deal.get("assignedById"):
            fields["assignedById"] = deal["assignedById"]
        return fields

    def _copy_products(
        self, child_etid: int, children: dict[int, dict[str, Any]], found: set[int]
    ) -> dict[int, int]:
        """Copy each deal's product rows to its child (a child found from an earlier run only when it
        has none yet); the number of rows copied per deal. Two batches per 50 parents."""
        owner = short_code(child_etid)
        reads: dict[str, tuple[str, dict[str, Any]]] = {}
        for deal_id, child in children.items():
            reads[f"d{deal_id}"] = (
                "crm.item.productrow.list",
                {"filter": {"=ownerType": "D", "=ownerId": deal_id}},
            )
            if deal_id in found:
                flt = {"=ownerType": owner, "=ownerId": int(child["id"])}
                reads[f"c{deal_id}"] = ("crm.item.productrow.list", {"filter": flt})
        listed = self.client.batch_all(reads).results
        sets: dict[str, tuple[str, dict[str, Any]]] = {}
        counts: dict[int, int] = {}
        for deal_id, child in children.items():
            rows = (listed.get(f"d{deal_id}") or {}).get("productRows") or []
            has = (listed.get(f"c{deal_id}") or {}).get("productRows") if deal_id in found else None
            if not rows or has:
                continue
            wanted = [{k: r[k] for k in _ROW_KEYS if r.get(k) is not None} for r in rows]
            params = {"ownerType": owner, "ownerId": int(child["id"]), "productRows": wanted}
            sets[f"s{deal_id}"] = ("crm.item.productrow.set", params)
            counts[deal_id] = len(wanted)
        if sets:
            done = self.client.batch_all(sets)
            for label, err in done.errors.items():
                counts.pop(int(label[1:]), None)
                self.warn(f"product rows of deal {label[1:]} not copied: {err}")
        return counts

    # -- moves of the parent ---------------------------------------------------------------------
    def _move_parent(self, t: Template, pmap: ProcessMap, rule: Rule) -> None:
        child_funnel, _ = self._child_funnel(t, pmap, rule)
        child_stage = _needs(rule, "child_stage")
        sid = pmap.stages[child_funnel][child_stage]
        key = f"{t.code}.{rule.code}"
        settled, unfinished = self._open(key, pmap.entity_type_id, child_stage)
        select = ["id", f"parentId{DEAL}"]
        found = list(list_items(self.client, pmap, filter={"stageId": sid}, select=select))
        seen = {int(c["id"]) for c in found}
        if [i for i in unfinished if i not in seen]:
            found += list(
                list_items(
                    self.client, pmap, filter={"@id": [i for i in unfinished if i not in seen]}, select=select
                )
            )
        children = [c for c in found if int(c["id"]) not in settled and c.get(f"parentId{DEAL}")]
        self._move(
            t,
            rule,
            key,
            pmap.entity_type_id,
            child_stage,
            [(int(c["id"]), int(c[f"parentId{DEAL}"])) for c in children],
            f"{t.code}:",
        )

    def _children_done(self, t: Template, pmap: ProcessMap, rule: Rule) -> None:
        key = f"{t.code}.{rule.code}"
        semantics = {
            sid: tf.stage(code).semantics
            for tf in t.funnels
            for code, sid in (pmap.stages.get(tf.code) or {}).items()
            if any(s.code == code for s in tf.stages)
        }
        by_parent: dict[int, list[str]] = {}
        for c in list_items(
            self.client, pmap, filter={f">parentId{DEAL}": 0}, select=["id", f"parentId{DEAL}", "stageId"]
        ):
            by_parent.setdefault(int(c[f"parentId{DEAL}"]), []).append(
                semantics.get(str(c.get("stageId")), "process")
            )
        when = _needs(rule, "when")
        settled, unfinished = self._open(key, DEAL, when)
        ready = [
            p
            for p, sems in by_parent.items()
            if p not in settled
            and (all(s == "success" for s in sems) if when == "all_success" else "failure" in sems)
        ]
        ready += [p for p in unfinished if p not in ready]  # a move whose answer was lost: finish it
        self._move(t, rule, key, DEAL, when, [(p, p) for p in ready], "deal:")

    def _move(
        self,
        t: Template,
        rule: Rule,
        key: str,
        etid: int,
        transition: str,
        pairs: list[tuple[int, int]],
        prefix: str,
    ) -> None:
        """Move the parent of each (entity, parent) pair to the rule's stage, or record why not."""
        if not pairs:
            return
        funnel, target = self._resolve(rule.parent_funnel, _needs(rule, "parent_stage"))
        deals = dealmod.items_by_id(self.client, DEAL, [p for _, p in pairs], ["categoryId", "stageId"])
        known = {s.status_id for s in funnel.stages}
        stale = [d for d in deals.values() if int(d.get("categoryId") or 0) == funnel.id]
        if not self._fresh and any(d.get("stageId") not in known for d in stale):
            # a stage added on the portal since the funnels were cached: read them again (once per run)
            self._funnels, self._fresh = None, True
            self._funnels = dealmod.cached_deal_funnels(self.client, self.store, self.portal, refresh=True)
            funnel, target = self._resolve(rule.parent_funnel, _needs(rule, "parent_stage"))
        action = f"move deal to {target.code}"
        for entity_id, parent_id in pairs:
            deal = deals.get(parent_id)
            verdict = self._verdict(deal, funnel, target, rule)
            firing = RuleFiring(
                rule=key,
                process=t.code,
                entity=f"{prefix}{entity_id}",
                transition=transition,
                action=action,
                status="done",
                result=f"deal:{parent_id} {verdict}",
            )
            if self.dry_run:
                firing.status = "would-fire" if verdict == "moved" else "would-skip"
                self.firings.append(firing)
                continue
            if verdict != "moved":  # "already there" included: the rule holds, nothing to write
                firing.status = "skipped"
                self._record(firing, etid, entity_id)
                continue
            entities.begin_firing(self.store, self.portal, key, etid, entity_id, transition)
            try:
                self.client.call(
                    "crm.item.update",
                    {"entityTypeId": DEAL, "id": parent_id, "fields": {"stageId": target.status_id}},
                )
            except WRITE_OUTCOME_UNKNOWN as exc:
                firing.status, firing.result = "pending", f"answer lost ({exc}); checked again next run"
                self.firings.append(firing)
                continue
            except B24Error as exc:
                firing.status, firing.result = "failed", str(exc)
                self._record(firing, etid, entity_id)
                continue
            if deal is not None:
                deal["stageId"] = target.status_id  # a later child of the same deal sees the move
            self._record(firing, etid, entity_id)

    @staticmethod
    def _verdict(deal: dict[str, Any] | None, funnel: PortalFunnel, target: PortalStage, rule: Rule) -> str:
        """`moved`, `already there`, or why the parent is left alone."""
        if deal is None:
            return "not found"
        if int(deal.get("categoryId") or 0) != funnel.id:
            return "is in another funnel"
        current = next((s for s in funnel.stages if s.status_id == deal.get("stageId")), None)
        if current is None:
            return f"is at an unknown stage {deal.get('stageId')!r}"
        if current.status_id == target.status_id:
            return "already there"
        if current.semantics != "process" and not rule.reopen:
            return f"is closed ({current.code})"
        if current.sort > target.sort and not rule.backwards:
            return f"is already at a later stage ({current.code})"
        return "moved"


# -- linked entities ---------------------------------------------------------------------------------
def pull_linked(
    client: Client, store: Store, templates: list[Template], maps: dict[str, ProcessMap], *, portal: str
) -> int:
    """Copy the parent deals of synced items and the companies/contacts they name into the store."""
    deal_ids: set[int] = set()
    company_ids: set[int] = set()
    contact_ids: set[int] = set()
    for t in templates:
        pmap = maps.get(t.code)
        if pmap is None:
            continue
        cols = set(table_rows.table_columns(store.conn, t.code))
        for target, etid in pmap.parents.items():
            if etid == DEAL and f"parent_{target}" in cols:
                deal_ids |= _ints(store, t.code, f"parent_{target}")
        if "company_id" in cols:
            company_ids |= _ints(store, t.code, "company_id")
        if "contact_ids" in cols:
            for raw in table_rows.distinct_values(store.conn, t.code, "contact_ids"):
                contact_ids |= {int(x) for x in _json(raw)}
    n = _pull_item_dates(client, store, templates, maps, portal)
    if not (deal_ids or company_ids or contact_ids):
        return n
    if deal_ids:
        found = dealmod.items_by_id(client, DEAL, deal_ids, _DEAL_SELECT)
        funnels = {f.id: f for f in dealmod.cached_deal_funnels(client, store, portal)}
        rows = [deal_row(d, funnels) for d in found.values()]
        company_ids |= {r["company_id"] for r in rows if r["company_id"]}
        n += entities.save_deals(store, portal, rows)
    if company_ids:
        found = dealmod.items_by_id(client, 4, company_ids, ["title"])
        n += entities.save_companies(
            store, portal, [{"id": i, "title": c.get("title")} for i, c in found.items()]
        )
    if contact_ids:
        found = dealmod.items_by_id(client, 3, contact_ids, ["name", "lastName", "companyId"])
        n += entities.save_contacts(
            store,
            portal,
            [
                {
                    "id": i,
                    "name": " ".join(x for x in (c.get("name"), c.get("lastName")) if x) or None,
                    "company_id": c.get("companyId") or None,
                }
                for i, c in found.items()
            ],
        )
    return n


def _pull_item_dates(
    client: Client, store: Store, templates: list[Template], maps: dict[str, ProcessMap], portal: str
) -> int:
    """Begin/close dates (validity of a contract, planned dates of an order) of processes that have
    them; sync does not keep them in the process tables, reports need them."""
    n = 0
    for t in templates:
        pmap = maps.get(t.code)
        if pmap is None or not t.flags.get("isBeginCloseDatesEnabled"):
            continue
        items = list_items(client, pmap, select=["id", "begindate", "closedate"])
        rows = [
            (int(i["id"]), to_date_text(i.get("begindate")), to_date_text(i.get("closedate"))) for i in items
        ]
        n += entities.save_item_dates(store, portal, t.code, rows)
    return n


def deal_row(d: dict[str, Any], funnels: dict[int | None, PortalFunnel]) -> dict[str, Any]:
    """A crm.item deal as a `_deals` row, with its funnel name and stage label."""
    funnel = funnels.get(int(d.get("categoryId") or 0))
    stage = next((s for s in funnel.stages if s.status_id == d.get("stageId")), None) if funnel else None
    contacts = list(d.get("contactIds") or [])
    return {
        "id": int(d["id"]),
        "title": d.get("title"),
        "funnel_id": int(d.get("categoryId") or 0),
        "funnel": funnel.name if funnel else None,
        "stage_id": d.get("stageId"),
        "stage": stage.code if stage else d.get("stageId"),
        "stage_label": stage.name if stage else None,
        "stage_semantics": stage.semantics if stage else None,
        "stage_sort": stage.sort if stage else None,
        "amount": d.get("opportunity"),
        "currency": d.get("currencyId"),
        "company_id": d.get("companyId") or None,
        "contact_id": contacts[0] if contacts else None,
        "assigned_by_id": d.get("assignedById"),
        "begindate": d.get("begindate"),
        "closedate": d.get("closedate"),
        "created_time": d.get("createdTime"),
        "updated_time": d.get("updatedTime"),
    }


def _ints(store: Store, tbl: str, col: str) -> set[int]:
    values = table_rows.distinct_values(store.conn, tbl, col, live=True)
    return {int(v) for v in values if str(v).lstrip("-").isdigit() and int(v) > 0}


def _json(raw: Any) -> list[Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    return [v for v in value if str(v).isdigit()] if isinstance(value, list) else []


def preview(client: Client, store: Store, templates: list[Template], *, portal: str) -> list[RuleFiring]:
    """`sync --dry-run`: what the rules would do now, with no portal write and no firing recorded."""
    from connector.sync.engine import SyncError, resolve_maps, stored_templates

    templates = templates or stored_templates(store)
    if not templates:
        raise SyncError("no process templates: pass --template FILE (once; it is then kept in the store)")
    for t in templates:
        store.ensure_process(t)
    maps = resolve_maps(client, store, templates, portal)
    return RuleEngine(client, store, portal=portal, dry_run=True).run(templates, maps)
