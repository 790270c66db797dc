"""A portal's smart-process schema: read in a few batched requests, written in batches.

Reads: `crm.type.list`, then one batch per ≤12 types (`crm.type.get`, `userfieldconfig.list`,
`crm.category.list`, `crm.item.details.configuration.get`), then one batch of `crm.status.list`
per funnel. Writes go through `run_commands`, which packs commands into batches of ≤ 50 and turns
`Ref`s to earlier commands into `$result[...]` references when they share a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from connector.constants import BATCH_MAX, TYPE_FLAGS
from connector.crm.naming import field_entity_id, from_yn, stage_entity_id
from connector.errors import B24SyncError
from connector.rest import Client
from connector.rest.paging import page_rows
from connector.rest.references import BatchRef, batch_ref, glued

Semantics = Literal["process", "success", "failure"]

LINKED_USER_FIELDS = {
    "calendar": "CALENDAR_EVENT|UF_CRM_CAL_EVENT",
    "tasks": "TASKS_TASK|UF_CRM_TASK",
    "task_templates": "TASKS_TASK_TEMPLATE|UF_CRM_TASK",
}
_SEMANTICS_IN = {"S": "success", "F": "failure"}
SEMANTICS_OUT = {"process": "", "success": "S", "failure": "F"}


class PortalStage(BaseModel):
    """One kanban stage (`crm.status` row of `DYNAMIC_{etid}_STAGE_{cat}`)."""

    id: int
    status_id: str
    code: str
    name: str
    sort: int
    color: str = ""
    semantics: Semantics = "process"
    system: bool = False


class PortalFunnel(BaseModel):
    """One funnel (`crm.category`) with its stages sorted by `sort`."""

    id: int | None
    name: str
    sort: int = 500
    is_default: bool = False
    stages: list[PortalStage] = Field(default_factory=list)

    def stage(self, code: str) -> PortalStage | None:
        """The stage whose STATUS_ID ends with `:code`."""
        return next((s for s in self.stages if s.code == code), None)


class PortalOption(BaseModel):
    """One enumeration option of a user field."""

    id: int
    value: str
    xml_id: str = ""
    sort: int = 500
    default: bool = False


class PortalField(BaseModel):
    """One user field of a smart process (`userfieldconfig` row)."""

    id: int
    field_name: str
    user_type_id: str
    multiple: bool = False
    mandatory: bool = False
    xml_id: str = ""
    sort: int = 100
    show_filter: bool = False
    label: dict[str, str] = Field(default_factory=dict)
    help: dict[str, str] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    options: list[PortalOption] = Field(default_factory=list)


class PortalRelation(BaseModel):
    """A parent or child relation of a type to another CRM type."""

    entity_type_id: int
    children_list: bool = True
    predefined: bool = False


class CardElement(BaseModel):
    """A field shown in a card section."""

    name: str


class CardSectionConfig(BaseModel):
    """A section of the common item card (`crm.item.details.configuration`)."""

    name: str
    title: str
    elements: list[CardElement] = Field(default_factory=list)


class PortalType(BaseModel):
    """A smart process with everything deploy compares: flags, relations, fields, funnels, card."""

    id: int
    entity_type_id: int
    title: str
    code: str | None = None
    code_supported: bool = True
    flags: dict[str, bool] = Field(default_factory=dict)
    linked_user_fields: dict[str, bool] = Field(default_factory=dict)
    parents: list[PortalRelation] = Field(default_factory=list)
    children: list[PortalRelation] = Field(default_factory=list)
    fields: list[PortalField] = Field(default_factory=list)
    funnels: list[PortalFunnel] = Field(default_factory=list)
    card: list[CardSectionConfig] | None = None
    detailed: bool = False

    def default_funnel(self) -> PortalFunnel | None:
        """The funnel flagged `isDefault`."""
        return next((f for f in self.funnels if f.is_default), self.funnels[0] if self.funnels else None)


class PortalSnapshot(BaseModel):
    """Every smart process on a portal; the selected ones read in full."""

    types: list[PortalType] = Field(default_factory=list)
    supports_code: bool = False

    def by_id(self, type_id: int) -> PortalType | None:
        """The type with this `id`."""
        return next((t for t in self.types if t.id == type_id), None)

    def by_code(self, code: str) -> PortalType | None:
        """The type whose `code` field is `code` (our ownership marker)."""
        return next((t for t in self.types if t.code and t.code == code), None)

    def by_title(self, title: str) -> list[PortalType]:
        """Types with this exact title."""
        return [t for t in self.types if t.title == title]


# ---------------------------------------------------------------- parsing REST rows


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if v not in (None, "")}
    if isinstance(value, str) and value:
        return {"en": value}
    return {}


def parse_type(row: dict[str, Any]) -> PortalType:
    """A `crm.type.*` row as a `PortalType` (relations only when the row has them)."""
    relations = row.get("relations") or {}
    linked = row.get("linkedUserFields") or {}

    def rels(items: Any) -> list[PortalRelation]:
        return [
            PortalRelation(
                entity_type_id=int(r["entityTypeId"]),
                children_list=from_yn(r.get("isChildrenListEnabled", "Y")),
                predefined=from_yn(r.get("isPredefined", "N")),
            )
            for r in (items or [])
        ]

    return PortalType(
        id=int(row["id"]),
        entity_type_id=int(row["entityTypeId"]),
        title=str(row.get("title") or ""),
        code=(str(row["code"]) if row.get("code") else None),
        code_supported="code" in row,
        flags={k: from_yn(row[k]) for k in TYPE_FLAGS if k in row},
        linked_user_fields={k: from_yn(v) for k, v in linked.items()} if isinstance(linked, dict) else {},
        parents=rels(relations.get("parent")) if isinstance(relations, dict) else [],
        children=rels(relations.get("child")) if isinstance(relations, dict) else [],
    )


def parse_field(row: dict[str, Any]) -> PortalField:
    """A `userfieldconfig` row as a `PortalField`."""
    options = [
        PortalOption(
            id=int(o["id"]),
            value=str(o.get("value") or ""),
            xml_id=str(o.get("xmlId") or ""),
            sort=int(o.get("sort") or 500),
            default=from_yn(o.get("def", "N")),
        )
        for o in (row.get("enum") or [])
    ]
    return PortalField(
        id=int(row["id"]),
        field_name=str(row["fieldName"]),
        user_type_id=str(row.get("userTypeId") or ""),
        multiple=from_yn(row.get("multiple", "N")),
        mandatory=from_yn(row.get("mandatory", "N")),
        xml_id=str(row.get("xmlId") or ""),
        sort=int(row.get("sort") or 100),
        show_filter=str(row.get("showFilter") or "N").upper() not in ("N", ""),
        label=_labels(row.get("editFormLabel")),
        help=_labels(row.get("helpMessage")),
        settings=settings if isinstance(settings := row.get("settings"), dict) else {},
        options=sorted(options, key=lambda o: (o.sort, o.id)),
    )


def parse_stage(row: dict[str, Any]) -> PortalStage:
    """A `crm.status.list` row as a `PortalStage`."""
    status_id = str(row["STATUS_ID"])
    return PortalStage(
        id=int(row["ID"]),
        status_id=status_id,
        code=status_id.split(":", 1)[-1],
        name=str(row.get("NAME") or ""),
        sort=int(row.get("SORT") or 0),
        color=str(row.get("COLOR") or ""),
        semantics=_SEMANTICS_IN.get(str(row.get("SEMANTICS") or ""), "process"),  # type: ignore[arg-type]
        system=from_yn(row.get("SYSTEM", "N")),
    )


def parse_funnel(row: dict[str, Any]) -> PortalFunnel:
    """A `crm.category` row as a `PortalFunnel` (stages filled separately)."""
    return PortalFunnel(
        id=int(row["id"]),
        name=str(row.get("name") or ""),
        sort=int(row.get("sort") or 500),
        is_default=from_yn(row.get("isDefault", "N")),
    )


def parse_card(value: Any) -> list[CardSectionConfig] | None:
    """A `crm.item.details.configuration.get` result (None when nothing is configured)."""
    if not isinstance(value, list):
        return None
    sections = []
    for s in value:
        if isinstance(s, dict) and s.get("name"):
            elements = [CardElement(name=str(e["name"])) for e in (s.get("elements") or []) if e.get("name")]
            sections.append(
                CardSectionConfig(name=str(s["name"]), title=str(s.get("title") or ""), elements=elements)
            )
    return sections


# ---------------------------------------------------------------- reading


def read_types(client: Client) -> list[PortalType]:
    """Every smart process in abbreviated form (`crm.type.list`, 50 per request)."""
    types: list[PortalType] = []
    start = 0
    while True:
        response = client.call("crm.type.list", {"order": {"id": "ASC"}, "start": start})
        rows = page_rows(response.result, "types", "crm.type.list")  # a page without `types` is refused
        types += [parse_type(r) for r in rows]
        if response.next is None or not rows:
            return types
        start = int(response.next)


def supports_code(types: Sequence[PortalType]) -> bool:
    """Whether the portal keeps the type `code` (our ownership marker): its rows carry the key.

    An empty portal is assumed to (current Bitrix24 does; `crm.type.fields` lists `code`).
    """
    return not types or any(t.code_supported for t in types)


def fill_details(client: Client, types: Sequence[PortalType]) -> None:
    """Read relations, fields, funnels, stages, options and the card of `types` in two batched passes."""
    if not types:
        return
    commands: dict[str, tuple[str, dict[str, Any]]] = {}
    for t in types:
        commands[f"t{t.id}"] = ("crm.type.get", {"id": t.id})
        commands[f"f{t.id}"] = (
            "userfieldconfig.list",
            {
                "moduleId": "crm",
                "filter": {"entityId": field_entity_id(t.id)},
                "order": {"sort": "ASC", "id": "ASC"},
            },
        )
        commands[f"c{t.id}"] = ("crm.category.list", {"entityTypeId": t.entity_type_id})
        commands[f"d{t.id}"] = (
            "crm.item.details.configuration.get",
            {
                "entityTypeId": t.entity_type_id,
                "scope": "C",
            },
        )
    first = client.batch_all(commands)
    stage_commands: dict[str, tuple[str, dict[str, Any]]] = {}
    for t in types:
        full = first.results.get(f"t{t.id}")
        if isinstance(full, dict) and isinstance(full.get("type"), dict):
            detailed = parse_type(full["type"])
            t.parents, t.children = detailed.parents, detailed.children
            t.linked_user_fields = detailed.linked_user_fields
            t.flags = detailed.flags or t.flags
            if detailed.code is not None:
                t.code = detailed.code
            t.code_supported = detailed.code_supported
        field_rows = _rows(first.results.get(f"f{t.id}"), "fields")
        t.fields = [parse_field(r) for r in field_rows]
        t.fields += _more_fields(client, t, first.totals.get(f"f{t.id}"), len(t.fields))
        # list rows carry null label maps (bitrix24-rest.md §10.2): labels come from `get`
        labelled = {int(r["id"]) for r in field_rows if r.get("editFormLabel") is not None}
        t.funnels = sorted(
            (parse_funnel(r) for r in _rows(first.results.get(f"c{t.id}"), "categories")),
            key=lambda f: (f.sort, f.id or 0),
        )
        t.card = parse_card(first.results.get(f"d{t.id}"))
        t.detailed = True
        for f in t.fields:
            if (f.user_type_id == "enumeration" and not f.options) or f.id not in labelled:
                stage_commands[f"e{f.id}"] = ("userfieldconfig.get", {"moduleId": "crm", "id": f.id})
        for funnel in t.funnels:
            stage_commands[f"s{t.id}_{funnel.id}"] = (
                "crm.status.list",
                {
                    "filter": {"ENTITY_ID": stage_entity_id(t.entity_type_id, int(funnel.id or 0))},
                    "order": {"SORT": "ASC"},
                },
            )
    if not stage_commands:
        return
    second = client.batch_all(stage_commands)
    for t in types:
        for i, f in enumerate(t.fields):
            full = second.results.get(f"e{f.id}")
            if isinstance(full, dict) and isinstance(full.get("field"), dict):
                t.fields[i] = parse_field(full["field"])
        for funnel in t.funnels:
            rows = second.results.get(f"s{t.id}_{funnel.id}")
            funnel.stages = sorted(
                (parse_stage(r) for r in (rows or []) if isinstance(r, dict)), key=lambda s: (s.sort, s.id)
            )


def scan_types(client: Client) -> list[PortalType]:
    """Every smart process in abbreviated form, `>id` keyset-chained (up to 2,500 per HTTP request).

    https://apidocs.bitrix24.com/api-reference/crm/universal/user-defined-object-types/crm-type-list.html
    """
    return [parse_type(r) for r in client.iter_list("crm.type.list", {}, rows_key="types")]


def fill_item_schema(client: Client, types: Sequence[PortalType]) -> None:
    """Read what items need of `types` (fields with enum options, funnels, stages) in two batched passes.

    The light sibling of `fill_details`: no type details, no card, the first 50 fields of a type.
    """
    unique = list({t.id: t for t in types}.values())
    if not unique:
        return
    commands: dict[str, tuple[str, dict[str, Any]]] = {}
    for t in unique:
        commands[f"f{t.id}"] = (
            "userfieldconfig.list",
            {"moduleId": "crm", "filter": {"entityId": field_entity_id(t.id)}},
        )
        commands[f"c{t.id}"] = ("crm.category.list", {"entityTypeId": t.entity_type_id})
    first = client.batch_all(commands)
    second_commands: dict[str, tuple[str, dict[str, Any]]] = {}
    for t in unique:
        t.funnels = [parse_funnel(r) for r in _rows(first.results.get(f"c{t.id}"), "categories")]
        for funnel in t.funnels:
            second_commands[f"s{t.id}_{funnel.id}"] = (
                "crm.status.list",
                {"filter": {"ENTITY_ID": stage_entity_id(t.entity_type_id, int(funnel.id or 0))}},
            )
        t.fields = [parse_field(r) for r in _rows(first.results.get(f"f{t.id}"), "fields")]
        for f in t.fields:  # list rows may omit enum options: read those fields one by one
            if f.user_type_id == "enumeration" and not f.options:
                second_commands[f"e{f.id}"] = ("userfieldconfig.get", {"moduleId": "crm", "id": f.id})
    if not second_commands:
        return
    second = client.batch_all(second_commands)
    for t in unique:
        for i, f in enumerate(t.fields):
            full = second.results.get(f"e{f.id}")
            if isinstance(full, dict) and isinstance(full.get("field"), dict):
                t.fields[i] = f.model_copy(update={"options": parse_field(full["field"]).options})
        for funnel in t.funnels:
            rows = second.results.get(f"s{t.id}_{funnel.id}")
            funnel.stages = [parse_stage(r) for r in (rows or []) if isinstance(r, dict)]


def _rows(result: Any, key: str) -> list[dict[str, Any]]:
    if isinstance(result, dict):
        rows = result.get(key) or []
        return [r for r in rows if isinstance(r, dict)]
    return []


def _more_fields(client: Client, t: PortalType, total: int | None, have: int) -> list[PortalField]:
    """Further pages of `userfieldconfig.list` for a type with more than 50 fields."""
    more: list[PortalField] = []
    while total is not None and have + len(more) < total:
        response = client.call(
            "userfieldconfig.list",
            {
                "moduleId": "crm",
                "filter": {"entityId": field_entity_id(t.id)},
                "order": {"sort": "ASC", "id": "ASC"},
                "start": have + len(more),
            },
        )
        rows = _rows(response.result, "fields")
        if not rows:
            break
        more += [parse_field(r) for r in rows]
    return more


# ---------------------------------------------------------------- writing


@dataclass(frozen=True)
class Ref:
    """A value taken from an earlier command's result: `$result[key][path...]` inside one batch."""

    key: str
    path: tuple[str | int, ...]
    fmt: str = "{}"

    @property
    def glued(self) -> bool:
        """Text follows the reference with no whitespace: the batch server would swallow it."""
        return glued(self.fmt)

    def batch_text(self) -> BatchRef:
        """The reference as the batch server reads it, embedded in `fmt` (never glued: see `pack`)."""
        return BatchRef(self.fmt.format(batch_ref(self.key, *self.path)))

    def resolve(self, results: dict[str, Any]) -> Any:
        """The concrete value from a finished command's result."""
        value: Any = results[self.key]
        for p in self.path:
            value = value[p]
        return value if self.fmt == "{}" else self.fmt.format(value)


