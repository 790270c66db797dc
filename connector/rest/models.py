"""Parsed answers of the portal: one call (`ApiResponse`) and one batch (`BatchResult`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import B24Error


class ApiResponse(BaseModel):
    """A successful envelope: `result`, plus `total`/`next` for lists and the `time` object."""

    result: Any = None
    total: int | None = None
    next: int | None = None
    time: dict[str, Any] = Field(default_factory=dict)
    status: int = 200


class BatchResult(BaseModel):
    """Per-label outcome of `batch`: a label is in `results` or in `errors` (or absent after halt)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    results: dict[str, Any] = Field(default_factory=dict)
    errors: dict[str, B24Error] = Field(default_factory=dict)
    totals: dict[str, int] = Field(default_factory=dict)
    nexts: dict[str, int] = Field(default_factory=dict)
    times: dict[str, dict[str, Any]] = Field(default_factory=dict)
    time: dict[str, Any] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def get(self, label: str) -> Any:
        """The result of `label`; raises its error, or KeyError if it never ran (halt)."""
        if label in self.errors:
            raise self.errors[label]
        if label in self.results:
            return self.results[label]
        raise KeyError(f"batch label {label!r} has no result (not sent, or skipped after halt)")

    def merge(self, other: BatchResult) -> None:
        """Add another chunk's outcome (labels are unique across chunks)."""
        self.results.update(other.results)
        self.errors.update(other.errors)
        self.totals.update(other.totals)
        self.nexts.update(other.nexts)
        self.times.update(other.times)
        self.time = other.time or self.time
