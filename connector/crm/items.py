"""Smart-process items: reads and writes with `useOriginalUfNames=Y`, and the translation
between a portal item and a local store row (codes instead of portal ids).

https://apidocs.bitrix24.com/api-reference/crm/universal/index.html
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from connector import times
from connector.constants import SYSTEM_ENTITY_TYPES
from connector.crm.naming import parse_crm_link, short_code, yn
from connector.errors import InputError
from connector.rest.errors import OutcomeUnknown, TransportError, UnexpectedAnswer
from connector.rest.paging import check_page_ids, page_rows
from connector.templates import FIELD_TYPES

if TYPE_CHECKING:
    from connector.rest import Client

# Columns every process table has; `sync` reads and writes the ones that map to item fields.
SYSTEM_COLUMNS = ("title", "funnel", "stage", "assigned_by_id")
READ_ONLY_COLUMNS = ("created_time", "updated_time", "moved_time")
# A pulled enumeration option id that the process map does not know is stored as `#<id>`: option
# codes never start with `#`, so the marker cannot be taken for a code, and it is never sent back.
UNKNOWN_OPTION_MARK = "#"
WRITE_OUTCOME_UNKNOWN: tuple[type[BaseException], ...] = (OutcomeUnknown, TransportError, ConnectionError)
"""Errors after which an item write may or may not have reached the portal: look it up before re-sending."""


class TranslationError(InputError, ValueError):
    """A value that cannot be translated between the portal and the store."""


def option_marker(option_id: int) -> str:
    """The store value of a portal option id that no template option maps to: `#<id>`."""
    return f"{UNKNOWN_OPTION_MARK}{option_id}"


class FieldMap(BaseModel):
    """One custom field of a process on one portal."""

    code: str
    type: str
    multiple: bool = False
    uf_name: str
    options: dict[str, int] = Field(default_factory=dict)  # option code -> portal option id


class ProcessMap(BaseModel):
    """Everything needed to translate one process's items on one portal."""

    code: str
    entity_type_id: int
    type_id: int
    stages_enabled: bool = True
    funnels: dict[str, int] = Field(default_factory=dict)  # funnel code -> category id
    default_funnel: str | None = None  # the template's default funnel (else the first one)
    stages: dict[str, dict[str, str]] = Field(default_factory=dict)  # funnel -> stage code -> stage id
    fields: list[FieldMap] = Field(default_factory=list)
    parents: dict[str, int] = Field(default_factory=dict)  # parent code -> entityTypeId
    clients: bool = False

    def columns(self) -> list[str]:
        """The store columns that sync reads from and writes to the portal."""
        cols = ["title", "assigned_by_id"]
        if self.stages_enabled:
            cols += ["funnel", "stage"]
        for f in self.fields:
            cols.append(f.code)
            if f.type == "money" and not f.multiple:  # a multiple money field is one JSON column
                cols.append(f"{f.code}_currency")
        for target in self.parents:
            cols.append(f"parent_{target}")
        if self.clients:
            cols += ["contact_ids", "company_id"]
        return cols

    def select(self) -> list[str]:
        """The `select` for crm.item.list/get: system fields and this process's UF names."""
        sel = ["id", "xmlId", "title", "assignedById", "createdTime", "updatedTime"]
        if self.stages_enabled:
            sel += ["categoryId", "stageId", "movedTime"]
        sel += [f"parentId{etid}" for etid in self.parents.values()]
        if self.clients:
            sel += ["contactIds", "companyId"]
        sel += [f.uf_name for f in self.fields]
        return sel


# ---- scalar conversions -------------------------------------------------------------------


_UTC_HOURS: dict[str, str] = {}  # "<date>T<hour>" + offset -> the UTC "<date>T<hour>" it stands for
_UTC_HOURS_MAX = 200_000
_UTC_TEXTS: dict[str, str] = {}  # exact portal text -> its UTC text (an item's three times often agree)
_UTC_TEXTS_MAX = 8_192
_DATE_TEXTS: dict[str, str] = {}  # exact portal date text -> `YYYY-MM-DD` (same bound)
_SIXTY = "012345"  # first digit of a minute or a second
_DIGITS = "0123456789"


