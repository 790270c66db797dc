"""The local SQLite store: process tables, change log triggers, id map, sync bookkeeping."""

from connector.store.bulk import BULK_NULL
from connector.store.errors import StoreError
from connector.store.idmap import IdMap
from connector.store.keys import new_key, new_keys
from connector.store.models import BaseSnapshot, Change, Conflict, IdMapEntry, Run, StageMove
from connector.store.reader import ProcessCatalog, StoreReader
from connector.store.store import Store

__all__ = [
    "BULK_NULL", "BaseSnapshot", "Change", "Conflict", "IdMap", "IdMapEntry", "ProcessCatalog", "Run",
    "StageMove", "Store", "StoreError", "StoreReader", "new_key", "new_keys",
]
