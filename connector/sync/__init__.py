"""Two-way sync of smart-process items between a portal and the local store."""

from connector.sync.conflicts import POLICIES, Policy, settle
from connector.sync.engine import (
    SyncError,
    prepare_store,
    remember_templates,
    resolve_conflict,
    resolve_maps,
    stored_templates,
    sync,
)
from connector.sync.lock import DEFAULT_WAIT, LockHolder, SyncLocked, holder_of, sync_lock
from connector.sync.report import FailedRow, ProcessFigures, SyncReport

__all__ = [
    "POLICIES",
    "Policy",
    "settle",
    "SyncError",
    "SyncLocked",
    "LockHolder",
    "DEFAULT_WAIT",
    "holder_of",
    "sync_lock",
    "prepare_store",
    "remember_templates",
    "resolve_conflict",
    "resolve_maps",
    "stored_templates",
    "sync",
    "FailedRow",
    "ProcessFigures",
    "SyncReport",
]
