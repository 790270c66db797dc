"""Name conversions the server applies: camelCase <-> UPPER_SNAKE, UF camel names, stage ids."""

from __future__ import annotations

import re

_GENERIC_UF = (
    re.compile(r"^[A-Z_]+$"),
    re.compile(r"^UF_CRM_\d{1,4}_[\d_]+$"),
    re.compile(r"^UF_CRM_\d{1,4}_[A-Z_]+$"),
)
_UPPER_NAME = re.compile(r"^[A-Z0-9_]+$")


def camelize(upper: str) -> str:
    """`ASSIGNED_BY_ID` -> `assignedById`; an underscore between two digits is kept."""
    parts = upper.split("_")
    out = parts[0].lower()
    for prev, part in zip(parts, parts[1:], strict=False):
        if not part:
            continue
        if prev and prev[-1].isdecimal() and part[0].isdecimal():
            out += "_" + part.lower()
        else:
            out += part[0].upper() + part[1:].lower()
    return out


def uf_camel(upper: str) -> str:
    """The item key the server uses for user field `upper` (server-behaviour.md §1)."""
    if any(p.match(upper) for p in _GENERIC_UF):
        return camelize(upper)
    return "ufCrm_" + upper[len("UF_CRM_") :] if upper.startswith("UF_CRM_") else upper


def snake_upper(name: str) -> str:
    """Generic camel -> UPPER_SNAKE with digits split off (`parentId1220` -> `PARENT_ID_1220`)."""
    if _UPPER_NAME.match(name):
        return "UF__" + name[3:] if name.startswith("UF_") else name
    s = re.sub(r"(?<!^)(?=[A-Z])", "_", name)
    s = re.sub(r"(?<=[A-Za-z])(?=\d)", "_", s)
    return s.upper()


def stage_entity_id(entity_type_id: int, category_id: int) -> str:
    """Directory of a funnel's stages: `DYNAMIC_{etid}_STAGE_{cat}`; deals `DEAL_STAGE[_{cat}]`,
    leads `STATUS` (bitrix24-rest.md §8.1)."""
    if entity_type_id == 2:
        return f"DEAL_STAGE_{category_id}" if category_id else "DEAL_STAGE"
    if entity_type_id == 1:
        return "STATUS"
    return f"DYNAMIC_{entity_type_id}_STAGE_{category_id}"


def stage_prefix(entity_type_id: int, category_id: int) -> str:
    """Prefix of a funnel's stage ids: `DT{etid}_{cat}`; deal funnels `C{cat}`, none for funnel 0
    and for leads (bitrix24-rest.md §8.1)."""
    if entity_type_id == 2:
        return f"C{category_id}" if category_id else ""
    if entity_type_id == 1:
        return ""
    return f"DT{entity_type_id}_{category_id}"


def parse_stage_entity_id(entity_id: str) -> tuple[int, int] | None:
    """`DYNAMIC_1032_STAGE_5` -> (1032, 5), `DEAL_STAGE_3` -> (2, 3), `STATUS` -> (1, 0); None for
    other directories."""
    if entity_id == "STATUS":
        return (1, 0)
    m = re.fullmatch(r"DEAL_STAGE(?:_(\d+))?", entity_id)
    if m:
        return (2, int(m.group(1) or 0))
    m = re.fullmatch(r"DYNAMIC_(\d+)_STAGE_(\d+)", entity_id)
    return (int(m.group(1)), int(m.group(2))) if m else None
