"""Push: drain the change log of one process to the portal, up to 50 writes per HTTP request.

Only fields that differ from the base are sent; a write that changes nothing is not sent. Creates
carry the row key in `xmlId`; keys of creates in flight are remembered in `_sync_inflight` so that
after a lost response (or a kill) the item is looked up by xmlId before any re-send. Returned items
become the new base (echo suppression).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from connector.crm.items import (
    WRITE_OUTCOME_UNKNOWN,
    ItemTranslator,
    ProcessMap,
    TranslationError,
    WriteOp,
    WriteResult,
    find_by_xml_ids,
    write_items,
)
from connector.sync.conflicts import diff
from connector.sync.pull import READ_ONLY, q, qmarks
from connector.sync.report import FailedRow, ProcessFigures

INFLIGHT_DDL = """CREATE TABLE IF NOT EXISTS _sync_inflight (
    tbl TEXT NOT NULL, key TEXT NOT NULL, at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (tbl, key))"""
MAX_ROUNDS = 3


class Pusher:
    """Push one process's pending local changes."""

    def __init__(
        self,
        store: Any,
        client: Any,
        pmap: ProcessMap,
        tr: ItemTranslator,
        *,
        portal: str,
        figures: ProcessFigures,
        failures: list[FailedRow],
        key_to_id: Callable[[str, str], int | None],
        progress: Callable[[str, int], None] | None = None,
    ) -> None:
        self.store, self.client, self.pmap, self.tr = store, client, pmap, tr
        self.tbl = pmap.code
        self.portal, self.figures, self.failures = portal, figures, failures
        self.key_to_id, self.progress = key_to_id, progress
        self.cols = [c for c in pmap.columns()]
        self.files = {f.code for f in pmap.fields if f.type == "file"}
        store.conn.execute(INFLIGHT_DDL)

    # ---- entry point ----

    def run(self) -> None:
        """Push until nothing pushable is left (parents before children, retrying lost responses)."""
        self.store.retry_failed(self.tbl)
        done_keys: set[str] = set()
        for _round in range(MAX_ROUNDS):
            try:
                self._resolve_inflight()
                while True:
                    ops, seqs = self._next_wave(done_keys)
                    if not ops:
                        break
                    self._send(ops, seqs, done_keys)
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
        cur = self.store.conn.execute(f"SELECT * FROM {q(self.tbl)} WHERE key = ?", (key,))
        r = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], r, strict=True)) if r else None

    def _base(self, key: str) -> tuple[str | None, dict[str, Any]] | None:
        r = self.store.conn.execute(
            "SELECT updated_time, data FROM _base WHERE tbl = ? AND key = ?", (self.tbl, key)
        ).fetchone()
        return (r[0], json.loads(r[1] or "{}")) if r else None

    def _open_fields(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for c in self.store.list_conflicts(self.tbl, "open"):
            out.setdefault(c.key, set()).update(c.fields)
        return out

    def _resolve_parents(self, row: dict[str, Any]) -> str | None:
        """Fill parent_<code> from parent_<code>_key; return the key of a parent not yet pushed."""
        for target in self.pmap.parents:
            pkey = row.get(f"parent_{target}_key")
            if pkey and not row.get(f"parent_{target}"):
                pid = self.key_to_id(target, pkey)
                if pid is None:
                    return str(pkey)
                row[f"parent_{target}"] = pid
        return None

    def _next_wave(self, done_keys: set[str]) -> tuple[list[WriteOp], dict[str, list[int]]]:
        ops: list[WriteOp] = []
        seqs: dict[str, list[int]] = {}
        open_fields = self._open_fields()
        for ch in self.store.pending_changes(self.tbl):
            if len(ops) >= 50:
                break
            if ch.key in done_keys:
                continue
            try:
                op = self._op_for(ch, open_fields.get(ch.key, set()))
            except (TranslationError, ValueError) as exc:
                self._fail(ch.key, ch.seqs, str(exc))
                continue
            if op == "wait":
                continue
            if op is None:
                self.store.mark_done(ch.seqs)
                self.figures.unchanged += 1
                continue
            ops.append(op)
            seqs[ch.key] = ch.seqs
            done_keys.add(ch.key)
        return ops, seqs

    def _op_for(self, ch: Any, blocked: set[str]) -> WriteOp | str | None:
        """The write for one pending change: a WriteOp, None (nothing to send) or 'wait' (parent first)."""
        row = self._row(ch.key)
        if ch.op == "D" or row is None:
            if ch.portal_id is None:
                return None
            if blocked:
                return "wait"
            return WriteOp(op="delete", ref=ch.key, id=int(ch.portal_id))
        if row.get("deleted"):
            return None  # a tombstone: the item is gone from the portal
        waiting = self._resolve_parents(row)
        if waiting is not None:
            return "wait"
        if row.get("id") is None:
            cols = [c for c in self.cols if c not in self.files and row.get(c) not in (None, "", "[]")]
            if self.pmap.stages_enabled and "funnel" not in cols:
                cols.append("funnel")  # the category is always explicit on create: no portal guesswork
            fields = self.tr.to_fields(row, cols)
            fields["xmlId"] = ch.key
            return WriteOp(op="add", ref=ch.key, fields=fields)
        base = self._base(ch.key)
        base_data = base[1] if base else {}
        changed = [c for c in diff(row, base_data, self.cols) if c not in self.files and c not in blocked]
        if not changed:
            return None
        return WriteOp(op="update", ref=ch.key, id=int(row["id"]), fields=self.tr.to_fields(row, changed))

    # ---- lost creates ----

    def _resolve_inflight(self) -> None:
        keys = [
            r[0] for r in self.store.conn.execute("SELECT key FROM _sync_inflight WHERE tbl = ?", (self.tbl,))
        ]
        if not keys:
            return
        found = find_by_xml_ids(self.client, self.pmap, keys)
        with self.store.engine_writes() as conn:
            for key, item in found.items():
                row = self._row(key)
                if row is not None and row.get("id") is None:
                    rr = self.tr.to_row(item)
                    self._adopt(conn, key, row, rr, sent_cols=self.cols)
            conn.execute(
                f"DELETE FROM _sync_inflight WHERE tbl = ? AND key IN ({qmarks(len(keys))})",
                [self.tbl, *keys],
            )

    # ---- sending ----

    def _send(self, ops: list[WriteOp], seqs: dict[str, list[int]], done_keys: set[str]) -> None:
        creates = [o.ref for o in ops if o.op == "add"]
        if creates:
            with self.store.transaction() as conn:
                conn.executemany(
                    "INSERT OR IGNORE INTO _sync_inflight (tbl, key) VALUES (?, ?)",
                    [(self.tbl, k) for k in creates],
                )
        try:
            results = write_items(self.client, self.pmap, ops)
        except WRITE_OUTCOME_UNKNOWN:
            for o in ops:
                done_keys.discard(o.ref)
            raise
        sent = {o.ref: o for o in ops}
        with self.store.engine_writes() as conn:
            for res in results:
                self._record(conn, res, sent[res.ref], seqs[res.ref])
            if creates:
                conn.execute(
                    f"DELETE FROM _sync_inflight WHERE tbl = ? AND key IN ({qmarks(len(creates))})",
                    [self.tbl, *creates],
                )
        if self.progress:
            self.progress("push", len(ops))

    def _record(self, conn: Any, res: WriteResult, op: WriteOp, seqs: list[int]) -> None:
        if res.error is not None:
            if res.not_found and op.op == "delete":
                self._done(conn, seqs)
                self.figures.deleted_remote += 1
                self.store.base_delete(self.tbl, op.ref)
                return
            if res.not_found and op.op == "update":
                self._tombstone(conn, op.ref, seqs)
                return
            self._fail(op.ref, seqs, res.error)
            return
        if op.op == "delete":
            self._done(conn, seqs)
            self.store.base_delete(self.tbl, op.ref)
            self.figures.deleted_remote += 1
            return
        row = self._row(op.ref)
        rr = self.tr.to_row(res.item or {})
        if row is None:  # deleted locally meanwhile: its D change stays pending
            self._done(conn, seqs)
            return
        sent_cols = self.cols if op.op == "add" else [c for c in self.cols if c in self._sent_cols(op, row)]
        self._adopt(conn, op.ref, row, rr, sent_cols=sent_cols)
        self._done(conn, seqs)
        if op.op == "add":
            self.figures.created += 1
        else:
            self.figures.updated += 1

    def _sent_cols(self, op: WriteOp, row: dict[str, Any]) -> set[str]:
        cols = set()
        for c in self.cols:
            try:
                if self.tr.to_fields(row, [c]).keys() & op.fields.keys():
                    cols.add(c)
            except (TranslationError, ValueError):
                continue  # a column that cannot be written (e.g. an unknown-option marker) was not sent
        return cols

    def _adopt(
        self, conn: Any, key: str, row: dict[str, Any], rr: dict[str, Any], *, sent_cols: list[str]
    ) -> None:
        """After a write: the returned item is the new base; the row takes portal values it did not edit."""
        base = self._base(key)
        old_base = base[1] if base else {}
        new_vals: dict[str, Any] = {c: rr.get(c) for c in READ_ONLY}
        for target in self.pmap.parents:
            if row.get(f"parent_{target}") is not None or rr.get(f"parent_{target}") is not None:
                new_vals[f"parent_{target}"] = rr.get(f"parent_{target}")
        for c in self.cols:
            if c in self.files and rr.get(c) is not None:
                new_vals[c] = rr.get(c)
            elif c in sent_cols or not diff(row, old_base, [c]):
                new_vals[c] = rr.get(c)  # what the portal stored for what we sent, or its own change
        sets = ", ".join(f"{q(c)} = ?" for c in new_vals)
        conn.execute(f"UPDATE {q(self.tbl)} SET {sets} WHERE key = ?", [*new_vals.values(), key])
        conn.execute(
            "INSERT INTO _base (tbl, key, portal_id, updated_time, data) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (tbl, key) DO UPDATE SET portal_id = excluded.portal_id, "
            "updated_time = excluded.updated_time, data = excluded.data",
            (
                self.tbl,
                key,
                rr["id"],
                rr.get("updated_time"),
                json.dumps({c: rr.get(c) for c in self.cols}, ensure_ascii=False),
            ),
        )
        old_stage = old_base.get("stage") if base else None
        if rr.get("stage") and rr.get("stage") != old_stage:
            at = rr.get("moved_time") or rr.get("updated_time")
            if at:
                self.store.add_stage_move(
                    self.tbl, key, rr["id"], rr.get("funnel"), old_stage, rr["stage"], at, "push"
                )

    def _tombstone(self, conn: Any, key: str, seqs: list[int]) -> None:
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
        conn.execute(
            f"UPDATE {q(self.tbl)} SET deleted = 1, "
            "deleted_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE key = ?",
            (key,),
        )
        self._done(conn, seqs)
        self.figures.tombstoned += 1
        self.figures.conflicts += 1

    def _done(self, conn: Any, seqs: list[int]) -> None:
        conn.execute(
            f"UPDATE _changes SET status = 'done', error = NULL WHERE seq IN ({qmarks(len(seqs))})", seqs
        )

    def _fail(self, key: str, seqs: list[int], error: str) -> None:
        self.store.mark_failed(seqs, error)
        self.figures.failed += 1
        row = self._row(key)
        self.failures.append(
            FailedRow(process=self.tbl, key=key, id=(row or {}).get("id"), direction="push", error=error)
        )
