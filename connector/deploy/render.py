"""Human renderings of a plan and a drift report: rich tables that also print as plain text.

`plan.render()` goes to a rich console as coloured tables (the CLI), and `print(plan.render())` or
`str(plan.render())` gives the same tables as plain text (the Python API, logs, e-mails).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from connector.deploy.model import Diff, Drift, Plan

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


TEXT_WIDTH = 120


class Rendering(Group):
    """A rich renderable whose `str()` is its plain text (no colours, no markup), `TEXT_WIDTH` wide."""

    def __str__(self) -> str:
        return self.to_text()

    def to_text(self, width: int = TEXT_WIDTH) -> str:
        """The rendering as plain text lines, as a terminal of `width` columns would show it."""
        console = Console(width=width, no_color=True, color_system=None, highlight=False,
                          force_terminal=False, force_jupyter=False, soft_wrap=False)
        with console.capture() as captured:
            console.print(self)
        return captured.get().rstrip("\n")


def _details(diffs: list[Diff], note: str) -> str:
    return " — ".join(p for p in ("; ".join(str(d) for d in diffs), note) if p)


def render_plan(plan: Plan) -> Rendering:
    """A table per plan: action, object (in codes), field-level differences; then the manual checklist.

    With nothing to list, one line `nothing to do on <portal>` instead of an empty table.
    """
    rows = [c for c in plan.changes if c.action != "manual"]
    counts = plan.counts()
    done = ", ".join(f"{counts[k]} to {k}" for k in ("create", "update", "rename", "delete") if counts[k])
    extra = ", ".join(f"{counts[k]} {k}" for k in ("blocked", "manual") if counts[k])
    parts: list[Any] = []
    if rows:
        table = Table(title=f"plan for {plan.portal}", show_lines=False)
        for col in ("action", "object", "now → after apply"):
            table.add_column(col)
        for c in rows:
            action = c.action + (" (blocked)" if c.blocked else "")
            table.add_row(
                Text(action, style=_STYLE.get(c.action, "")),
                f"{c.kind} {c.process}{'.' + c.code if c.code else ''}",
                _details(c.diffs, c.note),
            )
        parts += [table, Text((done or "nothing to do") + (f" ({extra})" if extra else ""))]
    else:
        parts.append(Text(f"nothing to do on {plan.portal}" + (f" ({extra})" if extra else "")))
    if plan.manual:
        parts.append(
            Text("Manual steps (REST cannot set CRM role permissions; not applied):", style="magenta")
        )
        parts += [Text(f"  [ ] {c.note}") for c in plan.manual]
    if any(c.blocked for c in plan.changes):
        parts.append(Text("Blocked deletions run only with --allow-destructive.", style="red"))
    return Rendering(*parts)


def render_drift(drift: Drift) -> Rendering:
    """A table of what changed by hand since the last apply (and, with templates, vs the templates).

    Values read expected → on portal: the last apply's record (or the template), then the portal now.
    """
    against = [] if not drift.last_apply else ["the last apply"]
    against += [f"template {', '.join(drift.templates)}"] if drift.templates else []
    scope = f"compared with {' and '.join(against)}"
    if not drift.last_apply:
        scope += "; no apply recorded for this portal"
    if not drift.items:
        return Rendering(Text(f"no drift on {drift.portal} ({scope})"))
    table = Table(title=f"drift on {drift.portal}", caption=scope)
    for col in ("change", "object", "expected → on portal", "expected by"):
        table.add_column(col)
    for i in drift.items:
        table.add_row(
            Text(i.change, style=_STYLE.get(i.change, "")),
            f"{i.kind} {i.process}{'.' + i.code if i.code else ''}",
            _details(i.diffs, i.note),
            "template" if i.against == "template" else "last apply",
        )
    return Rendering(table)
