"""System CRM entities as `crm.item.*` types: leads (1), deals (2), contacts (3), companies (4).

They are installed lazily, on the first call that names one (so a portal that never meets a deal
keeps the exact stage ids and counts it had before): the types with their own field sets, the deal
default funnel 0 with its `DEAL_STAGE` stages, and the lead `STATUS` directory. Deal funnels added
with `crm.category.add` get `DEAL_STAGE_{id}` stages whose ids are prefixed `C{id}:`.
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError
from .state import Category, PortalState, SmartType, Stage

LEAD, DEAL, CONTACT, COMPANY = 1, 2, 3, 4
SYSTEM_ETIDS = (LEAD, DEAL, CONTACT, COMPANY)

# bitrix24-rest.md §1 "System CRM types": Lead 1, Deal 2, Contact 3, Company 4
_TITLES = {LEAD: "Lead", DEAL: "Deal", CONTACT: "Contact", COMPANY: "Company"}
# Which item-field groups each type has. crm.item.add.json (a deal): begindate/closedate, companyId,
# contactIds, opportunity/currency, sourceId, observers; crm.item.get.json (a lead): source, money,
# observers, contactIds. Contacts and companies: the references show no example; we keep the
# client-free minimum (no money, no stages) as the stricter choice.
_FLAGS: dict[int, dict[str, bool]] = {
    LEAD: {
        "isStagesEnabled": True,
        "isClientEnabled": True,
        "isLinkWithProductsEnabled": True,
        "isSourceEnabled": True,
        "isObserversEnabled": True,
    },
    DEAL: {
        "isCategoriesEnabled": True,
        "isStagesEnabled": True,
        "isBeginCloseDatesEnabled": True,
        "isClientEnabled": True,
        "isLinkWithProductsEnabled": True,
        "isSourceEnabled": True,
        "isObserversEnabled": True,
    },
    CONTACT: {"isSourceEnabled": True, "isObserversEnabled": True},
    COMPANY: {"isObserversEnabled": True},
}
# Own fields beyond the shared ones: (camel, UPPER, REST type, value kind, title, read-only).
# Deal: crm.item.add.json; lead: crm.item.get.json; contact/company: the lead's person fields
# (crm.item.get.json) and `companyType`/`industry`/`revenue`/`employees` (the references are silent
# on contact/company examples; the field names are the UPPER columns of their legacy methods).
OwnField = tuple[str, str, str, str, str, bool]
_OWN: dict[int, tuple[OwnField, ...]] = {
    LEAD: (
        ("name", "NAME", "string", "str", "Name", False),
        ("lastName", "LAST_NAME", "string", "str", "Last name", False),
        ("secondName", "SECOND_NAME", "string", "str", "Second name", False),
        ("companyTitle", "COMPANY_TITLE", "string", "str", "Company name", False),
        ("post", "POST", "string", "str", "Position", False),
        ("comments", "COMMENTS", "text", "str", "Comment", False),
        ("statusDescription", "STATUS_DESCRIPTION", "text", "str", "Status information", False),
        ("stageSemanticId", "STAGE_SEMANTIC_ID", "string", "str", "Status group", True),
    ),
    DEAL: (
        ("typeId", "TYPE_ID", "crm_status", "str", "Type", False),
        ("probability", "PROBABILITY", "integer", "int", "Probability", False),
        ("comments", "COMMENTS", "text", "str", "Comment", False),
        ("closed", "CLOSED", "boolean", "bool", "Closed", True),
        ("stageSemanticId", "STAGE_SEMANTIC_ID", "string", "str", "Stage group", True),
        ("leadId", "LEAD_ID", "crm_lead", "int", "Lead", False),
        ("additionalInfo", "ADDITIONAL_INFO", "string", "str", "Additional information", False),
    ),
    CONTACT: (
        ("name", "NAME", "string", "str", "Name", False),
        ("lastName", "LAST_NAME", "string", "str", "Last name", False),
        ("secondName", "SECOND_NAME", "string", "str", "Second name", False),
        ("post", "POST", "string", "str", "Position", False),
        ("comments", "COMMENTS", "text", "str", "Comment", False),
        ("companyId", "COMPANY_ID", "crm_company", "int", "Company", False),
        ("typeId", "TYPE_ID", "crm_status", "str", "Contact type", False),
    ),
    COMPANY: (
        ("companyType", "COMPANY_TYPE", "crm_status", "str", "Company type", False),
        ("industry", "INDUSTRY", "crm_status", "str", "Industry", False),
        ("revenue", "REVENUE", "double", "float", "Annual revenue", False),
        ("currencyId", "CURRENCY_ID", "crm_currency", "str", "Currency", False),
        ("employees", "EMPLOYEES", "crm_status", "str", "Employees", False),
        ("comments", "COMMENTS", "text", "str", "Comment", False),
    ),
}
# Shared item fields a type does not have: the deal (crm.item.add.json) and lead (crm.item.get.json)
# examples show no xmlId, the lead none of categoryId/taxValue; contacts and companies have no
# stages or funnels here, and a contact has a name, not a title (references silent; stricter: no
# invented keys).
_DROPPED: dict[int, set[str]] = {
    CONTACT: {"TITLE", "XML_ID", "STAGE_ID", "PREVIOUS_STAGE_ID", "MOVED_TIME", "MOVED_BY", "CATEGORY_ID"},
    COMPANY: {"XML_ID", "STAGE_ID", "PREVIOUS_STAGE_ID", "MOVED_TIME", "MOVED_BY", "CATEGORY_ID"},
    LEAD: {"CATEGORY_ID", "XML_ID", "TAX_VALUE"},
    DEAL: {"XML_ID"},
}

# crm.status.list.deal.json: the default deal funnel, in order (code, NAME, NAME_INIT, sort, color,
# semantics, system)
DEAL_STAGES = (
    ("NEW", "New", "New", 10, "#39A8EF", None, True),
    ("PREPARATION", "Document preparation", "", 20, "#2FC6F6", None, False),
    ("PREPAYMENT_INVOICE", "Prepayment invoice", "", 30, "#55D0E0", None, False),
    ("EXECUTING", "In progress", "", 40, "#47E4C2", None, False),
    ("FINAL_INVOICE", "Final invoice", "", 50, "#FFA900", None, False),
    ("WON", "Deal successful", "Deal successful", 60, "#7BD500", "S", True),
    ("LOSE", "Deal failed", "Deal failed", 70, "#FF5752", "F", True),
    ("APOLOGY", "Failure reason analysis", "", 80, "#FF5752", "F", False),
)
# bitrix24-rest.md §8.1: leads use the `STATUS` directory. The references give no lead stage list;
# these are the stock lead statuses (process, then one success and one failure).
LEAD_STAGES = (
    ("NEW", "Unassigned", "Unassigned", 10, "#39A8EF", None, True),
    ("IN_PROCESS", "In progress", "", 20, "#2FC6F6", None, False),
    ("PROCESSED", "Processed", "", 30, "#55D0E0", None, False),
    ("CONVERTED", "Good lead", "Good lead", 40, "#7BD500", "S", True),
    ("JUNK", "Junk lead", "Junk lead", 50, "#FF5752", "F", True),
)
DEAL_DEFAULT_FUNNEL = "General"


def is_system(entity_type_id: int) -> bool:
    """Lead, deal, contact or company."""
    return entity_type_id in SYSTEM_ETIDS


def system_type(state: PortalState, entity_type_id: int) -> SmartType:
    """The system type (installing the system entities on first use)."""
    ensure(state)
    return state.system_types[entity_type_id]


def ensure(state: PortalState) -> None:
    """Install the system types, the deal default funnel and the lead statuses once."""
    if state.system_types:
        return
    for etid in SYSTEM_ETIDS:
        state.system_types[etid] = SmartType(
            id=-etid,  # no crm.type row: user fields of CRM_-{etid} never exist
            entity_type_id=etid,
            title=_TITLES[etid],
            code="",
            flags=dict(_FLAGS[etid]),
            created_by=1,
            updated_by=1,
            created_time=0.0,
            updated_time=0.0,
        )
        state.table(etid)
    if not any(e.startswith("DEAL_STAGE") for e in {s.entity_id for s in state.stages.values()}):
        # bitrix24-rest.md §7: "the deal default funnel has `id` 0"
        state.categories[0] = Category(0, DEAL, DEAL_DEFAULT_FUNNEL, 0, True)
        add_stages(state, "DEAL_STAGE", "", 0, DEAL_STAGES)
        add_stages(state, "STATUS", "", 0, LEAD_STAGES)
    state.touch_schema()


def add_stages(
    state: PortalState, entity_id: str, prefix: str, category_id: int, rows: tuple[Any, ...]
) -> None:
    """Add a directory's stages; `prefix` ("C5") is put before every code (none for funnel 0)."""
    for code, name, name_init, sort, color, semantics, system in rows:
        sid = state.seq.next("status_id")
        status_id = f"{prefix}:{code}" if prefix else code
        state.stages[sid] = Stage(
            sid, entity_id, status_id, name, sort, system, category_id, color, semantics, name_init=name_init
        )


