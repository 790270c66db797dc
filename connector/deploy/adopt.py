"""adopt: write a template from a smart process that already exists on a portal.

Codes come from what the portal knows, best first: the id map (an earlier apply or adopt), our
ownership markers (type `code`, field `xmlId`), the portal's own names (`UF_CRM_7_VIN`, stage
`DT..:UC_X1`), and last the human names transliterated («Кадровый резерв» → `kadrovyy_rezerv`).
With a store, adopt records every id under those codes, so applying the adopted template to the
same portal updates in place (stamping our markers) instead of creating duplicates.
"""

from __future__ import annotations

import re
from typing import Any

from connector.constants import UF_CODE_MAX
from connector.crm.naming import uf_suffix
from connector.crm.schema import (
    PortalField,
    PortalFunnel,
    PortalSnapshot,
    PortalType,
    fill_details,
    read_types,
    supports_code,
)
from connector.deploy.binding import IdView, bind_type
from connector.deploy.desired import from_template
from connector.deploy.engine import portal_key_of
from connector.deploy.record import record_binding
from connector.deploy.relations import SYSTEM_NAMES
from connector.errors import InputError
from connector.rest import Client
from connector.store import Store
from connector.templates import FIELD_TYPES, Template, parse_template
from connector.templates.model import (
    CRM_LINK_KEYS,
    OPTION_CODE_RE,
    PROCESS_CODE_RE,
    RESERVED_FIELD_CODES,
    STAGE_CODE_MAX,
    STAGE_CODE_RE,
    STANDARD_CARD_FIELDS,
    marked_field_code,
)
from connector.templates.slug import slug, unique_code

_HASH = re.compile(r"^[0-9a-f]{32}$")  # xmlId Bitrix24 generates for options made in the UI


class AdoptError(InputError, ValueError):
    """The process to adopt was not found (names what was looked for and what exists)."""


def find_type(types: list[PortalType], type_ref: int | str) -> PortalType:
    """A type by entityTypeId, code or exact title."""
    ref = str(type_ref).strip()
    hits = [
        t
        for t in types
        if (ref.isdecimal() and t.entity_type_id == int(ref)) or t.code == ref or t.title == ref
    ]
    if len(hits) != 1:
        known = ", ".join(f"{t.entity_type_id} «{t.title}»" for t in types) or "none"
        why = "is ambiguous" if hits else "matches no smart process"
        raise AdoptError(
            f"--type {ref!r} {why}; give an entityTypeId or an exact title. Smart processes: {known}"
        )
    return hits[0]


def adopt(
    client: Client, type_ref: int | str, store: Store | None = None, *, code: str | None = None
) -> Template:
    """A template describing the portal's smart process `type_ref` (entityTypeId, code or title).

    With `store`, codes recorded by an earlier apply are reused and every portal id is recorded
    under the template's codes. `code` overrides the process code.
    """
    types = read_types(client)
    t = find_type(types, type_ref)
    fill_details(client, [t])
    ids = IdView(store, portal_key_of(client))
    process = _process_code(t, ids, code)
    names = {x.entity_type_id: c for x in types if (c := _known_code(x, ids))}
    names[t.entity_type_id] = process
    codes = _Codes(t, process, ids)
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
            side: [n for r in rels if not r.predefined and (n := _target(r.entity_type_id, names))]
            for side, rels in (("parents", t.parents), ("children", t.children))
        },
        "fields": [_field(f, codes, names) for f in codes.fields],
        "funnels": [_funnel(f, codes) for f in t.funnels],
    }
    if t.card:
        data["card_sections"] = _sections(t, codes)
    template = parse_template(data, file=f"<adopted {t.entity_type_id}>")
    if store is not None:
        _record(ids, t, types, template, codes, names)
    return template


# ---------------------------------------------------------------- codes


def _known_code(t: PortalType, ids: IdView) -> str | None:
    """The process code a type already has: id map first, then its `code` marker."""
    mapped = next((e.code for e in ids.all("type") if str(e.portal_id) == str(t.id)), None)
    if mapped:
        return mapped
    return t.code if t.code and PROCESS_CODE_RE.match(t.code) else None


def _process_code(t: PortalType, ids: IdView, override: str | None) -> str:
    if override is not None:
        if not PROCESS_CODE_RE.match(override):
            raise AdoptError(
                f"--code {override!r} is not allowed; process codes match ^[a-z][a-z0-9_]{{0,39}}$"
            )
        chosen = override
    else:
        chosen = _known_code(t, ids) or slug(t.title) or f"process_{t.entity_type_id}"
    other = ids.id("type", chosen)
    if other is not None and other != t.id:
        raise AdoptError(
            f"process code {chosen!r} is already mapped to another smart process (type id {other}) on "
            "this portal; give another code (--code)"
        )
    return chosen


class _Codes:
    """Template codes for every field, option, funnel and stage of one portal type."""

    def __init__(self, t: PortalType, process: str, ids: IdView) -> None:
        self.fields = [f for f in t.fields if f.user_type_id in FIELD_TYPES]
        self.field: dict[int, str] = {}
        self.option: dict[int, str] = {}
        self.funnel: dict[int, str] = {}
        self.stage: dict[int, str] = {}
        mapped = {kind: _reverse(ids, kind, process + ".") for kind in ("field", "option", "funnel", "stage")}
        taken: set[str] = set()
        for f in self.fields:
            self.field[f.id] = unique_code(
                mapped["field"].get(f.id) or _field_code(f), taken, "field", UF_CODE_MAX
            )
            options: set[str] = set()
            for o in f.options:
                known = mapped["option"].get(o.id, "").rsplit(".", 1)[-1]
                self.option[o.id] = unique_code(
                    known or _option_code(o.xml_id, o.value), options, f"o{o.id}", 50
                )
        funnels: set[str] = set()
        for i, fn in enumerate(t.funnels):
            fallback = "main" if fn.is_default else f"funnel_{i + 1}"
            fcode = unique_code(mapped["funnel"].get(int(fn.id or 0)) or slug(fn.name), funnels, fallback)
            self.funnel[int(fn.id or 0)] = fcode
            stages: set[str] = set()
            for s in fn.stages:
                known = mapped["stage"].get(s.id, "")
                scode = known.split(".", 1)[1] if known.startswith(fcode + ".") else _stage_code(s.code)
                self.stage[s.id] = unique_code(scode, stages, f"S{s.id}", STAGE_CODE_MAX)


