"""Conflict policies: what to do with an item changed both locally and on the portal since the base.

Pure functions; the engine applies the returned `Settlement`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from connector.crm.items import normalize

Policy = Literal["remote-wins", "local-wins", "newest-wins", "merge", "manual"]
POLICIES: tuple[str, ...] = ("remote-wins", "local-wins", "newest-wins", "merge", "manual")


def check_policy(policy: str, where: str = "policy") -> str:
    """Validate a policy name."""
    if policy not in POLICIES:
        raise ValueError(f"unknown conflict {where} {policy!r}; allowed: {', '.join(POLICIES)}")
    return policy


class Settlement(BaseModel):
    """The outcome of settling one conflicting row."""

    row: dict[str, Any]  # values to write into the local row (only the synced columns)
    new_base: bool  # whether the base becomes the remote snapshot
    drop_local: bool  # local pending changes are superseded (recorded, then marked done)
    open_fields: list[str] = Field(default_factory=list)  # recorded, kept local, not pushed
    conflicted: bool  # a real conflict (recorded in _conflicts)
    resolution: str  # remote | local | merged | manual | echo


def _eq(a: Any, b: Any) -> bool:
    return normalize(a) == normalize(b)


def diff(a: dict[str, Any], b: dict[str, Any], columns: list[str]) -> list[str]:
    """Columns whose values differ."""
    return [c for c in columns if not _eq(a.get(c), b.get(c))]


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
    """Decide one row changed on both sides. `base`, `local`, `remote` hold synced column values."""
    local_changed = set(diff(local, base, columns))
    remote_changed = set(diff(remote, base, columns))
    clashing = [
        c for c in columns if c in local_changed and c in remote_changed and not _eq(local[c], remote[c])
    ]
    remote_only = [c for c in columns if c in remote_changed and c not in local_changed]
    if not clashing and all(_eq(remote.get(c), local.get(c)) for c in remote_changed):
        # the remote change is our own write (a lost response) or the same edit on both sides
        return Settlement(
            row=dict(local), new_base=True, drop_local=False, conflicted=False, resolution="echo"
        )
    if policy == "newest-wins":
        policy = "local-wins" if (local_at or "") > (remote_at or "") else "remote-wins"
    if policy == "remote-wins":
        return Settlement(
            row=dict(remote), new_base=True, drop_local=True, conflicted=True, resolution="remote"
        )
    if policy == "local-wins":
        return Settlement(
            row=dict(local), new_base=True, drop_local=False, conflicted=True, resolution="local"
        )
    if policy == "merge":
        merged = dict(local)
        for c in remote_only:
            merged[c] = remote.get(c)
        return Settlement(
            row=merged,
            new_base=True,
            drop_local=False,
            open_fields=clashing,
            conflicted=True,
            resolution="merged",
        )
    fields = sorted(local_changed | remote_changed, key=columns.index)
    return Settlement(
        row=dict(local),
        new_base=False,
        drop_local=False,
        open_fields=fields,
        conflicted=True,
        resolution="manual",
    )


def merged_values(
    base: dict[str, Any], local: dict[str, Any], remote: dict[str, Any], columns: list[str]
) -> dict[str, Any]:
    """Three-way merge: each side's own changes; where both changed a field, the local value."""
    out = dict(local)
    for c in columns:
        if _eq(local.get(c), base.get(c)) and not _eq(remote.get(c), base.get(c)):
            out[c] = remote.get(c)
    return out