@dataclass
class Command:
    """One REST write (or read) with a stable key; params may hold `Ref`s to earlier commands."""

    key: str
    method: str
    params: dict[str, Any]
    note: str = ""

    def refs(self) -> set[str]:
        """Keys of the commands this one refers to."""
        return {r.key for r in self.references()}

    def references(self) -> list[Ref]:
        """Every `Ref` in the params."""
        found: list[Ref] = []

        def collect(ref: Ref) -> Ref:
            found.append(ref)
            return ref

        _walk(self.params, collect)
        return found


@dataclass
class CommandRun:
    """What `run_commands` did: per-key results and errors, and the HTTP requests made."""

    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Any] = field(default_factory=dict)
    requests: int = 0
    calls: int = 0


class SchemaWriteError(B24SyncError):
    """A schema write failed; names the command and the portal's error."""

    def __init__(self, command: Command, error: Any) -> None:
        what = command.note or f"{command.method} ({command.key})"
        super().__init__(f"{what} failed: {error}")
        self.command = command
        self.error = error


def _walk(value: Any, fn: Callable[[Ref], Any]) -> Any:
    if isinstance(value, Ref):
        return fn(value)
    if isinstance(value, dict):
        return {k: _walk(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, fn) for v in value]
    return value


def pack(commands: Iterable[Command], size: int = BATCH_MAX) -> list[list[Command]]:
    """Split commands (in dependency order) into batches of ≤ `size`, keeping their order.

    A reference with text glued after it (`UF_CRM_{}_SOURCE`) cannot travel as a batch reference: the
    server's match runs to the next whitespace and would swallow the text (server-behaviour §6). Such a
    command goes to a later batch than the command it refers to, and `run_commands` fills the value in.
    """
    batches: list[list[Command]] = []
    where: dict[str, int] = {}
    for command in commands:
        index = max(len(batches) - 1, 0)
        for ref in command.references():
            if ref.glued and ref.key in where:
                index = max(index, where[ref.key] + 1)
        if index < len(batches) and len(batches[index]) >= size:
            index += 1
        while len(batches) <= index:
            batches.append([])
        batches[index].append(command)
        where[command.key] = index
    return batches


