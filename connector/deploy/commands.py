"""REST commands for a bound template: types, relations, fields, funnels (phase 1); stages, card (phase 3)."""

from __future__ import annotations

from typing import Any

from connector.crm.naming import stage_entity_id, yn
from connector.crm.schema import (
    SEMANTICS_OUT,
    TYPE_FLAGS,
    Command,
    PortalField,
    Ref,
)
from connector.deploy.binding import FieldBinding, FunnelBinding, TypeBinding
from connector.deploy.changes import SHAPED_DEFAULT_STAGES, desired_card, field_diffs, stage_diffs, type_diffs
from connector.deploy.relations import End, RelationPlan

Value = int | Ref


def _tf(value: bool) -> str:
    return "true" if value else "false"


class TypeIds:
    """Where a process's `id` / `entityTypeId` come from: known ints, or refs to its `crm.type.add`."""

    def __init__(self, b: TypeBinding) -> None:
        self.code = b.code
        self.new = b.portal is None
        self.add_key = f"type.{b.code}"
        self.cats_key = f"cats.{b.code}"
        self.id: Value = Ref(self.add_key, ("type", "id"))
        self.etid: Value = Ref(self.add_key, ("type", "entityTypeId"))
        if b.portal is not None:
            self.id, self.etid = b.portal.id, b.portal.entity_type_id

    def fmt(self, pattern: str) -> Any:
        """`pattern` with `{}` replaced by the type id (a Ref for a new type)."""
        return (
            Ref(self.add_key, ("type", "id"), pattern)
            if isinstance(self.id, Ref)
            else pattern.format(self.id)
        )


def type_payload(b: TypeBinding, only_changed: bool) -> dict[str, Any]:
    """`fields` of crm.type.add (everything) or crm.type.update (what differs)."""
    d = b.desired
    if not only_changed or b.portal is None:
        out: dict[str, Any] = {"title": d.title, "code": d.code}
        out.update({k: yn(v) for k, v in d.flags.items() if k in TYPE_FLAGS})
        if d.linked_user_fields:
            out["linkedUserFields"] = {k: _tf(v) for k, v in d.linked_user_fields.items()}
        return out
    out = {}
    for diff in type_diffs(d, b.portal):
        if diff.attr.startswith("linkedUserFields"):
            out["linkedUserFields"] = {k: _tf(v) for k, v in d.linked_user_fields.items()}
        else:
            out[diff.attr] = yn(diff.new) if isinstance(diff.new, bool) else diff.new
    return out


def type_commands(b: TypeBinding, ids: TypeIds) -> list[Command]:
    """crm.type.add for a new process (then read its default funnel), crm.type.update otherwise."""
    if b.portal is None:
        return [
            Command(ids.add_key, "crm.type.add", {"fields": type_payload(b, False)}, f"create type {b.code}"),
            Command(
                ids.cats_key, "crm.category.list", {"entityTypeId": ids.etid}, f"read funnels of {b.code}"
            ),
        ]
    fields = type_payload(b, True)
    if not fields:
        return []
    return [
        Command(
            f"typeupd.{b.code}",
            "crm.type.update",
            {"id": b.portal.id, "fields": fields},
            f"update type {b.code}",
        )
    ]


def relation_command(
    b: TypeBinding, ids: TypeIds, rp: RelationPlan, allow_destructive: bool, etids: dict[str, TypeIds]
) -> list[Command]:
    """One crm.type.update with the full relation set of this process (relations are replaced wholesale)."""
    missing = rp.missing.get(b.code, [])
    extra = rp.extra.get(b.code, []) if allow_destructive else []
    if not missing and not extra:
        return []
    me = b.portal.entity_type_id if b.portal else None
    drop = set(extra)

    def value(end: End) -> Any:
        return etids[end].etid if isinstance(end, str) else end

    parent: list[dict[str, Any]] = []
    child: list[dict[str, Any]] = []
    if b.portal is not None:
        parent = [
            {"entityTypeId": r.entity_type_id, "isChildrenListEnabled": _tf(r.children_list)}
            for r in b.portal.parents
            if not r.predefined and (r.entity_type_id, me) not in drop
        ]
        child = [
            {"entityTypeId": r.entity_type_id, "isChildrenListEnabled": _tf(r.children_list)}
            for r in b.portal.children
            if not r.predefined and (me, r.entity_type_id) not in drop
        ]
    mine = {b.code, me}
    for p, c in missing:
        if c in mine:
            parent.append({"entityTypeId": value(p), "isChildrenListEnabled": "true"})
        else:
            child.append({"entityTypeId": value(c), "isChildrenListEnabled": "true"})
    return [
        Command(
            f"rel.{b.code}",
            "crm.type.update",
            {"id": ids.id, "fields": {"relations": {"parent": parent, "child": child}}},
            f"set relations of {b.code}",
        )
    ]


