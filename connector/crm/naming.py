"""Pure naming rules of Bitrix24 smart processes: UF names, stage and directory ids, Y/N, short codes.

The one home of these rules: no I/O and no imports from the rest of the connector except
constants (and `times` for the portal-date rule, re-exported here).
"""

from __future__ import annotations

import re

from connector.constants import UF_CODE_MAX as UF_CODE_MAX
from connector.constants import UF_NAME_MAX, UF_PREFIX

_UF_NAME_RE = re.compile(r"^[0-9A-Z_]+$")
_UF_SUFFIX_RE = re.compile(r"^UF_CRM_\d+_(.+)$")

# Abbreviations used in crm-link values (C_12, CO_5, D_7, T80_3) for system types.
SYSTEM_SHORT_CODES: dict[int, str] = {1: "L", 2: "D", 3: "C", 4: "CO", 7: "Q", 31: "SI"}
_SHORT_TO_SYSTEM = {v: k for k, v in SYSTEM_SHORT_CODES.items()}


# --- user fields -------------------------------------------------------------------------------


def uf_name(type_id: int, code: str) -> str:
    """Portal field name `UF_CRM_{typeId}_{CODE}` for a template field code (type id, not entityTypeId)."""
    if not isinstance(type_id, int) or isinstance(type_id, bool) or type_id <= 0:
        raise ValueError(f"type id must be a positive integer (the crm.type `id`), got {type_id!r}")
    name = f"{UF_PREFIX}{type_id}_{code.upper()}"
    if not _UF_NAME_RE.match(name):
        raise ValueError(f"field name {name!r} may contain only A-Z, 0-9 and _")
    if len(name) > UF_NAME_MAX:
        raise ValueError(f"field name {name!r} is {len(name)} chars; Bitrix24 allows at most {UF_NAME_MAX}")
    return name


def uf_suffix(name: str) -> str:
    """The part after `UF_CRM_{typeId}_` of a portal field name (`UF_CRM_7_VIN` -> `VIN`)."""
    m = _UF_SUFFIX_RE.match(name)
    if not m:
        raise ValueError(f"{name!r} is not a smart-process field name (UF_CRM_<typeId>_<CODE>)")
    return m.group(1)


def field_entity_id(type_id: int) -> str:
    """The user-field owner of a smart process: `CRM_{type id}` (not entityTypeId)."""
    return f"CRM_{type_id}"


# --- stages ----------------------------------------------------------------------------------------


def stage_id(etid: int, category_id: int, code: str) -> str:
    """STATUS_ID `DT{etid}_{cat}:{CODE}` (the value of an item's stageId)."""
    if not code or ":" in code:
        raise ValueError(f"stage code must be non-empty and without ':', got {code!r}")
    return f"DT{int(etid)}_{int(category_id)}:{code}"


def stage_entity_id(etid: int, category_id: int) -> str:
    """Stage directory ENTITY_ID `DYNAMIC_{etid}_STAGE_{cat}` (crm.status)."""
    return f"DYNAMIC_{int(etid)}_STAGE_{int(category_id)}"


# --- Y/N -------------------------------------------------------------------------------------------

_TRUE = ("Y", "TRUE", "1")
_FALSE = ("N", "FALSE", "0", "")


def yn(value: bool) -> str:
    """True -> "Y", False -> "N" (what the portal takes)."""
    if not isinstance(value, bool):
        raise ValueError(f"expected a bool, got {value!r}")
    return "Y" if value else "N"


def from_yn(value: object) -> bool:
    """A portal flag as a bool: "Y"/"N" (also true/false, 1/0, a bool; empty or null is "N").

    server-behaviour.md §3 "Defaults": type flags and linkedUserFields come back as "Y"/"N";
    relations are written as "true"/"false".
    Anything else is an error naming the allowed values.
    """
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().upper()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected 'Y' or 'N' (or true/false, 1/0), got {value!r}")


# --- short codes -----------------------------------------------------------------------------------


def short_code(etid: int) -> str:
    """CRM owner abbreviation: smart process `T` + hex (128 -> `T80`, 1032 -> `T408`), deal `D`, ..."""
    etid = int(etid)
    if etid in SYSTEM_SHORT_CODES:
        return SYSTEM_SHORT_CODES[etid]
    if etid <= 0:
        raise ValueError(f"entityTypeId must be positive, got {etid}")
    return f"T{etid:x}"


def parse_short_code(code: str) -> int:
    """`T408` -> 1032, `D` -> 2, `CO` -> 4."""
    if code in _SHORT_TO_SYSTEM:
        return _SHORT_TO_SYSTEM[code]
    m = re.match(r"^T([0-9a-fA-F]+)$", code or "")
    if not m:
        allowed = ", ".join(sorted(_SHORT_TO_SYSTEM))
        raise ValueError(f"{code!r} is not a CRM type abbreviation ({allowed} or T<hex entityTypeId>)")
    return int(m.group(1), 16)


def parse_crm_link(value: str) -> tuple[int, int]:
    """`T408_12` -> (1032, 12); `CO_5` -> (4, 5)."""
    head, sep, tail = (value or "").rpartition("_")
    if not sep or not tail.isdecimal():
        raise ValueError(f"{value!r} is not a CRM link value (<abbr>_<id>, e.g. D_7, CO_5, T408_12)")
    return parse_short_code(head), int(tail)
