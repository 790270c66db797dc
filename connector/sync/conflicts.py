"""Three-way merge of one item, field by field, against the base snapshot; conflict policies.

A field changed on one side only always flows to the other side, whatever the policy. A policy
decides only the fields changed on both sides to different values ("clashing"). Funnel and stage
count as one field, and so do a money amount and its currency. Pure functions; the puller applies
the returned `Settlement`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from connector.crm.items import ProcessMap, normalize

Policy = Literal["remote-wins", "local-wins", "newest-wins", "merge", "manual"]
POLICIES: tuple[str, ...] = ("remote-wins", "local-wins", "newest-wins", "merge", "manual")
OPEN_POLICIES = ("merge", "manual")  # clashing fields stay local, are not pushed, and wait for `resolve`


def check_policy(policy: str, where: str = "policy") -> str:
    """Validate a policy name."""
    if policy not in POLICIES:
        raise ValueError(f"unknown conflict {where} {policy!r}; allowed: {', '.join(POLICIES)}")
    return policy


class Settlement(BaseModel):
    """The outcome of merging one item changed on the portal while it had local changes."""

    row: dict[str, Any]  # merged values of the synced columns (the new local row)
    clashing: list[str] = Field(default_factory=list)  # columns changed on both sides to different values
    open_fields: list[str] = Field(default_factory=list)  # clashing columns left for `resolve` (kept local)
    resolution: str = "none"  # none | echo | remote | local | manual
    push: list[str] = Field(default_factory=list)  # columns where the merged row differs from the portal

    @property
    def conflicted(self) -> bool:
        return bool(self.clashing)


def _eq(a: Any, b: Any) -> bool:
    return normalize(a) == normalize(b)


def array_columns(pmap: ProcessMap) -> frozenset[str]:
    """The store columns that hold a JSON array: multiple fields and the client contact ids."""
    arrays = {f.code for f in pmap.fields if f.multiple}
    return frozenset(arrays | ({"contact_ids"} if pmap.clients else set()))


def unset(column: str, value: Any, arrays: frozenset[str]) -> bool:
    """Whether a stored value holds nothing: NULL, empty text, or `[]` in an array column.

    In a text column `[]` is text like any other and is sent as such.
    """
    return value is None or value == "" or (value == "[]" and column in arrays)


def diff(a: dict[str, Any], b: dict[str, Any], columns: list[str]) -> list[str]:
    """Columns whose values differ."""
    return [c for c in columns if not _eq(a.get(c), b.get(c))]


def units(columns: list[str]) -> list[list[str]]:
    """Columns grouped into the fields a merge decides as one: funnel+stage, amount+currency."""
    out: list[list[str]] = []
    taken: set[str] = set()
    names = set(columns)
    for c in columns:
        if c in taken:
            continue
        if c in ("funnel", "stage") and {"funnel", "stage"} <= names:
            group = ["funnel", "stage"]
        elif f"{c}_currency" in names:
            group = [c, f"{c}_currency"]
        else:
            group = [c]
        taken.update(group)
        out.append(group)
    return out


def merge3(
    policy: str,
    base: dict[str, Any],
    local: dict[str, Any],
    remote: dict[str, Any],
    columns: list[str],
    *,
    local_at: str | None = None,
    remote_at: str | None = None,
    keep_local: frozenset[str] | set[str] = frozenset(),
) -> Settlement:
    """Merge local and remote values of one item against `base`, field by field.

    `keep_local` are columns of an open conflict: they keep their local value and stay open.
    `newest-wins` compares the local change time with the portal's updatedTime (both on the portal
    clock); a tie goes to the portal.
    """
    row: dict[str, Any] = {}
    clashing: list[str] = []
    open_fields: list[str] = []
    winner = "remote"
    if policy == "newest-wins":
        winner = "local" if (local_at or "") > (remote_at or "") else "remote"
    elif policy == "local-wins":
        winner = "local"
    elif policy in OPEN_POLICIES:
        winner = "manual"
    for unit in units(columns):
        local_changed = any(not _eq(local.get(c), base.get(c)) for c in unit)
        remote_changed = any(not _eq(remote.get(c), base.get(c)) for c in unit)
        same = all(_eq(local.get(c), remote.get(c)) for c in unit)
        if set(unit) & set(keep_local):
            take = local
            if not same:
                open_fields += unit
        elif not local_changed:
            take = remote
        elif not remote_changed or same:
            take = local
        else:
            clashing += unit
            take = remote if winner == "remote" else local
            if winner == "manual":
                open_fields += unit
        for c in unit:
            row[c] = take.get(c)
    push = [c for c in columns if c not in open_fields and not _eq(row.get(c), remote.get(c))]
    if clashing:
        resolution = winner
    elif push or open_fields:
        resolution = "none"
    else:
        resolution = "echo"  # the portal already holds every local change (our lost write, or the same edit)
    return Settlement(row=row, clashing=clashing, open_fields=open_fields, resolution=resolution, push=push)


def settle(
    policy: str,
    base: dict[str, Any],
    local: dict[str, Any],
    remote: dict[str, Any],
    columns: list[str],
    *,
    local_at: str | None,
    remote_at: str | None,
) -> Settlement:
    """`merge3` without open-conflict columns (kept for callers of the old name)."""
    return merge3(policy, base, local, remote, columns, local_at=local_at, remote_at=remote_at)
