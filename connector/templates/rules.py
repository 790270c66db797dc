"""Stage rules of a template: keep a process and the entity it is linked to (its parent) in step.

A rule lives in the child's template as a `[[rules]]` table. Three kinds:

- `create_child`: the parent enters `parent_stage` -> create one item of this process for it,
  copying the fields named in `copy_fields`, at `child_stage` (default: the funnel's first stage);
- `move_parent`: an item of this process reaches `child_stage` -> move its parent to `parent_stage`;
- `children_done`: all items of a parent reached success (`when = "all_success"`) or any failed
  (`when = "any_failure"`) -> move the parent to `parent_stage`.

A parent that is a deal is named by its funnel (`parent_funnel`: "default" for the portal's default
deal funnel, else the funnel's name) and stage codes (`EXECUTING`), never by portal ids; they are
resolved per portal. Moves never go backwards and never touch a closed parent unless
`backwards = true` / `reopen = true`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from connector.templates.errors import Problem

RULE_KINDS = ("create_child", "move_parent", "children_done")
COPYABLE = ("title", "client", "amount", "products", "responsible")
WHEN = ("all_success", "any_failure")
DEFAULT_FUNNEL = "default"
TITLE_PLACEHOLDER = "{parent_title}"
_RULE_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_STAGE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
# what each kind needs and what it may not carry
_REQUIRED = {
    "create_child": ("parent_stage",),
    "move_parent": ("child_stage", "parent_stage"),
    "children_done": ("when", "parent_stage"),
}
_FORBIDDEN = {
    "create_child": ("when", "backwards", "reopen"),
    "move_parent": ("copy_fields", "title", "when"),
    "children_done": ("copy_fields", "title", "child_stage", "child_funnel"),
}


class Rule(BaseModel):
    """One stage rule (see the module docstring); cross-key checks are in `check_rules`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    code: str
    kind: Literal["create_child", "move_parent", "children_done"]
    parent: str = "deal"
    parent_funnel: str = DEFAULT_FUNNEL
    parent_stage: str | None = None
    child_funnel: str | None = None
    child_stage: str | None = None
    copy_fields: list[str] = []
    title: str | None = None
    when: Literal["all_success", "any_failure"] | None = None
    backwards: bool = False
    reopen: bool = False

    def child_title(self, parent_title: str) -> str:
        """The created child's title: `title` with {parent_title} filled in, else the parent's title."""
        if self.title is None:
            return parent_title
        return self.title.replace(TITLE_PLACEHOLDER, parent_title)


def check_rules(file: str, data: dict[str, Any]) -> list[Problem]:
    """Cross-key checks of the `rules` of one normalized template (tolerant of malformed input)."""
    rules = data.get("rules")
    if rules is None:
        return []
    problems: list[Problem] = []
    if not isinstance(rules, list):
        return [Problem(file, "rules", "expected an array of tables ([[rules]])")]
    parents = _parent_targets(data)
    stages = _stage_codes(data)
    funnels = [f.get("code") for f in data.get("funnels") or [] if isinstance(f, dict)]
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        path = f"rules[{i}]"

        def add(key: str, message: str, path: str = path) -> None:
            problems.append(Problem(file, f"{path}.{key}" if key else path, message))

        code = rule.get("code")
        if isinstance(code, str):
            if not _RULE_CODE_RE.match(code):
                add("code", f"rule code {code!r} must match ^[a-z][a-z0-9_]{{0,39}}$")
            elif code in seen:
                add("code", f"rule code {code!r} is used twice; every rule needs its own code")
            seen.add(code)
        kind = rule.get("kind")
        if kind in _REQUIRED:
            for key in _REQUIRED[kind]:
                if rule.get(key) is None:
                    add(key, f"a {kind} rule needs {key!r}")
            for key in _FORBIDDEN[kind]:
                if key in rule:
                    add(key, f"{key!r} has no meaning in a {kind} rule; remove it")
        parent = rule.get("parent", "deal")
        if isinstance(parent, str) and parent not in parents:
            add(
                "parent",
                f"{parent!r} is not a parent of this process; allowed: {', '.join(parents) or 'none'} "
                "(add it to relations.parents)",
            )
        for key in ("parent_stage",):
            value = rule.get(key)
            if isinstance(value, str) and not _STAGE_RE.match(value):
                add(key, f"stage code {value!r} must match ^[A-Z][A-Z0-9_]*$ (e.g. EXECUTING)")
        child_funnel = rule.get("child_funnel")
        if isinstance(child_funnel, str) and child_funnel not in funnels:
            add("child_funnel", f"unknown funnel {child_funnel!r}; allowed: {', '.join(map(str, funnels))}")
        child_stage = rule.get("child_stage")
        allowed = stages.get(child_funnel if isinstance(child_funnel, str) else None, [])
        if isinstance(child_stage, str) and child_stage not in allowed:
            add(
                "child_stage", f"unknown stage {child_stage!r} of this process; allowed: {', '.join(allowed)}"
            )
        copy = rule.get("copy_fields")
        if isinstance(copy, list):
            for j, name in enumerate(copy):
                if name not in COPYABLE:
                    add(f"copy_fields[{j}]", f"cannot copy {name!r}; allowed: {', '.join(COPYABLE)}")
        title = rule.get("title")
        if isinstance(title, str) and "{" in title.replace(TITLE_PLACEHOLDER, ""):
            add("title", f"only the placeholder {TITLE_PLACEHOLDER} is allowed in a rule title")
    return problems


def _parent_targets(data: dict[str, Any]) -> list[str]:
    rel = data.get("relations")
    out: list[str] = []
    if isinstance(rel, dict) and isinstance(rel.get("parents"), list):
        for ref in rel["parents"]:
            target = ref if isinstance(ref, str) else ref.get("target") if isinstance(ref, dict) else None
            if isinstance(target, str):
                out.append(target)
    return out


def _stage_codes(data: dict[str, Any]) -> dict[str | None, list[str]]:
    """Stage codes per funnel code; key None = the default funnel (the only one, or `default = true`)."""
    out: dict[str | None, list[str]] = {}
    funnels = [f for f in data.get("funnels") or [] if isinstance(f, dict)]
    for f in funnels:
        codes = [s.get("code") for s in f.get("stages") or [] if isinstance(s, dict)]
        out[f.get("code")] = [c for c in codes if isinstance(c, str)]
        if f.get("default") is True or len(funnels) == 1:
            out[None] = out[f.get("code")]
    return out
