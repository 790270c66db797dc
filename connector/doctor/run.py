"""`run_doctor`: the read-only checks, then (with `sandbox`) the probes on the portal and on the emulator."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from connector.errors import EXIT_CHANGES
from connector.rest import B24Error, Client
from connector.times import utc_now

from .checks import Check, run_checks
from .cleanup import CODE_PREFIX, remove_leftovers
from .compare import Row, compare, observe
from .side import DoctorError, Side, emulator_side, portal_side

EXIT_SAME, EXIT_COULD_NOT_RUN, EXIT_DIFFERENT = 0, 1, EXIT_CHANGES


class DoctorReport(BaseModel):
    """Everything the doctor found; `exit_code` 0 nothing differs, 5 differences (or a failed check)."""

    portal: str
    mode: Literal["read-only", "sandbox"]
    checks: list[Check] = Field(default_factory=list)
    behaviours: list[Row] = Field(default_factory=list)
    leftovers_removed: int = 0
    record: str | None = None
    offset: str | None = None
    server_start: float | None = None

    @property
    def differences(self) -> list[Row]:
        return [row for row in self.behaviours if not row.same]

    @property
    def failed_checks(self) -> list[Check]:
        return [check for check in self.checks if check.status == "fail"]

    @property
    def exit_code(self) -> int:
        return EXIT_DIFFERENT if self.differences or self.failed_checks else EXIT_SAME


def run_doctor(client: Client, *, sandbox: bool = False, record: Path | None = None,
               stamp: str | None = None) -> DoctorReport:
    """Check one portal; raises DoctorError when it could not run (exit code 1)."""
    portal = portal_side(client, record is not None)
    report = DoctorReport(portal=client.auth.host, mode="sandbox" if sandbox else "read-only",
                          record=str(record) if record else None)
    try:
        report.checks, facts = run_checks(portal)
        report.offset, report.server_start = facts.offset, facts.server_start
        if sandbox:
            refused = [c for c in report.checks if c.check.startswith("may create") and c.status == "fail"]
            if refused:
                raise DoctorError(f"--sandbox needs rights to create smart processes and fields: "
                                  f"{refused[0].check}: {refused[0].result}")
            report.leftovers_removed = _remove_leftovers(portal)
            stamp = stamp or utc_now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(2)
            day = facts.server_date or utc_now().date().isoformat()
            values = {"day": day, "moment": f"{day}T10:20:30+00:00"}
            report.behaviours = compare(_observe(portal, stamp, values),
                                        _observe_emulator(facts.offset, stamp, values))
    finally:
        if record is not None and portal.recorder is not None:
            portal.recorder.write(record, report.model_dump(mode="json", exclude={"record"}))
    return report


def _remove_leftovers(portal: Side) -> int:
    try:
        return remove_leftovers(portal)
    except B24Error as err:
        raise DoctorError(f"could not remove sandbox leftovers ({CODE_PREFIX}*) of an earlier run: "
                          f"{err}") from None


def _observe(portal: Side, stamp: str, values: dict[str, str]) -> dict[str, dict]:
    try:
        return observe(portal, stamp, values)
    except B24Error as err:
        raise DoctorError(f"the sandbox smart process {CODE_PREFIX}{stamp} could not be set up or removed: "
                          f"{err}; the next `b24sync doctor --sandbox` removes what is left") from None


def _observe_emulator(offset: str, stamp: str, values: dict[str, str]) -> dict[str, dict]:
    emulator = emulator_side(offset)
    try:
        return observe(emulator, stamp, values)
    except B24Error as err:
        raise DoctorError(f"the in-process emulator refused the sandbox: {err}") from None
    finally:
        emulator.stop()
