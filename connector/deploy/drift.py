"""drift: what changed on the portal since the last apply (against the id map's record), and, when
templates are given, every way the portal differs from them (what apply would change)."""

from __future__ import annotations

from typing import Any

from connector.crm.schema import PortalType, fill_details, read_types
from connector.deploy.binding import IdView
from connector.deploy.changes import field_name_of
from connector.deploy.engine import Templates, as_templates, load_context, make_plan, portal_key_of
from connector.deploy.model import Diff, Drift, DriftItem, SchemaChange
from connector.errors import B24SyncError
from connector.rest import Client
from connector.store import IdMapEntry, Store

# A plan action seen from the portal: `create` = the portal lacks it, `delete` = the portal has more.
_AS_DRIFT = {"create": "missing", "delete": "added", "update": "edited", "rename": "edited", "note": "edited"}


class DriftError(B24SyncError, RuntimeError):
    """Nothing to compare the portal with: no apply recorded for it in this store, and no templates."""


def no_apply_recorded(portal: str, db: str, others: list[str]) -> DriftError:
    """The error for a store without this portal's apply record, naming the keys it does hold."""
    text = f"no apply recorded for this portal ({portal}) in {db}; pass template FILEs or run apply first"
    if others:
        text += (
            f". This store has records for {', '.join(others)} only; the store keys a portal by host:port,"
            " so an emulator restarted on another port is a new portal"
        )
    return DriftError(text)


def drift(client: Client, store: Store | None, templates: Templates | None = None) -> Drift:
    """Compare every applied process (or only those of `templates`) with what apply recorded.

    With `templates`, the portal is also compared with them: anything apply would create, change
    or (only with --allow-destructive) delete is drift too (`against="template"`). Without templates
    and without an apply recorded for this portal there is nothing to compare: `DriftError`.
    """
    ids = IdView(store, portal_key_of(client))
    recorded = ids.all("type")
    if not recorded and not templates:
        others = [] if store is None else [k for k in store.idmap.portals() if k != ids.portal]
        raise no_apply_recorded(ids.portal, getattr(store, "path", "(no store)"), others)
    chosen = as_templates(templates) if templates else []
    only = {t.code for t in chosen} if templates else None
    entries = [e for e in recorded if only is None or e.code in only]
    result = Drift(portal=ids.portal, templates=sorted(only or []), last_apply=bool(recorded))
    if chosen:
        ctx = load_context(client, chosen, store)
        types = {t.id: t for t in ctx.snapshot.types}
        fill_details(client, [types[int(e.portal_id)] for e in entries if _needs_details(types, e)])
    else:
        ctx = None
        types = {t.id: t for t in read_types(client)}
        fill_details(client, [types[int(e.portal_id)] for e in entries if int(e.portal_id) in types])
    result.items += _against_record(ids, entries, types)
    if ctx is not None:
        seen = {_key(i) for i in result.items}
        for change in make_plan(ctx, allow_destructive=True).changes:
            item = _from_change(change)
            if item is not None and _key(item) not in seen:
                result.items.append(item)
    return result


def _needs_details(types: dict[int, PortalType], entry: IdMapEntry) -> bool:
    t = types.get(int(entry.portal_id))
    return t is not None and not t.detailed


def _key(item: DriftItem) -> tuple[str, str, str, str]:
    return item.process, item.kind, item.change, item.code.split(" ", 1)[0]


def _from_change(c: SchemaChange) -> DriftItem | None:
    """A plan change as a difference between the portal and the template."""
    if c.action not in _AS_DRIFT or (
        c.action == "note" and c.kind in ("funnel", "stage") and "kept" in c.note
    ):
        return None
    return DriftItem(
        process=c.process,
        kind=c.kind,
        change=_AS_DRIFT[c.action],  # type: ignore[arg-type]
        code=c.code,
        diffs=[Diff(attr=d.attr, old=d.new, new=d.old) for d in c.diffs],  # plan: portal → template
        against="template",
        note=c.note,
    )


def _against_record(
    ids: IdView, entries: list[IdMapEntry], types: dict[int, PortalType]
) -> list[DriftItem]:
    items: list[DriftItem] = []
    by_kind: dict[str, list[Any]] = {k: ids.all(k) for k in ("field", "option", "funnel", "stage")}
    for e in entries:
        t = types.get(int(e.portal_id))
        if t is None:
            items.append(DriftItem(process=e.code, kind="type", change="removed", code=""))
            continue
        diffs = _type_diffs(e.extra or {}, t)
        if diffs:
            items.append(DriftItem(process=e.code, kind="type", change="edited", code="", diffs=diffs))
        mine = {k: [x for x in v if x.code.startswith(e.code + ".")] for k, v in by_kind.items()}
        items += _fields(e.code, t, mine["field"], mine["option"])
        items += _funnels(e.code, t, mine["funnel"], mine["stage"])
    return items


