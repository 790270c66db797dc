"""b24sync: a connector for Bitrix24 smart processes (deploy, two-way sync, reports).

`from connector import Portal` is the Python API (see connector/api.py); the import is lazy so
that light modules (the emulator, the constants) do not pull in the whole connector.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Portal", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Portal":
        from connector.api import Portal

        return Portal
    raise AttributeError(f"module 'connector' has no attribute {name!r}")
