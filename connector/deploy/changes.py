"""Turn bindings into per-object changes (what plan prints and apply executes)."""

from __future__ import annotations

from typing import Any

from connector.constants import SYSTEM_STAGE_CODES
from connector.crm.schema import PortalField, PortalType
from connector.deploy.binding import FieldBinding, FunnelBinding, TypeBinding
from connector.deploy.desired import DesiredField, DesiredType
from connector.deploy.model import Diff, Kind, SchemaChange
from connector.templates.model import STANDARD_CARD_FIELDS, marked_field_code

SHAPED_DEFAULT_STAGES = ("PREPARATION", "CLIENT")


def created(process: str, kind: Kind, code: str, **new: Any) -> SchemaChange:
    """A create, listing the values the new object gets (in the order given)."""
    return SchemaChange(process=process, kind=kind, action="create", code=code,
                        diffs=[Diff(attr=attr, new=value) for attr, value in new.items()])


def rename_or_update(process: str, kind: Kind, code: str, renamed_from: str | None, new_code: str,
                     diffs: list[Diff], note: str = "") -> list[SchemaChange]:
    """A declared rename (`renamed_from`) with its other differences, else an update if anything differs."""
    if renamed_from:
        rename = Diff(attr="code", old=renamed_from, new=new_code)
        return [SchemaChange(process=process, kind=kind, action="rename", code=code, diffs=[rename, *diffs])]
    if diffs:
        return [SchemaChange(process=process, kind=kind, action="update", code=code, diffs=diffs, note=note)]
    return []


def type_changes(b: TypeBinding, allow_destructive: bool) -> list[SchemaChange]:
    """Every change for one process, in dependency order."""
    out: list[SchemaChange] = []
    out += _type_level(b)
    out += field_changes(b, allow_destructive)
    for fb in b.funnels:
        out += funnel_changes(b, fb, allow_destructive)
    for f in b.extra_funnels:
        out.append(
            _delete(
                b.code,
                "funnel",
                f"#{f.id}",
                allow_destructive,
                f"portal funnel {f.name!r}",
                cannot="the default funnel cannot be deleted" if f.is_default else "",
            )
        )
    out += section_changes(b)
    out += [
        SchemaChange(process=b.code, kind="access", action="manual", code=str(i + 1), note=rule)
        for i, rule in enumerate(b.desired.access)
    ]
    return out


def _delete(process: str, kind: Kind, code: str, allowed: bool, what: str, cannot: str = "") -> SchemaChange:
    if cannot:
        return SchemaChange(
            process=process, kind=kind, action="note", code=code, note=f"{what} not in the template; {cannot}"
        )
    return SchemaChange(
        process=process,
        kind=kind,
        action="delete",
        code=code,
        blocked=not allowed,
        note=f"{what} is not in the template",
    )


def _type_level(b: TypeBinding) -> list[SchemaChange]:
    d, p = b.desired, b.portal
    if p is None:
        return [
            created(d.code, "type", "", title=d.title, **dict(sorted(d.flags.items())))
        ]
    diffs = type_diffs(d, p)
    out: list[SchemaChange] = []
    if b.renamed_from and any(x.attr == "code" for x in diffs):
        out.append(
            SchemaChange(
                process=d.code,
                kind="type",
                action="rename",
                code="",
                diffs=diffs,
            )
        )
    elif diffs:
        out.append(SchemaChange(process=d.code, kind="type", action="update", code="", diffs=diffs))
    return out


def type_diffs(d: DesiredType, p: PortalType) -> list[Diff]:
    """Title, code marker (stamped where the portal keeps codes), flags and linked user fields that differ."""
    diffs = []
    if p.title != d.title:
        diffs.append(Diff(attr="title", old=p.title, new=d.title))
    if p.code_supported and p.code != d.code:
        diffs.append(Diff(attr="code", old=p.code, new=d.code))
    for k, v in sorted(d.flags.items()):
        if p.flags.get(k, False) != v:
            diffs.append(Diff(attr=k, old=p.flags.get(k, False), new=v))
    for k, v in sorted(d.linked_user_fields.items()):
        if p.linked_user_fields.get(k, False) != v:
            diffs.append(Diff(attr=f"linkedUserFields[{k}]", old=p.linked_user_fields.get(k, False), new=v))
    return diffs