def _type_diffs(rec: dict[str, Any], t: PortalType) -> list[Diff]:
    """Title, flags and linked user fields that differ from what the last apply recorded."""
    diffs = []
    if rec.get("title") and rec["title"] != t.title:
        diffs.append(Diff(attr="title", old=rec["title"], new=t.title))
    for group, now in (("flags", t.flags), ("linkedUserFields", t.linked_user_fields)):
        recorded = rec.get(group)
        if not isinstance(recorded, dict):
            continue
        for name, old in sorted(recorded.items()):
            if name in now and now[name] != old:
                attr = name if group == "flags" else f"linkedUserFields[{name}]"
                diffs.append(Diff(attr=attr, old=old, new=now[name]))
    return diffs


def _tail(process: str, code: str) -> str:
    return code[len(process) + 1 :]


def _fields(
    process: str, t: PortalType, fields: list[IdMapEntry], options: list[IdMapEntry]
) -> list[DriftItem]:
    out: list[DriftItem] = []
    by_id = {f.id: f for f in t.fields}
    known = {int(e.portal_id): _tail(process, e.code) for e in fields}
    for e in fields:
        f, rec = by_id.get(int(e.portal_id)), e.extra or {}
        if f is None:
            out.append(
                DriftItem(process=process, kind="field", change="removed", code=_tail(process, e.code))
            )
            continue
        diffs = [
            Diff(attr=a, old=rec.get(a), new=v)
            for a, v in (("label", f.label), ("mandatory", f.mandatory), ("sort", f.sort))
            if a in rec and rec[a] != v
        ]
        if diffs:
            out.append(
                DriftItem(
                    process=process, kind="field", change="edited", code=_tail(process, e.code), diffs=diffs
                )
            )
    out += [
        DriftItem(process=process, kind="field", change="added", code=field_name_of(f))
        for f in t.fields
        if f.id not in known
    ]
    opts = {o.id: (f, o) for f in t.fields for o in f.options}
    known_opts = {int(e.portal_id) for e in options}
    for e in options:
        hit = opts.get(int(e.portal_id))
        if hit is None:
            if int((e.extra or {}).get("field_id", 0)) in by_id:
                out.append(
                    DriftItem(process=process, kind="option", change="removed", code=_tail(process, e.code))
                )
        elif (e.extra or {}).get("value") not in (None, hit[1].value):
            out.append(
                DriftItem(
                    process=process,
                    kind="option",
                    change="edited",
                    code=_tail(process, e.code),
                    diffs=[Diff(attr="label", old=(e.extra or {})["value"], new=hit[1].value)],
                )
            )
    out += [
        DriftItem(process=process, kind="option", change="added", code=f"{known[f.id]}.{o.value}")
        for oid, (f, o) in opts.items()
        if oid not in known_opts and f.id in known
    ]
    return out


def _funnels(
    process: str, t: PortalType, funnels: list[IdMapEntry], stages: list[IdMapEntry]
) -> list[DriftItem]:
    out: list[DriftItem] = []
    by_id = {f.id: f for f in t.funnels}
    known = {int(e.portal_id) for e in funnels}
    for e in funnels:
        f, rec = by_id.get(int(e.portal_id)), e.extra or {}
        if f is None:
            out.append(
                DriftItem(process=process, kind="funnel", change="removed", code=_tail(process, e.code))
            )
        elif rec.get("name") not in (None, f.name):
            out.append(
                DriftItem(
                    process=process,
                    kind="funnel",
                    change="edited",
                    code=_tail(process, e.code),
                    diffs=[Diff(attr="name", old=rec["name"], new=f.name)],
                )
            )
    out += [
        DriftItem(process=process, kind="funnel", change="added", code=f"#{f.id} {f.name}")
        for f in t.funnels
        if f.id not in known
    ]
    portal_stages = {s.id: s for f in t.funnels if f.id in known for s in f.stages}
    known_stages = {int(e.portal_id) for e in stages}
    for e in stages:
        s, rec = portal_stages.get(int(e.portal_id)), e.extra or {}
        if s is None:
            if int(rec.get("category_id", 0)) in by_id:
                out.append(
                    DriftItem(process=process, kind="stage", change="removed", code=_tail(process, e.code))
                )
            continue
        diffs = [
            Diff(attr=a, old=rec.get(a), new=v)
            for a, v in (("name", s.name), ("sort", s.sort), ("color", s.color))
            if a in rec and str(rec[a]).lower() != str(v).lower()
        ]
        if diffs:
            out.append(
                DriftItem(
                    process=process, kind="stage", change="edited", code=_tail(process, e.code), diffs=diffs
                )
            )
    out += [
        DriftItem(process=process, kind="stage", change="added", code=s.status_id)
        for sid, s in portal_stages.items()
        if sid not in known_stages
    ]
    return out
