"""`sync()`: pull, reconcile deletions, push, for every process of a portal; and conflict resolution."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from connector.crm import events
from connector.crm.items import ItemTranslator, ProcessMap, TypeCodes, list_items
from connector.errors import InputError
from connector.store import Conflict, Store, bases, changelog, conflicts, rows
from connector.sync import lock as lockmod
from connector.sync import maps as mapmod
from connector.sync.conflicts import check_policy
from connector.sync.lock import sync_lock
from connector.sync.pull import Puller
from connector.sync.push import Pusher
from connector.sync.report import FailedRow, ProcessFigures, SyncReport
from connector.sync.rules import after_pull  # stage rules and linked deals, right after the pull

if TYPE_CHECKING:
    from connector.rest import Client
    from connector.templates import Template

OVERLAP_SECONDS = 60.0
Progress = Callable[[str, str, int], None]  # (process, phase "pull"|"push"|"ids", rows)


class SyncError(InputError, RuntimeError):
    """A sync that cannot start: no templates, unknown process, bad policy."""


# ---- templates remembered in the store ----------------------------------------------------


def prepare_store(store: Store, templates: Sequence[Template]) -> None:
    """Create the local tables of applied templates and remember them, so `sync` needs no FILE.

    Every apply runs it (the CLI, `Portal.apply` and scheduled apply jobs), so plain SQL works at once.
    """
    for template in templates:
        store.ensure_process(template)
    remember_templates(store, list(templates))


def remember_templates(store: Store, templates: list[Template]) -> None:
    """Keep the templates used for sync in the store so later runs need no FILE."""
    store.remember_templates((t.code, mapmod.template_json(t)) for t in templates)


def stored_templates(store: Store) -> list[Template]:
    """Templates remembered by earlier syncs (or ensure_process calls through sync)."""
    from connector.templates import Template

    return [Template.model_validate(data) for data in store.remembered_templates()]


def parent_first(templates: list[Template]) -> list[Template]:
    """Templates ordered so that a process comes after the processes it has as parents."""
    by_code = {t.code: t for t in templates}
    out: list[Template] = []
    seen: set[str] = set()

    def visit(t: Template, path: tuple[str, ...]) -> None:
        if t.code in seen or t.code in path:
            return
        for target in mapmod.parent_targets(t):
            if target in by_code:
                visit(by_code[target], (*path, t.code))
        seen.add(t.code)
        out.append(t)

    for t in templates:
        visit(t, ())
    return out


# ---- maps ---------------------------------------------------------------------------------


def resolve_maps(
    client: Client, store: Store, templates: list[Template], portal: str, *, refresh: bool = False
) -> dict[str, ProcessMap]:
    """Process maps for the templates: cached, else from the deploy id map, else read from the portal."""
    maps: dict[str, ProcessMap] = {}
    todo: list[Template] = []
    for t in templates:
        cached = None if refresh else mapmod.load_cached(store, portal, t)
        if cached is not None:
            maps[t.code] = cached
        else:
            todo.append(t)
    if not todo:
        return maps
    entries = store.idmap.all(portal)
    etids: dict[str, int] = {}
    for e in entries:
        if e.kind == "type":
            extra = e.extra or {}
            etids[e.code] = int(extra.get("entityTypeId") or extra.get("entity_type_id") or e.portal_id)
    etids.update({c: m.entity_type_id for c, m in maps.items()})
    from connector.constants import SYSTEM_ENTITY_TYPES

    etids.update(SYSTEM_ENTITY_TYPES)
    unresolved: list[Template] = []
    for t in todo:
        pm = None
        try:
            pm = mapmod.from_idmap(t, [e for e in entries], etids)
        except (ValueError, TypeError, KeyError):
            pm = None
        if pm is None:
            unresolved.append(t)
        else:
            maps[t.code] = pm
    if unresolved:
        maps.update(mapmod.discover(client, unresolved))
        # parents that point at processes discovered in the same call
        all_etids = {**etids, **{c: m.entity_type_id for c, m in maps.items()}}
        for t in unresolved:
            m = maps[t.code]
            m.parents = {x: all_etids[x] for x in mapmod.parent_targets(t) if x in all_etids}
    store.cache_maps(portal, [mapmod.cache_entry(t, maps[t.code]) for t in todo])
    return maps


def refresh_map(
    client: Client, store: Store, template: Template, portal: str, known: ProcessMap
) -> ProcessMap | None:
    """Re-read one process's map from the portal schema (an option id pulled that the map lacks);
    cached for later runs. None when the portal no longer has the process."""
    try:
        fresh = mapmod.discover(client, [template])[template.code]
    except mapmod.MapError:
        return None
    fresh.parents = dict(known.parents)
    store.cache_maps(portal, [mapmod.cache_entry(template, fresh)])
    return fresh


# ---- deletions ----------------------------------------------------------------------------


def tombstone_ids(store: Store, tbl: str, ids: list[int], figures: ProcessFigures) -> None:
    """Mark rows deleted on the portal; local edits of those rows are kept in a conflict."""
    if not ids:
        return
    with store.engine_writes() as conn:
        pending = {c.key: c for c in store.unsynced_changes(tbl)}  # read inside: no lost race
        for row in rows.live_rows_with_ids(conn, tbl, ids):
            ch = pending.get(row["key"])
            if ch is not None and ch.op != "D":
                cid = store.add_conflict(
                    tbl,
                    row["key"],
                    row["id"],
                    ["deleted"],
                    row,
                    {"deleted": True},
                    None,
                    "remote-deleted",
                )
                store.resolve_conflict(cid, "remote")
                changelog.mark_done(conn, ch.seqs)
                figures.conflicts += 1
            rows.tombstone(conn, tbl, row["key"])
            figures.tombstoned += 1


def refresh_open_conflicts(store: Store, pmap: ProcessMap) -> None:
    """Open conflicts show the row's current local values (it may have been edited again since)."""
    cols = pmap.columns()
    with store.engine_writes() as conn:
        for c in store.list_conflicts(pmap.code, "open"):
            row = rows.row(conn, pmap.code, c.key)
            if row is None or "deleted" in c.local or "deleted" in c.remote:
                continue
            local = {k: row.get(k) for k in cols}
            if local != c.local:
                conflicts.update_conflict(conn, c.id, local=local)


