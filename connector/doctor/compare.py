"""Running the probes on one side, and comparing the portal's observations with the emulator's."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from connector.rest import B24Error

from . import sandbox
from .probes import PROBES, Observation
from .side import Side, error_text


class Row(BaseModel):
    """One behaviour: what the portal did, what the emulator did, and whether they agree."""

    key: str
    behaviour: str
    portal: Observation
    emulator: Observation
    same: bool


def observe(side: Side, stamp: str, values: dict[str, str]) -> dict[str, Observation]:
    """Create the sandbox on `side`, run every probe, remove the sandbox (also when a probe fails).

    A probe that fails with a portal error is observed as that error; setup failures propagate.
    """
    sb = sandbox.create(side, stamp, values)
    observations: dict[str, Observation] = {}
    try:
        for probe in PROBES:
            side.mark(probe.key)
            try:
                observations[probe.key] = probe.run(sb)
            except B24Error as err:
                observations[probe.key] = {"failed": error_text(err)}
            except (KeyError, TypeError, ValueError) as err:  # an answer of an unexpected shape
                observations[probe.key] = {"failed": f"unexpected answer ({type(err).__name__}: {err})"}
    finally:
        sandbox.remove(sb)
    return observations


def compare(portal: dict[str, Observation], emulator: dict[str, Observation]) -> list[Row]:
    """One row per probe, in probe order."""
    return [Row(key=p.key, behaviour=p.behaviour, portal=portal.get(p.key, {}),
                emulator=emulator.get(p.key, {}), same=portal.get(p.key) == emulator.get(p.key))
            for p in PROBES]


def show(observation: Observation) -> str:
    """An observation as one text cell: one `what: value` line per key (just the value when alone)."""
    if len(observation) == 1:
        return _text(next(iter(observation.values())))
    return "\n".join(f"{k}: {_text(v)}" for k, v in observation.items())


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)
