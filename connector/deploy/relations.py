"""Relations between processes and CRM types, compared as (parent, child) entityTypeId pairs."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.constants import SYSTEM_ENTITY_TYPES
from connector.crm.schema import PortalSnapshot
from connector.deploy.binding import TypeBinding
from connector.deploy.desired import relation_target
from connector.deploy.model import Diff, SchemaChange

End = int | str  # an entityTypeId, or the code of a process created in this apply

SYSTEM_NAMES = {etid: name for name, etid in SYSTEM_ENTITY_TYPES.items()}  # 2 -> "deal", ...


@dataclass
class RelationPlan:
    """Missing and extra relation pairs, and which process's type update carries each."""

    missing: dict[str, list[tuple[End, End]]] = field(default_factory=dict)
    extra: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


def _end(
    name: str, bindings: dict[str, TypeBinding], snapshot: PortalSnapshot, ids_etid: dict[str, int]
) -> End:
    target = relation_target(name)
    if isinstance(target, int):
        return target
    b = bindings.get(target)
    if b is not None:
        return b.portal.entity_type_id if b.portal else target
    if target in ids_etid:
        return ids_etid[target]
    t = snapshot.by_code(target)
    if t is not None:
        return t.entity_type_id
    raise ValueError(
        f"relation to unknown process {target!r}: it is neither a system type "
        f"(contact, company, deal, lead, quote, invoice) nor a process in this apply or on the portal"
    )


def observed_pairs(snapshot: PortalSnapshot, include_predefined: bool) -> set[tuple[int, int]]:
    """Every (parent, child) pair visible on the detailed types of the snapshot."""
    pairs: set[tuple[int, int]] = set()
    for t in snapshot.types:
        for r in t.parents:
            if include_predefined or not r.predefined:
                pairs.add((r.entity_type_id, t.entity_type_id))
        for r in t.children:
            if include_predefined or not r.predefined:
                pairs.add((t.entity_type_id, r.entity_type_id))
    return pairs


def plan_relations(
    bindings: dict[str, TypeBinding], snapshot: PortalSnapshot, ids_etid: dict[str, int]
) -> RelationPlan:
    """Compare the templates' relations with the portal."""
    wanted: dict[tuple[End, End], str] = {}
    for code, b in bindings.items():
        me: End = b.portal.entity_type_id if b.portal else code
        for p in b.desired.parents:
            wanted.setdefault((_end(p, bindings, snapshot, ids_etid), me), code)
        for c in b.desired.children:
            pair = (me, _end(c, bindings, snapshot, ids_etid))
            owner = pair[1] if isinstance(pair[1], str) and pair[1] in bindings else code
            if isinstance(pair[1], int):
                child_b = next(
                    (x for x in bindings.values() if x.portal and x.portal.entity_type_id == pair[1]), None
                )
                owner = child_b.code if child_b else code
            wanted.setdefault(pair, owner)
    seen = observed_pairs(snapshot, include_predefined=True)
    plan = RelationPlan()
    for pair, owner in wanted.items():
        if pair not in seen:
            plan.missing.setdefault(owner, []).append(pair)
    mine = {b.portal.entity_type_id: code for code, b in bindings.items() if b.portal}
    for pair in sorted(observed_pairs(snapshot, include_predefined=False)):
        if pair in wanted:
            continue
        holder = mine.get(pair[1]) or mine.get(pair[0])
        if holder is not None:
            plan.extra.setdefault(holder, []).append(pair)
    return plan


def relation_changes(
    code: str, rp: RelationPlan, allow_destructive: bool, names: dict[int, str]
) -> list[SchemaChange]:
    """Plan lines for one process's relation changes, both ends named (`deal`, `car`), never by number."""

    def label(end: End) -> str:
        if isinstance(end, str):
            return end
        return names.get(end) or SYSTEM_NAMES.get(end) or str(end)

    out = [
        SchemaChange(
            process=code,
            kind="relation",
            action="create",
            code=f"{label(p)}->{label(c)}",
            diffs=[Diff(attr="parent", new=label(p)), Diff(attr="child", new=label(c))],
        )
        for p, c in rp.missing.get(code, [])
    ]
    out += [
        SchemaChange(
            process=code,
            kind="relation",
            action="delete",
            code=f"{label(p)}->{label(c)}",
            blocked=not allow_destructive,
            note="relation is not in the template",
        )
        for p, c in rp.extra.get(code, [])
    ]
    return out
