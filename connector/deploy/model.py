"""Plan, change and result models shared by plan / apply / drift (pydantic, JSON-ready)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from connector.deploy.render import Rendering

Kind = Literal["type", "relation", "field", "option", "funnel", "stage", "section", "access"]
Action = Literal["create", "update", "delete", "rename", "manual", "note"]
KIND_ORDER = ("type", "relation", "field", "option", "funnel", "stage", "section", "access")


def show(value: Any) -> str:
    """A value for people: `(none)` for None, text bare unless it holds spaces, lists comma-joined."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"' if not value or any(ch.isspace() for ch in value) else value
    if isinstance(value, list | tuple | set):
        return ", ".join(show(v) for v in value) if value else "(empty)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={show(v)}" for k, v in value.items()) if value else "(empty)"
    return str(value)


class Diff(BaseModel):
    """One attribute that differs: `attr: old → new`.

    In a plan `old` is the portal now and `new` what apply sets; in drift `old` is what was expected
    (the last apply's record, or the template) and `new` is what the portal has now.
    """

    attr: str
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        return f"{self.attr}: {show(self.old)} → {show(self.new)}"


class SchemaChange(BaseModel):
    """One planned change to one object of a portal's schema (type, field, funnel ...), named in codes.

    Not the store's change log (`connector.store.Change`): that records edits to local rows.
    """

    process: str
    kind: Kind
    action: Action
    code: str
    diffs: list[Diff] = Field(default_factory=list)
    blocked: bool = False
    note: str = ""

    @property
    def actionable(self) -> bool:
        """Whether apply would make a REST write for it."""
        return self.action in ("create", "update", "delete", "rename") and not self.blocked

    def describe(self) -> str:
        """One line for humans."""
        parts = [
            f"{self.action} {self.kind} {self.process}.{self.code}"
            if self.code
            else f"{self.action} {self.kind} {self.process}"
        ]
        if self.diffs:
            parts.append("(" + "; ".join(str(d) for d in self.diffs) + ")")
        if self.blocked:
            parts.append("[blocked: needs allow_destructive]")
        if self.note:
            parts.append(f"— {self.note}")
        return " ".join(parts)


class TemplatePlan(BaseModel):
    """The plan for one template on one portal (`connector.store.process.ProcessPlan` is a store table's)."""

    process: str
    exists: bool
    owned: bool
    type_id: int | None = None
    entity_type_id: int | None = None
    matched_by: str = ""
    changes: list[SchemaChange] = Field(default_factory=list)


class Plan(BaseModel):
    """What apply would do on one portal (Terraform-style: create / update / delete / rename / manual)."""

    portal: str
    processes: list[TemplatePlan] = Field(default_factory=list)
    allow_destructive: bool = False

    @property
    def changes(self) -> list[SchemaChange]:
        """Every change of every process, in dependency order."""
        return [c for p in self.processes for c in p.changes]

    @property
    def has_changes(self) -> bool:
        """True when apply would write anything."""
        return any(c.actionable for c in self.changes)

    @property
    def manual(self) -> list[SchemaChange]:
        """Steps REST cannot do (access rights): a checklist for a human."""
        return [c for c in self.changes if c.action == "manual"]

    def counts(self) -> dict[str, int]:
        """Number of actionable changes per action, plus blocked and manual."""
        out = {"create": 0, "update": 0, "delete": 0, "rename": 0, "blocked": 0, "manual": 0}
        for c in self.changes:
            if c.blocked:
                out["blocked"] += 1
            elif c.action in out:
                out[c.action] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for `--json`)."""
        return {
            "portal": self.portal,
            "has_changes": self.has_changes,
            "counts": self.counts(),
            "processes": [p.model_dump() for p in self.processes],
            "manual": [{"process": c.process, "step": c.note, "done": False} for c in self.manual],
        }

    def render(self) -> Rendering:
        """A rich renderable for humans."""
        from connector.deploy.render import render_plan

        return render_plan(self)


class ApplyResult(BaseModel):
    """What apply did: the plan it executed and the calls it made."""

    portal: str
    plan: Plan
    dry_run: bool = False
    requests: int = 0
    write_calls: int = 0
    commands: list[str] = Field(default_factory=list)
    converged: bool = True
    remaining: list[str] = Field(default_factory=list)

    @property
    def manual(self) -> list[SchemaChange]:
        """The manual checklist (never reported as done)."""
        return self.plan.manual

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "portal": self.portal,
            "dry_run": self.dry_run,
            "requests": self.requests,
            "write_calls": self.write_calls,
            "converged": self.converged,
            "remaining": self.remaining,
            "commands": self.commands,
            "plan": self.plan.to_json(),
            "manual": [{"process": c.process, "step": c.note, "done": False} for c in self.manual],
        }


class DriftItem(BaseModel):
    """One difference: changed on the portal since the last apply, or (with templates) vs the template.

    `missing` = the template declares it and the portal lacks it (only `against="template"`).
    Every diff reads expected → on portal: `old` is the last apply's record (or the template's value),
    `new` is what the portal has now.
    """

    process: str
    kind: Kind
    change: Literal["added", "removed", "edited", "missing"]
    code: str
    diffs: list[Diff] = Field(default_factory=list)
    against: Literal["last_apply", "template"] = "last_apply"
    note: str = ""

    def describe(self) -> str:
        """One line for humans."""
        tail = (" (" + "; ".join(str(d) for d in self.diffs) + ")") if self.diffs else ""
        note = f" — {self.note}" if self.note else ""
        where = " [expected by the template → on portal]" if self.against == "template" else ""
        if self.diffs and not where:
            where = " [last apply → on portal]"
        name = f"{self.process}.{self.code}" if self.code else self.process
        return f"{self.change} {self.kind} {name}{tail}{where}{note}"


DIFF_MEANING = {"old": "expected (the last apply's record, or the template)", "new": "on the portal now"}


class Drift(BaseModel):
    """Portal changes since the last apply, per process."""

    portal: str
    items: list[DriftItem] = Field(default_factory=list)
    templates: list[str] = Field(default_factory=list)
    last_apply: bool = True  # False: no apply recorded for this portal; compared with the templates only

    @property
    def has_drift(self) -> bool:
        """True when anything changed."""
        return bool(self.items)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "portal": self.portal,
            "has_drift": self.has_drift,
            "compared_with_templates": self.templates,
            "compared_with_last_apply": self.last_apply,
            "diff_meaning": DIFF_MEANING,
            "items": [i.model_dump() for i in self.items],
        }

    def render(self) -> Rendering:
        """A rich renderable for humans."""
        from connector.deploy.render import render_drift

        return render_drift(self)