def field_diffs(d: DesiredField, p: PortalField) -> list[Diff]:
    """Changeable attributes of a user field that differ from the template."""
    diffs = []
    for attr, old, new in (
        ("xmlId", p.xml_id, d.xml_id),
        ("mandatory", p.mandatory, d.mandatory),
        ("showFilter", p.show_filter, d.show_filter),
        ("sort", p.sort, d.sort),
    ):
        if old != new:
            diffs.append(Diff(attr=attr, old=old, new=new))
    for attr, had, wants in (("label", p.label, d.label), ("help", p.help, d.help)):
        if any(had.get(lang) != text for lang, text in wants.items()):
            diffs.append(Diff(attr=attr, old={k: had.get(k) for k in wants}, new=wants))
    for k, v in sorted(d.settings.items()):
        if str(p.settings.get(k)) != str(v):
            diffs.append(Diff(attr=f"settings.{k}", old=p.settings.get(k), new=v))
    return diffs


def field_changes(b: TypeBinding, allow_destructive: bool) -> list[SchemaChange]:
    """Field and option changes."""
    out: list[SchemaChange] = []
    for fb in b.fields:
        d, p = fb.desired, fb.portal
        if p is None:
            out.append(created(b.code, "field", d.code, type=d.user_type_id, multiple=d.multiple))
            continue
        if p.user_type_id != d.user_type_id or p.multiple != d.multiple:
            out.append(
                SchemaChange(
                    process=b.code,
                    kind="field",
                    action="note",
                    code=d.code,
                    note=f"{p.field_name} is {p.user_type_id}{' multiple' if p.multiple else ''}; "
                    f"type and multiple cannot change on an existing field",
                )
            )
        out += rename_or_update(b.code, "field", d.code, fb.renamed_from, d.code, field_diffs(d, p))
        out += option_changes(b, fb, allow_destructive)
    for f in b.extra_fields:
        out.append(
            _delete(b.code, "field", field_name_of(f), allow_destructive, f"portal field {f.field_name}")
        )
    return out


def field_name_of(f: PortalField) -> str:
    """How plan and drift name a portal field: its code when the xmlId is our marker, else its UF name."""
    return marked_field_code(f.xml_id) or f.field_name


def option_changes(b: TypeBinding, fb: FieldBinding, allow_destructive: bool) -> list[SchemaChange]:
    """Enumeration option changes of one existing field."""
    out = []
    for ob in fb.options:
        d, p, code = ob.desired, ob.portal, f"{fb.desired.code}.{ob.desired.code}"
        if p is None:
            out.append(created(b.code, "option", code, label=d.label))
            continue
        diffs = [
            Diff(attr=a, old=o, new=n)
            for a, o, n in (
                ("label", p.value, d.label),
                ("sort", p.sort, d.sort),
                ("xmlId", p.xml_id, d.code),
            )
            if o != n
        ]
        out += rename_or_update(b.code, "option", code, ob.renamed_from, d.code, diffs)
    for o in fb.extra_options:
        out.append(
            _delete(
                b.code,
                "option",
                f"{fb.desired.code}.{o.xml_id or o.id}",
                allow_destructive,
                f"option {o.value!r}",
            )
        )
    return out


