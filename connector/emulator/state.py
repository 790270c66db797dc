"""The portal's state: types, funnels, stages, user fields, items; sequences that never reuse ids."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

LINKED_USER_FIELDS = (
    "CALENDAR_EVENT|UF_CRM_CAL_EVENT",
    "TASKS_TASK|UF_CRM_TASK",
    "TASKS_TASK_TEMPLATE|UF_CRM_TASK",
)


@dataclass
class Relation:
    """A parent -> child link between two entity types (items of `child` get `parentId{parent}`)."""

    parent: int
    child: int
    children_list: bool = True
    predefined: bool = False


@dataclass
class SmartType:
    """A row of b_crm_dynamic_type."""

    id: int
    entity_type_id: int
    title: str
    code: str
    flags: dict[str, bool]
    created_by: int
    updated_by: int
    created_time: float
    updated_time: float
    linked_user_fields: dict[str, bool] = field(default_factory=dict)
    custom_section_id: int | None = None

    def flag(self, name: str) -> bool:
        return self.flags.get(name, False)


@dataclass
class Category:
    """A funnel of a type."""

    id: int
    entity_type_id: int
    name: str
    sort: int
    is_default: bool


@dataclass
class Stage:
    """A row of b_crm_status in a DYNAMIC_{etid}_STAGE_{cat} directory."""

    id: int
    entity_id: str
    status_id: str
    name: str
    sort: int
    system: bool
    category_id: int
    color: str
    semantics: str | None  # None (process), "S", "F"
    name_init: str = ""  # the default stages' original NAME (server-behaviour.md §4); "" for added ones


@dataclass
class EnumOption:
    """An enumeration option of a user field."""

    id: int
    value: str
    defaults: bool
    sort: int
    xml_id: str


@dataclass
class StoredFile:
    """The bytes of one file-field value, served back by the download route."""

    id: int
    name: str
    data: bytes
    token: str  # the secret in `urlMachine` (bitrix24-rest.md §9.3: it carries an auth token)


@dataclass
class UserField:
    """A row of b_user_field (+ labels and options)."""

    id: int
    entity_id: str
    field_name: str
    user_type_id: str
    xml_id: str | None
    sort: int
    multiple: bool
    mandatory: bool
    show_filter: str
    show_in_list: bool
    edit_in_list: bool
    is_searchable: bool
    settings: dict[str, Any]
    labels: dict[str, dict[str, str | None]]  # editFormLabel/listColumnLabel/... -> lang -> text
    enum: list[EnumOption] = field(default_factory=list)


class ItemTable:
    """Items of one type: rows keyed by id plus a sorted id list, so keyset pages never scan.

    A delete only pops the row and leaves its id in the sorted list as a stale entry (no O(n)
    list shift per delete); walkers skip ids without a row, `ids` compacts on demand, and the
    list is compacted by itself once half of it is stale.
    """

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self._ids: list[int] = []
        self._stale = 0

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> list[int]:
        """Live ids, ascending (compacts the stale entries first)."""
        if self._stale:
            self._compact()
        return self._ids

    @property
    def raw_ids(self) -> list[int]:
        """Ascending ids that may include deleted ones (skip ids not in `rows`)."""
        return self._ids

    def note_skipped(self, stale_seen: int) -> None:
        """A walk stepped over `stale_seen` deleted ids: compact when that gets costly."""
        if stale_seen > 256 and self._stale:
            self._compact()

    def _compact(self) -> None:
        rows = self.rows
        self._ids = [i for i in self._ids if i in rows]
        self._stale = 0

    def put(self, item_id: int, row: dict[str, Any]) -> None:
        if item_id not in self.rows:
            ids = self._ids
            if not ids or item_id > ids[-1]:
                ids.append(item_id)
            else:
                i = bisect.bisect_left(ids, item_id)
                if i < len(ids) and ids[i] == item_id:  # a stale entry comes back to life
                    self._stale -= 1
                else:
                    ids.insert(i, item_id)
        self.rows[item_id] = row

    def remove(self, item_id: int) -> None:
        if self.rows.pop(item_id, None) is not None:
            self._stale += 1
            if self._stale > 1024 and self._stale * 2 > len(self._ids):
                self._compact()

    def id_span(self, low: int | None, high: int | None, *, live: bool = True) -> tuple[int, int]:
        """Positions [lo, hi) in `ids` (or `raw_ids` when not `live`) of the ids within [low, high]."""
        ids = self.ids if live else self._ids
        lo = 0 if low is None else bisect.bisect_left(ids, low)
        hi = len(ids) if high is None else bisect.bisect_right(ids, high)
        return lo, max(lo, hi)

    def id_range(self, low: int | None, high: int | None) -> list[int]:
        """Ids in [low, high] (inclusive, either bound optional), without scanning."""
        lo, hi = self.id_span(low, high)
        return self.ids[lo:hi]


@dataclass
class Sequences:
    """Portal-wide autoincrements; deleted ids are never handed out again."""

    type_id: int = 2  # system types (smart invoice, document, ...) take the first rows
    entity_type_id: int = 1030
    category_id: int = 0
    status_id: int = 0
    user_field_id: int = 0
    enum_id: int = 0
    file_id: int = 0
    product_row_id: int = 0
    item_ids: dict[int, int] = field(default_factory=dict)

    def next(self, name: str, step: int = 1) -> int:
        value = getattr(self, name) + step
        setattr(self, name, value)
        return value

    def next_item(self, entity_type_id: int) -> int:
        value = self.item_ids.get(entity_type_id, 0) + 1
        self.item_ids[entity_type_id] = value
        return value


class PortalState:
    """All data of one portal. Callers hold `lock` while reading or writing."""

    def __init__(self, tz: timezone) -> None:
        self.tz = tz
        self.limiter: Any = None  # hooks, set by the Emulator (limits.py, faults.py, events.py)
        self.faults: Any = None
        self.events: Any = None
        self.clock: Any = None
        self.lock = threading.RLock()
        self.seq = Sequences()
        self.types: dict[int, SmartType] = {}  # by type id
        self.system_types: dict[int, SmartType] = {}  # lead/deal/contact/company (system.py)
        self.product_rows: dict[int, dict[str, Any]] = {}  # by row id (productrows.py)
        self.categories: dict[int, Category] = {}
        self.stages: dict[int, Stage] = {}
        self.user_fields: dict[int, UserField] = {}
        self.items: dict[int, ItemTable] = {}  # by entityTypeId
        self.relations: dict[tuple[int, int], Relation] = {}  # (parent etid, child etid)
        self.stage_history: list[dict[str, Any]] = []
        self.details_config: dict[str, Any] = {}
        self.files: dict[int, StoredFile] = {}
        self.dirty_files: set[int] = set()
        self.base_url = "https://emulator.bitrix24.test"  # where file urls point (set by the Emulator)
        self.version = 0  # bumped on every schema change (caches key on it)
        self.schema_cache: dict[tuple[int, int], Any] = {}  # (etid, version) -> ItemSchema
        self.dirty_items: set[tuple[int, int]] = set()
        self.schema_dirty = False

    # lookups -------------------------------------------------------------
    def type_by_etid(self, entity_type_id: int) -> SmartType | None:
        for t in self.types.values():
            if t.entity_type_id == entity_type_id:
                return t
        return None

    def parents_of(self, entity_type_id: int) -> list[Relation]:
        return [r for r in self.relations.values() if r.child == entity_type_id]

    def children_of(self, entity_type_id: int) -> list[Relation]:
        return [r for r in self.relations.values() if r.parent == entity_type_id]

    def categories_of(self, entity_type_id: int) -> list[Category]:
        cats = [c for c in self.categories.values() if c.entity_type_id == entity_type_id]
        return sorted(cats, key=lambda c: (c.sort, c.id))

    def default_category(self, entity_type_id: int) -> Category | None:
        for c in self.categories.values():
            if c.entity_type_id == entity_type_id and c.is_default:
                return c
        return None

    def stages_of(self, entity_id: str) -> list[Stage]:
        rows = [s for s in self.stages.values() if s.entity_id == entity_id]
        return sorted(rows, key=lambda s: (s.sort, s.id))

    def fields_of(self, entity_id: str) -> list[UserField]:
        rows = [f for f in self.user_fields.values() if f.entity_id == entity_id]
        return sorted(rows, key=lambda f: (f.sort, f.id))

    def table(self, entity_type_id: int) -> ItemTable:
        tbl = self.items.get(entity_type_id)
        if tbl is None:
            tbl = self.items[entity_type_id] = ItemTable()
        return tbl

    def touch_schema(self) -> None:
        self.version += 1
        self.schema_dirty = True