def reconcile_ids(
    client: Client, store: Store, pmap: ProcessMap, figures: ProcessFigures, seen: set[int] | None = None
) -> None:
    """Compare the full id set and tombstone what the portal lost: `seen` are the ids a full pull just
    read (no request); without them the ids are scanned (ids only, 2,500 per request)."""
    remote = seen if seen is not None else {int(i["id"]) for i in list_items(client, pmap, select=["id"])}
    local = rows.live_ids(store.conn, pmap.code)
    tombstone_ids(store, pmap.code, [i for i in local if i not in remote], figures)


def _offline_meta(portal: str) -> str:
    return f"sync.offline.{portal}"


def ensure_offline_binding(client: Client, store: Store, portal: str) -> bool:
    """Bind the item-delete event to the offline queue once per portal; False when the app may not."""
    state = store.meta_get(_offline_meta(portal) + ".bound")
    if state in ("yes", "no"):
        return state == "yes"
    state = "yes" if events.bind_item_delete_offline(client) else "no"
    store.meta_set(_offline_meta(portal) + ".bound", state)
    return state == "yes"


def deleted_ids(reservation: events.OfflineReservation, maps: dict[str, ProcessMap]) -> dict[str, list[int]]:
    """Deleted item ids per process code among a reservation's records (other processes are ignored)."""
    by_etid = {m.entity_type_id: code for code, m in maps.items()}
    out: dict[str, list[int]] = {}
    for item in reservation.deleted:
        code = by_etid.get(item.entity_type_id)
        if code is not None:
            out.setdefault(code, []).append(item.id)
    return out


def drain_offline_deletions(
    client: Client, store: Store, portal: str, maps: dict[str, ProcessMap], report: SyncReport
) -> None:
    """Tombstone items deleted on the portal, from the offline queue: reserve (clear=0), commit, clear.

    The reservation's process_id is kept in the store until the clear, so a run killed in between
    re-reads the same records next time (at-least-once; tombstoning twice is harmless).
    """
    if not ensure_offline_binding(client, store, portal):
        report.warnings.append(
            "offline events unavailable (the app is not a portal admin): deletions are found by "
            "`sync --full` only"
        )
        return
    key = _offline_meta(portal) + ".process_id"
    while True:
        pending = store.meta_get(key) or None
        reservation = events.reserve_offline_events(client, pending)
        process_id = reservation.process_id
        if process_id and reservation.records:
            store.meta_set(key, process_id)
        for code, ids in deleted_ids(reservation, maps).items():
            tombstone_ids(store, code, ids, report.processes[code])
        if process_id and reservation.records:
            events.clear_offline_events(client, process_id)
        store.meta_set(key, "")
        if pending is None and reservation.records < events.OFFLINE_LIMIT:
            return


# ---- the run ------------------------------------------------------------------------------


