"""A faithful fake Bitrix24 portal for smart processes: in-process, on `responses`, or over HTTP."""

from .core import Emulator, LogEntry
from .server import EmulatorServer, serve

__all__ = ["Emulator", "EmulatorServer", "LogEntry", "serve"]
