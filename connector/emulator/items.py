"""crm.item.*: add/update/get/list/delete/fields with the server's naming, value and stage rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from .common import emit, require_type, state_of
from .convert import day_of, iso, iso_date, parse_date, parse_datetime, write_bool, yn
from .deviations import NOOP_UPDATE_BUMPS
from .deviations import active as deviates
from .errors import ApiError
from .files import file_json, kept_file, store_upload
from .filters import CompiledFilter, compile_filter, parse_order, sort_rows
from .itemschema import FieldSpec, ItemSchema, describe, item_schema
from .naming import parse_stage_entity_id, stage_entity_id
from .params import as_dict, finite_float, is_numeric, php_int, req_array, req_int, use_original
from .php import as_list, is_list_like
from .registry import CallContext, ListPage, method
from .state import ItemTable, PortalState, SmartType, Stage
from .system import check_clients, is_system, on_saved

PAGE = 50
ITEM_NOT_FOUND = ApiError("NOT_FOUND", "Item was not found.")
_SKIP = object()
_CHANGE_IGNORED = (
    "UPDATED_TIME",
    "UPDATED_BY",
    "MOVED_TIME",
    "MOVED_BY",
    "PREVIOUS_STAGE_ID",
    "LAST_ACTIVITY_TIME",
    "LAST_ACTIVITY_BY",
)


# -- output -----------------------------------------------------------------
Converter = Callable[[Any], Any]


class _TimeConverter:
    """A datetime or date field's output: `iso` / `iso_date` in the portal's zone; `kind` names it."""

    def __init__(self, kind: str, tz: Any) -> None:
        self.kind, self.tz = kind, tz
        self.fn = iso if kind == "datetime" else iso_date

    def __call__(self, value: Any) -> Any:
        return self.fn(value, self.tz)


def _converter(spec: FieldSpec, state: PortalState, base: str) -> Converter | None:
    tz = state.tz
    if spec.kind in ("datetime", "date"):
        return _TimeConverter(spec.kind, tz)
    if spec.kind == "bool":
        return yn
    if spec.kind == "file":
        return lambda v: file_json(v, state, base)
    return None


Renderer = Callable[[dict[str, Any]], "dict[str, Any] | list[Any]"]
_RENDERERS: dict[str, Any] = {}  # compiled renderers by source text
# the stored type a time field's converter is memoised for: datetimes are float seconds, dates text
_MEMO_TYPES = {"datetime": "float", "date": "str"}


class _Memo(dict[Any, Any]):
    """`convert(value)` by value, filled on first use: a time converter is a pure function of the
    stored value (and the plan's zone), and a page repeats few distinct times. Bounded."""

    def __init__(self, convert: Converter) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, value: Any) -> Any:
        if len(self) >= 4096:
            self.clear()
        out = self[value] = self.convert(value)
        return out


def _renderer(fields: list[tuple[str, str, Converter | None, bool]], entity_type_id: int | None) -> Renderer:
    """One straight-line function per output plan: a dict display, one entry per field, in plan order.

    Same values as assigning the fields in turn (a key named twice keeps its place and its last
    value); keys enter the source as repr literals, converters as names in its scope. A time
    converter is looked up in a `_Memo` when the stored value has the type the field stores (any
    other value takes the converter itself, so odd values fail or convert exactly as before).
    """
    if not fields:
        return lambda row: []
    scope: dict[str, Any] = {"ETID": entity_type_id}
    cells = []
    for n, (key, upper, conv, multiple) in enumerate(fields):
        scope[f"c{n}"] = conv
        memo_type = _MEMO_TYPES.get(getattr(conv, "kind", ""))
        if multiple:  # an empty (or missing) value is [] at once: no comprehension frame for it
            each = f"[c{n}(v) if v is not None else v for v in x]" if conv is not None else "list(x)"
            cells.append(f"{key!r}: {each} if (x := get({upper!r})) else []")
        elif conv is not None and memo_type is not None:
            scope[f"m{n}"] = _Memo(conv)
            cells.append(
                f"{key!r}: m{n}[x] if type(x := get({upper!r})) is {memo_type} "
                f"else (None if x is None else c{n}(x))"
            )
        elif conv is not None:
            cells.append(f"{key!r}: None if (x := get({upper!r})) is None else c{n}(x)")
        else:
            cells.append(f"{key!r}: get({upper!r})")
    if entity_type_id is not None:
        cells.append("'entityTypeId': ETID")
    body = "".join(f"        {c},\n" for c in cells)
    source = f"def render(row):\n    get = row.get\n    return {{\n{body}    }}\n"
    code = _RENDERERS.get(source)
    if code is None:
        if len(_RENDERERS) > 256:
            _RENDERERS.clear()
        code = _RENDERERS[source] = compile(source, "<item renderer>", "exec")
    exec(code, scope)  # noqa: S102
    return scope["render"]  # type: ignore[no-any-return]