def to_utc_text(value: Any) -> str | None:
    """Portal ISO-8601 datetime with offset -> `2026-01-02T03:04:05Z`.

    Two caches keep the common case cheap, with the output (and errors) of the full parse:
    - the exact text: `createdTime`, `updatedTime` and `movedTime` of an item are often one moment;
    - the portal's form `2026-01-02T06:04:05+03:00` (a whole-hour offset): the UTC date and hour of
      each (date, hour, offset) come from one full parse; minutes and seconds (00-59) are copied.
    """
    if value.__class__ is not str:
        return None if _empty(value) else times.to_utc_text(str(value), UTC)
    known = _UTC_TEXTS.get(value)
    if known is not None:
        return known
    if (len(value) == 25 and value[22:] == ":00" and value[19] in "+-" and value[13] == ":" == value[16]
            and value[14] in _SIXTY and value[15] in _DIGITS
            and value[17] in _SIXTY and value[18] in _DIGITS):
        key = value[:13] + value[19:22]
        hour = _UTC_HOURS.get(key)
        if hour is not None:
            text = hour + value[13:19] + "Z"
        else:  # the full parse (or its error); its date and hour hold for every minute of that hour
            text = times.to_utc_text(value, UTC)
            if len(text) == 20:  # `YYYY-MM-DDTHH:MM:SSZ` (strftime writes year 999 as `999`)
                if len(_UTC_HOURS) >= _UTC_HOURS_MAX:
                    _UTC_HOURS.clear()
                _UTC_HOURS[key] = text[:13]
    elif value == "":
        return None
    else:
        text = times.to_utc_text(value, UTC)
    if len(_UTC_TEXTS) >= _UTC_TEXTS_MAX:
        _UTC_TEXTS.clear()
    _UTC_TEXTS[value] = text
    return text


def from_utc_text(value: str) -> str:
    """`2026-01-02T03:04:05Z` (or any ISO text) -> ISO-8601 with an explicit offset for the portal."""
    return times.portal_text(times.parse_moment(value, UTC))


def to_date_text(value: Any) -> str | None:
    """Portal date (`2025-04-29`, or UTC/local midnight in any offset) -> `2025-04-29`.

    `times.parse_date` holds the rule: `2025-04-28T19:00:00-05:00` is 2025-04-29."""
    if value.__class__ is str:
        known = _DATE_TEXTS.get(value)
        if known is not None:
            return known
    if _empty(value):
        return None
    text = times.parse_date(str(value)).isoformat()
    if value.__class__ is str:
        if len(_DATE_TEXTS) >= _UTC_TEXTS_MAX:
            _DATE_TEXTS.clear()
        _DATE_TEXTS[value] = text
    return text


def split_money(value: Any) -> tuple[float | None, str | None]:
    """`"100.50|RUB"` -> (100.5, "RUB"); empty -> (None, None)."""
    if _empty(value):
        return None, None
    amount, _, currency = str(value).partition("|")
    return (float(amount) if amount.strip() else None), (currency or None)


def join_money(amount: float | None, currency: str | None) -> str:
    """(100.5, "RUB") -> `"100.5|RUB"`; no amount -> `""` (clears the field)."""
    if amount is None:
        return ""
    text = repr(float(amount))
    if text.endswith(".0"):
        text = text[:-2]
    return f"{text}|{currency}" if currency else text