def add_deal_funnel_stages(state: PortalState, category_id: int) -> None:
    """bitrix24-rest.md §8.1: a deal funnel `N` has directory `DEAL_STAGE_N`, stage ids `CN:CODE`."""
    add_stages(state, f"DEAL_STAGE_{category_id}", f"C{category_id}", category_id, DEAL_STAGES)


def own_fields(entity_type_id: int) -> tuple[OwnField, ...]:
    """The type's own item fields."""
    return _OWN.get(entity_type_id, ())


def dropped_fields(entity_type_id: int) -> set[str]:
    """Shared item fields (UPPER) the type does not have."""
    return _DROPPED.get(entity_type_id, set())


def stage_extra(state: PortalState, stage: Stage) -> dict[str, Any] | None:
    """crm.status.list.deal.json: lead and deal stages carry `EXTRA` {SEMANTICS, COLOR}; the first
    failure stage is `failure`, later ones `apology`. Smart-process stages have none (§8.1)."""
    if not (stage.entity_id.startswith("DEAL_STAGE") or stage.entity_id == "STATUS"):
        return None
    if stage.semantics == "S":
        word = "success"
    elif stage.semantics == "F":
        failures = [s for s in state.stages_of(stage.entity_id) if s.semantics == "F"]
        word = "failure" if failures and failures[0].id == stage.id else "apology"
    else:
        word = "process"
    return {"SEMANTICS": word, "COLOR": stage.color}


