"""Per-portal id map: template codes ↔ the ids one portal assigned (deploy writes, sync reads)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from connector.store.errors import StoreError
from connector.store.models import ID_KINDS, IdMapEntry
from connector.store.sqltext import NOW_SQL

if TYPE_CHECKING:
    from connector.store.store import Store


def _check_kind(kind: str) -> str:
    if kind not in ID_KINDS:
        raise StoreError(f"id map kind {kind!r} is unknown; allowed: {', '.join(ID_KINDS)}")
    return kind


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise StoreError(f"id map {name} must be a non-empty string, got {value!r}")
    return value


def _entry(row: tuple[Any, ...]) -> IdMapEntry:
    portal, kind, code, portal_id, extra = row
    return IdMapEntry(portal=portal, kind=kind, code=code, portal_id=portal_id,
                      extra=json.loads(extra) if extra else None)


class IdMap:
    """Codes ↔ portal ids keyed by (portal, kind, code); kinds are listed in models.ID_KINDS."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, portal: str, kind: str, code: str) -> int | str | None:
        """Portal id of `code`, or None when it is not mapped."""
        entry = self.entry(portal, kind, code)
        return entry.portal_id if entry else None

    def entry(self, portal: str, kind: str, code: str) -> IdMapEntry | None:
        """The full entry (with `extra`) of `code`, or None."""
        row = self._store.conn.execute(
            "SELECT portal, kind, code, portal_id, extra FROM _idmap "
            "WHERE portal = ? AND kind = ? AND code = ?",
            (portal, _check_kind(kind), code),
        ).fetchone()
        return _entry(row) if row else None

    def code_of(self, portal: str, kind: str, portal_id: int | str) -> str | None:
        """Reverse lookup: the code mapped to `portal_id`, or None."""
        row = self._store.conn.execute(
            "SELECT code FROM _idmap WHERE portal = ? AND kind = ? AND portal_id = ? ORDER BY code LIMIT 1",
            (portal, _check_kind(kind), portal_id),
        ).fetchone()
        return row[0] if row else None

    def set(self, portal: str, kind: str, code: str, portal_id: int | str,
            extra: dict[str, Any] | None = None) -> None:
        """Map `code` to `portal_id` (replacing an older mapping)."""
        _check_text("portal", portal)
        _check_text("code", code)
        if isinstance(portal_id, bool) or not isinstance(portal_id, int | str) or portal_id == "":
            raise StoreError(f"id map portal_id for {kind} {code!r} must be an int or a non-empty string, "
                             f"got {portal_id!r}")
        payload = json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra is not None else None
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO _idmap (portal, kind, code, portal_id, extra, updated_at) "
                f"VALUES (?, ?, ?, ?, ?, {NOW_SQL}) ON CONFLICT (portal, kind, code) DO UPDATE SET "
                "portal_id = excluded.portal_id, extra = excluded.extra, updated_at = excluded.updated_at",
                (portal, _check_kind(kind), code, portal_id, payload),
            )

    def all(self, portal: str, kind: str | None = None) -> list[IdMapEntry]:
        """Every entry of one portal (optionally of one kind), ordered by kind and code."""
        sql = "SELECT portal, kind, code, portal_id, extra FROM _idmap WHERE portal = ?"
        args: list[Any] = [portal]
        if kind is not None:
            sql += " AND kind = ?"
            args.append(_check_kind(kind))
        return [_entry(r) for r in self._store.conn.execute(sql + " ORDER BY kind, code", args)]

    def as_dict(self, portal: str, kind: str) -> dict[str, int | str]:
        """{code: portal_id} of one kind, handy for translating whole rows."""
        return {e.code: e.portal_id for e in self.all(portal, kind)}

    def delete(self, portal: str, kind: str | None = None, code: str | None = None) -> int:
        """Forget one entry, one kind, or a whole portal; return how many were removed."""
        if code is not None and kind is None:
            raise StoreError("id map delete by code needs its kind too")
        sql = "DELETE FROM _idmap WHERE portal = ?"
        args: list[Any] = [portal]
        if kind is not None:
            sql += " AND kind = ?"
            args.append(_check_kind(kind))
        if code is not None:
            sql += " AND code = ?"
            args.append(code)
        with self._store.transaction() as conn:
            return conn.execute(sql, args).rowcount

    def portals(self) -> list[str]:
        """Portal keys that have any mapping in this file."""
        return [r[0] for r in self._store.conn.execute("SELECT DISTINCT portal FROM _idmap ORDER BY portal")]