def to_bool(value: Any) -> int | None:
    """Portal `Y`/`N` (or 1/0, true/false) -> 1/0."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(bool(value))
    text = str(value).strip().lower()
    if text in ("y", "1", "true"):
        return 1
    if text in ("n", "0", "false"):
        return 0
    raise TranslationError(f"bad boolean {value!r}; expected Y or N")


def _empty(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, str) and value == "")


INT64 = (-(2**63), 2**63 - 1)  # what an SQLite INTEGER (and the portal's PHP int) holds exactly


def _to_int(value: Any) -> int | None:
    """An integer from the portal (int, or decimal text of any size: never through float)."""
    if _empty(value):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        out = value
    elif isinstance(value, float):
        out = int(value)
    else:
        text = str(value).strip()
        try:
            out = int(text)
        except ValueError:
            try:
                exact = Decimal(text)
            except InvalidOperation:
                raise TranslationError(f"bad integer {value!r}") from None
            if exact != exact.to_integral_value():
                raise TranslationError(f"bad integer {value!r}: it has a fraction") from None
            out = int(exact)
    if not INT64[0] <= out <= INT64[1]:
        raise TranslationError(f"integer {out} is outside the 64-bit range the store and the portal hold")
    return out


def _nonzero_int(value: Any) -> int | None:
    return _to_int(value) or None


def _to_float(value: Any) -> float | None:
    if _empty(value):
        return None
    return float(value)


def _to_text(value: Any) -> str | None:
    if value is None or value == "" or value is False:
        return None
    return str(value)


# ---- crm link values ----------------------------------------------------------------------


class TypeCodes:
    """Type codes <-> entityTypeIds for crm link values: system types plus known processes."""

    def __init__(self, processes: dict[str, int] | None = None) -> None:
        self.by_code: dict[str, int] = dict(SYSTEM_ENTITY_TYPES)
        self.by_code.update(processes or {})
        self.by_etid: dict[int, str] = {etid: code for code, etid in self.by_code.items()}

    def short(self, code: str) -> str:
        """`deal` -> `D`; a process code -> `T` + hex entityTypeId."""
        m = re.fullmatch(r"dynamic_(\d+)", code)
        etid = SYSTEM_ENTITY_TYPES.get(code) or (int(m.group(1)) if m else self.by_code.get(code))
        if not etid:
            raise TranslationError(
                f"unknown crm link type {code!r}; known: {', '.join(sorted(self.by_code))}"
            )
        return short_code(etid)

    def link_to_local(self, value: Any) -> str | None:
        """`D_12` -> `deal:12`; `T40a_7` -> `<process code>:7` (or `dynamic_1034:7` if unknown)."""
        if _empty(value):
            return None
        try:
            etid, ident = parse_crm_link(str(value))
        except ValueError as exc:
            raise TranslationError(f"bad crm link value: {exc}") from None
        return f"{self.by_etid.get(etid, f'dynamic_{etid}')}:{ident}"

    def link_to_portal(self, value: str) -> str:
        """`deal:12` -> `D_12`."""
        code, sep, ident = str(value).rpartition(":")
        if not sep or not ident.isdecimal():
            raise TranslationError(f"bad crm link {value!r}; expected '<type code>:<id>' like deal:12")
        return f"{self.short(code)}_{ident}"


# ---- the translator -----------------------------------------------------------------------


def _json_list(value: Any) -> list[Any]:
    if value in (None, ""):
        return []
    if isinstance(value, list):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise TranslationError(f"expected a JSON array, got {value!r}") from exc
    if not isinstance(parsed, list):
        raise TranslationError(f"expected a JSON array, got {value!r}")
    return parsed


def _dump(values: list[Any]) -> str | None:
    return json.dumps(values, ensure_ascii=False) if values else None


Converter = Callable[[Any], Any]


def _money_part(f: FieldMap, part: int) -> Converter:
    """Converter of a money value to its amount (part 0) or currency (part 1)."""
    return lambda raw: split_money(raw)[part]


def _money_list(raw: Any) -> str | None:
    """A multiple money value (`["100|RUB", ...]`) -> JSON `[{"amount": 100.0, "currency": "RUB"}]`."""
    values = raw if isinstance(raw, list) else ([] if _empty(raw) else [raw])
    out = []
    for v in values:
        amount, currency = split_money(v)
        if amount is not None:
            out.append({"amount": amount, "currency": currency})
    return _dump(out)


_READERS: dict[str, Any] = {}  # compiled item readers by source text


class ItemTranslator:
    """Portal item <-> store row for one process on one portal."""

    def __init__(self, pmap: ProcessMap, types: TypeCodes | None = None) -> None:
        self.pmap = pmap
        self.types = types or TypeCodes({pmap.code: pmap.entity_type_id})
        self.funnel_by_category = {cat: code for code, cat in pmap.funnels.items()}
        self.stage_by_id = {sid: code for stages in pmap.stages.values() for code, sid in stages.items()}
        self.option_by_id = {f.code: {oid: oc for oc, oid in f.options.items()} for f in pmap.fields}
        self.unknown_options: dict[str, set[int]] = {}  # field code -> option ids pulled but not mapped
        self.columns = pmap.columns()
        plan = self._compile()
        self.value_columns: tuple[str, ...] = ("id", *(column for column, _, _ in plan))
        self._lists = {n for n, (_, key, _) in enumerate(plan) if key in self._list_keys()}
        self._keys = tuple(key for _, key, _ in plan)
        self._converters = tuple(conv for _, _, conv in plan)
        by_uf = {f.uf_name: f for f in pmap.fields if f.type == "enumeration" and not f.multiple}
        self._enum_cells = {n: by_uf[key] for n, key in enumerate(self._keys) if key in by_uf}
        self._read = self._compile_reader()

    # portal -> store
    def _compile(self) -> list[tuple[str, str, Converter]]:
        """Per store column: (column, item key, converter of a non-empty value), built once per map."""
        plan: list[tuple[str, str, Converter]] = [
            ("title", "title", _to_text),
            ("assigned_by_id", "assignedById", _to_int),
            ("created_time", "createdTime", to_utc_text),
            ("updated_time", "updatedTime", to_utc_text),
        ]
        if self.pmap.stages_enabled:
            plan += [
                ("moved_time", "movedTime", to_utc_text),
                ("funnel", "categoryId", self._funnel_code),
                ("stage", "stageId", self._stage_code),
            ]
        for f in self.pmap.fields:
            if f.type == "money" and f.multiple:
                plan.append((f.code, f.uf_name, _money_list))
            elif f.type == "money":
                plan.append((f.code, f.uf_name, _money_part(f, 0)))
                plan.append((f"{f.code}_currency", f.uf_name, _money_part(f, 1)))
            elif f.multiple:
                plan.append((f.code, f.uf_name, self._multiple_converter(f)))
            else:
                plan.append((f.code, f.uf_name, self._scalar_converter(f)))
        for target, etid in self.pmap.parents.items():
            plan.append((f"parent_{target}", f"parentId{etid}", _nonzero_int))
        if self.pmap.clients:
            plan.append(("contact_ids", "contactIds", lambda v: _dump([int(x) for x in v or []])))
            plan.append(("company_id", "companyId", _nonzero_int))
        return plan

    def _list_keys(self) -> set[str]:
        """Item keys whose converter reads a list (multiple fields, contact ids): [] converts to None."""
        keys = {f.uf_name for f in self.pmap.fields if f.multiple}
        return keys | ({"contactIds"} if self.pmap.clients else set())

    def _funnel_code(self, value: Any) -> str | None:
        cat = _to_int(value)
        if cat is None:
            return None
        return self.funnel_by_category.get(cat) or f"category_{cat}"

    def _stage_code(self, value: Any) -> str | None:
        if not value:
            return None
        return self.stage_by_id.get(value) or str(value).rpartition(":")[2]

    def _scalar_converter(self, f: FieldMap) -> Converter:
        if f.type in ("string", "url", "address"):
            return _to_text
        if f.type in ("integer", "employee"):
            return _to_int
        if f.type == "double":
            return _to_float
        if f.type == "datetime":
            return to_utc_text
        if f.type == "date":
            return to_date_text
        return lambda v: self._scalar_to_row(f, v)

    def _multiple_converter(self, f: FieldMap) -> Converter:
        def convert(raw: Any) -> str | None:
            values = raw if isinstance(raw, list) else ([] if _empty(raw) else [raw])
            out = [self._scalar_to_row(f, v) for v in values]
            return _dump([v for v in out if v is not None])

        return convert

    def _compile_reader(self) -> Callable[[dict[str, Any], Any], list[Any]]:
        """One straight-line function per map: unpack the item's values (one C call when it carries
        every selected key), convert each non-empty one, `null` for the rest. Built from our own
        column indexes only (item keys enter as repr literals), like dataclasses build __init__.
        The common values of the common converters are read inline (`_inline`), without a call."""
        names = [f"v{i}" for i in range(len(self._keys))]
        unpack = ", ".join(names) + ","
        cells = ""
        for i, v in enumerate(names):
            # a multiple value's converter turns [] into None as well: skip that call (most items hold [])
            empty = f"{v} is None or {v} == ''" + (f" or {v} == []" if i in self._lists else "")
            call = f"null if (o := c{i}({v})) is None else o"
            inline = self._inline(self._converters[i], v, i)
            cells += f"        null if {v} is None else {inline} else (null if {empty} else {call}),\n" \
                if inline else f"        null if {empty} else {call},\n"
        source = (
            "def read(item, null):\n"
            "    try:\n"
            f"        {unpack} = pick(item)\n"
            "    except KeyError:\n"
            f"        {unpack} = map(item.get, keys)\n"
            "    return [\n"
            "        int(item['id']),\n"
            f"{cells}"
            "    ]\n"
        )
        scope: dict[str, Any] = {f"c{i}": conv for i, conv in enumerate(self._converters)}
        scope.update(pick=itemgetter(*self._keys), keys=self._keys, utc_known=_UTC_TEXTS.get,
                     date_known=_DATE_TEXTS.get, funnel_of=self.funnel_by_category.get,
                     stage_of=self.stage_by_id.get)
        scope.update({f"option_of{i}": self.option_by_id[f.code].get for i, f in self._enum_cells.items()})
        code = _READERS.get(source)
        if code is None:  # one compile per distinct map (syncs build translators on every run)
            if len(_READERS) > 256:
                _READERS.clear()
            code = _READERS[source] = compile(source, f"<item reader {self.pmap.code}>", "exec")
        exec(code, scope)  # noqa: S102
        return scope["read"]  # type: ignore[no-any-return]

    def _inline(self, convert: Converter, v: str, i: int) -> str | None:
        """`<value> if <test>`: what `convert(v)` gives for the common values, without the call; the
        test admits only non-empty inputs that the converter would turn into that very value."""
        if convert is _to_text:
            return f"{v} if {v}.__class__ is str and {v}"
        if convert is _to_int or convert is _nonzero_int:
            value = v if convert is _to_int else f"({v} or null)"  # _nonzero_int: 0 is empty
            return f"{value} if {v}.__class__ is int and {INT64[0]} <= {v} <= {INT64[1]}"
        if convert is to_utc_text:  # the cache never holds ''
            return f"o if {v}.__class__ is str and (o := utc_known({v})) is not None"
        if convert is to_date_text:
            return f"o if {v}.__class__ is str and (o := date_known({v})) is not None"
        if i in self._enum_cells:  # a known option id (an unknown one is noted by the converter)
            return f"o if {v}.__class__ is int and (o := option_of{i}({v}))"
        if convert == self._funnel_code:
            return f"o if {v}.__class__ is int and (o := funnel_of({v}))"
        if convert == self._stage_code:
            return f"o if {v}.__class__ is str and {v} and (o := stage_of({v}))"
        return None

    def to_values(self, item: dict[str, Any], null: Any = None) -> list[Any]:
        """A crm.item (useOriginalUfNames=Y) -> its store values in `value_columns` order (no `key`).

        The fast form of `to_row` for bulk writes: one list per item, no per-row dict; empty values
        come out as `null` (a bulk writer may pass a sentinel that binds faster than None).
        """
        return self._read(item, null)

    def to_row(self, item: dict[str, Any]) -> dict[str, Any]:
        """A crm.item (useOriginalUfNames=Y) -> a store row (without `key`)."""
        return dict(zip(self.value_columns, self.to_values(item), strict=True))

    def _scalar_to_row(self, f: FieldMap, raw: Any) -> Any:
        t = f.type
        if t in ("string", "url", "address"):
            return _to_text(raw)
        if t in ("integer", "employee"):
            return _to_int(raw)
        if t == "double":
            return _to_float(raw)
        if t == "boolean":
            return to_bool(raw)
        if t == "date":
            return to_date_text(raw)
        if t == "datetime":
            return to_utc_text(raw)
        if t == "enumeration":
            oid = _to_int(raw)
            if oid is None:
                return None
            code = self.option_by_id[f.code].get(oid)
            if code is None:  # added by hand on the portal: keep a marker, never a look-alike code
                self.unknown_options.setdefault(f.code, set()).add(oid)
                return option_marker(oid)
            return code
        if t == "crm":
            return self.types.link_to_local(raw)
        if t == "file":
            if not raw:
                return None
            if isinstance(raw, dict):  # keep metadata only; urlMachine carries an auth token
                meta = {k: raw[k] for k in ("id", "name", "size", "url") if k in raw}
                return json.dumps(meta, ensure_ascii=False) if not f.multiple else meta
            return json.dumps({"id": raw}) if not f.multiple else {"id": raw}
        raise TranslationError(f"field {f.code!r}: unknown type {t!r}; allowed: {', '.join(FIELD_TYPES)}")

    # store -> portal
    def to_fields(self, row: dict[str, Any], columns: Iterable[str] | None = None) -> dict[str, Any]:
        """The crm.item.add/update `fields` for the given columns of a store row (UF names as keys).

        File fields are never written (metadata only); `parent_<code>_key` must be resolved by the
        caller into `parent_<code>` first.
        """
        p = self.pmap
        wanted = set(self.columns if columns is None else columns)
        out: dict[str, Any] = {}
        if "title" in wanted:
            out["title"] = row.get("title") or ""
        if "assigned_by_id" in wanted and row.get("assigned_by_id") is not None:
            out["assignedById"] = int(row["assigned_by_id"])
        if p.stages_enabled and ({"funnel", "stage"} & wanted):
            out.update(self._stage_fields(row, funnel_changed="funnel" in wanted))
        for f in p.fields:
            if f.type == "file":
                continue
            money_cols = {f.code, f"{f.code}_currency"} if f.type == "money" and not f.multiple else {f.code}
            if money_cols & wanted:
                out[f.uf_name] = self._field_to_portal(f, row)
        for target, etid in p.parents.items():
            if f"parent_{target}" in wanted:
                out[f"parentId{etid}"] = _to_int(row.get(f"parent_{target}")) or 0
        if p.clients:
            if "contact_ids" in wanted:
                out["contactIds"] = [int(x) for x in _json_list(row.get("contact_ids"))]
            if "company_id" in wanted:
                out["companyId"] = _to_int(row.get("company_id")) or 0
        return out

    def _stage_fields(self, row: dict[str, Any], *, funnel_changed: bool) -> dict[str, Any]:
        p = self.pmap
        funnel = row.get("funnel") or p.default_funnel or next(iter(p.funnels), None)
        if funnel not in p.funnels:
            raise TranslationError(f"unknown funnel {funnel!r}; known: {', '.join(p.funnels)}")
        out: dict[str, Any] = {}
        if funnel_changed:
            out["categoryId"] = p.funnels[funnel]
        stage = row.get("stage")
        if stage:
            stages = p.stages.get(funnel, {})
            if stage not in stages:
                raise TranslationError(
                    f"unknown stage {stage!r} in funnel {funnel!r}; known: {', '.join(stages)}"
                )
            out["stageId"] = stages[stage]
        return out

    def _option_id(self, f: FieldMap, value: Any) -> int:
        """An option CODE -> its portal option id; anything else (a raw portal id too) is refused."""
        code = value if isinstance(value, str) else str(value)  # INTEGER affinity / JSON numbers
        allowed = ", ".join(f.options) or "none (no option of the template is on the portal)"
        if code.startswith(UNKNOWN_OPTION_MARK):
            raise TranslationError(
                f"field {f.code!r}: {code!r} is portal option id {code[1:]}, which the template does "
                f"not define; add it to the template (and apply) or set an option code; allowed: {allowed}"
            )
        if code not in f.options:
            raise TranslationError(f"field {f.code!r}: unknown option {code!r}; allowed: {allowed}")
        return f.options[code]

    def _field_to_portal(self, f: FieldMap, row: dict[str, Any]) -> Any:
        raw = row.get(f.code)
        if f.type == "money":
            cur = row.get(f"{f.code}_currency")
            if f.multiple:  # JSON [{"amount": .., "currency": ..}] (a bare number is an amount)
                out = []
                for v in _json_list(raw):
                    if isinstance(v, dict):
                        out.append(join_money(_to_float(v.get("amount")), v.get("currency")))
                    elif v not in (None, ""):
                        out.append(join_money(_to_float(v), None))
                return [m for m in out if m]
            return join_money(_to_float(raw), cur)
        if f.multiple:
            try:
                values = _json_list(raw)
            except TranslationError as exc:
                raise TranslationError(f"field {f.code!r}: {exc} (a multiple field is a JSON array)") from exc
            return [self._checked_scalar(f, v) for v in values if v is not None and v != ""]
        return self._checked_scalar(f, raw)

    def _checked_scalar(self, f: FieldMap, value: Any) -> Any:
        """`_scalar_to_portal`, with a bad number or date named by its field and type."""
        try:
            return self._scalar_to_portal(f, value)
        except TranslationError:
            raise
        except ValueError as exc:
            raise TranslationError(f"field {f.code!r}: {value!r} is not a valid {f.type} ({exc})") from exc

    def _scalar_to_portal(self, f: FieldMap, value: Any) -> Any:
        if value is None:
            return "N" if f.type == "boolean" else ""
        t = f.type
        if t in ("string", "url", "address"):
            return str(value)
        if t in ("integer", "employee"):
            return int(value)
        if t == "double":
            v = float(value)
            if math.isnan(v) or math.isinf(v):
                raise TranslationError(f"field {f.code!r}: {value!r} is not a finite number")
            return v
        if t == "boolean":
            return yn(bool(to_bool(value)))
        if t == "date":
            return date.fromisoformat(str(value)[:10]).isoformat()
        if t == "datetime":
            return from_utc_text(str(value))
        if t == "enumeration":
            return "" if value == "" else self._option_id(f, value)  # '' clears, like NULL
        if t == "crm":
            return self.types.link_to_portal(value)
        raise TranslationError(f"field {f.code!r}: type {t!r} cannot be written")


def normalize(value: Any) -> Any:
    """A column value in a comparable form (JSON text parsed, floats rounded, '' as None)."""
    if value == "" or value is None:
        return None
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else round(value, 9)
    return value


def changed_columns(row: dict[str, Any], base: dict[str, Any], columns: Iterable[str]) -> list[str]:
    """Columns whose values differ between a row and a base snapshot."""
    return [c for c in columns if normalize(row.get(c)) != normalize(base.get(c))]


# ---- REST calls ---------------------------------------------------------------------------

Op = Literal["add", "update", "delete"]


class WriteOp(BaseModel):
    """One item write inside a batch."""

    op: Op
    ref: str  # caller's reference (the local key)
    id: int | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class WriteResult(BaseModel):
    """The outcome of one WriteOp: the returned item, or an error text."""

    ref: str
    op: Op
    item: dict[str, Any] | None = None
    error: str | None = None
    not_found: bool = False


def list_params(
    pmap: ProcessMap, filter: dict[str, Any] | None = None, select: list[str] | None = None
) -> dict[str, Any]:
    """`crm.item.list` params for a process: its select (or `select`), original UF names, the filter."""
    return {
        "entityTypeId": pmap.entity_type_id,
        "select": select or pmap.select(),
        "filter": filter or {},
        "useOriginalUfNames": "Y",
    }


def list_items(
    client: Client, pmap: ProcessMap, *, filter: dict[str, Any] | None = None, select: list[str] | None = None
) -> Iterator[dict[str, Any]]:
    """All items matching a filter, keyset-paged (no COUNT), ≤ 2,500 rows per HTTP request.

    https://apidocs.bitrix24.com/api-reference/crm/universal/crm-item-list.html
    """
    for item in client.iter_list("crm.item.list", list_params(pmap, filter, select), rows_key="items"):
        check_item_stage(item, pmap, "crm.item.list")
        yield item


def first_page(
    client: Client, pmap: ProcessMap, *, filter: dict[str, Any] | None = None, select: list[str] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One 50-row keyset page (start=-1, order id ASC) and the response's `time` object."""
    r = client.call(
        "crm.item.list",
        {
            "entityTypeId": pmap.entity_type_id,
            "select": select or pmap.select(),
            "filter": filter or {},
            "order": {"id": "ASC"},
            "start": -1,
            "useOriginalUfNames": "Y",
        },
    )
    rows = page_rows(r.result, "items", "crm.item.list")
    check_page_ids(rows, "id", "crm.item.list", "p0")
    for item in rows:
        check_item_stage(item, pmap, "crm.item.list")
    return rows, dict(r.time or {})