def funnel_changes(b: TypeBinding, fb: FunnelBinding, allow_destructive: bool) -> list[SchemaChange]:
    """Funnel and stage changes of one funnel."""
    d, p, out = fb.desired, fb.portal, []
    if p is None:
        out.append(created(b.code, "funnel", d.code, name=d.name, sort=d.sort))
    else:
        diffs = [
            Diff(attr=a, old=o, new=n)
            for a, o, n in (("name", p.name, d.name), ("sort", p.sort, d.sort))
            if o != n and not (fb.predicted and a == "sort")
        ]
        if d.default and not p.is_default:
            diffs.append(Diff(attr="isDefault", old=False, new=True))
        note = "the portal's default funnel" if fb.predicted else ""
        out += rename_or_update(b.code, "funnel", d.code, fb.renamed_from, d.code, diffs, note)
    for sb in fb.stages:
        ds, ps, code = sb.desired, sb.portal, f"{d.code}.{sb.desired.code}"
        if ps is None:
            out.append(created(b.code, "stage", code, name=ds.name, semantics=ds.semantics, sort=ds.sort))
            continue
        diffs = stage_diffs(ds.name, ds.sort, ds.color, ps.name, ps.sort, ps.color)
        if ps.semantics != ds.semantics:
            out.append(
                SchemaChange(
                    process=b.code,
                    kind="stage",
                    action="note",
                    code=code,
                    note=f"stage {ps.status_id} is {ps.semantics}; semantics cannot change",
                )
            )
        note = f"mapped onto system stage {ps.code}" if sb.anchored and ps.code != ds.code else ""
        out += rename_or_update(b.code, "stage", code, sb.renamed_from, ds.code, diffs, note)
    for s in fb.extra_stages:
        code = f"{d.code}.{s.code}"
        if s.code in SYSTEM_STAGE_CODES and s.system:
            out.append(
                SchemaChange(
                    process=b.code,
                    kind="stage",
                    action="note",
                    code=code,
                    note="system stage kept: it cannot be deleted",
                )
            )
        elif fb.shape_defaults and s.code in SHAPED_DEFAULT_STAGES:
            out.append(
                SchemaChange(
                    process=b.code,
                    kind="stage",
                    action="delete",
                    code=code,
                    note="default stage of a funnel created by this apply",
                )
            )
        else:
            out.append(_delete(b.code, "stage", code, allow_destructive, f"portal stage {s.status_id}"))
    return out


def stage_diffs(name: str, sort: int, color: str, old_name: str, old_sort: int, old_color: str) -> list[Diff]:
    """Name, sort and colour differences of a stage (colour only when the template sets one)."""
    diffs = []
    if old_name != name:
        diffs.append(Diff(attr="name", old=old_name, new=name))
    if old_sort != sort:
        diffs.append(Diff(attr="sort", old=old_sort, new=sort))
    if color and old_color.lower() != color.lower():
        diffs.append(Diff(attr="color", old=old_color, new=color))
    return diffs


def card_element(code: str, b: TypeBinding, type_id: int) -> str:
    """Card element name of a field code: a standard field, or the portal name of a custom field."""
    if code in STANDARD_CARD_FIELDS:
        return STANDARD_CARD_FIELDS[code][0]
    fb = next((f for f in b.fields if f.desired.code == code), None)
    if fb is not None and fb.portal is not None:
        return fb.portal.field_name
    return f"UF_CRM_{type_id}_{fb.desired.uf_suffix if fb else code.upper()}"


def desired_card(b: TypeBinding, type_id: int) -> list[dict[str, Any]]:
    """The card sections as `crm.item.details.configuration.set` data."""
    return [
        {
            "name": s.code,
            "title": s.title,
            "type": "section",
            "elements": [{"name": card_element(code, b, type_id), "optionFlags": 1} for code in s.fields],
        }
        for s in b.desired.sections
    ]


def section_changes(b: TypeBinding) -> list[SchemaChange]:
    """One change when the common card differs from the template's sections."""
    if not b.desired.sections:
        return []
    if b.portal is None:
        return [created(b.code, "section", s.code, fields=s.fields) for s in b.desired.sections]
    want = [(s["name"], s["title"], [e["name"] for e in s["elements"]]) for s in desired_card(b, b.portal.id)]
    have = [(s.name, s.title, [e.name for e in s.elements]) for s in (b.portal.card or [])]
    if want == have:
        return []
    out = []
    have_by = {h[0]: h for h in have}
    for name, title, elements in want:
        old = have_by.get(name)
        if old is None:
            out.append(created(b.code, "section", name, fields=elements))
        elif old != (name, title, elements):
            out.append(
                SchemaChange(
                    process=b.code,
                    kind="section",
                    action="update",
                    code=name,
                    diffs=[Diff(attr="title", old=old[1], new=title)] * (old[1] != title)
                    + [Diff(attr="fields", old=old[2], new=elements)] * (old[2] != elements),
                )
            )
    if not out:
        out.append(
            SchemaChange(
                process=b.code,
                kind="section",
                action="update",
                code="*",
                diffs=[Diff(attr="order", old=[h[0] for h in have], new=[w[0] for w in want])],
            )
        )
    return out
