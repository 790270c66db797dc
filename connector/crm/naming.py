"""Pure naming rules of Bitrix24 smart processes: UF names, camelCase, stage ids, Y/N, dates, short codes.

Everything here follows the server source (`crm/lib/Service/Converter.php`: field-name casing)
and has no I/O and no imports from the rest of the connector except constants.
"""

from __future__ import annotations

import re

# The portal-date rule lives in times.py; re-exported because crm/items.py imports it from here.
from connector.times import parse_date as parse_date

# userfieldconfig.add: FIELD_NAME is 4..50 chars of ^[0-9A-Z_]+$ and starts with UF_CRM_{typeId}_.
UF_NAME_MAX = 50
UF_PREFIX = "UF_CRM_"
# Type ids are small autoincrements (3, 7, 16 ...); we reserve 5 digits so a code fits on any portal.
TYPE_ID_DIGITS_RESERVED = 5
UF_CODE_MAX = UF_NAME_MAX - len(UF_PREFIX) - TYPE_ID_DIGITS_RESERVED - 1  # 37

_UF_NAME_RE = re.compile(r"^[0-9A-Z_]+$")
_GENERIC_UF_RES = (
    re.compile(r"^[A-Z_]+$"),
    re.compile(r"^UF_CRM_\d{1,4}_[\d_]+$"),
    re.compile(r"^UF_CRM_\d{1,4}_[A-Z_]+$"),
)
_FILTER_PREFIX_RE = re.compile(r"^([=%><!@]*)(.*)$", re.S)
_UPPER_NAME_RE = re.compile(r"^[A-Z0-9_]+$")
_STAGE_ID_RE = re.compile(r"^DT(\d+)_(\d+):(.+)$")
_STAGE_ENTITY_RE = re.compile(r"^DYNAMIC_(\d+)_STAGE_(\d+)$")

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
    m = re.match(r"^UF_CRM_\d+_(.+)$", name)
    if not m:
        raise ValueError(f"{name!r} is not a smart-process field name (UF_CRM_<typeId>_<CODE>)")
    return m.group(1)


def _camelize(upper: str) -> str:
    """Generic UPPER_SNAKE -> camelCase; an underscore between two digits is kept."""
    parts = upper.split("_")
    out = parts[0].lower()
    for prev, part in zip(parts, parts[1:], strict=False):
        if prev[-1:].isdecimal() and part[:1].isdecimal():
            out += "_" + part.lower()
        else:
            out += part[:1].upper() + part[1:].lower()
    return out


def uf_camel(upper_name: str) -> str:
    """The camelCase key crm.item uses for an UPPER field name (server Converter rules).

    `UF_CRM_5_MY_FIELD` -> `ufCrm5MyField`, `UF_CRM_5_1700000000000` -> `ufCrm5_1700000000000`,
    `UF_CRM_5_FIELD1` -> `ufCrm_5_FIELD1` (special form), `ASSIGNED_BY_ID` -> `assignedById`.
    """
    if any(r.match(upper_name) for r in _GENERIC_UF_RES) or not upper_name.startswith("UF_"):
        return _camelize(upper_name)
    if upper_name.startswith(UF_PREFIX):
        return "ufCrm_" + upper_name[len(UF_PREFIX) :]
    return upper_name


def camel_to_upper(name: str) -> str:
    """Reverse of `uf_camel` for keys and filter keys (`>=createdTime` -> `>=CREATED_TIME`)."""
    prefix, body = _FILTER_PREFIX_RE.match(name).groups()  # type: ignore[union-attr]
    if _UPPER_NAME_RE.match(body):
        return prefix + body
    if body.startswith("ufCrm_"):
        return prefix + UF_PREFIX + body[len("ufCrm_") :]
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", body)
    snake = re.sub(r"(?<=[A-Za-z])(?=[0-9])", "_", snake)
    snake = re.sub(r"(?<=[0-9])(?=[A-Za-z])", "_", snake)
    return prefix + snake.upper()


# --- stages ----------------------------------------------------------------------------------------


def stage_prefix(etid: int, category_id: int) -> str:
    """`DT{entityTypeId}_{categoryId}` — the STATUS_ID prefix of a smart-process funnel."""
    return f"DT{int(etid)}_{int(category_id)}"


def stage_id(etid: int, category_id: int, code: str) -> str:
    """STATUS_ID `DT{etid}_{cat}:{CODE}` (the value of an item's stageId)."""
    if not code or ":" in code:
        raise ValueError(f"stage code must be non-empty and without ':', got {code!r}")
    return f"{stage_prefix(etid, category_id)}:{code}"


def parse_stage_id(value: str) -> tuple[int, int, str]:
    """`DT1032_5:NEW` -> (1032, 5, "NEW")."""
    m = _STAGE_ID_RE.match(value or "")
    if not m:
        raise ValueError(f"{value!r} is not a smart-process stage id (DT<entityTypeId>_<categoryId>:<CODE>)")
    return int(m.group(1)), int(m.group(2)), m.group(3)


def stage_code(value: str) -> str:
    """The template stage code of a STATUS_ID (`DT1032_5:NEW` -> `NEW`)."""
    return parse_stage_id(value)[2]


def stage_entity_id(etid: int, category_id: int) -> str:
    """Stage directory ENTITY_ID `DYNAMIC_{etid}_STAGE_{cat}` (crm.status)."""
    return f"DYNAMIC_{int(etid)}_STAGE_{int(category_id)}"


def parse_stage_entity_id(value: str) -> tuple[int, int]:
    """`DYNAMIC_1032_STAGE_5` -> (1032, 5)."""
    m = _STAGE_ENTITY_RE.match(value or "")
    if not m:
        raise ValueError(f"{value!r} is not a stage directory id (DYNAMIC_<entityTypeId>_STAGE_<categoryId>)")
    return int(m.group(1)), int(m.group(2))


# --- Y/N -------------------------------------------------------------------------------------------


def yn(value: bool) -> str:
    """True -> "Y", False -> "N"."""
    if not isinstance(value, bool):
        raise ValueError(f"expected a bool, got {value!r}")
    return "Y" if value else "N"


def from_yn(value: str | bool) -> bool:
    """ "Y" -> True, "N" -> False (also accepts a bool); anything else is an error."""
    if isinstance(value, bool):
        return value
    if value in ("Y", "y"):
        return True
    if value in ("N", "n"):
        return False
    raise ValueError(f"expected 'Y' or 'N', got {value!r}")


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


def crm_link(etid: int, item_id: int) -> str:
    """A `crm` user-field value `T408_12` / `D_7` / `CO_5`."""
    return f"{short_code(etid)}_{int(item_id)}"


def parse_crm_link(value: str) -> tuple[int, int]:
    """`T408_12` -> (1032, 12); `CO_5` -> (4, 5)."""
    head, sep, tail = (value or "").rpartition("_")
    if not sep or not tail.isdecimal():
        raise ValueError(f"{value!r} is not a CRM link value (<abbr>_<id>, e.g. D_7, CO_5, T408_12)")
    return parse_short_code(head), int(tail)