def check_item_stage(item: dict[str, Any], pmap: ProcessMap, method: str) -> None:
    """An item's `stageId` belongs to this process and to the item's own funnel (`DT<type>_<cat>:...`).

    A stage the map does not know but of the right funnel is kept (one added on the portal by
    hand); a stage of another process or funnel, or a non-string, is a wrong answer.
    """
    if not pmap.stages_enabled:
        return
    stage = item.get("stageId")
    if stage is None:
        return
    category = item.get("categoryId")
    if stage.__class__ is str and category.__class__ is int and stage.startswith(
        f"DT{pmap.entity_type_id}_{category}:"
    ):
        return  # the common case: a stage of the item's own funnel
    # without `categoryId` in the select, only the process part of the stage id can be checked
    prefix = f"DT{pmap.entity_type_id}_{category}:" if "categoryId" in item else f"DT{pmap.entity_type_id}_"
    category_ok = isinstance(category, int) or "categoryId" not in item
    if not isinstance(stage, str) or not category_ok or not stage.startswith(prefix):
        raise UnexpectedAnswer(
            "BAD_STAGE",
            f"item {item.get('id')!r} has stageId {stage!r} in categoryId {category!r}; a stage of process "
            f"{pmap.code!r} there starts with {prefix!r}",
            200,
            method,
        )


