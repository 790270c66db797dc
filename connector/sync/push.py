"""Push: drain the change log of one process to the portal, up to 50 writes per HTTP request.

Only fields that differ from the base are sent; a write that changes nothing is not sent. Before
updates and deletes, one batched read of those items merges what changed on the portal since the
base (so `--push-only` never overwrites a portal edit). Creates carry the row key in `xmlId`; keys of
creates in flight are remembered in the store (store/inflight.py) so that after a lost response (or a
kill) the item is looked up by xmlId before any re-send. The portal's answer is written back with a
compare-and-set on the row (a local edit made meanwhile survives), becomes the new base (echo
suppression), and is compared with what was sent: a value the portal did not keep is a row failure.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connector.crm.items import (
    WRITE_OUTCOME_UNKNOWN,
    ItemTranslator,
    ProcessMap,
    TranslationError,
    WriteOp,
    WriteResult,
    find_by_xml_ids,
    normalize,
    read_items,
    write_items,
)
from connector.store import Change, Store, bases, changelog, inflight, rows
from connector.sync.conflicts import array_columns, diff, unset
from connector.sync.pull import READ_ONLY
from connector.sync.report import FailedRow, ProcessFigures

if TYPE_CHECKING:
    from connector.rest import Client

MAX_ROUNDS = 3
Absorb = Callable[[list[dict[str, Any]]], set[str]]


@dataclass
class Planned:
    """One write of a wave: the op, the log rows it drains, and the row as read when it was built."""

    op: WriteOp
    seqs: list[int]
    read: dict[str, Any]  # the row as read from the store
    sent: dict[str, Any]  # the row the op was built from (parent keys resolved)
    base: dict[str, Any] = field(default_factory=dict)


class Pusher:
    """Push one process's pending local changes."""

    def __init__(
        self,
        store: Store,
        client: Client,
        pmap: ProcessMap,
        tr: ItemTranslator,
        *,
        portal: str,
        figures: ProcessFigures,
        failures: list[FailedRow],
        key_to_id: Callable[[str, str], int | None],
        progress: Callable[[str, int], None] | None = None,
        absorb: Absorb | None = None,
    ) -> None:
        self.store, self.client, self.pmap, self.tr = store, client, pmap, tr
        self.tbl = pmap.code
        self.portal, self.figures, self.failures = portal, figures, failures
        self.key_to_id, self.progress = key_to_id, progress
        self.cols = [c for c in pmap.columns()]
        self.arrays = array_columns(pmap)
        self.files = {f.code for f in pmap.fields if f.type == "file"}
        self.absorb = absorb
        self.requeue: set[str] = set()  # rows to plan again in this run (an insert with a made-up id)

    # ---- entry point ----

    def run(self) -> None:
        """Push until nothing pushable is left (parents before children, retrying lost responses)."""
        self.store.retry_failed(self.tbl)
        done_keys: set[str] = set()
        for _round in range(MAX_ROUNDS):
            try:
                self._resolve_inflight()
                if _round == 0:
                    self._pre_read()
                while True:
                    wave = self._next_wave(done_keys)
                    if not wave:
                        break
                    self._send(wave, done_keys)
                self._fail_waiting(done_keys)
                return
            except WRITE_OUTCOME_UNKNOWN:
                continue  # outcome unknown: look the creates up again and resend the rest
        for ch in self.store.pending_changes(self.tbl):
            self._fail(ch.key, ch.seqs, "the portal did not confirm the write after several attempts")

    def _fail_waiting(self, done_keys: set[str]) -> None:
        """Rows still waiting for a parent that never reached the portal fail with that reason."""
        for ch in self.store.pending_changes(self.tbl):
            row = self._row(ch.key)
            if ch.key in done_keys or row is None:
                continue
            missing = self._resolve_parents(row)
            if missing is not None:
                self._fail(
                    ch.key, ch.seqs, f"parent row {missing!r} is not on the portal yet (its push failed)"
                )

    # ---- building a wave ----

    def _row(self, key: str) -> dict[str, Any] | None:
        return rows.row(self.store.conn, self.tbl, key)

    def _base(self, key: str) -> dict[str, Any] | None:
        """The base data of a row (what both sides agreed on), None when it never synced."""
        base = bases.base_get(self.store.conn, self.tbl, key)
        return base.data if base is not None else None

    def _open_fields(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for c in self.store.list_conflicts(self.tbl, "open"):
            out.setdefault(c.key, set()).update(c.fields)
        return out

    def _resolve_parents(self, row: dict[str, Any]) -> str | None:
        """Fill parent_<code> from parent_<code>_key; return the key of a parent not yet pushed.

        A key whose row is a tombstone (`key_to_id` gives 0) is stale: no link is made through it.
        """
        for target in self.pmap.parents:
            pkey = row.get(f"parent_{target}_key")
            if pkey and not row.get(f"parent_{target}"):
                pid = self.key_to_id(target, pkey)
                if pid is None:
                    return str(pkey)
                if pid:
                    row[f"parent_{target}"] = pid
        return None

    def _next_wave(self, done_keys: set[str]) -> list[Planned]:
        wave: list[Planned] = []
        open_fields = self._open_fields()
        for ch in self.store.pending_changes(self.tbl):
            if len(wave) >= 50:
                break
            if ch.key in done_keys:
                continue
            try:
                planned = self._plan(ch, open_fields.get(ch.key, set()))
            except (TranslationError, ValueError) as exc:
                self._fail(ch.key, ch.seqs, str(exc))
                continue
            if isinstance(planned, str):  # "wait": a parent goes first
                continue
            if planned is None:
                self.store.mark_done(ch.seqs)
                self.figures.unchanged += 1
                continue
            wave.append(planned)
            done_keys.add(ch.key)
        return wave

    def _plan(self, ch: Change, blocked: set[str]) -> Planned | str | None:
        """The write for one pending change: Planned, None (nothing to send) or 'wait' (parent first)."""
        read = self._row(ch.key)
        if ch.op == "D" or read is None:
            if ch.portal_id is None:
                return None
            if blocked:
                return "wait"
            return Planned(WriteOp(op="delete", ref=ch.key, id=int(ch.portal_id)), ch.seqs, {}, {})
        if read.get("deleted"):
            return None  # a tombstone: the item is gone from the portal (local edits of it are refused)
        row = dict(read)
        if self._resolve_parents(row) is not None:
            return "wait"
        if row.get("id") is None:
            cols = [c for c in self.cols if c not in self.files and not unset(c, row.get(c), self.arrays)]
            if self.pmap.stages_enabled and "funnel" not in cols:
                cols.append("funnel")  # the category is always explicit on create: no portal guesswork
            fields = self.tr.to_fields(row, cols)
            fields["xmlId"] = ch.key
            return Planned(WriteOp(op="add", ref=ch.key, fields=fields), ch.seqs, read, row)
        base_data = self._base(ch.key) or {}
        changed = [c for c in diff(row, base_data, self.cols) if c not in self.files and c not in blocked]
        if not changed:
            return None
        fields = self.tr.to_fields(row, changed)
        if not fields:
            if "assigned_by_id" in changed and row.get("assigned_by_id") is None:
                raise TranslationError(
                    "field 'assigned_by_id': NULL cannot be written, the portal needs a responsible "
                    "user; set a user id"
                )
            return None  # nothing the portal stores changed (never send an update with empty fields)
        op = WriteOp(op="update", ref=ch.key, id=int(row["id"]), fields=fields)
        return Planned(op, ch.seqs, read, row, base_data)

    # ---- the pre-read: merge portal edits before overwriting them ----

    def _pre_read(self) -> None:
        """One batched read of every item about to be updated or deleted (2,500 per request); rows the
        portal changed since the base are merged first (policy applied), so nothing is overwritten."""
        if self.absorb is None:
            return
        ids = [int(ch.portal_id) for ch in self.store.pending_changes(self.tbl) if ch.portal_id is not None]
        if not ids:
            return
        items = read_items(self.client, self.pmap, ids)
        if items:
            self.absorb(items)

    # ---- lost creates ----

    def _resolve_inflight(self) -> None:
        keys = inflight.inflight_keys(self.store.conn, self.tbl)
        if not keys:
            return
        found = find_by_xml_ids(self.client, self.pmap, keys)
        with self.store.engine_writes() as conn:
            for key, item in found.items():
                row = self._row(key)
                if row is not None and row.get("id") is None:
                    # what the lost create sent is unknown: the row keeps every value it holds (a later
                    # push sends what differs), and takes the portal's values where it holds none
                    rr = self.tr.to_row(item)
                    empty = [c for c in self.cols if unset(c, row.get(c), self.arrays)]
                    self._write_back(conn, key, row, row, rr, sent_cols=[], take=empty)
            inflight.drop_inflight(conn, self.tbl, keys)

    # ---- sending ----

    def _send(self, wave: list[Planned], done_keys: set[str]) -> None:
        ops = [p.op for p in wave]
        creates = [o.ref for o in ops if o.op == "add"]
        if creates:
            with self.store.transaction() as conn:
                inflight.add_inflight(conn, self.tbl, creates)
        try:
            results = write_items(self.client, self.pmap, ops)
        except WRITE_OUTCOME_UNKNOWN:
            for o in ops:
                done_keys.discard(o.ref)
            raise
        planned = {p.op.ref: p for p in wave}
        failures: list[tuple[str, list[int], str]] = []
        with self.store.engine_writes() as conn:
            for res in results:
                error = self._record(conn, res, planned[res.ref])
                if error is not None:
                    failures.append((res.ref, planned[res.ref].seqs, error))
            if creates:
                inflight.drop_inflight(conn, self.tbl, creates)
        for key, seqs, error in failures:
            self._fail(key, seqs, error)
        done_keys.difference_update(self.requeue)
        self.requeue.clear()
        if self.progress:
            self.progress("push", len(ops))

    def _record(self, conn: sqlite3.Connection, res: WriteResult, p: Planned) -> str | None:
        """Write one answer back (compare-and-set); the error text of a row failure, else None."""
        op = p.op
        if res.error is not None:
            if res.not_found and op.op == "delete":
                self._done(conn, p.seqs)
                self.figures.deleted_remote += 1
                self.store.base_delete(self.tbl, op.ref)
                return None
            if res.not_found and op.op == "update" and self._base(op.ref) is None:
                # a local INSERT with an id the portal does not have: it is created (the id is the
                # portal's to give), so the row loses the id and the next wave sends a create
                rows.set_values(conn, self.tbl, op.ref, {"id": None})
                self.requeue.add(op.ref)
                return None
            if res.not_found and op.op == "update":
                self._tombstone(conn, op.ref, p.seqs)
                return None
            return res.error
        if op.op == "delete":
            self._done(conn, p.seqs)
            self.store.base_delete(self.tbl, op.ref)
            self.figures.deleted_remote += 1
            return None
        rr = self.tr.to_row(res.item or {})
        row = self._row(op.ref)
        self._done(conn, p.seqs)
        if row is None:  # deleted locally while the write was in flight: its delete goes next
            changelog.set_pending_portal_id(conn, self.tbl, op.ref, rr["id"])
            self._set_base(conn, op.ref, rr)
            return None
        sent = self._sent_cols(op, p.sent)
        sent_cols = [c for c in self.cols if c in sent]
        lost = [c for c in sent_cols if not self._kept(c, p.sent, rr)]
        # compare-and-set: columns logged after the change we pushed, or whose value moved since read
        later = changelog.columns_logged_after(conn, self.tbl, op.ref, max(p.seqs))
        edited = [c for c in self.cols if c in later or not _same(row.get(c), p.read.get(c))]
        unsent_local = [
            c for c in self.cols if c not in sent_cols and not _same(p.read.get(c), p.base.get(c))
        ]
        if op.op == "add":
            unsent_local = [
                c for c in self.cols if c not in sent_cols and not unset(c, p.read.get(c), self.arrays)
            ]
        keep = set(lost) | set(edited) | set(unsent_local)
        self._write_back(
            conn, op.ref, row, p.sent, rr, sent_cols=sent_cols, take=[c for c in self.cols if c not in keep]
        )
        if op.op == "add":
            self.figures.created += 1
        else:
            self.figures.updated += 1
        if lost:
            return "; ".join(self._lost_text(c, p.sent, rr) for c in lost)
        return None

    def _kept(self, col: str, sent: dict[str, Any], rr: dict[str, Any]) -> bool:
        """Whether the portal stored what was sent for `col` (compared in the portal's own form)."""
        if col == "title" and not sent.get("title"):
            return True  # an empty title becomes the portal's default title
        try:
            ours = self.tr.to_fields(sent, [col])
        except (TranslationError, ValueError):
            return True  # not sent
        try:
            theirs = self.tr.to_fields({**sent, **rr}, [col])
        except (TranslationError, ValueError):
            return False
        return all(_portal_same(v, theirs.get(k)) for k, v in ours.items())

    def _lost_text(self, col: str, sent: dict[str, Any], rr: dict[str, Any]) -> str:
        return (
            f"field {col!r}: the portal did not keep {sent.get(col)!r} (it holds {rr.get(col)!r}); the "
            "value is not valid there or no longer exists on the portal (deleted by hand?); the local "
            "value is kept until it is fixed"
        )

    def _sent_cols(self, op: WriteOp, row: dict[str, Any]) -> set[str]:
        cols = set()
        for c in self.cols:
            try:
                if self.tr.to_fields(row, [c]).keys() & op.fields.keys():
                    cols.add(c)
            except (TranslationError, ValueError):
                continue  # a column that cannot be written (e.g. an unknown-option marker) was not sent
        return cols

    def _write_back(
        self,
        conn: sqlite3.Connection,
        key: str,
        row: dict[str, Any],
        sent: dict[str, Any],
        rr: dict[str, Any],
        *,
        sent_cols: list[str],
        take: list[str],
    ) -> None:
        """After a write: the returned item is the new base; the row takes the portal's values of the
        columns in `take` (what it stored for what we sent, or its own changes) and keeps the rest."""
        base = self._base(key)
        new_vals: dict[str, Any] = {c: rr.get(c) for c in READ_ONLY}
        for c in self.cols:
            if c in take or (c in self.files and rr.get(c) is not None):
                new_vals[c] = rr.get(c)
        rows.set_values(conn, self.tbl, key, new_vals)
        self._set_base(conn, key, rr)
        old_stage = base.get("stage") if base is not None else None
        if rr.get("stage") and rr.get("stage") != old_stage:
            at = rr.get("moved_time") or rr.get("updated_time")
            if at:
                self.store.add_stage_move(
                    self.tbl, key, rr["id"], rr.get("funnel"), old_stage, rr["stage"], at, "push"
                )

    def _set_base(self, conn: sqlite3.Connection, key: str, rr: dict[str, Any]) -> None:
        synced = {c: rr.get(c) for c in self.cols}
        bases.base_set(conn, self.tbl, key, rr["id"], rr.get("updated_time"), synced)

    def _tombstone(self, conn: sqlite3.Connection, key: str, seqs: list[int]) -> None:
        """The item was deleted on the portal while edited locally: keep the edit in a conflict."""
        row = self._row(key) or {}
        cid = self.store.add_conflict(
            self.tbl,
            key,
            row.get("id"),
            ["deleted"],
            {c: row.get(c) for c in self.cols},
            {"deleted": True},
            None,
            "remote-deleted",
        )
        self.store.resolve_conflict(cid, "remote")
        rows.tombstone(conn, self.tbl, key)
        self._done(conn, seqs)
        self.figures.tombstoned += 1
        self.figures.conflicts += 1

    def _done(self, conn: sqlite3.Connection, seqs: list[int]) -> None:
        changelog.mark_done(conn, seqs)

    def _fail(self, key: str, seqs: list[int], error: str) -> None:
        self.store.mark_failed(seqs, error)
        self.figures.failed += 1
        row = self._row(key)
        self.failures.append(
            FailedRow(process=self.tbl, key=key, id=(row or {}).get("id"), direction="push", error=error)
        )


def _same(a: Any, b: Any) -> bool:
    return normalize(a) == normalize(b)


def _portal_same(a: Any, b: Any) -> bool:
    """Two values in the portal's form (lists compared without empty entries)."""
    if isinstance(a, list) or isinstance(b, list):
        a = [normalize(v) for v in (a or []) if v not in (None, "")]
        b = [normalize(v) for v in (b or []) if v not in (None, "")]
        return a == b
    return normalize(a) == normalize(b)