def output_plan(
    schema: ItemSchema,
    state: PortalState,
    original_uf: bool,
    select: list[FieldSpec] | None,
    base: str,
) -> Renderer:
    """Row -> item JSON for one schema and selection; cached per schema (a list renders many rows)."""
    key = (original_uf, None if select is None else tuple(s.upper for s in select), base)
    render: Renderer | None = schema.plans.get(key)
    if render is None:
        if len(schema.plans) > 64:
            schema.plans.clear()
        specs = schema.fields if select is None else select
        fields = [(s.key(original_uf), s.upper, _converter(s, state, base), s.multiple) for s in specs]
        render = _renderer(fields, schema.smart.entity_type_id if select is None else None)
        schema.plans[key] = render
    return render


def base_of(ctx: CallContext) -> str:
    """The portal address file urls point to: the one the request came in on, else the domain's."""
    return str(ctx.extras.get("base_url") or state_of(ctx).base_url)


def item_json(
    schema: ItemSchema,
    row: dict[str, Any],
    state: PortalState,
    original_uf: bool,
    select: list[FieldSpec] | None = None,
    base: str | None = None,
) -> dict[str, Any] | list[Any]:
    """An item in camelCase (UF keys UPPER with useOriginalUfNames=Y); `select` cuts the keys."""
    return output_plan(schema, state, original_uf, select, base or state.base_url)(row)


# -- input ------------------------------------------------------------------
def _php_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    return "NULL" if value is None else "string"


def in_value(spec: FieldSpec, value: Any, state: PortalState) -> Any:
    """A request value in stored form; `_SKIP` when the server would silently not set it."""
    if spec.multiple:
        if value is None or value == "":
            return []
        if not is_list_like(value):
            raise ApiError(
                "100", f"Expected iterable value for multiple field, but got `{_php_type(value)}` instead"
            )
        out = [in_one(spec, v, state) for v in as_list(value)]
        return [v for v in out if v is not _SKIP and v is not None]
    return in_one(spec, value, state)


def in_one(spec: FieldSpec, value: Any, state: PortalState) -> Any:
    kind = spec.kind
    if kind == "bool":
        return write_bool(value)
    if value is None or value == "" or (isinstance(value, list | dict) and not value and kind != "file"):
        return None
    if kind == "int":
        if isinstance(value, bool) or not is_numeric(value):
            return _SKIP if isinstance(value, dict | list) else None
        # PHP (int) of an integer numeric string is exact on 64-bit (no float step); the reference
        # notes are silent, so the stricter behaviour: exact whenever the text is a whole number
        text = str(value).strip()
        whole = isinstance(value, int) or text.lstrip("+-").isdigit()
        number = int(text) if whole else php_int(value)
        if spec.uf is not None and spec.uf.user_type_id == "enumeration":
            if number not in {o.id for o in spec.uf.enum}:
                raise ApiError("CRM_FIELD_ERROR_VALUE_NOT_VALID", f'Invalid value for field "{spec.title}"')
        return number
    if kind == "float":
        return finite_float(value) if is_numeric(value) and not isinstance(value, bool) else None
    if kind == "datetime":
        ts = parse_datetime(value, state.tz)
        return _SKIP if ts is None else float(int(ts))
    if kind == "date":
        day = parse_date(value, state.tz)
        return _SKIP if day is None else day
    if kind == "file":
        return _file_value(value, state)
    if isinstance(value, dict | list):
        return _SKIP
    return str(value) if not isinstance(value, bool) else ("Y" if value else "N")