def field_payload(fb: FieldBinding, ids: TypeIds) -> dict[str, Any]:
    """`field` of userfieldconfig.add."""
    d = fb.desired
    payload: dict[str, Any] = {
        "entityId": ids.fmt("CRM_{}"),
        "fieldName": ids.fmt("UF_CRM_{}_" + d.uf_suffix),
        "userTypeId": d.user_type_id,
        "multiple": yn(d.multiple),
        **_changeable(fb),
    }
    payload["listColumnLabel"] = dict(d.label)
    payload["listFilterLabel"] = dict(d.label)
    payload["showInList"] = yn(d.show_in_list)
    payload["editInList"] = "Y"
    return payload


def _changeable(fb: FieldBinding, allow_destructive: bool = False) -> dict[str, Any]:
    d = fb.desired
    out: dict[str, Any] = {
        "xmlId": d.xml_id,
        "sort": d.sort,
        "mandatory": yn(d.mandatory),
        "showFilter": d.show_filter_code,
        "editFormLabel": dict(d.label),
        "helpMessage": dict(d.help),
        "settings": dict(d.settings),
    }
    if d.user_type_id == "enumeration":
        enum: list[dict[str, Any]] = []
        for ob in fb.options:
            item = {
                "value": ob.desired.label,
                "sort": ob.desired.sort,
                "xmlId": ob.desired.code,
                "def": yn(ob.desired.default),
            }
            if ob.portal is not None:
                item["id"] = ob.portal.id
            enum.append(item)
        for o in fb.extra_options:
            enum.append(
                {"id": o.id, "del": "Y"}
                if allow_destructive
                else {"id": o.id, "value": o.value, "sort": o.sort, "xmlId": o.xml_id, "def": yn(o.default)}
            )
        out["enum"] = enum
    return out


def _options_differ(fb: FieldBinding, allow_destructive: bool) -> bool:
    if any(
        ob.portal is None
        or ob.portal.value != ob.desired.label
        or ob.portal.sort != ob.desired.sort
        or ob.portal.xml_id != ob.desired.code
        for ob in fb.options
    ):
        return True
    return bool(fb.extra_options) and allow_destructive


def field_commands(b: TypeBinding, ids: TypeIds, allow_destructive: bool, pending: bool) -> list[Command]:
    """userfieldconfig.add / update / delete; `pending` selects fields linking to processes created now."""
    out: list[Command] = []
    for fb in b.fields:
        if bool(fb.desired.pending_targets) != pending:
            continue
        key = f"field.{b.code}.{fb.desired.code}"
        if fb.portal is None:
            out.append(
                Command(
                    key,
                    "userfieldconfig.add",
                    {"moduleId": "crm", "field": field_payload(fb, ids)},
                    f"create field {b.code}.{fb.desired.code}",
                )
            )
        elif field_diffs(fb.desired, fb.portal) or _options_differ(fb, allow_destructive):
            field = {"userTypeId": fb.portal.user_type_id, **_changeable(fb, allow_destructive)}
            out.append(
                Command(
                    key,
                    "userfieldconfig.update",
                    {"moduleId": "crm", "id": fb.portal.id, "field": field},
                    f"update field {b.code}.{fb.desired.code}",
                )
            )
    if allow_destructive and not pending:
        out += [_field_delete(b, f) for f in b.extra_fields]
    return out


def _field_delete(b: TypeBinding, f: PortalField) -> Command:
    return Command(
        f"fielddel.{b.code}.{f.id}",
        "userfieldconfig.delete",
        {"moduleId": "crm", "id": f.id},
        f"delete field {b.code} {f.field_name}",
    )