def find_by_xml_ids(client: Client, pmap: ProcessMap, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Items whose `xmlId` is one of `keys` (lost-create lookup), keyed by xmlId."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), 50):
        chunk = keys[start : start + 50]
        for item in list_items(client, pmap, filter={"@xmlId": chunk}):
            if item.get("xmlId"):
                found[str(item["xmlId"])] = item
    return found


def read_items(client: Client, pmap: ProcessMap, ids: list[int]) -> list[dict[str, Any]]:
    """The items with these ids (those still on the portal), read with one `batch` of `crm.item.list`
    commands (50 ids each) per 2,500 ids: the push's pre-read before it overwrites anything.

    https://apidocs.bitrix24.com/api-reference/crm/universal/crm-item-list.html
    """
    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), 2_500):
        part = ids[start : start + 2_500]
        commands = {
            f"r{n}": (
                "crm.item.list",
                {
                    "entityTypeId": pmap.entity_type_id,
                    "select": pmap.select(),
                    "filter": {"@id": part[k : k + 50]},
                    "order": {"id": "ASC"},
                    "start": -1,
                    "useOriginalUfNames": "Y",
                },
            )
            for n, k in enumerate(range(0, len(part), 50))
        }
        batch = client.batch(commands, halt=True)
        for label in commands:
            res = batch.results.get(label)
            out.extend((res or {}).get("items") or [] if isinstance(res, dict) else [])
    return out


