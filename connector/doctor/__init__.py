"""`b24sync doctor`: does a portal behave the way the connector needs? Read-only checks, and with
`--sandbox` probes in a temporary smart process compared with the emulator's answers."""

from .checks import Check
from .compare import Row
from .run import EXIT_COULD_NOT_RUN, EXIT_DIFFERENT, EXIT_SAME, DoctorReport, run_doctor
from .side import DoctorError

__all__ = ["EXIT_COULD_NOT_RUN", "EXIT_DIFFERENT", "EXIT_SAME", "Check", "DoctorError", "DoctorReport", "Row",
           "run_doctor"]