def run_commands(
    client: Client,
    commands: Sequence[Command],
    on_batch: Callable[[CommandRun, list[Command]], None] | None = None,
) -> CommandRun:
    """Send `commands` in batches of ≤ 50 with `halt`; raise `SchemaWriteError` on the first failure.

    `on_batch(run, batch)` is called after every batch so the caller can record what it learned
    before the next one is sent (resumable applies).
    """
    run = CommandRun()
    alias = {c.key: f"c{i}" for i, c in enumerate(commands)}  # batch keys safe for any server parser
    for batch in pack(commands):
        in_batch = {c.key for c in batch}

        def render(ref: Ref, in_batch: set[str] = in_batch) -> Any:
            if ref.key in in_batch:
                return Ref(alias[ref.key], ref.path, ref.fmt).batch_text()
            return ref.resolve(run.results)

        payload = {alias[c.key]: (c.method, _walk(c.params, render)) for c in batch}
        answer = client.batch(payload, halt=True)
        run.requests += 1
        run.calls += len(batch)
        for c in batch:
            if alias[c.key] in answer.results:
                run.results[c.key] = answer.results[alias[c.key]]
        if on_batch is not None:
            on_batch(run, batch)
        for c in batch:
            if alias[c.key] in answer.errors:
                run.errors[c.key] = answer.errors[alias[c.key]]
                raise SchemaWriteError(c, answer.errors[alias[c.key]])
        missing = [c for c in batch if c.key not in run.results]
        if missing:
            raise SchemaWriteError(missing[0], "no result returned by the batch")
    return run
