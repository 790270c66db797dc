"""Records the store hands to sync, deploy, reports and the CLI."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

IdKind = Literal["type", "field", "option", "funnel", "stage", "section", "relation"]
ID_KINDS: tuple[str, ...] = ("type", "field", "option", "funnel", "stage", "section", "relation")


class IdMapEntry(BaseModel):
    """One code ↔ portal id pair of one portal."""

    portal: str
    kind: str
    code: str
    portal_id: int | str
    extra: dict[str, Any] | None = None


class Change(BaseModel):
    """Local changes of one row since the last push, coalesced: net op and every column touched."""

    tbl: str
    key: str
    op: Literal["I", "U", "D"]
    columns: list[str]
    seqs: list[int]
    portal_id: int | None = None
    first_at: str
    last_at: str
    error: str | None = None
    attempts: int = 0


class BaseSnapshot(BaseModel):
    """What both sides agreed on at the last sync of one row."""

    tbl: str
    key: str
    portal_id: int | None
    updated_time: str | None
    data: dict[str, Any]


class Conflict(BaseModel):
    """A row changed on both sides, recorded for policy `manual` or for same-field merges."""

    id: int
    tbl: str
    key: str
    portal_id: int | None
    fields: list[str]
    local: dict[str, Any]
    remote: dict[str, Any]
    base: dict[str, Any] | None
    policy: str
    status: Literal["open", "resolved"]
    resolution: str | None
    created_at: str
    resolved_at: str | None


class StageMove(BaseModel):
    """One stage change of one item, pulled, pushed or seen locally."""

    id: int
    tbl: str
    key: str | None
    portal_id: int | None
    funnel: str | None
    from_stage: str | None
    to_stage: str
    at: str
    source: str


class Run(BaseModel):
    """One sync/deploy/report run with its figures."""

    id: int
    kind: str
    portal: str | None
    job: str | None
    started_at: str
    finished_at: str | None
    status: str
    figures: dict[str, Any]
    error: str | None