def write_items(client: Client, pmap: ProcessMap, ops: list[WriteOp]) -> list[WriteResult]:
    """Run up to 50 item writes in one `batch` request; per-row results in input order.

    https://apidocs.bitrix24.com/api-reference/how-to-call-rest-api/batch.html
    """
    if len(ops) > 50:
        raise ValueError(f"write_items takes at most 50 writes per batch, got {len(ops)}")
    if not ops:
        return []
    commands: dict[str, tuple[str, dict[str, Any]]] = {}
    for n, op in enumerate(ops):
        label = f"w{n}"
        if op.op == "add":
            commands[label] = (
                "crm.item.add",
                {"entityTypeId": pmap.entity_type_id, "fields": op.fields, "useOriginalUfNames": "Y"},
            )
        elif op.op == "update":
            commands[label] = (
                "crm.item.update",
                {
                    "entityTypeId": pmap.entity_type_id,
                    "id": op.id,
                    "fields": op.fields,
                    "useOriginalUfNames": "Y",
                },
            )
        else:
            commands[label] = ("crm.item.delete", {"entityTypeId": pmap.entity_type_id, "id": op.id})
    batch = client.batch(commands, halt=False)
    results: list[WriteResult] = []
    for n, op in enumerate(ops):
        label = f"w{n}"
        err = batch.errors.get(label) if batch.errors else None
        if err is not None:
            code = str(getattr(err, "code", "") or "")
            results.append(WriteResult(ref=op.ref, op=op.op, error=str(err), not_found=code == "NOT_FOUND"))
            continue
        res = batch.results.get(label)
        item = res.get("item") if isinstance(res, dict) else None
        if op.op != "delete" and not item:
            results.append(WriteResult(ref=op.ref, op=op.op, error=f"no result for {op.op} in batch"))
            continue
        results.append(WriteResult(ref=op.ref, op=op.op, item=item))
    return results