def sync(
    client: Client,
    store: Store,
    templates: list[Template] | None = None,
    *,
    portal_key: str,
    full: bool = False,
    pull: bool = True,
    push: bool = True,
    policy: str = "newest-wins",
    policies: dict[str, str] | None = None,
    progress: Progress | None = None,
    only: list[str] | None = None,
    overlap: float = OVERLAP_SECONDS,
    wait: float | None = None,
) -> SyncReport:
    """Two-way sync of every process in `templates` (or those remembered in the store) with one portal.

    One sync per store at a time: another one running on the same store is waited for up to `wait`
    seconds (default `lock.DEFAULT_WAIT`), then SyncLocked (naming the holder) is raised.
    """
    check_policy(policy)
    for code, p in (policies or {}).items():
        check_policy(p, f"policy for {code!r}")
    with sync_lock(store, lockmod.DEFAULT_WAIT if wait is None else wait) as held:
        report = _sync(
            client,
            store,
            templates,
            portal_key=portal_key,
            full=full,
            pull=pull,
            push=push,
            policy=policy,
            policies=policies,
            progress=progress,
            only=only,
            overlap=overlap,
            heartbeat=held.tick if held is not None else None,
        )
        if held is not None and held.crashed is not None:
            report.warnings.append(
                f"took over the sync lock of a run that crashed ({held.crashed.describe()})"
            )
        return report


