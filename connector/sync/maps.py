"""Per-portal process maps (codes <-> portal ids) for sync, from the deploy id map or the portal schema.

Resolved maps are cached in the store (`Store.cache_maps`), keyed by the template's signature, so
an incremental sync reads no schema at all.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from connector.constants import SYSTEM_ENTITY_TYPES, SYSTEM_STAGE_CODES
from connector.crm.items import FieldMap, ProcessMap, TypeCodes
from connector.crm.naming import stage_id, uf_name
from connector.errors import B24SyncError

if TYPE_CHECKING:
    from connector.crm.schema import PortalType
    from connector.rest import Client
    from connector.store import IdMapEntry, Store
    from connector.templates import Funnel, Template


class MapError(B24SyncError, RuntimeError):
    """A template's process cannot be found on the portal."""


def template_json(template: Template) -> dict[str, Any]:
    """The template as plain JSON data."""
    if hasattr(template, "model_dump"):
        return template.model_dump(mode="json")
    return json.loads(json.dumps(template, default=str))


def signature(template: Template) -> str:
    """A short hash of the template, to notice when a cached map is stale."""
    text = json.dumps(template_json(template), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _labels(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {str(v) for v in value.values() if v}
    return {str(value)} if value else set()


def _flags(template: Template) -> dict[str, Any]:
    return dict(getattr(template, "flags", None) or {})


def clients_enabled(template: Template) -> bool:
    """Whether the process has client fields (contactIds, companyId)."""
    return bool(_flags(template).get("isClientEnabled"))


def default_funnel(template: Template) -> str | None:
    """Code of the template's default funnel (the first one when none is marked)."""
    funnels = list(getattr(template, "funnels", None) or [])
    marked = [f.code for f in funnels if getattr(f, "default", False)]
    return marked[0] if marked else (funnels[0].code if funnels else None)


def parent_targets(template: Template) -> list[str]:
    """Codes of the process's parents (system type names or process codes)."""
    rel = getattr(template, "relations", None)
    out: list[str] = []
    for ref in getattr(rel, "parents", None) or []:
        target = getattr(ref, "target", ref)
        if target not in out:
            out.append(str(target))
    return out


def stage_roles(funnel: Funnel) -> dict[str, str]:
    """Template stage code -> system stage code it occupies (first process -> NEW, success, first failure)."""
    roles: dict[str, str] = {}
    stages = list(getattr(funnel, "stages", []) or [])
    process = [s for s in stages if getattr(s, "semantics", "process") == "process"]
    success = [s for s in stages if getattr(s, "semantics", None) == "success"]
    failure = [s for s in stages if getattr(s, "semantics", None) == "failure"]
    for stage, system in ((process[:1], "NEW"), (success[:1], "SUCCESS"), (failure[:1], "FAIL")):
        if stage:
            roles[stage[0].code] = system
    return roles


def _process_map(
    template: Template,
    etid: int,
    type_id: int,
    fields: list[FieldMap],
    funnels: dict[str, int],
    stages: dict[str, dict[str, str]],
    etids: dict[str, int],
) -> ProcessMap:
    """The map of one process once its portal ids are known (shared by both sources)."""
    default = default_funnel(template)
    return ProcessMap(
        code=template.code,
        entity_type_id=etid,
        type_id=type_id,
        stages_enabled=bool(funnels),
        funnels=funnels,
        default_funnel=default if default in funnels else None,
        stages=stages,
        fields=fields,
        clients=clients_enabled(template),
        parents={x: etids[x] for x in parent_targets(template) if x in etids},
    )


# ---- cache ------------------------------------------------------------------------------


def load_cached(store: Store, portal: str, template: Template) -> ProcessMap | None:
    """The cached map for this template, if its signature still matches."""
    data = store.cached_map(portal, template.code, signature(template))
    return ProcessMap.model_validate_json(data) if data is not None else None


def cache_entry(template: Template, pmap: ProcessMap) -> tuple[str, str, str]:
    """What `Store.cache_maps` keeps of a resolved map: (code, template signature, map JSON)."""
    return template.code, signature(template), pmap.model_dump_json()


# ---- from the deploy id map ---------------------------------------------------------------


def _idmap_lookup(entries: list[IdMapEntry]) -> dict[tuple[str, str], IdMapEntry]:
    return {(e.kind, e.code): e for e in entries}


def _first(idx: dict[tuple[str, str], IdMapEntry], kind: str, *codes: str) -> IdMapEntry | None:
    for code in codes:
        if (kind, code) in idx:
            return idx[(kind, code)]
    return None


def from_idmap(template: Template, entries: list[IdMapEntry], etids: dict[str, int]) -> ProcessMap | None:
    """Build a map from deploy's id map entries, or None if the process was not deployed by us.

    Deploy records kinds type/field/option/funnel/stage keyed by code; several key spellings
    (`code`, `process.code`, `process.funnel.stage`, `process:code`) are accepted.
    """
    idx = _idmap_lookup(entries)
    p = template.code
    type_entry = _first(idx, "type", p)
    if type_entry is None:
        return None
    extra = type_entry.extra or {}
    etid = int(extra.get("entityTypeId") or 0)
    type_id = int(type_entry.portal_id)
    if not type_id or not etid:
        return None
    fields: list[FieldMap] = []
    for f in template.fields:
        fe = _first(idx, "field", f"{p}.{f.code}", f"{p}:{f.code}")
        uf = str((fe.extra or {}).get("field_name") or "") if fe is not None else ""
        uf = uf or uf_name(type_id, f.code)
        options: dict[str, int] = {}
        for o in getattr(f, "options", None) or []:
            oe = _first(idx, "option", f"{p}.{f.code}.{o.code}", f"{p}:{f.code}:{o.code}")
            if oe is not None:
                options[o.code] = int(oe.portal_id)
        if f.type == "enumeration" and len(options) < len(getattr(f, "options", []) or []):
            return None  # incomplete: fall back to reading the schema
        fields.append(
            FieldMap(code=f.code, type=f.type, multiple=bool(f.multiple), uf_name=uf, options=options)
        )
    funnels: dict[str, int] = {}
    stages: dict[str, dict[str, str]] = {}
    for fu in getattr(template, "funnels", None) or []:
        fe = _first(idx, "funnel", f"{p}.{fu.code}", f"{p}:{fu.code}")
        if fe is None:
            return None
        cat = int(fe.portal_id)
        funnels[fu.code] = cat
        stages[fu.code] = {}
        for st in fu.stages:
            se = _first(idx, "stage", f"{p}.{fu.code}.{st.code}", f"{p}:{fu.code}:{st.code}")
            sid = str((se.extra or {}).get("status_id") or "") if se is not None else ""
            stages[fu.code][st.code] = sid or stage_id(etid, cat, st.code)
    return _process_map(template, etid, type_id, fields, funnels, stages, etids)


# ---- from the portal schema ---------------------------------------------------------------


def _find_type(types: list[PortalType], template: Template) -> PortalType | None:
    for t in types:
        if t.code and t.code == template.code:
            return t
    titles = _labels(getattr(template, "title", None))
    for t in types:
        if t.title in titles:
            return t
    return None


def discover(client: Client, templates: list[Template]) -> dict[str, ProcessMap]:
    """Read the portal schema (3 HTTP requests) and map every template found on it."""
    from connector.crm.schema import fill_item_schema, scan_types  # pydantic models: only on discovery

    types = scan_types(client)
    found: dict[str, PortalType] = {}
    for t in templates:
        ptype = _find_type(types, t)
        if ptype is None:
            raise MapError(
                f"process {t.code!r} is not on the portal (no type with code {t.code!r} or its title); "
                "deploy it first with `b24sync apply`"
            )
        found[t.code] = ptype
    etids = {code: pt.entity_type_id for code, pt in found.items()}
    etids.update(SYSTEM_ENTITY_TYPES)
    fill_item_schema(client, list(found.values()))
    return {t.code: _build(t, found[t.code], etids) for t in templates}


def _build(t: Template, pt: PortalType, etids: dict[str, int]) -> ProcessMap:
    etid, type_id = pt.entity_type_id, pt.id
    by_name = {f.field_name: f for f in pt.fields}
    fields: list[FieldMap] = []
    for f in t.fields:
        uf = uf_name(type_id, f.code)
        portal_field = by_name.get(uf)
        portal_enum = portal_field.options if portal_field is not None else []
        options: dict[str, int] = {}
        for o in getattr(f, "options", None) or []:
            labels = _labels(getattr(o, "label", None))
            for e in portal_enum:
                if e.xml_id == o.code or e.value in labels:
                    options[o.code] = e.id
                    break
        fields.append(
            FieldMap(code=f.code, type=f.type, multiple=bool(f.multiple), uf_name=uf, options=options)
        )
    funnels: dict[str, int] = {}
    stages: dict[str, dict[str, str]] = {}
    for fu in getattr(t, "funnels", None) or []:
        names = _labels(getattr(fu, "name", None))
        cat = next((c for c in pt.funnels if getattr(fu, "default", False) and c.is_default), None)
        cat = cat or next((c for c in pt.funnels if c.name in names), None)
        if cat is None or cat.id is None:
            continue
        cid = cat.id
        funnels[fu.code] = cid
        ids = {s.status_id for s in cat.stages}
        roles = stage_roles(fu)
        stages[fu.code] = {}
        for st in fu.stages:
            sid = stage_id(etid, cid, st.code)
            if sid not in ids and st.code in roles:
                sid = stage_id(etid, cid, roles[st.code])
            stages[fu.code][st.code] = sid
        used = set(stages[fu.code].values())
        for system in SYSTEM_STAGE_CODES:  # unmapped system stages still translate to a code
            if stage_id(etid, cid, system) not in used:
                stages[fu.code].setdefault(system, stage_id(etid, cid, system))
    return _process_map(t, etid, type_id, fields, funnels, stages, etids)


def type_codes(maps: dict[str, ProcessMap]) -> TypeCodes:
    """Crm link type codes for every mapped process plus the system types."""
    return TypeCodes({code: m.entity_type_id for code, m in maps.items()})
