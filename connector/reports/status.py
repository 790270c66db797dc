"""`status(...)`: last runs, cursors, pending local changes, open conflicts and failed rows of a store."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from connector.reports.readonly import column_names, connect_readonly, table_names
from connector.reports.source import list_processes


class StatusReport(BaseModel):
    """What `b24sync status` shows."""

    db: str
    processes: dict[str, int]  # live items per process table
    last_runs: list[dict[str, Any]]
    cursors: list[dict[str, Any]]
    pending_changes: dict[str, int]  # per process table
    open_conflicts: list[dict[str, Any]]
    failed_rows: list[dict[str, Any]]


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [_decode(dict(zip(names, row, strict=True))) for row in cursor]


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    """JSON text columns (figures, columns, fields) as values."""
    for name in ("figures", "columns", "fields"):
        value = row.get(name)
        if isinstance(value, str) and value[:1] in "[{":
            try:
                row[name] = json.loads(value)
            except ValueError:
                pass
    return row


def status(db_path: str | Path, *, runs: int = 10, limit: int = 50) -> StatusReport:
    """Read a store's state for humans and scripts (never writes it)."""
    with closing(connect_readonly(db_path)) as conn:
        tables = table_names(conn)
        processes = {}
        for code in list_processes(conn):
            live = "WHERE COALESCE(deleted, 0) = 0" if "deleted" in column_names(conn, code) else ""
            processes[code] = conn.execute(f'SELECT COUNT(*) FROM "{code}" {live}').fetchone()[0]
        report = StatusReport(db=str(db_path), processes=processes, last_runs=[], cursors=[],
                              pending_changes={}, open_conflicts=[], failed_rows=[])
        if "_runs" in tables:
            report.last_runs = _rows(conn, "SELECT * FROM _runs ORDER BY id DESC LIMIT ?", (runs,))
        if "_cursors" in tables:
            report.cursors = _rows(conn, "SELECT * FROM _cursors ORDER BY 1, 2")
        if "_changes" in tables:
            report.pending_changes = dict(conn.execute(
                "SELECT tbl, COUNT(*) FROM _changes WHERE status = 'pending' GROUP BY tbl ORDER BY tbl"
            ).fetchall())
            report.failed_rows = _rows(
                conn,
                "SELECT seq, tbl, key, op, columns, at, error, attempts FROM _changes "
                "WHERE status = 'failed' ORDER BY seq LIMIT ?",
                (limit,),
            ) if {"error", "attempts"} <= set(column_names(conn, "_changes")) else []
        if "_conflicts" in tables:
            where = "WHERE status = 'open'" if "status" in column_names(conn, "_conflicts") else ""
            sql = f"SELECT * FROM _conflicts {where} ORDER BY id LIMIT ?"
            report.open_conflicts = _rows(conn, sql, (limit,))
    return report


def render_status(report: StatusReport) -> str:
    """A short human rendering of a status report."""
    lines = [f"Store {report.db}"]
    counts = ", ".join(f"{k} ({v} items)" for k, v in report.processes.items())
    lines.append(f"Processes: {counts or 'none'}")
    lines.append("Last runs:" if report.last_runs else "Last runs: none recorded")
    for run in report.last_runs:
        figures = run.get("figures") or {}
        shown = ", ".join(f"{k}={v}" for k, v in figures.items() if not isinstance(v, dict | list))
        error = f" — {run['error']}" if run.get("error") else ""
        lines.append(
            f"  #{run.get('id')} {run.get('started_at', '')} {run.get('job') or run.get('kind', '')} "
            f"{run.get('status', '')} {shown}{error}".rstrip()
        )
    lines.append("Cursors:" if report.cursors else "Cursors: none")
    for cur in report.cursors:
        lines.append(f"  {cur.get('portal', '')} {cur.get('tbl', '')}: {cur.get('value', '')}")
    pending = ", ".join(f"{t}: {n}" for t, n in report.pending_changes.items()) or "none"
    lines.append(f"Pending local changes: {pending}")
    lines.append(f"Open conflicts: {len(report.open_conflicts)}")
    for c in report.open_conflicts:
        lines.append(f"  #{c.get('id')} {c.get('tbl')} {c.get('key')} fields {c.get('fields')}")
    lines.append(f"Failed rows: {len(report.failed_rows)}")
    for f in report.failed_rows:
        attempts = f.get("attempts")
        lines.append(f"  {f.get('tbl')} {f.get('key')} {f.get('op')}: {f.get('error')} (attempts {attempts})")
    return "\n".join(lines)
