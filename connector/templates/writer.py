"""Write a `Template` back as TOML in the hand-written style (used by `adopt`).

Round trip: `loads_template(to_toml(t)) == t`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from connector.templates.model import Field, Funnel, Template, implied_flags

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def to_toml(template: Template) -> str:
    """TOML text for a template; flags are written only where they differ from the preset."""
    out: list[str] = [
        f"code = {_str(template.code)}",
        f"title = {_inline(template.title)}",
        *([f"renamed_from = {_str(template.renamed_from)}"] if template.renamed_from else []),
        f"language = {_str(template.language)}",
        f"preset = {_str(template.preset)}",
    ]
    implied = implied_flags(template.preset, template.integrations)
    overrides = {k: v for k, v in template.flags.items() if implied.get(k) != v}
    if overrides:
        out += ["", "[flags]", *(f"{k} = {_value(v)}" for k, v in overrides.items())]
    integ = template.integrations.model_dump(exclude_defaults=True)
    if integ:
        out += ["", "[integrations]", *(f"{k} = {_value(v)}" for k, v in integ.items())]
    rel = template.relations
    if rel.parents or rel.children:
        out += ["", "[relations]"]
        for key in ("parents", "children"):
            refs = getattr(rel, key)
            if refs:
                items = [r.target if r.children_list else r.model_dump() for r in refs]
                out.append(f"{key} = {_value(items)}")
    for field in template.fields:
        out += ["", "[[fields]]", *_field_lines(field)]
    for funnel in template.funnels:
        out += ["", "[[funnels]]", *_funnel_lines(funnel)]
    for section in template.card_sections:
        out += ["", "[[card_sections]]", *_pairs(section.model_dump())]
    for rule in template.access:
        out += ["", "[[access]]", *_pairs(rule.model_dump(exclude_none=True))]
    for stage_rule in template.rules:  # templates/rules.py
        out += ["", "[[rules]]", *_pairs(stage_rule.model_dump(exclude_defaults=True))]
    return "\n".join(out) + "\n"


def _field_lines(field: Field) -> list[str]:
    data = field.model_dump(exclude_defaults=True)
    data["sort"] = field.sort
    if field.options:
        data["options"] = [{**o.model_dump(exclude_defaults=True), "sort": o.sort} for o in field.options]
    return _pairs(data, multiline_lists=("options",))


def _funnel_lines(funnel: Funnel) -> list[str]:
    data = funnel.model_dump(exclude_defaults=True, exclude={"stages"})
    data["sort"] = funnel.sort
    data["default"] = funnel.default
    lines = _pairs(data)
    for stage in funnel.stages:
        stage_data = stage.model_dump(exclude_defaults=True)
        stage_data.update(sort=stage.sort, color=stage.color, semantics=stage.semantics)
        lines += ["", "[[funnels.stages]]", *_pairs(stage_data)]
    return lines


def _pairs(data: dict[str, Any], multiline_lists: tuple[str, ...] = ()) -> list[str]:
    lines = []
    for key, value in data.items():
        if value is None:
            continue
        if key in multiline_lists and isinstance(value, list) and value:
            lines.append(f"{_key(key)} = [")
            lines += [f"  {_value(v)}," for v in value]
            lines.append("]")
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    return lines


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _str(key)


def _str(value: str) -> str:
    # A JSON string is a valid TOML basic string, except that TOML also forbids a raw DEL.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _inline(table: dict[str, Any]) -> str:
    if not table:
        return "{}"
    return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in table.items() if v is not None) + " }"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _str(value)
    if isinstance(value, dict):
        return _inline(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
