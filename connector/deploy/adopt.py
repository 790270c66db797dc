"""adopt: write a template from a smart process that already exists on a portal."""

from __future__ import annotations

import re
from typing import Any

from connector.constants import SYSTEM_ENTITY_TYPES
from connector.crm.schema import PortalField, PortalType, fill_details, read_types, uf_suffix
from connector.deploy.binding import IdView
from connector.deploy.engine import portal_key_of
from connector.templates import FIELD_TYPES, Template, parse_template
from connector.templates.model import (
    CRM_LINK_KEYS,
    OPTION_CODE_RE,
    PROCESS_CODE_RE,
    RESERVED_FIELD_CODES,
    STAGE_CODE_MAX,
    STAGE_CODE_RE,
    STANDARD_CARD_FIELDS,
)

_MARKER = re.compile(r"^b24sync:[a-z][a-z0-9_]*:([a-z][a-z0-9_]*)$")
_SYSTEM_BY_ID = {v: k for k, v in SYSTEM_ENTITY_TYPES.items()}


class AdoptError(ValueError):
    """The process to adopt was not found (names what was looked for and what exists)."""


def find_type(types: list[PortalType], type_ref: int | str) -> PortalType:
    """A type by entityTypeId, code or exact title."""
    ref = str(type_ref).strip()
    hits = [
        t
        for t in types
        if (ref.isdigit() and t.entity_type_id == int(ref)) or t.code == ref or t.title == ref
    ]
    if len(hits) != 1:
        known = ", ".join(f"{t.entity_type_id} «{t.title}»" for t in types) or "none"
        why = "is ambiguous" if hits else "matches no smart process"
        raise AdoptError(
            f"--type {ref!r} {why}; give an entityTypeId or an exact title. Smart processes: {known}"
        )
    return hits[0]


def adopt(client: Any, type_ref: int | str, store: Any = None, *, code: str | None = None) -> Template:
    """A template describing the portal's smart process `type_ref` (entityTypeId, code or title).

    With `store`, codes recorded by an earlier apply (funnels, stages) are reused.
    """
    types = read_types(client)
    t = find_type(types, type_ref)
    fill_details(client, [t])
    ids = IdView(store, portal_key_of(client)) if store is not None else None
    process = code or (t.code if t.code and PROCESS_CODE_RE.match(t.code) else f"process_{t.entity_type_id}")
    names = {x.entity_type_id: x.code for x in types if x.code and PROCESS_CODE_RE.match(x.code)}
    data: dict[str, Any] = {
        "code": process,
        "title": {"ru": t.title},
        "preset": "scratch",
        "flags": dict(t.flags),
        "integrations": {
            "tasks": t.linked_user_fields.get("TASKS_TASK|UF_CRM_TASK", False),
            "calendar": t.linked_user_fields.get("CALENDAR_EVENT|UF_CRM_CAL_EVENT", False),
        },
        "relations": {
            "parents": [
                _target(r.entity_type_id, names)
                for r in t.parents
                if not r.predefined and _target(r.entity_type_id, names)
            ],
            "children": [
                _target(r.entity_type_id, names)
                for r in t.children
                if not r.predefined and _target(r.entity_type_id, names)
            ],
        },
    }
    fields = [f for f in t.fields if f.user_type_id in FIELD_TYPES]
    field_codes = {f.field_name: _field_code(f) for f in fields}
    data["fields"] = [_field(f, field_codes[f.field_name], names) for f in fields]
    data["funnels"] = _funnels(t, process, ids)
    if t.card:
        data["card_sections"] = _sections(t, field_codes)
    return parse_template(data, file=f"<adopted {t.entity_type_id}>")


def _target(etid: int, names: dict[int, str]) -> str | None:
    return _SYSTEM_BY_ID.get(etid) or names.get(etid)


def _field_code(f: PortalField) -> str:
    match = _MARKER.match(f.xml_id)
    if match:
        return match.group(1)
    code = re.sub(r"[^a-z0-9_]", "_", uf_suffix(f.field_name).lower())
    if not code or not code[0].isalpha() or code in RESERVED_FIELD_CODES or code in STANDARD_CARD_FIELDS:
        code = "uf_" + code
    return code


def _field(f: PortalField, code: str, names: dict[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": code,
        "type": f.user_type_id,
        "label": f.label or {"ru": f.field_name},
        "multiple": f.multiple,
        "required": f.mandatory,
        "show_in_filter": f.show_filter,
        "sort": f.sort,
    }
    if f.help:
        out["help"] = f.help
    if f.user_type_id == "enumeration":
        out["options"] = [
            {
                "code": o.xml_id.lower() if OPTION_CODE_RE.match(o.xml_id.lower()) else f"o{o.id}",
                "label": {"ru": o.value},
                "sort": o.sort,
                "default": o.default,
            }
            for o in f.options
        ]
    if f.user_type_id == "crm":
        by_key = {v: k for k, v in CRM_LINK_KEYS.items()}
        targets = []
        for key, on in f.settings.items():
            if str(on).upper() != "Y":
                continue
            if key in by_key:
                targets.append(by_key[key])
            elif key.startswith("DYNAMIC_") and key[8:].isdigit() and int(key[8:]) in names:
                targets.append(names[int(key[8:])])
        out["targets"] = targets
    if f.user_type_id == "string" and str(f.settings.get("ROWS", "1")) not in ("1", ""):
        out["multiline"] = True
    return out


def _reverse(ids: IdView | None, kind: str, prefix: str) -> dict[int, str]:
    if ids is None:
        return {}
    return {int(e.portal_id): e.code[len(prefix) :] for e in ids.all(kind) if e.code.startswith(prefix)}


def _stage_code(code: str) -> str:
    clean = re.sub(r"[^A-Z0-9_]", "_", code.upper())[:STAGE_CODE_MAX]
    return clean if STAGE_CODE_RE.match(clean) else ("S_" + clean)[:STAGE_CODE_MAX]


def _funnels(t: PortalType, process: str, ids: IdView | None) -> list[dict[str, Any]]:
    funnel_codes = _reverse(ids, "funnel", process + ".")
    stage_codes = _reverse(ids, "stage", process + ".")
    out = []
    for i, f in enumerate(t.funnels):
        fcode = funnel_codes.get(int(f.id or 0)) or ("main" if f.is_default else f"funnel_{i + 1}")
        stages = []
        for s in f.stages:
            mapped = stage_codes.get(s.id, "")
            scode = mapped.split(".", 1)[1] if mapped.startswith(fcode + ".") else _stage_code(s.code)
            color = s.color.upper() if re.match(r"^#[0-9A-Fa-f]{6}$", s.color) else "#22B9FF"
            stages.append(
                {
                    "code": scode,
                    "name": {"ru": s.name or s.code},
                    "semantics": s.semantics,
                    "color": color,
                    "sort": s.sort,
                }
            )
        out.append(
            {
                "code": fcode,
                "name": {"ru": f.name or fcode},
                "default": f.is_default,
                "sort": f.sort,
                "stages": stages,
            }
        )
    return out


def _sections(t: PortalType, field_codes: dict[str, str]) -> list[dict[str, Any]]:
    standard = {v[0]: k for k, v in STANDARD_CARD_FIELDS.items()}
    out = []
    for i, s in enumerate(t.card or []):
        code = s.name if PROCESS_CODE_RE.match(s.name) else f"section_{i + 1}"
        fields = [standard.get(e.name) or field_codes.get(e.name) for e in s.elements]
        out.append({"code": code, "title": {"ru": s.title or code}, "fields": [f for f in fields if f]})
    return out
