"""The field collection of a smart process's items: system fields by flag, parents, user fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .common import field_desc
from .crmtypes import CLIENT_TYPES
from .naming import snake_upper, stage_entity_id, uf_camel
from .state import PortalState, SmartType, UserField

# camel, upper, REST type, value kind, title, flag, read_only, multiple, extra
_SYSTEM: tuple[tuple[str, str, str, str, str, str | None, bool, bool], ...] = (
    ("id", "ID", "integer", "int", "ID", None, True, False),
    ("title", "TITLE", "string", "str", "Name", None, False, False),
    ("xmlId", "XML_ID", "string", "str", "External code", None, False, False),
    ("createdTime", "CREATED_TIME", "datetime", "datetime", "Created at", None, True, False),
    ("updatedTime", "UPDATED_TIME", "datetime", "datetime", "Updated at", None, True, False),
    ("createdBy", "CREATED_BY", "user", "int", "Created by", None, True, False),
    ("updatedBy", "UPDATED_BY", "user", "int", "Updated by", None, True, False),
    ("assignedById", "ASSIGNED_BY_ID", "user", "int", "Assigned to", None, False, False),
    ("opened", "OPENED", "boolean", "bool", "Publicly available", None, False, False),
    ("webformId", "WEBFORM_ID", "integer", "int", "Created by CRM form", None, False, False),
    ("begindate", "BEGINDATE", "date", "date", "Start date", "isBeginCloseDatesEnabled", False, False),
    ("closedate", "CLOSEDATE", "date", "date", "End date", "isBeginCloseDatesEnabled", False, False),
    ("companyId", "COMPANY_ID", "crm_company", "int", "Company", "isClientEnabled", False, False),
    ("contactId", "CONTACT_ID", "crm_contact", "int", "Contact", "isClientEnabled", False, False),
    ("contactIds", "CONTACT_IDS", "crm_contact", "int", "CONTACT_IDS", "isClientEnabled", False, True),
    ("observers", "OBSERVERS", "user", "int", "Observers", "isObserversEnabled", False, True),
    ("categoryId", "CATEGORY_ID", "crm_category", "int", "Pipeline", None, False, False),
    ("movedTime", "MOVED_TIME", "datetime", "datetime", "Moved at", None, True, False),
    ("movedBy", "MOVED_BY", "user", "int", "Moved by", None, True, False),
    ("stageId", "STAGE_ID", "crm_status", "str", "Stage", None, False, False),
    ("previousStageId", "PREVIOUS_STAGE_ID", "crm_status", "str", "Previous stage", None, True, False),
    ("sourceId", "SOURCE_ID", "crm_status", "str", "Source", "isSourceEnabled", False, False),
    (
        "sourceDescription",
        "SOURCE_DESCRIPTION",
        "text",
        "str",
        "Additional source info",
        "isSourceEnabled",
        False,
        False,
    ),
    (
        "currencyId",
        "CURRENCY_ID",
        "crm_currency",
        "str",
        "Currency",
        "isLinkWithProductsEnabled",
        False,
        False,
    ),
    (
        "isManualOpportunity",
        "IS_MANUAL_OPPORTUNITY",
        "boolean",
        "bool",
        "Amount calculation mode",
        "isLinkWithProductsEnabled",
        False,
        False,
    ),
    ("opportunity", "OPPORTUNITY", "double", "float", "Amount", "isLinkWithProductsEnabled", False, False),
    ("taxValue", "TAX_VALUE", "double", "float", "Tax amount", "isLinkWithProductsEnabled", False, False),
    (
        "mycompanyId",
        "MYCOMPANY_ID",
        "crm_company",
        "int",
        "Your company details",
        "isMycompanyEnabled",
        False,
        False,
    ),
    ("lastActivityBy", "LAST_ACTIVITY_BY", "user", "int", "Last activity in timeline by", None, True, False),
    ("lastActivityTime", "LAST_ACTIVITY_TIME", "datetime", "datetime", "Last activity", None, True, False),
)
SYSTEM_NAMES = {s[1]: s[0] for s in _SYSTEM}
SYSTEM_TYPE_TITLES = {1: "Lead", 2: "Deal", 3: "Contact", 4: "Company", 7: "Estimate", 31: "Invoice"}
UF_KINDS = {
    "integer": "int",
    "employee": "int",
    "double": "float",
    "boolean": "bool",
    "date": "date",
    "datetime": "datetime",
    "enumeration": "int",
    "crm_status": "str",
    "file": "file",
}


@dataclass
class FieldSpec:
    """One item field: its REST key, storage key, value kind and description."""

    camel: str
    upper: str
    rest_type: str
    kind: str  # int | float | str | bool | date | datetime | file
    title: str
    read_only: bool = False
    multiple: bool = False
    uf: UserField | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def filter_kind(self) -> str:
        base = "str" if self.kind == "file" else self.kind
        return "multi:" + base if self.multiple else base

    def key(self, original_uf: bool) -> str:
        return self.upper if (original_uf and self.uf is not None) else self.camel


@dataclass
class ItemSchema:
    """All fields of one type, with lookups by camel and UPPER name."""

    smart: SmartType
    fields: list[FieldSpec]
    by_upper: dict[str, FieldSpec]
    by_camel: dict[str, FieldSpec]
    plans: dict[Any, Any] = field(default_factory=dict)  # output plans cached by items.py

    def resolve(self, name: str, original_uf: bool) -> FieldSpec | None:
        """The field a request key names (camel, system UPPER, or UF UPPER with useOriginalUfNames=Y)."""
        spec = self.by_camel.get(name)
        if spec is not None:
            return spec
        if name in SYSTEM_NAMES or (original_uf and name.startswith("UF_")):
            return self.by_upper.get(name)
        return self.by_upper.get(snake_upper(name)) if not name.startswith("UF_") else None

    def filter_resolver(self, original_uf: bool) -> Any:
        def resolve(name: str) -> tuple[str, str, str] | None:
            spec = self.resolve(name, original_uf)
            return None if spec is None else (spec.upper, spec.filter_kind, spec.upper)

        return resolve


def item_schema(state: PortalState, smart: SmartType) -> ItemSchema:
    """The (cached) field collection of `smart` at the current schema version."""
    key = (smart.entity_type_id, state.version)
    cached = state.schema_cache.get(key)
    if cached is not None:
        return cached
    if len(state.schema_cache) > 64:
        state.schema_cache.clear()
    etid = smart.entity_type_id
    default_cat = state.default_category(etid)
    status_type = stage_entity_id(etid, default_cat.id if default_cat else 0)
    specs: list[FieldSpec] = []
    for camel, upper, rest_type, kind, title, flag, read_only, multiple in _SYSTEM:
        if flag is not None and not smart.flag(flag):
            continue
        extra: dict[str, Any] = {}
        if camel in ("stageId", "previousStageId"):
            extra["statusType"] = status_type
        elif camel == "sourceId":
            extra["statusType"] = "SOURCE"
        elif camel == "companyId":
            extra["settings"] = {"parentEntityTypeId": 4}
        elif camel == "contactId":
            extra["isDeprecated"] = True
        specs.append(FieldSpec(camel, upper, rest_type, kind, title, read_only, multiple, extra=extra))
    specs = _system_fields(etid, specs)
    for rel in sorted(state.parents_of(etid), key=lambda r: r.parent):
        if rel.predefined and rel.parent in CLIENT_TYPES:
            # isClientEnabled links contacts/companies through companyId/contactIds, never through
            # parentId3/parentId4 (the crm.item.fields doc example: client fields, no parentId3/4)
            continue
        parent = state.type_by_etid(rel.parent)
        title = parent.title if parent else SYSTEM_TYPE_TITLES.get(rel.parent, str(rel.parent))
        specs.append(
            FieldSpec(
                f"parentId{rel.parent}",
                f"PARENT_ID_{rel.parent}",
                "crm_entity",
                "int",
                title,
                extra={"settings": {"parentEntityTypeId": rel.parent}},
            )
        )
    taken = {s.camel for s in specs}
    for uf in state.fields_of(f"CRM_{smart.id}"):
        camel = uf_camel(uf.field_name)
        if camel in taken:
            camel = uf.field_name
        taken.add(camel)
        label = (uf.labels.get("editFormLabel") or {}).get("en") or uf.field_name
        specs.append(
            FieldSpec(
                camel,
                uf.field_name,
                uf.user_type_id,
                UF_KINDS.get(uf.user_type_id, "str"),
                label,
                multiple=uf.multiple,
                uf=uf,
            )
        )
    schema = ItemSchema(smart, specs, {s.upper: s for s in specs}, {s.camel: s for s in specs})
    state.schema_cache[key] = schema
    return schema


def _system_fields(etid: int, specs: list[FieldSpec]) -> list[FieldSpec]:
    """Leads, deals, contacts and companies: drop the shared fields they lack, add their own."""
    from .system import dropped_fields, own_fields

    dropped = dropped_fields(etid)
    out = [s for s in specs if s.upper not in dropped]
    taken = {s.upper for s in out}
    for camel, upper, rest_type, kind, title, read_only in own_fields(etid):
        if upper not in taken:
            out.append(FieldSpec(camel, upper, rest_type, kind, title, read_only))
    return out


def describe(spec: FieldSpec) -> dict[str, Any]:
    """crm.item.fields entry for one field."""
    uf = spec.uf
    desc = field_desc(
        spec.rest_type,
        spec.title,
        spec.upper,
        required=bool(uf and uf.mandatory) or spec.camel == "opened",
        read_only=spec.read_only,
        multiple=spec.multiple,
        dynamic=uf is not None,
        **spec.extra,
    )
    if uf is not None:
        desc["settings"] = uf.settings
        labels = uf.labels
        desc["listLabel"] = (labels.get("listColumnLabel") or {}).get("en") or spec.title
        desc["formLabel"] = spec.title
        desc["filterLabel"] = (labels.get("listFilterLabel") or {}).get("en") or spec.title
        if uf.user_type_id == "enumeration":
            desc["items"] = [
                {"ID": str(o.id), "VALUE": o.value} for o in sorted(uf.enum, key=lambda o: o.sort)
            ]
    return desc
