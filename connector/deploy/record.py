"""Write a binding into the id map: every portal id, plus the state applied (for drift)."""

from __future__ import annotations

from connector.deploy.binding import IdView, TypeBinding


def record_binding(ids: IdView, b: TypeBinding) -> None:
    """Record type, fields, options, funnels, stages and sections of one bound process."""
    if b.portal is None:
        return
    p, code = b.portal, b.code
    ids.set(
        "type",
        code,
        p.id,
        {
            "entityTypeId": p.entity_type_id,
            "created": b.owned,
            "title": p.title,
            "flags": dict(sorted(p.flags.items())),
            "linkedUserFields": dict(sorted(p.linked_user_fields.items())),
        },
    )
    if b.desired.renamed_from and b.renamed_from:
        _forget_process(ids, b.desired.renamed_from, p.id)
    for fb in b.fields:
        if fb.portal is None:
            continue
        f = fb.portal
        ids.set(
            "field",
            f"{code}.{fb.desired.code}",
            f.id,
            {
                "field_name": f.field_name,
                "type": f.user_type_id,
                "multiple": f.multiple,
                "mandatory": f.mandatory,
                "label": f.label,
                "sort": f.sort,
            },
        )
        _forget_old(ids, "field", code, fb.desired.renamed_from, f.id)
        for ob in fb.options:
            if ob.portal is not None:
                ids.set(
                    "option",
                    f"{code}.{fb.desired.code}.{ob.desired.code}",
                    ob.portal.id,
                    {"value": ob.portal.value, "field_id": f.id},
                )
                _forget_old(ids, "option", f"{code}.{fb.desired.code}", ob.desired.renamed_from, ob.portal.id)
    for nb in b.funnels:
        if nb.portal is None or nb.portal.id is None:
            continue
        ids.set(
            "funnel",
            f"{code}.{nb.desired.code}",
            nb.portal.id,
            {"name": nb.portal.name, "sort": nb.portal.sort, "created": nb.shape_defaults},
        )
        _forget_old(ids, "funnel", code, nb.desired.renamed_from, nb.portal.id)
        for sb in nb.stages:
            s = sb.portal
            if s is None or not s.id:
                continue
            ids.set(
                "stage",
                f"{code}.{nb.desired.code}.{sb.desired.code}",
                s.id,
                {
                    "status_id": s.status_id,
                    "category_id": nb.portal.id,
                    "name": s.name,
                    "sort": s.sort,
                    "color": s.color,
                    "semantics": s.semantics,
                },
            )
            _forget_old(ids, "stage", f"{code}.{nb.desired.code}", sb.desired.renamed_from, s.id)
    for i, section in enumerate(p.card or []):
        ids.set(
            "section",
            f"{code}.{section.name}",
            i + 1,
            {"title": section.title, "elements": [e.name for e in section.elements]},
        )


def _forget_process(ids: IdView, old: str, type_id: int) -> None:
    """After a process rename, drop every entry recorded under the old process code."""
    entry = ids.entry("type", old)
    if entry is None or str(entry.portal_id) != str(type_id):
        return
    ids.delete("type", old)
    for kind in ("field", "option", "funnel", "stage", "section"):
        for e in ids.all(kind):
            if e.code.startswith(old + "."):
                ids.delete(kind, e.code)


def _forget_old(ids: IdView, kind: str, prefix: str, old: str | None, portal_id: int) -> None:
    """Drop the pre-rename code once the new code maps to the same portal object."""
    if not old:
        return
    key = f"{prefix}.{old}" if prefix else old
    entry = ids.entry(kind, key)
    if entry is not None and str(entry.portal_id) == str(portal_id):
        ids.delete(kind, key)