def _file_value(value: Any, state: PortalState) -> Any:
    """`[name, base64]` stores a new file; `{id}` keeps a file the portal has (bitrix24-rest.md §9.3:
    a different id resets the field); anything else is ignored."""
    if isinstance(value, dict) and "id" in value and not is_list_like(value):
        return kept_file(state, value["id"])
    items = as_list(value) if is_list_like(value) else None
    if items and len(items) >= 2 and isinstance(items[0], str) and isinstance(items[1], str):
        stored = store_upload(state, items[0], items[1])
        return _SKIP if stored is None else stored
    return _SKIP


def _collect(
    schema: ItemSchema, fields: dict[str, Any], original_uf: bool, state: PortalState
) -> dict[str, Any]:
    """Known, writable fields of a request in stored form; unknown and read-only keys are dropped."""
    values: dict[str, Any] = {}
    for key, raw in fields.items():
        spec = schema.resolve(str(key), original_uf)
        if spec is None or spec.read_only:
            continue
        if spec.upper == "CATEGORY_ID":
            values["CATEGORY_ID"] = raw  # validated by the caller (server: Field/Category.php)
            continue
        value = in_value(spec, raw, state)
        if value == 0 and spec.upper.startswith("PARENT_ID_"):
            value = None  # an empty parent is null, not 0 (see `_check_parents`)
        if value is not _SKIP:
            values[spec.upper] = value
    if "CONTACT_IDS" in schema.by_upper:
        if "CONTACT_IDS" not in values and "CONTACT_ID" in values:
            values["CONTACT_IDS"] = [] if values["CONTACT_ID"] in (None, 0) else [values["CONTACT_ID"]]
        values.pop("CONTACT_ID", None)
    return values


# -- stages ------------------------------------------------------------------
def _semantic(stage: Stage) -> str:
    return stage.semantics or "P"


def _stages(state: PortalState, etid: int, category_id: int) -> list[Stage]:
    return state.stages_of(stage_entity_id(etid, category_id))


def _first_of(stages: list[Stage], semantic: str) -> Stage | None:
    return next((s for s in stages if _semantic(s) == semantic), None)


def _category(state: PortalState, smart: SmartType, raw: Any, title: str) -> int:
    if not is_numeric(raw) or float(raw) != php_int(raw):
        raise ApiError("CRM_FIELD_ERROR_VALUE_NOT_VALID", f'Invalid value for field "{title}"')
    cat = state.categories.get(php_int(raw))
    if cat is None or cat.entity_type_id != smart.entity_type_id:
        raise ApiError("CRM_FIELD_ERROR_VALUE_NOT_VALID", f'Invalid value for field "{title}"')
    return cat.id


def stage_semantic(state: PortalState, etid: int, category_id: int, stage_id: str | None) -> str:
    for s in _stages(state, etid, category_id):
        if s.status_id == stage_id:
            return _semantic(s)
    return "P"


def _semantic_in_type(state: PortalState, etid: int, stage_id: Any) -> str:
    """The semantics of a stage of any funnel of the type; an unknown stage counts as process."""
    for s in state.stages.values():
        directory = parse_stage_entity_id(s.entity_id)
        if s.status_id == stage_id and directory is not None and directory[0] == etid:
            return _semantic(s)
    return "P"


def _same_semantics_stage(stages: list[Stage], semantic: str) -> str:
    """server-behaviour.md §2 "categoryId / stageId validation": a stage that is not in the item's
    funnel becomes the funnel's first stage with the same semantics; none -> "Stage in new category
    is not found" (code "0")."""
    first = _first_of(stages, semantic)
    if first is None:
        raise ApiError("0", "Stage in new category is not found")
    return first.status_id


