"""Checks that span several keys of a template, or several templates; run on raw TOML data.

They tolerate malformed input (pydantic reports shape errors separately), so that one run
reports every mistake at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from connector.constants import SYSTEM_ENTITY_TYPES
from connector.templates.errors import Problem
from connector.templates.limits import folded
from connector.templates.model import (
    ACCESS_ACTIONS,
    ACCESS_LEVELS,
    FIELD_TYPES,
    PROCESS_CODE_RE,
    STANDARD_CARD_FIELDS,
    Template,
)
from connector.templates.presets import FLAG_NAMES
from connector.templates.rules import check_rules

SYSTEM_NAMES = ", ".join(SYSTEM_ENTITY_TYPES)
CLIENT_PARENTS = ("contact", "company")


def _items(data: dict[str, Any], key: str) -> Iterator[tuple[int, dict[str, Any]]]:
    value = data.get(key)
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                yield i, item


def _refs(data: dict[str, Any], key: str) -> Iterator[tuple[int, str]]:
    rel = data.get("relations")
    if not isinstance(rel, dict) or not isinstance(rel.get(key), list):
        return
    for i, ref in enumerate(rel[key]):
        target = ref if isinstance(ref, str) else ref.get("target") if isinstance(ref, dict) else None
        if isinstance(target, str):
            yield i, target


def _duplicates(values: list[str]) -> set[str]:
    return {v for v, n in Counter(values).items() if n > 1}


class _Checker:
    """Collects problems for one template file."""

    def __init__(self, file: str, data: dict[str, Any], raw_flags: Any):
        self.file = file
        self.data = data
        self.raw_flags = raw_flags
        flags = data.get("flags")
        self.flags: dict[str, Any] = flags if isinstance(flags, dict) else {}
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, path, message))

    def flag(self, name: str) -> bool:
        return self.flags.get(name) is True

    def run(self) -> list[Problem]:
        self.check_flags()
        self.check_renames()
        self.check_relations()
        self.check_fields()
        self.check_funnels()
        self.check_cards()
        self.check_access()
        self.check_names()
        self.problems.extend(check_rules(self.file, self.data))
        return self.problems

    def check_names(self) -> None:
        """Names a reader cannot tell apart (equal after case folding) within one list, per language."""
        self.check_folded("fields", "label")
        for i, f in _items(self.data, "fields"):
            self.check_folded("options", "label", f, f"fields[{i}].")
        self.check_folded("funnels", "name")
        for i, fn in _items(self.data, "funnels"):
            self.check_folded("stages", "name", fn, f"funnels[{i}].")
        self.check_folded("card_sections", "title")

    def check_folded(self, key: str, label: str, owner: dict[str, Any] | None = None,
                     prefix: str = "") -> None:
        seen: dict[tuple[str, str], int] = {}
        for i, entry in _items(self.data if owner is None else owner, key):
            names = entry.get(label)
            if not isinstance(names, dict):
                continue
            for lang, name in names.items():
                if not isinstance(name, str):
                    continue
                first = seen.setdefault((str(lang), folded(name)), i)
                if first != i:
                    self.add(f"{prefix}{key}[{i}].{label}.{lang}",
                             f"{name!r} is the same name as {prefix}{key}[{first}] apart from letter case or "
                             "spacing; give each a name a reader can tell apart")

    def check_flags(self) -> None:
        if isinstance(self.raw_flags, dict):
            for name in self.raw_flags:
                if name not in FLAG_NAMES:
                    self.add(
                        f"flags.{name}", f"unknown crm.type flag {name!r}; allowed: {', '.join(FLAG_NAMES)}"
                    )
        integ = self.data.get("integrations")
        if isinstance(integ, dict):
            wants = [k for k in ("tasks", "calendar") if integ.get(k) is True]
            if integ.get("use_in_crm_links") is False and wants:
                self.add(
                    "integrations.use_in_crm_links",
                    f"{' and '.join(wants)} links need use in CRM link fields; set it true or drop them",
                )
            explicit = (
                self.raw_flags.get("isUseInUserfieldEnabled") if isinstance(self.raw_flags, dict) else None
            )
            if explicit is False and (wants or integ.get("use_in_crm_links") is True):
                self.add(
                    "flags.isUseInUserfieldEnabled",
                    "false contradicts [integrations] (tasks/calendar/use_in_crm_links need it true)",
                )
        if self.data.get("preset") == "list":
            for name in ("isStagesEnabled", "isCategoriesEnabled"):
                if self.flag(name):
                    self.add(
                        f"flags.{name}",
                        "a 'list' process has no stages or funnels; use preset "
                        "'scratch' or 'all-inclusive' to switch them on",
                    )

    def check_renames(self) -> None:
        if self.data.get("renamed_from") is not None and self.data.get("renamed_from") == self.data.get(
            "code"
        ):
            self.add("renamed_from", "renamed_from names the current code; give the old process code")

    def check_relations(self) -> None:
        code = self.data.get("code")
        for key in ("parents", "children"):
            targets = list(_refs(self.data, key))
            for dup in _duplicates([t for _, t in targets]):
                self.add(f"relations.{key}", f"{dup!r} is listed twice")
            for i, target in targets:
                path = f"relations.{key}[{i}]"
                if target == code:
                    self.add(path, "a process cannot be related to itself")
                elif target not in SYSTEM_ENTITY_TYPES and not PROCESS_CODE_RE.match(target):
                    self.add(
                        path,
                        f"unknown relation target {target!r}; use a system type ({SYSTEM_NAMES}) "
                        "or a process code",
                    )
                elif key == "parents" and target in CLIENT_PARENTS and self.flag("isClientEnabled"):
                    self.add(
                        path,
                        f"{target!r} is already linked through the client field "
                        "(isClientEnabled); remove it from parents or switch the client field off",
                    )

    def check_fields(self) -> None:
        fields = list(_items(self.data, "fields"))
        codes = [f["code"] for _, f in fields if isinstance(f.get("code"), str)]
        dups = _duplicates(codes)
        seen_renames: set[str] = set()
        money = {f["code"] for _, f in fields if f.get("type") == "money" and isinstance(f.get("code"), str)}
        enums = {
            f["code"] for _, f in fields if f.get("type") == "enumeration" and isinstance(f.get("code"), str)
        }
        for i, f in fields:
            path = f"fields[{i}]"
            code, ftype = f.get("code"), f.get("type")
            if code in dups:
                self.add(f"{path}.code", f"duplicate field code {code!r}; field codes must be unique")
            if isinstance(code, str):
                for m in money:
                    if code == f"{m}_currency":
                        self.add(
                            f"{path}.code", f"{code!r} clashes with the currency column of money field {m!r}"
                        )
                for e in enums:
                    if code == f"{e}_label":
                        self.add(
                            f"{path}.code", f"{code!r} clashes with the label column of enumeration {e!r}"
                        )
            renamed = f.get("renamed_from")
            if isinstance(renamed, str):
                if renamed in codes:
                    self.add(f"{path}.renamed_from", f"{renamed!r} is still the code of another field")
                if renamed in seen_renames:
                    self.add(f"{path}.renamed_from", f"two fields are renamed from {renamed!r}")
                seen_renames.add(renamed)
            if ftype not in FIELD_TYPES:
                continue
            self.check_field_kind(path, f, ftype)

    def check_field_kind(self, path: str, f: dict[str, Any], ftype: str) -> None:
        options = f.get("options")
        if ftype == "enumeration":
            if not options:
                self.add(
                    f"{path}.options",
                    'an enumeration needs at least one option ({ code = "...", label = { ru = "..." } })',
                )
            elif isinstance(options, list):
                ocodes = [
                    o["code"] for o in options if isinstance(o, dict) and isinstance(o.get("code"), str)
                ]
                for dup in _duplicates(ocodes):
                    self.add(f"{path}.options", f"duplicate option code {dup!r}")
                for j, o in enumerate(options):
                    old = o.get("renamed_from") if isinstance(o, dict) else None
                    if isinstance(old, str) and old in ocodes:
                        self.add(
                            f"{path}.options[{j}].renamed_from", f"{old!r} is still the code of an option"
                        )
                defaults = [o for o in options if isinstance(o, dict) and o.get("default") is True]
                if len(defaults) > 1 and f.get("multiple") is not True:
                    self.add(
                        f"{path}.options", "a single-value enumeration can have at most one default option"
                    )
        elif options:
            self.add(f"{path}.options", f"options are only for type 'enumeration', not {ftype!r}")
        targets = f.get("targets")
        if ftype == "crm":
            if not targets:
                self.add(
                    f"{path}.targets",
                    f"a crm link needs targets: system types ({SYSTEM_NAMES}) and/or process codes",
                )
            elif isinstance(targets, list):
                for j, t in enumerate(targets):
                    if isinstance(t, str) and t not in SYSTEM_ENTITY_TYPES and not PROCESS_CODE_RE.match(t):
                        self.add(
                            f"{path}.targets[{j}]",
                            f"unknown link target {t!r}; use a system type "
                            f"({SYSTEM_NAMES}) or a process code",
                        )
                for dup in _duplicates([t for t in targets if isinstance(t, str)]):
                    self.add(f"{path}.targets", f"{dup!r} is listed twice")
        elif targets:
            self.add(f"{path}.targets", f"targets are only for type 'crm', not {ftype!r}")
        if f.get("multiline") is True and ftype != "string":
            self.add(f"{path}.multiline", f"multiline is only for type 'string', not {ftype!r}")
        if f.get("multiple") is True and ftype == "boolean":
            self.add(f"{path}.multiple", "a boolean field cannot be multiple in Bitrix24")

    def check_funnels(self) -> None:
        funnels = list(_items(self.data, "funnels"))
        has_funnels = bool(self.data.get("funnels"))
        if self.data.get("preset") == "list" and has_funnels:
            self.add(
                "funnels",
                "a 'list' process has no funnels or stages; remove [[funnels]] or "
                "use preset 'scratch'/'all-inclusive'",
            )
            return
        if has_funnels and not self.flag("isStagesEnabled"):
            self.add("funnels", "funnels need stages switched on: set flags.isStagesEnabled = true")
        if self.flag("isStagesEnabled") and not has_funnels:
            self.add("funnels", "isStagesEnabled is on: declare at least one [[funnels]] with its stages")
        if len(funnels) > 1 and not self.flag("isCategoriesEnabled"):
            self.add("funnels", "more than one funnel needs flags.isCategoriesEnabled = true")
        for dup in _duplicates([fn["code"] for _, fn in funnels if isinstance(fn.get("code"), str)]):
            self.add("funnels", f"duplicate funnel code {dup!r}")
        defaults = [i for i, fn in funnels if fn.get("default") is True]
        if funnels and len(defaults) != 1:
            where = ", ".join(f"funnels[{i}]" for i in defaults) or "none"
            self.add(
                "funnels", f"exactly one funnel must have default = true (found {len(defaults)}: {where})"
            )
        for i, fn in funnels:
            self.check_stages(f"funnels[{i}]", fn)

    def check_stages(self, path: str, funnel: dict[str, Any]) -> None:
        stages = list(_items(funnel, "stages"))
        for dup in _duplicates([s["code"] for _, s in stages if isinstance(s.get("code"), str)]):
            self.add(f"{path}.stages", f"duplicate stage code {dup!r}")
        by_sem: dict[str, list[int]] = {"process": [], "success": [], "failure": []}
        for i, s in stages:
            sem = s.get("semantics", "process")
            if sem in by_sem:
                by_sem[sem].append(i)
        if not by_sem["process"]:
            self.add(f"{path}.stages", 'a funnel needs at least one stage with semantics = "process"')
        if len(by_sem["success"]) != 1:
            where = ", ".join(f"stages[{i}]" for i in by_sem["success"]) or "none"
            self.add(
                f"{path}.stages",
                f"a funnel needs exactly one success stage (found {len(by_sem['success'])}: {where})",
            )
        if not by_sem["failure"]:
            self.add(f"{path}.stages", 'a funnel needs at least one stage with semantics = "failure"')
        sorts: dict[int, int] = {i: s["sort"] for i, s in stages if isinstance(s.get("sort"), int)}
        if len(by_sem["success"]) == 1 and by_sem["success"][0] in sorts:
            success_sort = sorts[by_sem["success"][0]]
            for i in by_sem["process"]:
                if i in sorts and sorts[i] >= success_sort:
                    self.add(f"{path}.stages[{i}].sort", "process stages must sort before the success stage")
            for i in by_sem["failure"]:
                if i in sorts and sorts[i] <= success_sort:
                    self.add(f"{path}.stages[{i}].sort", "failure stages must sort after the success stage")

    def check_cards(self) -> None:
        sections = list(_items(self.data, "card_sections"))
        for dup in _duplicates([s["code"] for _, s in sections if isinstance(s.get("code"), str)]):
            self.add("card_sections", f"duplicate section code {dup!r}")
        field_codes = [f["code"] for _, f in _items(self.data, "fields") if isinstance(f.get("code"), str)]
        placed: dict[str, str] = {}
        for i, section in sections:
            listed = section.get("fields")
            if not isinstance(listed, list):
                continue
            for j, code in enumerate(listed):
                path = f"card_sections[{i}].fields[{j}]"
                if not isinstance(code, str):
                    continue
                if code in placed:
                    self.add(path, f"field {code!r} is already placed in {placed[code]}")
                placed[code] = f"card_sections[{i}]"
                if code in STANDARD_CARD_FIELDS:
                    needs = STANDARD_CARD_FIELDS[code][1]
                    if needs and not self.flag(needs):
                        self.add(path, f"standard field {code!r} needs flags.{needs} = true")
                elif code not in field_codes:
                    allowed = ", ".join([*field_codes, *STANDARD_CARD_FIELDS])
                    self.add(path, f"unknown field {code!r}; allowed: {allowed}")

    def check_access(self) -> None:
        rules = list(_items(self.data, "access"))
        for dup in _duplicates([r["role"] for _, r in rules if isinstance(r.get("role"), str)]):
            self.add("access", f"role {dup!r} is declared twice")
        for i, rule in rules:
            role = rule.get("role")
            if isinstance(role, str) and not role.strip():
                self.add(f"access[{i}].role", "role name is empty")
            perms = rule.get("permissions")
            if not isinstance(perms, dict):
                continue
            for action, level in perms.items():
                path = f"access[{i}].permissions.{action}"
                if action not in ACCESS_ACTIONS:
                    self.add(path, f"unknown action {action!r}; allowed: {', '.join(ACCESS_ACTIONS)}")
                if isinstance(level, str) and level not in ACCESS_LEVELS:
                    self.add(path, f"unknown level {level!r}; allowed: {', '.join(ACCESS_LEVELS)}")


def check_template(file: str, data: dict[str, Any], raw_flags: Any) -> list[Problem]:
    """Cross-key checks of one normalized template; `raw_flags` is the `flags` table as written."""
    return _Checker(file, data, raw_flags).run()


def check_together(templates: list[tuple[str, Template]]) -> list[Problem]:
    """Checks across templates loaded together: unique codes, relation and link targets exist."""
    problems: list[Problem] = []
    by_code: dict[str, Template] = {}
    files: dict[str, str] = {}
    for file, t in templates:
        if t.code in by_code:
            problems.append(Problem(file, "code", f"process code {t.code!r} is also used by {files[t.code]}"))
        by_code.setdefault(t.code, t)
        files.setdefault(t.code, file)
    known = ", ".join(sorted(by_code)) or "none"

    def unknown(target: str) -> str:
        return (
            f"unknown process {target!r}; use a system type ({SYSTEM_NAMES}) or a process loaded "
            f"together (loaded: {known}); pass its template file too"
        )

    problems.extend(relation_cycles(templates))
    for file, t in templates:
        for key in ("parents", "children"):
            for i, ref in enumerate(getattr(t.relations, key)):
                if not ref.is_system and ref.target not in by_code:
                    problems.append(Problem(file, f"relations.{key}[{i}]", unknown(ref.target)))
        for i, f in enumerate(t.fields):
            for j, target in enumerate(f.targets):
                if target in SYSTEM_ENTITY_TYPES:
                    continue
                other = by_code.get(target)
                if other is None:
                    problems.append(Problem(file, f"fields[{i}].targets[{j}]", unknown(target)))
                elif not other.flags.get("isUseInUserfieldEnabled"):
                    problems.append(
                        Problem(
                            file,
                            f"fields[{i}].targets[{j}]",
                            f"process {target!r} cannot be a crm-link target: set use_in_crm_links = true "
                            f"in its [integrations] ({files[target]})",
                        )
                    )
    return problems


def relation_cycles(templates: list[tuple[str, Template]]) -> list[Problem]:
    """Parent -> child links among processes loaded together that lead back to where they started."""
    files = {t.code: file for file, t in templates}
    children: dict[str, set[str]] = {t.code: set() for _, t in templates}
    for _, t in templates:
        for ref in t.relations.parents:
            children.setdefault(ref.target, set()).add(t.code)
        for ref in t.relations.children:
            children[t.code].add(ref.target)
    problems: list[Problem] = []
    reported: set[frozenset[str]] = set()
    for start in sorted(files):
        for cycle in _cycles_from(start, children):
            key = frozenset(cycle)
            if key not in reported:
                reported.add(key)
                path = " -> ".join([*cycle, cycle[0]])
                text = f"parent/child links form a cycle: {path}; a process cannot be its own ancestor"
                problems.append(Problem(files[start], "relations", text))
    return problems


def _cycles_from(start: str, children: dict[str, set[str]]) -> Iterator[list[str]]:
    """Cycles through `start` (depth-first, iterative: a long chain cannot exhaust the stack)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for child in sorted(children.get(node, ())):
            if child == start:
                yield path
            elif child not in seen and child not in path:
                seen.add(child)
                stack.append((child, [*path, child]))
