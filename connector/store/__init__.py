"""The local SQLite store: process tables, change log triggers, id map, sync bookkeeping."""

from typing import TYPE_CHECKING, Any

from connector.store.bulk import BULK_NULL
from connector.store.errors import StoreError
from connector.store.idmap import IdMap
from connector.store.keys import new_key, new_keys
from connector.store.models import BaseSnapshot, Change, Conflict, IdMapEntry, Run, StageMove
from connector.store.store import Store

if TYPE_CHECKING:  # the read-only reader (exports, reports) is imported when first asked for
    from connector.store.reader import ProcessCatalog, StoreReader

__all__ = [
    "BULK_NULL", "BaseSnapshot", "Change", "Conflict", "IdMap", "IdMapEntry", "ProcessCatalog", "Run",
    "StageMove", "Store", "StoreError", "StoreReader", "new_key", "new_keys",
]


def __getattr__(name: str) -> Any:
    """`StoreReader` and `ProcessCatalog`, imported on first use (a sync never reads through them)."""
    if name in ("ProcessCatalog", "StoreReader"):
        from connector.store import reader

        return getattr(reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