def _reverse(ids: IdView, kind: str, prefix: str) -> dict[int, str]:
    return {int(e.portal_id): e.code[len(prefix) :] for e in ids.all(kind) if e.code.startswith(prefix)}


def _field_code(f: PortalField) -> str:
    """Our marker's code, else the portal name's suffix, else (UI names are digits) the label."""
    if marked := marked_field_code(f.xml_id):
        return marked
    try:
        suffix = uf_suffix(f.field_name).lower()
    except ValueError:  # a field not named UF_CRM_<typeId>_<CODE>: its whole name
        suffix = f.field_name.lower()
    code = re.sub(r"[^a-z0-9_]", "_", suffix).strip("_")
    if not code or not re.search(r"[a-z]", code):
        code = slug(next(iter(f.label.values()), ""), UF_CODE_MAX) or f"uf_{code}"
    if not code[0].isalpha() or code in RESERVED_FIELD_CODES or code in STANDARD_CARD_FIELDS:
        code = f"uf_{code}"
    return code[:UF_CODE_MAX].rstrip("_")


def _option_code(xml_id: str, value: str) -> str:
    low = xml_id.lower()
    if low and OPTION_CODE_RE.match(low) and not _HASH.match(low):
        return low
    return slug(value, 50)


def _stage_code(code: str) -> str:
    clean = re.sub(r"[^A-Z0-9_]", "_", code.upper())[:STAGE_CODE_MAX]
    return clean if STAGE_CODE_RE.match(clean) else ("S_" + clean)[:STAGE_CODE_MAX]


def _target(etid: int, names: dict[int, str]) -> str | None:
    return SYSTEM_NAMES.get(etid) or names.get(etid)


# ---------------------------------------------------------------- template data


def _field(f: PortalField, codes: _Codes, names: dict[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": codes.field[f.id],
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
            {"code": codes.option[o.id], "label": {"ru": o.value}, "sort": o.sort, "default": o.default}
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
            elif key.startswith("DYNAMIC_") and key[8:].isdecimal() and int(key[8:]) in names:
                targets.append(names[int(key[8:])])
        out["targets"] = targets
    if f.user_type_id == "string" and str(f.settings.get("ROWS", "1")) not in ("1", ""):
        out["multiline"] = True
    return out


def _funnel(f: PortalFunnel, codes: _Codes) -> dict[str, Any]:
    fcode = codes.funnel[int(f.id or 0)]
    return {
        "code": fcode,
        "name": {"ru": f.name or fcode},
        "default": f.is_default,
        "sort": f.sort,
        "stages": [
            {
                "code": codes.stage[s.id],
                "name": {"ru": s.name or s.code},
                "semantics": s.semantics,
                "color": s.color.upper() if re.match(r"^#[0-9A-Fa-f]{6}$", s.color) else "#22B9FF",
                "sort": s.sort,
            }
            for s in f.stages
        ],
    }


def _sections(t: PortalType, codes: _Codes) -> list[dict[str, Any]]:
    standard = {v[0]: k for k, v in STANDARD_CARD_FIELDS.items()}
    by_name = {f.field_name: codes.field[f.id] for f in codes.fields}
    out = []
    taken: set[str] = set()
    for i, s in enumerate(t.card or []):
        base = s.name if PROCESS_CODE_RE.match(s.name) else slug(s.title)
        code = unique_code(base, taken, f"section_{i + 1}")
        fields = [standard.get(e.name) or by_name.get(e.name) for e in s.elements]
        out.append({"code": code, "title": {"ru": s.title or code}, "fields": [f for f in fields if f]})
    return out


# ---------------------------------------------------------------- id map


def _record(
    ids: IdView,
    t: PortalType,
    types: list[PortalType],
    template: Template,
    codes: _Codes,
    names: dict[int, str],
) -> None:
    """Map every id of `t` to the template's codes, then record the bound state like apply does."""
    process = template.code
    by_code = {c: etid for etid, c in names.items()}
    with ids.writing():
        entry = ids.entry("type", process)
        created = bool(entry and str(entry.portal_id) == str(t.id) and (entry.extra or {}).get("created"))
        ids.set(
            "type", process, t.id, {"entityTypeId": t.entity_type_id, "created": created, "title": t.title}
        )
        for f in codes.fields:
            ids.set("field", f"{process}.{codes.field[f.id]}", f.id)
            for o in f.options:
                ids.set("option", f"{process}.{codes.field[f.id]}.{codes.option[o.id]}", o.id)
        for fn in t.funnels:
            fcode = codes.funnel[int(fn.id or 0)]
            ids.set("funnel", f"{process}.{fcode}", int(fn.id or 0))
            for s in fn.stages:
                ids.set("stage", f"{process}.{fcode}.{codes.stage[s.id]}", s.id)
        snapshot = PortalSnapshot(types=types, supports_code=supports_code(types))
        desired = from_template(template, lambda c: by_code[c])
        record_binding(ids, bind_type(desired, snapshot, ids))
