"""Deliberate departures from the server's behaviour, switched on by hand to test `b24sync doctor`.

`b24sync doctor --sandbox` compares a portal with the emulator. To prove that the comparison
finds a real difference, CI serves an emulator with ONE behaviour changed on purpose and expects
the doctor to report exactly that behaviour. The switch is the hidden option
`b24sync emulator serve --deviate NAME` (not shown in `--help`: it makes the fake portal wrong).

Each deviation is a name here plus a one-line hook where the behaviour lives:

- `noop-update-bumps-updated-time` (hook in `items.item_update`): a `crm.item.update` that
  changes nothing is saved anyway and bumps `updatedTime`. The server keeps `updatedTime` and
  saves nothing (server-behaviour.md §2 "updatedTime": `Operation::preSaveChecks` resets
  UPDATED_TIME when `!isItemChanged()`).
"""

from __future__ import annotations

from typing import Any

NOOP_UPDATE_BUMPS = "noop-update-bumps-updated-time"

DEVIATIONS: dict[str, str] = {
    NOOP_UPDATE_BUMPS: "a crm.item.update that changes nothing still saves and bumps updatedTime",
}


def enable(emu: Any, names: list[str] | tuple[str, ...]) -> None:
    """Switch deviations on for one emulator; an unknown name is a ValueError naming the allowed ones."""
    unknown = [n for n in names if n not in DEVIATIONS]
    if unknown:
        raise ValueError(f"unknown deviation {unknown[0]!r}; allowed: {', '.join(sorted(DEVIATIONS))}")
    emu.state.deviations = frozenset(names)


def active(state: Any, name: str) -> bool:
    """Whether the portal state was told to deviate in `name` (never, unless `enable` was called)."""
    return name in getattr(state, "deviations", ())