# -- parents -------------------------------------------------------------------
def _check_parents(state: PortalState, values: dict[str, Any], old: dict[str, Any] | None) -> None:
    """`parentId{N}` must name an existing item of type N.

    An empty value (0, "0", "") was made null by `_collect` (server-behaviour.md §2: an empty value
    sets the field to null; the crm.item.get doc example prints unset parents as null). The
    references are silent on a value naming no item: we choose the stricter behaviour and refuse,
    naming the field and the value. Only changed values are checked (the server processes changed
    fields). Leads, deals, contacts and companies are real items here (system.py), so `parentId2`
    must name an existing deal; the client fields are checked the same way (`check_clients`).
    """
    check_clients(state, values, old)
    for upper, value in values.items():
        if not upper.startswith("PARENT_ID_") or value is None:
            continue
        if old is not None and old.get(upper) == value:
            continue
        parent = int(upper[len("PARENT_ID_") :])
        table = state.items.get(parent)
        if table is None or value not in table.rows:
            raise ApiError(
                "CRM_FIELD_ERROR_VALUE_NOT_VALID",
                f'Invalid value for field "parentId{parent}": {value} is not an item of entity type {parent}',
            )


# -- handlers -----------------------------------------------------------------
def _user(ctx: CallContext) -> int:
    return int(getattr(ctx.auth, "user_id", 1) or 1)


def _history(ctx: CallContext, etid: int, row: dict[str, Any], type_id: int) -> None:
    state = state_of(ctx)
    state.stage_history.append(
        {
            "id": len(state.stage_history) + 1,
            "typeId": type_id,
            "createdTime": iso(ctx.now, state.tz),
            "ownerId": row["ID"],
            "categoryId": row.get("CATEGORY_ID"),
            "stageSemanticId": stage_semantic(state, etid, row.get("CATEGORY_ID") or 0, row.get("STAGE_ID")),
            "stageId": row.get("STAGE_ID"),
            "entityTypeId": etid,
        }
    )


