"""Runs (`_runs`): every sync, job and apply with its status, figures and error."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from connector.store.errors import StoreError
from connector.store.models import Run
from connector.store.sqltext import NOW_SQL, to_json, where_equal

RUN_STATUSES = ("ok", "failed", "partial", "interrupted")


def run_start(conn: sqlite3.Connection, kind: str, portal: str | None, job: str | None) -> int:
    """Insert a running run; return its id."""
    if not kind:
        raise StoreError("a run needs its kind (sync, deploy, report, ...)")
    cur = conn.execute(f"INSERT INTO _runs (kind, portal, job, started_at) VALUES (?, ?, ?, {NOW_SQL})",
                       (kind, portal, job))
    return int(cur.lastrowid or 0)


def run_finish(conn: sqlite3.Connection, run_id: int, status: str, figures: Mapping[str, Any],
               error: str | None) -> None:
    """Close a run with its status and figures."""
    if status not in RUN_STATUSES:
        raise StoreError(f"run status {status!r} is unknown; allowed: {', '.join(RUN_STATUSES)}")
    cur = conn.execute(
        f"UPDATE _runs SET finished_at = {NOW_SQL}, status = ?, figures = ?, error = ? WHERE id = ?",
        (status, to_json(dict(figures)), error, run_id),
    )
    if cur.rowcount == 0:
        raise StoreError(f"no run with id {run_id!r}")


def last_runs(conn: sqlite3.Connection, limit: int, kind: str | None, portal: str | None) -> list[Run]:
    """Most recent runs first."""
    where, args = where_equal(kind=kind, portal=portal)
    rows = conn.execute(
        "SELECT id, kind, portal, job, started_at, finished_at, status, figures, error "
        f"FROM _runs{where} ORDER BY id DESC LIMIT ?", [*args, limit],
    )
    return [Run(id=r[0], kind=r[1], portal=r[2], job=r[3], started_at=r[4], finished_at=r[5], status=r[6],
                figures=json.loads(r[7]), error=r[8]) for r in rows]


def last_run_id(conn: sqlite3.Connection) -> int:
    """The id of the newest run (0 when none is recorded)."""
    row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM _runs").fetchone()
    return int(row[0])


def tag_runs(conn: sqlite3.Connection, job: str, after: int, kind: str) -> int:
    """Name the job of untagged runs of `kind` newer than run `after`; return how many."""
    cur = conn.execute("UPDATE _runs SET job = ? WHERE id > ? AND job IS NULL AND kind = ?",
                       (job, after, kind))
    return cur.rowcount
