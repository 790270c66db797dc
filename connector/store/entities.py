"""Store side of stage rules: their firings, and the read-only copies of linked system entities.

`_rule_firings` has one row per (portal, rule, entity, transition): a rule fires once per transition.
A firing is written `pending` (committed) before its portal write and `done`/`skipped`/`failed`
after, so a run killed in between finds the pending row and completes it instead of firing again.
`_deals`, `_companies`, `_contacts` hold the parents and clients that synced items name; sync
overwrites them on every run (they are never pushed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from connector.times import utc_now_text

if TYPE_CHECKING:
    from connector.store.store import Store

DEAL_COLUMNS = (
    "id",
    "title",
    "funnel_id",
    "funnel",
    "stage_id",
    "stage",
    "stage_label",
    "stage_semantics",
    "stage_sort",
    "amount",
    "currency",
    "company_id",
    "contact_id",
    "assigned_by_id",
    "begindate",
    "closedate",
    "created_time",
    "updated_time",
)


class Firing(BaseModel):
    """One recorded firing of a stage rule."""

    portal: str
    rule: str
    entity_type_id: int
    entity_id: int
    transition: str
    status: str  # pending | done | skipped | failed
    result: str = ""
    child_id: int | None = None
    attempts: int = 0
    at: str = ""


def firings(store: Store, portal: str | None = None, rule: str | None = None) -> list[Firing]:
    """Recorded firings, oldest first (optionally of one portal / one rule)."""
    sql = "SELECT * FROM _rule_firings WHERE (? IS NULL OR portal = ?) AND (? IS NULL OR rule = ?)"
    cur = store.conn.execute(sql + " ORDER BY at, rule, entity_id", (portal, portal, rule, rule))
    names = [d[0] for d in cur.description]
    return [Firing(**dict(zip(names, r, strict=True))) for r in cur.fetchall()]


def firing_states(
    store: Store, portal: str, rule: str, entity_type_id: int, transition: str
) -> dict[int, Firing]:
    """Firings of one rule and transition by entity id."""
    cur = store.conn.execute(
        "SELECT * FROM _rule_firings WHERE portal = ? AND rule = ? AND entity_type_id = ? AND transition = ?",
        (portal, rule, entity_type_id, transition),
    )
    names = [d[0] for d in cur.description]
    out = {}
    for r in cur.fetchall():
        f = Firing(**dict(zip(names, r, strict=True)))
        out[f.entity_id] = f
    return out


def begin_firing(
    store: Store, portal: str, rule: str, entity_type_id: int, entity_id: int, transition: str
) -> None:
    """Record a firing as pending before its portal write (committed at once); counts the attempt."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO _rule_firings (portal, rule, entity_type_id, entity_id, transition, status, at, "
            "attempts) VALUES (?, ?, ?, ?, ?, 'pending', ?, 1) "
            "ON CONFLICT (portal, rule, entity_type_id, entity_id, transition) "
            "DO UPDATE SET attempts = attempts + 1, at = excluded.at",
            (portal, rule, entity_type_id, entity_id, transition, utc_now_text()),
        )


def finish_firing(
    store: Store,
    portal: str,
    rule: str,
    entity_type_id: int,
    entity_id: int,
    transition: str,
    status: str,
    result: str,
    child_id: int | None = None,
) -> None:
    """Close a firing: done, skipped (the rule said no) or failed (an error; retried next run)."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO _rule_firings (portal, rule, entity_type_id, entity_id, transition, status, result, "
            "child_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (portal, rule, entity_type_id, "
            "entity_id, transition) DO UPDATE SET status = excluded.status, result = excluded.result, "
            "child_id = COALESCE(excluded.child_id, child_id), at = excluded.at",
            (portal, rule, entity_type_id, entity_id, transition, status, result, child_id, utc_now_text()),
        )


def save_deals(store: Store, portal: str, deals: Iterable[Mapping[str, Any]]) -> int:
    """Upsert read-only deal rows (columns: DEAL_COLUMNS)."""
    rows = [[d.get(c) for c in DEAL_COLUMNS] for d in deals]
    if not rows:
        return 0
    cols = ", ".join(DEAL_COLUMNS)
    marks = ", ".join("?" for _ in DEAL_COLUMNS)
    with store.transaction() as conn:
        conn.executemany(
            f"INSERT OR REPLACE INTO _deals (portal, {cols}, pulled_at) VALUES (?, {marks}, ?)",
            [[portal, *r, utc_now_text()] for r in rows],
        )
    return len(rows)


def save_companies(store: Store, portal: str, companies: Iterable[Mapping[str, Any]]) -> int:
    """Replace read-only company rows (id, title)."""
    rows = [(portal, int(c["id"]), c.get("title"), utc_now_text()) for c in companies]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO _companies (portal, id, title, pulled_at) VALUES (?, ?, ?, ?)", rows
        )
    return len(rows)


def save_contacts(store: Store, portal: str, contacts: Iterable[Mapping[str, Any]]) -> int:
    """Replace read-only contact rows (id, name, company_id)."""
    rows = [(portal, int(c["id"]), c.get("name"), c.get("company_id"), utc_now_text()) for c in contacts]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO _contacts (portal, id, name, company_id, pulled_at) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


def save_item_dates(
    store: Store, portal: str, tbl: str, rows: Iterable[tuple[int, str | None, str | None]]
) -> int:
    """Replace the begin/close dates of one process's items (`begindate`/`closedate`, YYYY-MM-DD)."""
    data = [(portal, tbl, int(i), b, c, utc_now_text()) for i, b, c in rows]
    with store.transaction() as conn:
        conn.execute("DELETE FROM _item_dates WHERE portal = ? AND tbl = ?", (portal, tbl))
        conn.executemany(
            "INSERT INTO _item_dates (portal, tbl, id, begindate, closedate, pulled_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            data,
        )
    return len(data)


def deals(store: Store, portal: str | None = None) -> list[dict[str, Any]]:
    """Stored deals (all portals unless one is named), by id."""
    cur = store.conn.execute(
        "SELECT * FROM _deals WHERE (? IS NULL OR portal = ?) ORDER BY portal, id", (portal, portal)
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def companies(store: Store, portal: str | None = None) -> dict[int, str]:
    """Stored company titles by id."""
    cur = store.conn.execute(
        "SELECT id, title FROM _companies WHERE (? IS NULL OR portal = ?)", (portal, portal)
    )
    return {int(i): t or f"#{i}" for i, t in cur.fetchall()}