@method("crm.item.add", write=True)
def item_add(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/crm-item-add.html"""
    state = state_of(ctx)
    etid = req_int(params, "entityTypeId")
    fields = as_dict(req_array(params, "fields"))
    original = use_original(params)
    smart = require_type(state, etid)
    schema = item_schema(state, smart)
    values = _collect(schema, fields, original, state)
    default_cat = state.default_category(etid)
    category_id = default_cat.id if default_cat else 0
    if values.get("CATEGORY_ID") not in (None, ""):
        category_id = _category(state, smart, values["CATEGORY_ID"], "Pipeline")
    _check_parents(state, values, None)
    stages = _stages(state, etid, category_id)
    stage_id = values.get("STAGE_ID")
    if stage_id in (None, ""):
        # no stage: the funnel's first process stage (PrototypeItem::getDefaultStageId, §2)
        first = _first_of(stages, "P") or (stages[0] if stages else None)
        stage_id = first.status_id if first else None
    elif stage_id not in {s.status_id for s in stages}:
        # a stage of another funnel keeps its semantics (success stays success); unknown = process
        stage_id = _same_semantics_stage(stages, _semantic_in_type(state, etid, stage_id))
    user, now = _user(ctx), float(int(ctx.now))
    item_id = state.seq.next_item(etid)
    row: dict[str, Any] = {
        "ID": item_id,
        "XML_ID": None,
        "TITLE": None,
        "CREATED_TIME": now,
        "UPDATED_TIME": now,
        "CREATED_BY": user,
        "UPDATED_BY": user,
        "ASSIGNED_BY_ID": user,
        "OPENED": True,
        "WEBFORM_ID": 0,
        "MOVED_TIME": now,
        "MOVED_BY": user,
        "PREVIOUS_STAGE_ID": None,
        "LAST_ACTIVITY_BY": user,
        "LAST_ACTIVITY_TIME": now,
    }
    if smart.flag("isBeginCloseDatesEnabled"):
        row["BEGINDATE"] = day_of(now, state.tz)
        row["CLOSEDATE"] = day_of(now + 7 * 86400, state.tz)
    if smart.flag("isClientEnabled"):
        row.update(COMPANY_ID=0, CONTACT_IDS=[])
    if smart.flag("isLinkWithProductsEnabled"):
        row.update(OPPORTUNITY=0.0, IS_MANUAL_OPPORTUNITY=False, TAX_VALUE=0.0, CURRENCY_ID="RUB")
    if smart.flag("isMycompanyEnabled"):
        row["MYCOMPANY_ID"] = 0
    if smart.flag("isSourceEnabled"):
        row.update(SOURCE_ID="CALL", SOURCE_DESCRIPTION=None)
    if smart.flag("isObserversEnabled"):
        row["OBSERVERS"] = []
    for spec in schema.fields:
        if spec.uf is not None or spec.upper not in row and not spec.read_only:
            row.setdefault(spec.upper, [] if spec.multiple else None)
    row.update({k: v for k, v in values.items() if k not in ("STAGE_ID", "CATEGORY_ID")})
    if row.get("OPENED") is None:
        row["OPENED"] = True
    if row.get("ASSIGNED_BY_ID") is None:
        row["ASSIGNED_BY_ID"] = user
    row["CATEGORY_ID"], row["STAGE_ID"] = category_id, stage_id
    if not row.get("TITLE"):
        row["TITLE"] = f"{smart.title} #{item_id}"
    _sync_contact(row, schema)
    on_saved(row, etid, stage_semantic(state, etid, category_id or 0, stage_id))
    state.table(etid).put(item_id, row)
    state.dirty_items.add((etid, item_id))
    if "STAGE_ID" in schema.by_upper:
        _history(ctx, etid, row, 1)
    _emit(ctx, etid, "ONCRMDYNAMICITEMADD", item_id)
    return {"item": item_json(schema, row, state, original, base=base_of(ctx))}


def _emit(ctx: CallContext, etid: int, event_name: str, item_id: int) -> None:
    """bitrix24-rest.md §12: the dynamic-item events fire for smart processes, not for
    lead/deal/contact/company (those have their own events, which the emulator does not send)."""
    if not is_system(etid):
        emit(ctx, event_name, {"ID": item_id, "ENTITY_TYPE_ID": etid})


def _sync_contact(row: dict[str, Any], schema: ItemSchema) -> None:
    if "CONTACT_IDS" in schema.by_upper:
        ids = row.get("CONTACT_IDS") or []
        row["CONTACT_ID"] = ids[0] if ids else 0


@method("crm.item.update", write=True)
def item_update(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/crm-item-update.html"""
    state = state_of(ctx)
    etid = req_int(params, "entityTypeId")
    item_id = req_int(params, "id")
    fields = as_dict(req_array(params, "fields"))
    original = use_original(params)
    smart = require_type(state, etid)
    table = state.table(etid)
    old = table.rows.get(item_id)
    if old is None:
        raise ITEM_NOT_FOUND
    schema = item_schema(state, smart)
    values = _collect(schema, fields, original, state)
    _check_parents(state, values, old)
    new = dict(old)
    new.update({k: v for k, v in values.items() if k not in ("STAGE_ID", "CATEGORY_ID")})
    if new.get("OPENED") is None:
        new["OPENED"] = old.get("OPENED", True)
    category_id = old.get("CATEGORY_ID")
    if values.get("CATEGORY_ID") not in (None, ""):
        category_id = _category(state, smart, values["CATEGORY_ID"], "Pipeline")
    stages = _stages(state, etid, category_id or 0)
    valid = {s.status_id for s in stages}
    stage_id = values.get("STAGE_ID", old.get("STAGE_ID"))
    if category_id != old.get("CATEGORY_ID"):
        if stage_id not in valid:
            # the requested (else the stored) stage's semantics picks the stage in the new funnel
            stage_id = _same_semantics_stage(stages, _semantic_in_type(state, etid, stage_id))
    elif stage_id not in valid:
        stage_id = old.get("STAGE_ID")  # reverted silently
    new["CATEGORY_ID"], new["STAGE_ID"] = category_id, stage_id
    if not new.get("TITLE"):
        new["TITLE"] = f"{smart.title} #{item_id}"
    _sync_contact(new, schema)
    on_saved(new, etid, stage_semantic(state, etid, category_id or 0, stage_id))
    changed = [k for k in set(new) | set(old) if k not in _CHANGE_IGNORED and new.get(k) != old.get(k)]
    if not changed and not deviates(state, NOOP_UPDATE_BUMPS):  # deviations.py: for doctor's CI only
        # no save, no updatedTime bump, no event
        return {"item": item_json(schema, old, state, original, base=base_of(ctx))}
    user, now = _user(ctx), float(int(ctx.now))
    new["UPDATED_TIME"], new["UPDATED_BY"] = now, user
    if new["STAGE_ID"] != old.get("STAGE_ID"):
        new["PREVIOUS_STAGE_ID"] = old.get("STAGE_ID")
        new["MOVED_TIME"], new["MOVED_BY"] = now, user
    table.put(item_id, new)
    state.dirty_items.add((etid, item_id))
    if new["CATEGORY_ID"] != old.get("CATEGORY_ID"):
        _history(ctx, etid, new, 3)
    elif new["STAGE_ID"] != old.get("STAGE_ID"):
        _history(ctx, etid, new, 2)
    _emit(ctx, etid, "ONCRMDYNAMICITEMUPDATE", item_id)
    return {"item": item_json(schema, new, state, original, base=base_of(ctx))}


@method("crm.item.get")
def item_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/crm-item-get.html"""
    state = state_of(ctx)
    item_id = req_int(params, "id")
    etid = req_int(params, "entityTypeId")
    original = use_original(params)
    smart = require_type(state, etid)
    row = state.table(etid).rows.get(item_id)
    if row is None:
        raise ITEM_NOT_FOUND
    return {"item": item_json(item_schema(state, smart), row, state, original, base=base_of(ctx))}


@method("crm.item.delete", write=True)
def item_delete(ctx: CallContext, params: dict[str, Any]) -> list[Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/crm-item-delete.html"""
    state = state_of(ctx)
    etid = req_int(params, "entityTypeId")
    item_id = req_int(params, "id")
    require_type(state, etid)
    table = state.table(etid)
    if item_id not in table.rows:
        raise ITEM_NOT_FOUND
    table.remove(item_id)
    if state.product_rows:
        from .productrows import drop_owner

        drop_owner(state, etid, item_id)
    state.dirty_items.add((etid, item_id))
    _emit(ctx, etid, "ONCRMDYNAMICITEMDELETE", item_id)
    return []


@method("crm.item.fields")
def item_fields(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/crm-item-fields.html"""
    state = state_of(ctx)
    etid = req_int(params, "entityTypeId")
    original = use_original(params)
    schema = item_schema(state, require_type(state, etid))
    return {"fields": {s.key(original): describe(s) for s in schema.fields}}


def _select(schema: ItemSchema, raw: Any, original: bool) -> list[FieldSpec] | None:
    """None = every field (`*`); otherwise the known selected fields, unknown names dropped."""
    names = [str(v) for v in as_list(raw)] if raw not in (None, "") else ["*"]
    if not names or "*" in names:
        return None
    chosen: dict[str, FieldSpec] = {}
    for name in names:
        if name.upper() == "UF_*":
            chosen.update({s.upper: s for s in schema.fields if s.uf is not None})
            continue
        spec = schema.resolve(name, original)
        if spec is not None:
            chosen[spec.upper] = spec
    return [s for s in schema.fields if s.upper in chosen]


def _cached_select(schema: ItemSchema, raw: Any, original: bool) -> list[FieldSpec] | None:
    """`_select`, kept per schema when every name (and dict key) is a string: a scan repeats it."""
    pairs = raw.items() if isinstance(raw, dict) else enumerate(raw) if isinstance(raw, list) else None
    if pairs is None or not all(type(v) is str and type(k) in (str, int) for k, v in pairs):
        return _select(schema, raw, original)
    names = tuple(raw.items()) if isinstance(raw, dict) else tuple(raw)
    key = ("select", original, type(raw).__name__, names)
    if key not in schema.plans:
        if len(schema.plans) > 64:
            schema.plans.clear()
        schema.plans[key] = _select(schema, raw, original)
    chosen: list[FieldSpec] | None = schema.plans[key]
    return None if chosen is None else list(chosen)


@method("crm.item.list")
def item_list(ctx: CallContext, params: dict[str, Any]) -> ListPage:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/crm-item-list.html"""
    state = state_of(ctx)
    etid = req_int(params, "entityTypeId")
    select_raw = params.get("select", ["*"])
    if select_raw != "" and not isinstance(select_raw, list | dict):
        raise ApiError(
            "100",
            f"Invalid value {{{select_raw}}} to match with parameter {{select}}. "
            "Should be value of type array.",
        )
    original = use_original(params)
    smart = require_type(state, etid)
    schema = item_schema(state, smart)
    resolver = schema.filter_resolver(original)
    flt = compile_filter(params.get("filter"), resolver, state.tz)
    order = parse_order(params.get("order"), resolver)
    select = _cached_select(schema, select_raw, original)
    start = int(ctx.extras.get("start", 0))
    count = start != -1
    offset = start // PAGE * PAGE if start > 0 else 0
    table = state.table(etid)
    rows, total = _query(table, flt, order, offset, count)
    ctx.extras["scan"] = {"table_rows": len(table), "counted": count, "offset": offset}
    render = output_plan(schema, state, original, select, base_of(ctx))
    page = [render(r) for r in rows]
    if not count:
        return ListPage({"items": page})
    assert total is not None
    nxt = offset + len(page) if offset + len(page) < total else None
    return ListPage({"items": page}, total=total, next=nxt)


def _query(
    table: ItemTable, flt: CompiledFilter, order: list[tuple[str, bool]], offset: int, count: bool
) -> tuple[list[dict[str, Any]], int | None]:
    """Rows of one page (and the total when counting); id-ordered keyset pages never scan."""
    b = flt.bounds
    rows_by_id = table.rows
    if b.exact is not None:
        wanted = sorted(
            i
            for i in b.exact
            if i in rows_by_id and (b.low is None or i >= b.low) and (b.high is None or i <= b.high)
        )
        positions: range | list[int] = wanted
        ids: list[int] = wanted
    id_order = not order or (len(order) == 1 and order[0][0] == "ID")
    if b.exact is None:
        # keyset pages walk the raw id list (deleted ids are skipped); counts need the live list
        live = count or not id_order
        lo, hi = table.id_span(b.low, b.high, live=live)
        positions, ids = range(lo, hi), (table.ids if live else table.raw_ids)
    if not id_order:
        matched = [
            r
            for r in (rows_by_id[ids[p]] if b.exact is None else rows_by_id[p] for p in positions)
            if flt.trivial or flt.predicate(r)
        ]
        ordered = sort_rows(matched, order)
        return ordered[offset : offset + PAGE], (len(ordered) if count else None)
    descending = bool(order and order[0][1])
    walk = reversed(positions) if descending else positions

    skipped = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal skipped
        for p in walk:
            row = rows_by_id.get(ids[p]) if b.exact is None else rows_by_id[p]
            if row is None:
                skipped += 1  # a deleted id still in the raw list
            elif flt.trivial or flt.predicate(row):
                yield row

    if not count:
        page = list(islice(rows(), PAGE))
        table.note_skipped(skipped)
        return page, None
    if flt.trivial:
        total = len(positions)
        page = list(islice(rows(), offset, offset + PAGE))
        return page, total
    matched = list(rows())
    return matched[offset : offset + PAGE], len(matched)