def funnel_commands(b: TypeBinding, ids: TypeIds, allow_destructive: bool) -> list[Command]:
    """crm.category.update / add / delete."""
    out: list[Command] = []
    for fb in b.funnels:
        d, key = fb.desired, f"cat.{b.code}.{fb.desired.code}"
        if fb.predicted:
            out.append(
                Command(
                    key,
                    "crm.category.update",
                    {
                        "entityTypeId": ids.etid,
                        "id": Ref(ids.cats_key, ("categories", 0, "id")),
                        "fields": {"name": d.name, "sort": d.sort},
                    },
                    f"shape default funnel of {b.code} as {d.code}",
                )
            )
        elif fb.portal is None:
            out.append(
                Command(
                    key,
                    "crm.category.add",
                    {
                        "entityTypeId": ids.etid,
                        "fields": {"name": d.name, "sort": d.sort, "isDefault": yn(d.default)},
                    },
                    f"create funnel {b.code}.{d.code}",
                )
            )
        else:
            fields: dict[str, Any] = {}
            if fb.portal.name != d.name:
                fields["name"] = d.name
            if fb.portal.sort != d.sort:
                fields["sort"] = d.sort
            if d.default and not fb.portal.is_default:
                fields["isDefault"] = "Y"
            if fields:
                out.append(
                    Command(
                        key,
                        "crm.category.update",
                        {"entityTypeId": ids.etid, "id": fb.portal.id, "fields": fields},
                        f"update funnel {b.code}.{d.code}",
                    )
                )
    if allow_destructive:
        out += [
            Command(
                f"catdel.{b.code}.{f.id}",
                "crm.category.delete",
                {"entityTypeId": ids.etid, "id": f.id},
                f"delete funnel {b.code} #{f.id}",
            )
            for f in b.extra_funnels
            if not f.is_default
        ]
    return out


def stage_commands(
    b: TypeBinding, fb: FunnelBinding, etid: int, category_id: int, allow_destructive: bool
) -> list[Command]:
    """crm.status.update (ordered so success stays between process and failure), add, delete."""
    ups: list[tuple[int, Command]] = []
    downs: list[tuple[int, Command]] = []
    adds: list[Command] = []
    deletes: list[Command] = []
    prefix = f"stage.{b.code}.{fb.desired.code}"
    for sb in fb.stages:
        d, p = sb.desired, sb.portal
        if p is None:
            adds.append(
                Command(
                    f"{prefix}.{d.code}",
                    "crm.status.add",
                    {
                        "fields": {
                            "ENTITY_ID": stage_entity_id(etid, category_id),
                            "STATUS_ID": d.code,
                            "NAME": d.name,
                            "SORT": d.sort,
                            "COLOR": d.color,
                            "SEMANTICS": SEMANTICS_OUT[d.semantics],
                        }
                    },
                    f"create stage {b.code}.{fb.desired.code}.{d.code}",
                )
            )
            continue
        diffs = stage_diffs(d.name, d.sort, d.color, p.name, p.sort, p.color)
        if not diffs:
            continue
        fields = {{"name": "NAME", "sort": "SORT", "color": "COLOR"}[x.attr]: x.new for x in diffs}
        cmd = Command(
            f"{prefix}.{d.code}",
            "crm.status.update",
            {"id": p.id, "fields": fields},
            f"update stage {b.code}.{fb.desired.code}.{d.code}",
        )
        (ups if d.sort > p.sort else downs).append((d.sort, cmd))
    for s in fb.extra_stages:
        if s.system:
            continue
        if (fb.shape_defaults and s.code in SHAPED_DEFAULT_STAGES) or allow_destructive:
            deletes.append(
                Command(
                    f"{prefix}.del.{s.id}", "crm.status.delete", {"id": s.id}, f"delete stage {s.status_id}"
                )
            )
    ordered = [c for _, c in sorted(ups, key=lambda x: -x[0])] + [
        c for _, c in sorted(downs, key=lambda x: x[0])
    ]
    return ordered + adds + deletes


def card_command(b: TypeBinding, type_id: int, etid: int) -> Command:
    """crm.item.details.configuration.set (common scope) with the template's sections."""
    return Command(
        f"card.{b.code}",
        "crm.item.details.configuration.set",
        {"entityTypeId": etid, "scope": "C", "data": desired_card(b, type_id)},
        f"set card sections of {b.code}",
    )
