"""Two-way sync of smart-process items between a portal and the local store."""

from connector.sync.conflicts import POLICIES, Policy, settle
from connector.sync.engine import (
    SyncError,
    remember_templates,
    resolve_conflict,
    resolve_maps,
    stored_templates,
    sync,
)
from connector.sync.report import FailedRow, ProcessFigures, SyncReport

__all__ = [
    "POLICIES",
    "Policy",
    "settle",
    "SyncError",
    "remember_templates",
    "resolve_conflict",
    "resolve_maps",
    "stored_templates",
    "sync",
    "FailedRow",
    "ProcessFigures",
    "SyncReport",
]