def on_saved(row: dict[str, Any], entity_type_id: int, semantic: str) -> None:
    """Keep the computed columns of a saved row: `STAGE_SEMANTIC_ID`, a deal's `CLOSED`."""
    if entity_type_id in (LEAD, DEAL):
        row["STAGE_SEMANTIC_ID"] = semantic
    if entity_type_id == DEAL:
        row["CLOSED"] = semantic in ("S", "F")


def check_clients(state: PortalState, values: dict[str, Any], old: dict[str, Any] | None) -> None:
    """`companyId`, `contactIds` and `mycompanyId` must name existing companies / contacts.

    The references are silent on a client id naming no entity; as for `parentId{N}` we choose the
    stricter behaviour and refuse the write, naming the field and the value. 0 / empty = no client.
    """
    checks = (("COMPANY_ID", COMPANY, "companyId"), ("MYCOMPANY_ID", COMPANY, "mycompanyId"))
    for upper, etid, camel in checks:
        value = values.get(upper)
        if value in (None, 0) or (old is not None and old.get(upper) == value):
            continue
        _must_exist(state, etid, int(value), camel)
    contacts = values.get("CONTACT_IDS")
    if contacts:
        known = set(old.get("CONTACT_IDS") or []) if old is not None else set()
        for value in contacts:
            if value not in known and value not in (None, 0):
                _must_exist(state, CONTACT, int(value), "contactIds")


def _must_exist(state: PortalState, etid: int, value: int, camel: str) -> None:
    table = state.items.get(etid)
    if table is None or value not in table.rows:
        raise ApiError(
            "CRM_FIELD_ERROR_VALUE_NOT_VALID",
            f'Invalid value for field "{camel}": {value} is not an item of entity type {etid}',
        )
