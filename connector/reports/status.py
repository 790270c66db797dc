"""`status(...)`: last runs, cursors, pending local changes, open conflicts and failed rows of a store."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from connector.reports.readonly import open_store


class StatusReport(BaseModel):
    """What `b24sync status` shows (rows as JSON-able dicts, for --json and the job log)."""

    db: str
    processes: dict[str, int]  # live items per process table
    last_runs: list[dict[str, Any]]
    cursors: list[dict[str, Any]]
    pending_changes: dict[str, int]  # per process table
    open_conflicts: list[dict[str, Any]]
    failed_rows: list[dict[str, Any]]


def status(db_path: str | Path, *, runs: int = 10, limit: int = 50) -> StatusReport:
    """Read a store's state for humans and scripts (never writes it)."""
    with open_store(db_path) as store:
        return StatusReport(
            db=str(db_path),
            processes={code: store.live_count(code) for code in store.processes()},
            last_runs=[run.model_dump() for run in store.runs(runs)],
            cursors=[asdict(cursor) for cursor in store.cursors()],
            pending_changes=store.pending_counts(),
            open_conflicts=[conflict.model_dump() for conflict in store.open_conflicts(limit)],
            failed_rows=[asdict(row) for row in store.failed_changes(limit)],
        )


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
