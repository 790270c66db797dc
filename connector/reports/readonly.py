"""Opening a store file for a report: the store's read-only reader, or a clear error."""

from __future__ import annotations

from pathlib import Path

from connector.reports.errors import ReportError
from connector.store.reader import StoreReader


def open_store(db_path: str | Path) -> StoreReader:
    """The store file opened so that nothing run on it can change it."""
    path = Path(db_path)
    if not path.is_file():
        raise ReportError(f"store file not found: {path} (run `b24sync sync` first, or pass --db PATH)")
    return StoreReader.open(path)


def require_process(store: StoreReader, type_code: str) -> None:
    """Raise a ReportError listing the valid process codes when `type_code` is not one of them."""
    processes = store.processes()
    if type_code not in processes:
        valid = ", ".join(processes) or "none: the store has no process tables yet"
        raise ReportError(f"unknown process {type_code!r}; processes in this store: {valid}")