def _sync(
    client: Client,
    store: Store,
    templates: list[Template] | None,
    *,
    portal_key: str,
    full: bool,
    pull: bool,
    push: bool,
    policy: str,
    policies: dict[str, str] | None,
    progress: Progress | None,
    only: list[str] | None,
    overlap: float,
    heartbeat: Callable[[], None] | None = None,
) -> SyncReport:
    """The run itself, under the store's sync lock (`heartbeat` is called as it makes progress)."""
    check_policy(policy)
    for code, p in (policies or {}).items():
        check_policy(p, f"policy for {code!r}")
    if templates:
        remember_templates(store, templates)
    else:
        templates = stored_templates(store)
    if not templates:
        raise SyncError("no process templates: pass --template FILE (once; it is then kept in the store)")
    if only:
        known = {t.code for t in templates}
        unknown = [c for c in only if c not in known]
        if unknown:
            raise SyncError(f"unknown process {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    ordered = parent_first(templates)
    for t in ordered:
        store.ensure_process(t)
    started = time.monotonic()
    stats0 = _stats(client)
    report = SyncReport(portal=portal_key)
    report.run_id = store.run_start("sync", portal_key)
    status, error = "ok", None
    try:
        maps = resolve_maps(client, store, ordered, portal_key, refresh=full)
        types = TypeCodes({c: m.entity_type_id for c, m in maps.items()})
        selected = [t for t in ordered if not only or t.code in only]
        trs = {t.code: ItemTranslator(maps[t.code], types) for t in selected}
        for t in selected:
            report.processes[t.code] = ProcessFigures()

        def step(code: str) -> Callable[[str, int], None] | None:
            if progress is None and heartbeat is None:
                return None

            def report_step(phase: str, n: int) -> None:
                if heartbeat is not None:
                    heartbeat()
                if progress is not None:
                    progress(code, phase, n)

            return report_step

        def refresher(t: Template) -> Callable[[], ItemTranslator | None]:
            def refresh() -> ItemTranslator | None:
                fresh = refresh_map(client, store, t, portal_key, maps[t.code])
                if fresh is None:
                    return None
                maps[t.code], trs[t.code] = fresh, ItemTranslator(fresh, types)
                return trs[t.code]

            return refresh

        pullers = {
            t.code: Puller(
                store,
                client,
                maps[t.code],
                trs[t.code],
                portal=portal_key,
                policy=(policies or {}).get(t.code, policy),
                figures=report.processes[t.code],
                failures=report.failures,
                progress=step(t.code),
                refresh=refresher(t),
                warnings=report.warnings,
            )
            for t in selected
        }
        seen: dict[str, set[int] | None] = {}  # ids each full pull read (reused by the reconcile)
        pulled_at: dict[str, float] = {}  # when each process's pull of this run finished (monotonic)
        if pull:
            for t in selected:
                pullers[t.code].run(full=full, overlap=overlap)
                seen[t.code] = pullers[t.code].seen_ids
                pulled_at[t.code] = time.monotonic()
            for t in selected:
                refresh_open_conflicts(store, maps[t.code])
            if client.is_app:
                drain_offline_deletions(
                    client, store, portal_key, {t.code: maps[t.code] for t in selected}, report
                )
            if full:
                for t in selected:
                    reconcile_ids(client, store, maps[t.code], report.processes[t.code], seen.get(t.code))
            after_pull(client, store, selected, maps, report, portal=portal_key)
        if push:

            def key_to_id(target: str, key: str) -> int | None:
                """Portal id of a parent row by key; 0 for a tombstone (a stale key links nothing)."""
                if target not in maps:
                    return None
                found = rows.portal_id_of(store.conn, target, key)
                if found is None:
                    return None
                portal_id, tombstone = found
                return 0 if tombstone else portal_id

            for t in selected:
                Pusher(
                    store,
                    client,
                    maps[t.code],
                    trs[t.code],
                    portal=portal_key,
                    figures=report.processes[t.code],
                    failures=report.failures,
                    key_to_id=key_to_id,
                    progress=step(t.code),
                    absorb=pullers[t.code].absorb if _needs_pre_read(pulled_at.get(t.code)) else None,
                ).run()
        if report.failures:
            status = "partial"
    except BaseException as exc:
        status, error = ("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"), _safe(exc)
        raise
    finally:
        stats1 = _stats(client)
        report.requests = int(stats1[0] - stats0[0])
        report.waited_seconds = float(stats1[1] - stats0[1])
        report.seconds = time.monotonic() - started
        try:
            store.run_finish(report.run_id, status, report.summary(), error)
        except Exception:  # noqa: BLE001 - never hide the original error behind a bookkeeping one
            pass
    return report


PRE_READ_AFTER = 30.0  # seconds: a pull older than this no longer vouches for the portal's state


def _needs_pre_read(pulled_at: float | None) -> bool:
    """Whether the push must first re-read the items it will overwrite.

    A pull of this run read every item changed up to its server time, so right after it the pre-read
    would read nothing new and only cost a request (the incremental bound is one read and the write
    batches). Push-only, or a pull that finished long ago, reads them again: portal edits made since
    are merged by policy before anything is overwritten.
    """
    return pulled_at is None or time.monotonic() - pulled_at > PRE_READ_AFTER


def _stats(client: Client) -> tuple[float, float]:
    s = getattr(client, "stats", None)
    if s is None:
        return 0.0, 0.0
    get = (lambda k: s.get(k, 0)) if isinstance(s, dict) else (lambda k: getattr(s, k, 0))
    return float(get("requests") or 0), float(get("waited_seconds") or 0)


def _safe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


# ---- conflicts ----------------------------------------------------------------------------


def resolve_conflict(store: Store, conflict_id: int, take: str) -> Conflict:
    """Settle a recorded conflict: `local` (or `merged`, the same for clashing fields) or `remote`
    values of just the conflict's fields; every other field already merged. The next push sends them."""
    if take not in ("local", "remote", "merged"):
        raise ValueError(f"--take must be local, remote or merged, got {take!r}")
    found = [c for c in store.list_conflicts(None, None) if c.id == conflict_id]
    if not found:
        raise ValueError(f"no conflict with id {conflict_id}; see `b24sync conflicts list`")
    c = found[0]
    if c.status != "open":
        raise ValueError(f"conflict {conflict_id} is already resolved ({c.resolution})")
    with store.engine_writes() as conn:
        if "deleted" in c.fields or "deleted" in c.local or "deleted" in c.remote:
            return _resolve_delete(store, conn, c, take)
        base = bases.base_get(conn, c.tbl, c.key)
        remote = base.data if base else dict(c.remote)  # the base is the latest portal snapshot
        if take == "remote":
            rows.set_values(conn, c.tbl, c.key, {k: remote.get(k) for k in c.fields})
        else:  # the push sees the row even if its local change was already drained
            changelog.log_update(conn, c.tbl, c.key, c.fields, c.portal_id)
        return store.resolve_conflict(conflict_id, take)


def _resolve_delete(store: Store, conn: sqlite3.Connection, c: Conflict, take: str) -> Conflict:
    """A delete against an edit. Deleted locally: `local` lets the delete go ahead against the
    portal's current item, `remote` brings the item back. Deleted on the portal: the tombstone stays
    (`local` is refused: the item is gone; insert a new row to create it again)."""
    remote_deleted = c.remote.get("deleted") is True
    if remote_deleted:
        if take != "remote":
            raise ValueError(
                f"conflict {c.id}: the item was deleted on the portal; only --take remote applies "
                "(insert a new row with the local values to create it again)"
            )
        return store.resolve_conflict(c.id, "remote")
    pending = [ch for ch in store.unsynced_changes(c.tbl) if ch.key == c.key]
    item = {k: v for k, v in c.remote.items() if k != "deleted"}
    if take == "remote":
        for ch in pending:
            changelog.mark_done(conn, ch.seqs)
        cols = rows.table_columns(conn, c.tbl)
        values = {k: v for k, v in item.items() if k in cols}
        rows.insert_rows(conn, c.tbl, ["key", *values], [[c.key, *values.values()]])
        rows.set_values(conn, c.tbl, c.key, {"deleted": 0, "deleted_at": None})
    synced = {k: v for k, v in item.items() if k not in ("id", "created_time", "updated_time", "moved_time")}
    bases.base_set(conn, c.tbl, c.key, c.portal_id, item.get("updated_time"), synced)
    return store.resolve_conflict(c.id, "remote" if take == "remote" else "local")


def failures_of(report: SyncReport) -> list[FailedRow]:
    """Rows that failed in a run."""
    return list(report.failures)
