"""Human renderings of a plan and a drift report (rich tables)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from connector.deploy.model import Drift, Plan

_STYLE = {
    "create": "green",
    "update": "yellow",
    "rename": "cyan",
    "delete": "red",
    "manual": "magenta",
    "note": "dim",
    "added": "green",
    "edited": "yellow",
    "removed": "red",
    "missing": "red",
}


def render_plan(plan: Plan) -> Any:
    """A table per plan: action, object (in codes), field-level differences; then the manual checklist."""
    table = Table(title=f"plan for {plan.portal}", show_lines=False)
    for col in ("action", "object", "changes"):
        table.add_column(col)
    for c in plan.changes:
        if c.action == "manual":
            continue
        action = c.action + (" (blocked)" if c.blocked else "")
        detail = "; ".join(str(d) for d in c.diffs) + (f" — {c.note}" if c.note else "")
        table.add_row(
            Text(action, style=_STYLE.get(c.action, "")),
            f"{c.kind} {c.process}{'.' + c.code if c.code else ''}",
            detail,
        )
    counts = plan.counts()
    done = ", ".join(f"{counts[k]} to {k}" for k in ("create", "update", "rename", "delete") if counts[k])
    extra = ", ".join(f"{counts[k]} {k}" for k in ("blocked", "manual") if counts[k])
    summary = Text((done or "nothing to do") + (f" ({extra})" if extra else ""))
    parts: list[Any] = [table, summary]
    if plan.manual:
        parts.append(
            Text("Manual steps (REST cannot set CRM role permissions; not applied):", style="magenta")
        )
        parts += [Text(f"  [ ] {c.note}") for c in plan.manual]
    if any(c.blocked for c in plan.changes):
        parts.append(Text("Blocked deletions run only with --allow-destructive.", style="red"))
    return Group(*parts)


def render_drift(drift: Drift) -> Any:
    """A table of what changed by hand since the last apply (and, with templates, vs the templates)."""
    if not drift.items:
        scope = f" (compared with the last apply and {', '.join(drift.templates)})" if drift.templates else ""
        return Text(f"no drift on {drift.portal}{scope}")
    table = Table(title=f"drift on {drift.portal}")
    for col in ("change", "object", "details", "compared with"):
        table.add_column(col)
    for i in drift.items:
        details = "; ".join(str(d) for d in i.diffs) + (f" — {i.note}" if i.note else "")
        table.add_row(
            Text(i.change, style=_STYLE.get(i.change, "")),
            f"{i.kind} {i.process}{'.' + i.code if i.code else ''}",
            details,
            "template" if i.against == "template" else "last apply",
        )
    return table
