"""Pull: items changed on the portal since the cursor -> local rows, base snapshots, stage history.

Keyset paging without COUNT, dedupe by (id, updatedTime), conflicts settled by policy, and the
cursor (server clock of the first response minus nothing; the overlap is applied when reading)
advanced in the same transaction that commits the last rows.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from connector.crm.items import (
    ItemTranslator,
    ProcessMap,
    TranslationError,
    option_marker,
)
from connector.store import (
    BULK_NULL,
    Change,
    Conflict,
    Store,
    bases,
    changelog,
    conflicts,
    new_key,
    new_keys,
    rows,
)
from connector.store.stage_moves import StageMoveRow
from connector.sync.conflicts import array_columns, diff, merge3, unset
from connector.sync.fetch import ItemStream
from connector.sync.report import FailedRow, ProcessFigures
from connector.times import local_moment, offset_text, parse_moment, portal_text, utc_text

Translated = tuple[dict[int, list[Any]], dict[int, str], list[tuple[dict[str, Any], Exception]]]
if TYPE_CHECKING:
    from connector.rest import Client

CHUNK = 5_000  # rows per transaction: fewer commits, memory stays small
READ_ONLY = ("id", "created_time", "updated_time", "moved_time")


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees everything without cycles)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def since_filter(cursor: str | None, overlap: float) -> dict[str, Any]:
    """`>=updatedTime` filter for a cursor minus the overlap window (none before the first backfill)."""
    if not cursor:
        return {}
    moment = local_moment(cursor, UTC)
    return {">=updatedTime": portal_text(moment - timedelta(seconds=overlap), offset_text(moment))}


def clock_offset(date_start: Any, local_now: float) -> float:
    """Portal clock minus local clock in seconds, from a response's `time.date_start` (0 when unknown).

    `newest-wins` compares the local change-log time (local clock) with the portal's `updatedTime`
    (portal clock); the local time is moved onto the portal clock by this offset first. The estimate
    is good to about a second (date_start has second resolution; the request takes its round trip).
    """
    if not date_start:
        return 0.0
    try:
        server = parse_moment(str(date_start))
    except ValueError:  # not a datetime, or one without an offset: the offset is unknown
        return 0.0
    return round(server.timestamp() - local_now)


class Puller:
    """Pull one process into its table."""

    def __init__(
        self,
        store: Store,
        client: Client,
        pmap: ProcessMap,
        tr: ItemTranslator,
        *,
        portal: str,
        policy: str,
        figures: ProcessFigures,
        failures: list[FailedRow],
        progress: Callable[[str, int], None] | None = None,
        refresh: Callable[[], ItemTranslator | None] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.store, self.client, self.pmap, self.tr = store, client, pmap, tr
        self.refresh, self.refreshed = refresh, False
        self.warnings = warnings if warnings is not None else []
        self.tbl = pmap.code
        self.portal, self.policy = portal, policy
        self.figures, self.failures, self.progress = figures, failures, progress
        self.cols = pmap.columns()
        table_cols = set(rows.table_columns(store.conn, self.tbl))
        self.row_cols = [c for c in self.cols + list(READ_ONLY) if c in table_cols]
        self.table_cols = table_cols
        self._use(tr)
        # local state is read inside each write transaction, after the HTTP read (no lost race)
        self.pending: dict[str, Change] = {}
        self.pending_delete_ids: dict[int, Change] = {}
        self.open_conflicts: dict[str, Conflict] = {}
        self.changed_keys: set[str] = set()  # rows whose values or base a pull changed (push re-reads)
        self.duplicate_xml: dict[str, list[int]] = {}  # xmlId shared by several portal items -> ids
        self.gone_cols: dict[str, str] = {}  # column -> its field, absent from the portal's items
        self.clock_offset = 0.0  # portal clock minus local clock, seconds (estimated on each run)
        self.failed_since: datetime | None = None  # updatedTime of the oldest item that failed to translate
        self.seen_ids: set[int] | None = None  # ids read by a full pull

    def _use(self, tr: ItemTranslator) -> None:
        """Translate with `tr`: new rows are inserted as its value lists, cut to the table's columns."""
        self.tr, self.pmap = tr, tr.pmap
        self.value_keep: list[int] | None = None  # positions of values the table has columns for
        if not set(tr.value_columns) <= self.table_cols:
            self.value_keep = [i for i, c in enumerate(tr.value_columns) if c in self.table_cols]
        self.insert_cols = [*(c for c in tr.value_columns if c in self.table_cols), "key"]

    def run(self, *, full: bool, overlap: float) -> None:
        """Pull everything changed since the cursor (or everything when full / first run)."""
        cursor = None if full else self.store.cursor_get(self.portal, self.tbl)
        flt = since_filter(cursor, overlap)
        # fetched on a thread while the chunks are written (connector/sync/fetch.py); the cursor is the
        # first answer's server time and advances in the transaction that commits the last chunk
        # the whole scan without the cyclic collector: decoded items and value lists hold no cycles, yet
        # its passes (one per 700 new containers) rescan the queued chunks and now and then the
        # whole heap (0.8 s of collector time in a 100,000-item first sync, measured with gc.callbacks);
        # and one WAL checkpoint at the end instead of one per 4 MB written
        stream = ItemStream(self.client, self.pmap, flt, chunk=CHUNK, collect_ids=full)
        with self.store.deferred_checkpoints(), _no_cyclic_gc(), stream:
            server, local = stream.first_response()
            self.clock_offset = clock_offset(server.get("date_start"), local)
            new_cursor = str(server.get("date_start") or "") or None
            for chunk in stream:
                self._apply(chunk.items, new_cursor if chunk.last else None)
        self.seen_ids = stream.seen_ids  # every live id, after a full pull (the deletion reconcile)
        self._warn_unknown_options()
        self._warn_duplicates()

    def absorb(self, items: list[dict[str, Any]]) -> set[str]:
        """Merge items read just before a push (its pre-read) like pulled ones; the keys it changed."""
        self.changed_keys = set()
        self._apply(items, None)
        self._warn_duplicates()
        return set(self.changed_keys)

    def _warn_duplicates(self) -> None:
        """One warning naming the portal items that share an xmlId (each got its own local row)."""
        if not self.duplicate_xml:
            return
        shown = "; ".join(
            f"{x!r}: items {', '.join(str(i) for i in sorted(ids))}"
            for x, ids in sorted(self.duplicate_xml.items())
        )
        self.warnings.append(
            f"{self.tbl}: portal items share an xmlId ({shown}); each is kept as its own local row "
            "(only the first one found uses the xmlId as its key)"
        )
        self.duplicate_xml = {}

    def _warn_unknown_options(self) -> None:
        """One warning per enumeration field that still holds option ids no template option maps to."""
        for code, ids in sorted(self.tr.unknown_options.items()):
            shown = ", ".join(str(i) for i in sorted(ids))
            marks = ", ".join(repr(option_marker(i)) for i in sorted(ids)[:3])
            self.warnings.append(
                f"{self.tbl}: field {code!r} holds portal option id(s) {shown} that no template option "
                f"maps to (added on the portal by hand?); those rows keep {marks} in the store, which is "
                "never sent back; add the option to the template (`b24sync apply`), then `sync --full`"
            )

    def _translate(self, items: list[dict[str, Any]]) -> Translated:
        """Items -> store values by portal id (a later copy wins), their xmlIds, and the items that failed."""
        values: dict[int, list[Any]] = {}
        xml: dict[int, str] = {}
        failed: list[tuple[dict[str, Any], Exception]] = []
        to_values = self.tr.to_values
        for item in items:
            try:
                vals = to_values(item, BULK_NULL)
            except (TranslationError, ValueError, KeyError) as exc:
                failed.append((item, exc))
                continue
            values[vals[0]] = vals
            x = item.get("xmlId")
            if x:
                xml[vals[0]] = str(x)
        return values, xml, failed

    def _unknown_count(self) -> int:
        return sum(len(v) for v in self.tr.unknown_options.values())

    def _translate_refreshing(self, items: list[dict[str, Any]]) -> Translated:
        """Translate; an option id the map does not know re-reads the maps once per run and retries."""
        seen = self._unknown_count()
        out = self._translate(items)
        if self.refresh is not None and not self.refreshed and self._unknown_count() > seen:
            self.refreshed = True
            fresh = self.refresh()
            if fresh is not None:
                self._use(fresh)
                out = self._translate(items)
        return out

    def _held_back(self, cursor: str | None) -> str | None:
        """The new cursor, kept at the oldest item that failed to translate so the next run retries it."""
        if cursor is None or self.failed_since is None:
            return cursor
        try:
            at = parse_moment(cursor)
        except ValueError:  # not a datetime, or one without an offset
            return cursor
        return self.failed_since.isoformat() if self.failed_since < at else cursor

    # ---- one chunk, one transaction ----

    def _apply(self, items: list[dict[str, Any]], cursor: str | None) -> None:
        with _no_cyclic_gc():
            self._apply_chunk(items, cursor)

    def _note_gone_fields(self, items: list[dict[str, Any]]) -> None:
        """Fields whose key is missing from every item read were deleted on the portal (by hand):
        their values are unknown, not emptied, so local values stay (and writes of them fail)."""
        if not items:
            return
        for f in self.pmap.fields:
            if f.uf_name in items[0] or any(f.uf_name in i for i in items):
                continue
            if f.code not in self.gone_cols:
                self.warnings.append(
                    f"{self.tbl}: field {f.code!r} ({f.uf_name}) is not on the portal any more (deleted "
                    "by hand?); local values are kept and edits of it fail until `b24sync apply` adds it"
                )
            cols = [f.code, f"{f.code}_currency"] if f.type == "money" and not f.multiple else [f.code]
            for c in cols:
                self.gone_cols[c] = f.code

    def _apply_chunk(self, items: list[dict[str, Any]], cursor: str | None) -> None:
        self._note_gone_fields(items)
        values, xml, failed = self._translate_refreshing(items)
        for item, exc in failed:
            self.failures.append(
                FailedRow(
                    process=self.tbl,
                    id=int(item.get("id") or 0),
                    direction="pull",
                    error=f"cannot translate item: {exc}",
                )
            )
            self.figures.failed += 1
            self._remember_failure(item.get("updatedTime"))
        cursor = self._held_back(cursor)
        with self.store.engine_writes() as conn:
            if values:
                self._apply_values(conn, values, xml)
            if cursor:
                self.store.cursor_set(self.portal, self.tbl, cursor)
        if self.progress and items:
            self.progress("pull", len(items))

    def _remember_failure(self, updated: Any) -> None:
        try:
            at = local_moment(str(updated), UTC)
        except ValueError:
            at = datetime(1970, 1, 1, tzinfo=UTC)  # unknown time: retry everything since the old cursor
        self.failed_since = at if self.failed_since is None else min(self.failed_since, at)

    def _load_local(self, conn: sqlite3.Connection) -> None:
        """Pending (and failed) local changes and open conflicts, read inside the write transaction."""
        self.pending = {c.key: c for c in self.store.unsynced_changes(self.tbl)}
        self.pending_delete_ids = {
            c.portal_id: c for c in self.pending.values() if c.op == "D" and c.portal_id is not None
        }
        self.open_conflicts = {c.key: c for c in self.store.list_conflicts(self.tbl, "open")}

    def _apply_values(
        self, conn: sqlite3.Connection, values: dict[int, list[Any]], xml: dict[int, str]
    ) -> None:
        """Items new to the store go straight in as value lists (rows, bases and first stages in bulk
        SQL); items known locally (or in a local delete, or whose xmlId is a local key) are settled."""
        self._load_local(conn)
        known = rows.present(conn, self.tbl, "id", list(values))
        taken = rows.present(conn, self.tbl, "key", [x for i, x in xml.items() if i not in known])
        cols = self.tr.value_columns
        others: dict[int, dict[str, Any]] = {}
        new_rows: list[list[Any]] = []
        if known or taken or self.pending_delete_ids:
            for pid, vals in values.items():
                if pid in known or pid in self.pending_delete_ids or xml.get(pid) in taken:
                    others[pid] = {c: None if v is BULK_NULL else v for c, v in zip(cols, vals, strict=True)}
                else:
                    new_rows.append(vals)
        else:  # a backfill: every item is new here
            new_rows = list(values.values())
        if self.value_keep is not None:
            new_rows = [[vals[i] for i in self.value_keep] for vals in new_rows]
        keys = new_keys(len(new_rows))
        if xml:
            used: dict[str, int] = {}
            for n, vals in enumerate(new_rows):
                x = xml.get(vals[0])
                if not x:
                    continue
                if x in used:  # portal data we don't control: two items, one xmlId
                    self.duplicate_xml.setdefault(x, [used[x]]).append(vals[0])
                else:
                    used[x] = vals[0]
                    keys[n] = x
        for vals, key in zip(new_rows, keys, strict=True):
            vals.append(key)
        if others:
            self._apply_rows(conn, others, xml)
        if new_rows:
            self.figures.pulled += self.store.insert_new_rows(self.tbl, self.insert_cols, new_rows, self.cols)

    def _apply_rows(
        self, conn: sqlite3.Connection, remote: dict[int, dict[str, Any]], xml: dict[int, str]
    ) -> None:
        by_id = rows.rows_by(conn, self.tbl, "id", list(remote))
        missing_xml = [x for i, x in xml.items() if i not in by_id]
        by_key = rows.rows_by(conn, self.tbl, "key", missing_xml) if missing_xml else {}
        locals_: dict[int, dict[str, Any]] = {}
        for pid in remote:
            if pid in by_id:
                locals_[pid] = by_id[pid]
            elif pid in xml and xml[pid] in by_key and by_key[xml[pid]].get("id") in (None, pid):
                locals_[pid] = by_key[xml[pid]]  # our create whose response was lost
        by_key_read = {r["key"]: r for r in locals_.values()}
        known = bases.bases_of(conn, self.tbl, list(by_key_read), by_key_read) if locals_ else {}
        w = _Writes()
        for pid, rr in remote.items():
            local = locals_.get(pid)
            if local is None:
                self._new_row(conn, pid, rr, xml, by_key, w)
            else:
                self._known_row(conn, pid, rr, local, known.get(local["key"], (None, None)), w)
        self._write(conn, w)

    def _new_row(
        self,
        conn: sqlite3.Connection,
        pid: int,
        rr: dict[str, Any],
        xml: dict[int, str],
        by_key: dict[Any, dict[str, Any]],
        w: _Writes,
    ) -> None:
        """An item not known locally: insert it (its base is the row itself) and its first stage."""
        if pid in self.pending_delete_ids:
            self._remote_vs_local_delete(conn, pid, rr, w)
            return
        key = xml[pid] if pid in xml and xml[pid] not in by_key else new_key()
        if pid in xml and xml[pid] in by_key:
            other = by_key[xml[pid]].get("id")
            self.duplicate_xml.setdefault(xml[pid], [other] if other else []).append(pid)
        self.changed_keys.add(key)
        w.inserts.append({**rr, "key": key})
        w.base_keys.append(key)
        at = rr.get("moved_time") or rr.get("created_time") or rr.get("updated_time")
        if rr.get("stage") and at:
            w.moves.append((key, pid, rr.get("funnel"), None, rr["stage"], at, "pull"))
        self.figures.pulled += 1

    def _known_row(
        self,
        conn: sqlite3.Connection,
        pid: int,
        rr: dict[str, Any],
        local: dict[str, Any],
        base: tuple[str | None, dict[str, Any] | None],
        w: _Writes,
    ) -> None:
        """An item known locally: skip it when nothing changed, else merge it with local edits."""
        key = local["key"]
        base_ut, base_data = base
        if self.gone_cols:  # unknown on the portal: as if unchanged since the base
            known = base_data if base_data is not None else local
            rr = {**rr, **{c: known.get(c) for c in self.gone_cols}}
        remote = self._synced(rr)
        if (
            base_data is not None
            and base_ut == rr.get("updated_time")
            and local.get("id") == pid
            and not diff(remote, base_data, self.cols)
        ):
            self.figures.skipped += 1  # same (id, updatedTime) and same values: already known
            return
        self.changed_keys.add(key)
        prior = base_data.get("stage") if base_data is not None else local.get("stage")
        at = rr.get("moved_time") or rr.get("updated_time")
        if rr.get("stage") and prior != rr["stage"] and at:  # a move seen on the portal, whoever wins
            w.moves.append((key, pid, rr.get("funnel"), prior, rr["stage"], at, "pull"))
        ro = {c: rr.get(c) for c in READ_ONLY if c in self.row_cols}
        undelete = {"deleted": 0, "deleted_at": None} if local.get("deleted") else {}
        if key not in self.pending and key not in self.open_conflicts:
            w.updates.append((key, {**remote, **ro, **undelete}))
            w.base_keys.append(key)
            self.figures.pulled += 1
            return
        merged = self._settle(conn, key, pid, local, rr, base_data)
        w.updates.append((key, {**merged, **ro, **undelete}))
        self._set_base(conn, key, rr)
        self.figures.pulled += 1

    def _synced(self, row: dict[str, Any]) -> dict[str, Any]:
        return {c: row.get(c) for c in self.cols}

    def _settle(
        self,
        conn: sqlite3.Connection,
        key: str,
        pid: int,
        local: dict[str, Any],
        rr: dict[str, Any],
        base_data: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The merged values of a row with local changes (or an open conflict) and a changed portal item.

        The portal snapshot becomes the base (the caller writes it): what the merged row still holds
        that the portal does not is exactly what the next push sends. Clashes are recorded.
        """
        ch = self.pending.get(key)
        remote = self._synced(rr)
        if base_data is None:  # our create whose response was lost: what it sent is unknown, so
            # the row's values stand as local edits, and columns it left empty take the portal's
            arrays = array_columns(self.pmap)
            base = {c: local.get(c) if unset(c, local.get(c), arrays) else remote.get(c) for c in self.cols}
        else:
            base = base_data
        conflict = self.open_conflicts.get(key)
        keep = set(conflict.fields) if conflict is not None and "deleted" not in conflict.fields else set()
        s = merge3(
            self.policy,
            base,
            self._synced(local),
            remote,
            self.cols,
            local_at=server_time(ch.last_at, self.clock_offset) if ch is not None else None,
            remote_at=rr.get("updated_time"),
            keep_local=keep,
        )
        if conflict is not None:
            self._refresh_conflict(conn, conflict, s.open_fields, local, remote)
        elif s.clashing:
            self.figures.conflicts += 1
            cid = self.store.add_conflict(
                self.tbl, key, pid, s.clashing, self._synced(local), remote, base, self.policy
            )
            if not s.open_fields:
                self.store.resolve_conflict(cid, s.resolution)
        if ch is not None and not s.push and not s.open_fields:
            changelog.mark_done(conn, ch.seqs)
        return s.row

    def _refresh_conflict(
        self,
        conn: sqlite3.Connection,
        conflict: Conflict,
        open_fields: list[str],
        local: dict[str, Any],
        remote: dict[str, Any],
    ) -> None:
        """An open conflict shows the latest values of both sides; it closes once they agree."""
        if not open_fields:
            self.store.resolve_conflict(conflict.id, "merged")
            return
        conflicts.update_conflict(
            conn,
            conflict.id,
            fields=sorted(set(open_fields), key=self.cols.index),
            local=self._synced(local),
            remote=remote,
        )

    def _set_base(self, conn: sqlite3.Connection, key: str, rr: dict[str, Any]) -> None:
        bases.base_set(conn, self.tbl, key, rr["id"], rr.get("updated_time"), self._synced(rr))

    def _remote_vs_local_delete(
        self, conn: sqlite3.Connection, pid: int, rr: dict[str, Any], w: _Writes
    ) -> None:
        """Deleted locally, changed on the portal since the base (values compared, not just the
        second-resolution updatedTime): settle by policy, keep both sides in a conflict."""
        ch = self.pending_delete_ids[pid]
        base = bases.bases_of(conn, self.tbl, [ch.key]).get(ch.key)
        remote = self._synced(rr)
        if base is not None and not diff(remote, base[1], self.cols):
            return  # the portal did not change the item: the delete will be pushed
        self.changed_keys.add(ch.key)
        full = {**remote, **{c: rr.get(c) for c in READ_ONLY}}
        existing = self.open_conflicts.get(ch.key)
        if existing is not None:  # still waiting for `resolve`: show the latest portal values
            conflicts.update_conflict(conn, existing.id, remote=full)
            return
        self.figures.conflicts += 1
        cid = self.store.add_conflict(
            self.tbl,
            ch.key,
            pid,
            ["deleted"],
            {"deleted": True},
            full,
            base[1] if base else None,
            self.policy,
        )
        policy = self.policy
        if policy == "newest-wins":
            local_at = server_time(ch.last_at, self.clock_offset) or ""
            policy = "local-wins" if local_at > (rr.get("updated_time") or "") else "remote-wins"
        if policy == "remote-wins":
            changelog.mark_done(conn, ch.seqs)
            w.inserts.append({**rr, "key": ch.key})
            w.base_keys.append(ch.key)
            self.store.resolve_conflict(cid, "remote")
        elif policy == "local-wins":
            self._set_base(conn, ch.key, rr)  # the delete goes ahead against what the portal holds now
            self.store.resolve_conflict(cid, "local")

    def _write(self, conn: sqlite3.Connection, w: _Writes) -> None:
        if w.inserts:
            names = ["key", *self.row_cols]
            rows.insert_rows(conn, self.tbl, names, [[r.get(n) for n in names] for r in w.inserts])
        rows.update_rows(conn, self.tbl, w.updates)
        self.store.base_from_rows(self.tbl, w.base_keys, self.cols)
        if w.moves:
            self.store.add_stage_moves(self.tbl, w.moves)


class _Writes:
    """What one chunk writes: new rows, updated rows, rows whose base is their new value, stage moves."""

    def __init__(self) -> None:
        self.inserts: list[dict[str, Any]] = []
        self.updates: list[tuple[str, dict[str, Any]]] = []
        self.base_keys: list[str] = []
        self.moves: list[StageMoveRow] = []


def server_time(local_utc: str | None, offset: float) -> str | None:
    """A local-clock UTC time (change log `at`) moved onto the portal's clock by `offset` seconds."""
    if not local_utc or not offset:
        return local_utc
    return utc_text(parse_moment(local_utc, UTC) + timedelta(seconds=offset))
