"""What a sync run did: figures per process and for the whole run."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FailedRow(BaseModel):
    """One row that could not be pulled or pushed, with the reason."""

    process: str
    key: str | None = None
    id: int | None = None
    direction: str  # pull | push
    error: str


class ProcessFigures(BaseModel):
    """Counts for one process."""

    pulled: int = 0  # rows written locally from the portal
    skipped: int = 0  # pulled but already known (same id and updatedTime)
    created: int = 0  # local rows created on the portal
    updated: int = 0  # local rows updated on the portal
    deleted_remote: int = 0  # local deletes pushed as crm.item.delete
    tombstoned: int = 0  # portal deletions marked locally (deleted=1)
    unchanged: int = 0  # local changes that needed no write
    conflicts: int = 0
    failed: int = 0


class SyncReport(BaseModel):
    """The outcome of one `sync` run."""

    portal: str
    processes: dict[str, ProcessFigures] = Field(default_factory=dict)
    failures: list[FailedRow] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # what this run could not do (not row failures)
    requests: int = 0
    waited_seconds: float = 0.0
    seconds: float = 0.0
    run_id: int | None = None
    firings: list[dict[str, object]] = Field(default_factory=list)  # stage rules (sync/rules.py)

    def total(self, name: str) -> int:
        """Sum of one figure over all processes."""
        return sum(getattr(p, name) for p in self.processes.values())

    @property
    def pulled(self) -> int:
        return self.total("pulled")

    @property
    def pushed(self) -> int:
        return self.total("created") + self.total("updated") + self.total("deleted_remote")

    @property
    def deleted(self) -> int:
        return self.total("tombstoned") + self.total("deleted_remote")

    @property
    def conflicts(self) -> int:
        return self.total("conflicts")

    @property
    def failed(self) -> int:
        return len(self.failures)

    def summary(self) -> dict[str, object]:
        """The run summary: pulled, pushed, deleted, conflicts, failed, HTTP requests, waits, time."""
        return {
            "portal": self.portal,
            "pulled": self.pulled,
            "pushed": self.pushed,
            "deleted": self.deleted,
            "conflicts": self.conflicts,
            "failed": self.failed,
            "fired": sum(1 for f in self.firings if f.get("status") == "done"),
            "requests": self.requests,
            "waited_seconds": round(self.waited_seconds, 3),
            "seconds": round(self.seconds, 3),
        }

    def to_json(self) -> dict[str, object]:
        """Summary plus per-process figures and failures."""
        out = self.summary()
        out["processes"] = {k: v.model_dump() for k, v in self.processes.items()}
        out["failures"] = [f.model_dump() for f in self.failures]
        out["warnings"] = list(self.warnings)
        out["firings"] = list(self.firings)
        return out
