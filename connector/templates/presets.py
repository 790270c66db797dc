"""The three ways Bitrix24 starts a smart process, as crm.type flag sets (presets/*.toml)."""

from __future__ import annotations

import tomllib
from functools import cache

from connector.constants import READ_ONLY_TYPE_FLAGS, TYPE_FLAGS

# crm.type flags in the order of crm.type.fields (plus the two system flags the type object returns).
FLAG_NAMES: tuple[str, ...] = TYPE_FLAGS + READ_ONLY_TYPE_FLAGS

PRESET_NAMES: tuple[str, ...] = ("scratch", "all-inclusive", "list")


@cache
def _load(name: str) -> dict[str, bool]:
    from importlib import resources  # ~20 ms, needed only once a template is built

    text = resources.files("connector.templates").joinpath("presets", f"{name}.toml").read_text("utf-8")
    data = tomllib.loads(text)
    missing = [f for f in FLAG_NAMES if f not in data]
    if missing or set(data) - set(FLAG_NAMES):
        raise RuntimeError(f"preset {name!r} is broken: it must set exactly {', '.join(FLAG_NAMES)}")
    return {f: bool(data[f]) for f in FLAG_NAMES}


def preset_flags(name: str) -> dict[str, bool]:
    """All crm.type flags of a preset (a fresh dict)."""
    if name not in PRESET_NAMES:
        raise ValueError(f"unknown preset {name!r}; allowed: {', '.join(PRESET_NAMES)}")
    return dict(_load(name))
