"""The fast paths of translating a pulled item give what the plain rules give, errors included.

- `to_utc_text` (exact-text cache, whole-hour-offset fast path) and `to_date_text` (exact-text cache)
  against the plain parse of `connector.times`, on generated text: odd offsets (+05:45, -03:30,
  +14:00), `Z`, fractions, a space for `T`, and valid text spoiled one character at a time;
  each value is converted twice (the second time from the caches) and with the caches emptied;
- the compiled reader's inline cells (text, integers, datetimes, dates, funnel, stage, enumeration)
  against calling every column's converter, unknown option ids still noted;
- `check_item_stage` (cached prefixes) against its plain form.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support.translation import per_column

from connector import times
from connector.crm import items
from connector.crm.items import (
    FieldMap,
    ItemTranslator,
    ProcessMap,
    check_item_stage,
    to_date_text,
    to_utc_text,
)
from connector.rest.errors import UnexpectedAnswer


def plain_utc(value: Any) -> str | None:
    """`to_utc_text` without its caches: the rule it must keep."""
    if value is None or value is False or (isinstance(value, str) and value == ""):
        return None
    return times.to_utc_text(str(value), UTC)


def plain_date(value: Any) -> str | None:
    if value is None or value is False or (isinstance(value, str) and value == ""):
        return None
    return times.parse_date(str(value)).isoformat()


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as exc:  # noqa: BLE001 - the very error (type and text) must match
        return "error", (type(exc).__name__, str(exc))


def empty_caches() -> None:
    for cache in (items._UTC_TEXTS, items._UTC_HOURS, items._DATE_TEXTS):
        cache.clear()


OFFSETS = st.one_of(st.integers(-12, 14).map(lambda h: timedelta(hours=h)),
                    st.sampled_from([timedelta(hours=5, minutes=45), timedelta(hours=-3, minutes=-30),
                                     timedelta(minutes=30), timedelta(0)]))


@st.composite
def portal_texts(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)))
    moment = moment.replace(tzinfo=timezone(draw(OFFSETS)))
    text = moment.isoformat(timespec=draw(st.sampled_from(["seconds", "seconds", "milliseconds"])))
    form = draw(st.sampled_from(["portal", "portal", "Z", "space", "naive"]))
    if form == "Z" and text.endswith("+00:00"):
        text = text[:-6] + "Z"
    elif form == "space":
        text = text[:10] + " " + text[11:]
    elif form == "naive":
        text = text[:19]
    return text


@st.composite
def spoiled(draw: st.DrawFn) -> str:
    """A portal text with one character replaced: invalid minutes, seconds, separators, digits."""
    text = draw(portal_texts())
    at = draw(st.integers(0, len(text) - 1))
    return text[:at] + draw(st.sampled_from(list("0569:T-+ xZ") + ["\u0663", ""])) + text[at + 1:]


ANY_TIME = st.one_of(portal_texts(), spoiled(), st.text(max_size=30), st.none(), st.just(""), st.booleans(),
                     st.integers(), st.floats(allow_nan=False), st.just([]))


@settings(max_examples=600, deadline=None)
@given(value=ANY_TIME, fresh=st.booleans())
@example(value="2026-01-02T06:04:05+03:00", fresh=True)
@example(value="2026-01-02T06:60:05+03:00", fresh=True)  # minute 60: the old fast path copied it
@example(value="2026-01-02T06:4x:05+03:00", fresh=False)
@example(value="2026-01-02T06:04:05+03:30", fresh=True)
@example(value="2026-01-02T23:59:59-05:00", fresh=True)
def test_to_utc_text_matches_the_plain_parse(value: Any, fresh: bool) -> None:
    if fresh:
        empty_caches()
    expected = outcome(plain_utc, value)
    assert outcome(to_utc_text, value) == expected
    assert outcome(to_utc_text, value) == expected  # from the caches now
    if isinstance(value, str) and len(value) == 25:  # the same hour, other minutes: the hour cache
        for minute in ("00", "59", "61", "a1"):
            other = value[:14] + minute + value[16:]
            assert outcome(to_utc_text, other) == outcome(plain_utc, other)


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(ANY_TIME, st.dates().map(str)), fresh=st.booleans())
def test_to_date_text_matches_the_plain_parse(value: Any, fresh: bool) -> None:
    if fresh:
        empty_caches()
    expected = outcome(plain_date, value)
    assert outcome(to_date_text, value) == expected
    assert outcome(to_date_text, value) == expected


def test_the_text_cache_stays_bounded() -> None:
    empty_caches()
    for second in range(items._UTC_TEXTS_MAX + 10):
        text = (datetime(2026, 1, 2, 3, tzinfo=UTC) + timedelta(seconds=second)).isoformat()
        assert to_utc_text(text) == plain_utc(text)
    assert len(items._UTC_TEXTS) <= items._UTC_TEXTS_MAX


# -- the compiled reader ------------------------------------------------------------------------

PMAP = ProcessMap(
    code="car",
    entity_type_id=1032,
    type_id=3,
    funnels={"main": 1, "fleet": 2},
    stages={"main": {"NEW": "DT1032_1:NEW", "WON": "DT1032_1:SUCCESS"}, "fleet": {"NEW": "DT1032_2:NEW"}},
    fields=[
        FieldMap(code="vin", type="string", uf_name="UF_CRM_3_VIN"),
        FieldMap(code="make", type="enumeration", uf_name="UF_CRM_3_MAKE", options={"bmw": 11, "kia": 12}),
        FieldMap(code="colors", type="enumeration", multiple=True, uf_name="UF_CRM_3_COLORS",
                 options={"red": 21}),
        FieldMap(code="year", type="integer", uf_name="UF_CRM_3_YEAR"),
        FieldMap(code="served", type="date", uf_name="UF_CRM_3_SERVED"),
        FieldMap(code="seen", type="datetime", uf_name="UF_CRM_3_SEEN"),
        FieldMap(code="km", type="double", uf_name="UF_CRM_3_KM"),
    ],
    parents={"deal": 2},
    clients=True,
)

ANY_VALUE = st.one_of(
    st.none(), st.just(""), st.just([]), st.booleans(), st.just(0),
    st.integers(-3, 25), st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["x", "12", "0", "DT1032_1:NEW", "DT1032_2:NEW", "DT1032_1:LOST", "2026-01-02",
                     "2026-01-02T06:04:05+03:00", "2026-01-02T06:04:05+05:45", "2026-13-02T06:04:05+03:00"]),
    st.lists(st.sampled_from([21, 22, "", None]), max_size=3),
)


@settings(max_examples=500, deadline=None)
@given(values=st.fixed_dictionaries({}, optional={k: ANY_VALUE for k in PMAP.select() if k != "id"}),
       item_id=st.integers(1, 10**6), null=st.sampled_from([None, "NULL-SENTINEL"]))
def test_reader_inline_cells_match_the_converters(values: dict[str, Any], item_id: int, null: Any) -> None:
    item = {"id": item_id, **values}
    fast, plain = ItemTranslator(PMAP), ItemTranslator(PMAP)
    got, want = outcome(fast.to_values, item, null), outcome(per_column, plain, item)
    if want[0] == "ok":
        want = ("ok", [null if v is None else v for v in want[1]])
    if got[0] == "error" and want[0] == "error":
        got, want = ("error", got[1][0]), ("error", want[1][0])  # the first bad column may differ
    assert got == want
    if got[0] == "ok":
        assert fast.unknown_options == plain.unknown_options


def test_reader_reads_a_portal_item() -> None:
    tr = ItemTranslator(PMAP)
    item = {"id": 7, "title": "car", "assignedById": 1, "createdTime": "2026-01-02T06:04:05+03:00",
            "updatedTime": "2026-01-02T06:04:05+03:00", "movedTime": "2026-01-02T06:04:05+03:00",
            "categoryId": 2, "stageId": "DT1032_2:NEW", "UF_CRM_3_MAKE": 99, "UF_CRM_3_YEAR": 0,
            "UF_CRM_3_SERVED": "2025-04-28T19:00:00-05:00", "parentId2": 0, "companyId": 5}
    row = tr.to_row(item)
    assert row["created_time"] == row["moved_time"] == "2026-01-02T03:04:05Z"
    assert (row["funnel"], row["stage"], row["make"], row["year"]) == ("fleet", "NEW", "#99", 0)
    assert (row["served"], row["parent_deal"], row["company_id"]) == ("2025-04-29", None, 5)
    assert tr.unknown_options == {"make": {99}}


# -- check_item_stage ---------------------------------------------------------------------------


def plain_check(item: dict[str, Any], pmap: ProcessMap, method: str) -> None:
    """`check_item_stage` as it was before the cached prefixes."""
    if not pmap.stages_enabled or "stageId" not in item:
        return
    stage, category = item["stageId"], item.get("categoryId")
    if stage is None:
        return
    prefix = f"DT{pmap.entity_type_id}_{category}:" if "categoryId" in item else f"DT{pmap.entity_type_id}_"
    category_ok = isinstance(category, int) or "categoryId" not in item
    if not isinstance(stage, str) or not category_ok or not stage.startswith(prefix):
        raise UnexpectedAnswer("BAD_STAGE", f"item {item.get('id')!r} has stageId {stage!r} in categoryId "
                               f"{category!r}; a stage of process {pmap.code!r} there starts with {prefix!r}",
                               200, method)


STAGES = st.sampled_from(["DT1032_1:NEW", "DT1032_2:NEW", "DT1032_1:", "DT1033_1:NEW", "DT1032_True:X",
                          "DT1032_", "", "NEW", 5, None, ["DT1032_1:NEW"]])
CATEGORIES = st.sampled_from([1, 2, 3, True, False, "1", 1.0, None, 2**70])


@settings(max_examples=300, deadline=None)
@given(stage=st.one_of(st.just("absent"), STAGES), category=st.one_of(st.just("absent"), CATEGORIES),
       enabled=st.booleans())
def test_check_item_stage_matches_its_plain_form(stage: Any, category: Any, enabled: bool) -> None:
    item: dict[str, Any] = {"id": 4}
    if stage != "absent":
        item["stageId"] = stage
    if category != "absent":
        item["categoryId"] = category
    pmap = PMAP.model_copy(update={"stages_enabled": enabled})
    assert outcome(check_item_stage, item, pmap, "crm.item.list") == outcome(plain_check, item, pmap,
                                                                             "crm.item.list")


def test_check_item_stage_refuses_another_funnel() -> None:
    with pytest.raises(UnexpectedAnswer, match="starts with 'DT1032_2:'"):
        check_item_stage({"id": 1, "stageId": "DT1032_1:NEW", "categoryId": 2}, PMAP, "crm.item.list")
