"""Item translation between portal items (useOriginalUfNames=Y) and store rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.crm.items import (
    FieldMap,
    ItemTranslator,
    ProcessMap,
    TranslationError,
    TypeCodes,
    changed_columns,
    join_money,
    split_money,
    to_date_text,
    to_utc_text,
)

MSK = timezone(timedelta(hours=3))


def pmap() -> ProcessMap:
    return ProcessMap(
        code="work_order",
        entity_type_id=1036,
        type_id=9,
        funnels={"main": 7},
        stages={
            "main": {
                "BOOKED": "DT1036_7:NEW",
                "WORK": "DT1036_7:WORK",
                "DONE": "DT1036_7:SUCCESS",
                "REFUSED": "DT1036_7:FAIL",
            }
        },
        fields=[
            FieldMap(code="note", type="string", uf_name="UF_CRM_9_NOTE"),
            FieldMap(code="km", type="integer", uf_name="UF_CRM_9_KM"),
            FieldMap(code="rate", type="double", uf_name="UF_CRM_9_RATE"),
            FieldMap(code="ok", type="boolean", uf_name="UF_CRM_9_OK"),
            FieldMap(code="day", type="date", uf_name="UF_CRM_9_DAY"),
            FieldMap(code="visit_at", type="datetime", uf_name="UF_CRM_9_VISIT_AT"),
            FieldMap(
                code="kind", type="enumeration", uf_name="UF_CRM_9_KIND", options={"to": 81, "diag": 82}
            ),
            FieldMap(
                code="works",
                type="enumeration",
                multiple=True,
                uf_name="UF_CRM_9_WORKS",
                options={"to": 91, "tyres": 92},
            ),
            FieldMap(code="cost", type="money", uf_name="UF_CRM_9_COST"),
            FieldMap(code="site", type="url", uf_name="UF_CRM_9_SITE"),
            FieldMap(code="addr", type="address", uf_name="UF_CRM_9_ADDR"),
            FieldMap(code="act", type="file", uf_name="UF_CRM_9_ACT"),
            FieldMap(code="mechanic", type="employee", uf_name="UF_CRM_9_MECHANIC"),
            FieldMap(code="link", type="crm", uf_name="UF_CRM_9_LINK"),
            FieldMap(code="links", type="crm", multiple=True, uf_name="UF_CRM_9_LINKS"),
        ],
        parents={"car": 1032, "deal": 2},
        clients=True,
    )


def translator() -> ItemTranslator:
    return ItemTranslator(pmap(), TypeCodes({"car": 1032, "work_order": 1036}))


PORTAL_ITEM: dict[str, Any] = {
    "id": 5,
    "xmlId": "k1",
    "title": "Order 5",
    "assignedById": 3,
    "createdTime": "2026-01-02T06:04:05+03:00",
    "updatedTime": "2026-01-02T07:00:00+03:00",
    "movedTime": "2026-01-02T07:00:00+03:00",
    "categoryId": 7,
    "stageId": "DT1036_7:NEW",
    "UF_CRM_9_NOTE": "тормоза",
    "UF_CRM_9_KM": 120000,
    "UF_CRM_9_RATE": 1.5,
    "UF_CRM_9_OK": "Y",
    "UF_CRM_9_DAY": "2025-04-29T03:00:00+03:00",
    "UF_CRM_9_VISIT_AT": "2026-02-01T12:30:00+03:00",
    "UF_CRM_9_KIND": 82,
    "UF_CRM_9_WORKS": [91, 92],
    "UF_CRM_9_COST": "1500.5|RUB",
    "UF_CRM_9_SITE": "https://x.ru",
    "UF_CRM_9_ADDR": "Москва|Тверская 1",
    "UF_CRM_9_ACT": {"id": 30, "url": "/f/30", "urlMachine": "https://p/rest/download?auth=SECRET"},
    "UF_CRM_9_MECHANIC": 8,
    "UF_CRM_9_LINK": "D_12",
    "UF_CRM_9_LINKS": ["T408_7", "CO_3"],
    "parentId1032": 7,
    "parentId2": 0,
    "contactIds": [4, 5],
    "companyId": 9,
}


def test_portal_item_to_row_uses_codes_and_utc() -> None:
    row = translator().to_row(PORTAL_ITEM)
    assert row["funnel"] == "main" and row["stage"] == "BOOKED"  # NEW carries the template code
    assert row["created_time"] == "2026-01-02T03:04:05Z"
    assert row["visit_at"] == "2026-02-01T09:30:00Z"
    assert row["day"] == "2025-04-29"
    assert row["ok"] == 1 and row["km"] == 120000 and row["rate"] == 1.5
    assert row["kind"] == "diag" and json.loads(row["works"]) == ["to", "tyres"]
    assert (row["cost"], row["cost_currency"]) == (1500.5, "RUB")
    assert row["link"] == "deal:12" and json.loads(row["links"]) == ["car:7", "company:3"]
    assert row["parent_car"] == 7 and row["parent_deal"] is None
    assert json.loads(row["contact_ids"]) == [4, 5] and row["company_id"] == 9
    assert "SECRET" not in row["act"] and json.loads(row["act"])["id"] == 30


def test_row_to_fields_translates_back_and_skips_files() -> None:
    tr = translator()
    row = tr.to_row(PORTAL_ITEM)
    fields = tr.to_fields(row)
    assert fields["stageId"] == "DT1036_7:NEW" and fields["categoryId"] == 7
    assert fields["UF_CRM_9_KIND"] == 82 and fields["UF_CRM_9_WORKS"] == [91, 92]
    assert fields["UF_CRM_9_COST"] == "1500.5|RUB" and fields["UF_CRM_9_OK"] == "Y"
    assert fields["UF_CRM_9_DAY"] == "2025-04-29"
    assert datetime.fromisoformat(fields["UF_CRM_9_VISIT_AT"]) == datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    assert fields["UF_CRM_9_LINK"] == "D_12" and fields["UF_CRM_9_LINKS"] == ["T408_7", "CO_3"]
    assert fields["parentId1032"] == 7 and fields["contactIds"] == [4, 5]
    assert "UF_CRM_9_ACT" not in fields  # file content is never re-uploaded


def test_only_requested_columns_are_written() -> None:
    tr = translator()
    row = tr.to_row(PORTAL_ITEM)
    assert tr.to_fields(row, ["cost_currency"]) == {"UF_CRM_9_COST": "1500.5|RUB"}
    assert tr.to_fields(row, ["stage"]) == {"stageId": "DT1036_7:NEW"}


def test_bad_local_values_name_what_is_allowed() -> None:
    tr = translator()
    row = tr.to_row(PORTAL_ITEM)
    with pytest.raises(TranslationError, match="unknown option 'oil'; allowed: to, diag"):
        tr.to_fields({**row, "kind": "oil"}, ["kind"])
    with pytest.raises(TranslationError, match="unknown stage 'LOST'"):
        tr.to_fields({**row, "stage": "LOST"}, ["stage"])
    with pytest.raises(TranslationError, match="bad crm link"):
        tr.to_fields({**row, "link": "deal-12"}, ["link"])
    with pytest.raises(TranslationError, match="unknown crm link type 'ship'"):
        tr.to_fields({**row, "link": "ship:1"}, ["link"])
    with pytest.raises(TranslationError, match=r"^field 'km': 'twelve' is not a valid integer"):
        tr.to_fields({**row, "km": "twelve"}, ["km"])
    with pytest.raises(TranslationError, match=r"^field 'day': '2025-13-01' is not a valid date"):
        tr.to_fields({**row, "day": "2025-13-01"}, ["day"])


def test_crm_link_values_use_the_shared_short_codes() -> None:
    codes = TypeCodes({"car": 1032})
    assert [codes.short(c) for c in ("deal", "company", "car", "dynamic_128")] == ["D", "CO", "T408", "T80"]
    assert codes.link_to_local("CO_5") == "company:5" and codes.link_to_local("T408_12") == "car:12"
    assert codes.link_to_local("T80_3") == "dynamic_128:3" and codes.link_to_local("") is None
    with pytest.raises(TranslationError, match=r"'X' is not a CRM type abbreviation \(C, CO, D, L, Q, SI"):
        codes.link_to_local("X_1")
    with pytest.raises(TranslationError, match="bad crm link value: 'D-1' is not a CRM link value"):
        codes.link_to_local("D-1")


def test_unknown_portal_ids_are_kept_not_lost() -> None:
    row = translator().to_row({**PORTAL_ITEM, "UF_CRM_9_KIND": 99, "UF_CRM_9_LINK": "T40c_1"})
    tr = translator()
    row = tr.to_row({**PORTAL_ITEM, "UF_CRM_9_KIND": 99, "UF_CRM_9_LINK": "T40c_1"})
    assert row["kind"] == "#99" and row["link"] == "work_order:1"
    assert tr.unknown_options == {"kind": {99}}


SCORE_IDS = {"1": 501, "2": 502, "3": 503, "4": 504, "5": 505}


def scored() -> ItemTranslator:
    """A process whose option codes are digits (like hr_candidates' `score`), plus a multiple field."""
    return ItemTranslator(
        ProcessMap(
            code="candidate",
            entity_type_id=1040,
            type_id=12,
            stages_enabled=False,
            fields=[
                FieldMap(code="score", type="enumeration", uf_name="UF_CRM_12_SCORE", options=SCORE_IDS),
                FieldMap(
                    code="langs",
                    type="enumeration",
                    multiple=True,
                    uf_name="UF_CRM_12_LANGS",
                    options={"en": 601, "de": 602, "9": 609},
                ),
            ],
        )
    )


def test_a_digit_in_an_enumeration_column_is_an_option_code_never_a_portal_option_id() -> None:
    tr = scored()
    assert tr.to_fields({"score": "2"}, ["score"]) == {"UF_CRM_12_SCORE": 502}
    assert tr.to_fields({"score": 2}, ["score"]) == {"UF_CRM_12_SCORE": 502}  # INTEGER affinity: code 2
    assert tr.to_fields({"score": None}, ["score"]) == {"UF_CRM_12_SCORE": ""}
    assert tr.to_fields({"score": ""}, ["score"]) == {"UF_CRM_12_SCORE": ""}
    for bad in ("9", 9, "502", "0", "2.0", " 2"):
        with pytest.raises(TranslationError) as err:
            tr.to_fields({"score": bad}, ["score"])
        assert str(err.value) == f"field 'score': unknown option {str(bad)!r}; allowed: 1, 2, 3, 4, 5"


def test_multiple_enumeration_values_are_codes_each_checked() -> None:
    tr = scored()
    assert tr.to_fields({"langs": '["en", "9"]'}, ["langs"]) == {"UF_CRM_12_LANGS": [601, 609]}
    assert tr.to_fields({"langs": "[9]"}, ["langs"]) == {"UF_CRM_12_LANGS": [609]}  # a JSON number: code 9
    assert tr.to_fields({"langs": None}, ["langs"]) == {"UF_CRM_12_LANGS": []}
    with pytest.raises(TranslationError, match=r"^field 'langs': unknown option '602'; allowed: en, de, 9$"):
        tr.to_fields({"langs": '["en", "602"]'}, ["langs"])
    with pytest.raises(TranslationError, match=r"^field 'langs': unknown option '601'"):
        tr.to_fields({"langs": "[601]"}, ["langs"])
    with pytest.raises(TranslationError, match=r"^field 'langs': expected a JSON array, got 'en'"):
        tr.to_fields({"langs": "en"}, ["langs"])


def test_pulled_option_ids_the_map_lacks_become_markers_that_are_never_sent() -> None:
    tr = scored()
    row = tr.to_row({"id": 1, "title": "a", "UF_CRM_12_SCORE": 777, "UF_CRM_12_LANGS": [601, 778, 609]})
    assert row["score"] == "#777" and json.loads(row["langs"]) == ["en", "#778", "9"]
    assert tr.unknown_options == {"score": {777}, "langs": {778}}
    with pytest.raises(TranslationError, match=r"^field 'score': '#777' is portal option id 777, .*: 1, 2"):
        tr.to_fields(row, ["score"])
    with pytest.raises(TranslationError, match="'#778' is portal option id 778"):
        tr.to_fields(row, ["langs"])
    known = tr.to_row({"id": 2, "UF_CRM_12_SCORE": 505, "UF_CRM_12_LANGS": []})
    assert known["score"] == "5" and known["langs"] is None


option_codes = st.from_regex(r"[a-z0-9][a-z0-9_]{0,5}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(option_codes, min_size=1, max_size=6, unique=True), st.data())
def test_option_codes_round_trip_and_nothing_else_is_sent(codes: list[str], data: Any) -> None:
    ids = {c: 1000 + n for n, c in enumerate(codes)}
    tr = ItemTranslator(
        ProcessMap(
            code="p",
            entity_type_id=1040,
            type_id=12,
            stages_enabled=False,
            fields=[FieldMap(code="pick", type="enumeration", uf_name="UF_CRM_12_PICK", options=ids)],
        )
    )
    code = data.draw(st.sampled_from(codes))
    sent = tr.to_fields({"pick": code}, ["pick"])["UF_CRM_12_PICK"]
    assert sent == ids[code] and tr.to_row({"id": 1, "UF_CRM_12_PICK": sent})["pick"] == code
    other = data.draw(st.one_of(st.text(min_size=1, max_size=6), st.integers(0, 2000)))
    if str(other) not in ids:
        with pytest.raises(TranslationError, match="^field 'pick': "):
            tr.to_fields({"pick": other}, ["pick"])


def test_scalar_helpers() -> None:
    assert split_money("100.50|RUB") == (100.5, "RUB") and split_money("") == (None, None)
    assert join_money(100.0, "RUB") == "100|RUB" and join_money(None, "RUB") == ""
    assert to_date_text("2025-04-28T21:00:00-03:00") == "2025-04-29"  # UTC midnight in a negative offset
    assert to_date_text("2025-04-29T00:00:00+03:00") == "2025-04-29"  # local midnight
    assert to_utc_text("2026-01-02T03:04:05+00:00") == "2026-01-02T03:04:05Z"


def test_changed_columns_ignore_representation() -> None:
    assert changed_columns({"a": "[1, 2]", "b": 1.0, "c": ""}, {"a": "[1,2]", "b": 1, "c": None}, "abc") == []
    assert changed_columns({"a": "[1]"}, {"a": "[2]"}, ["a"]) == ["a"]


def _portal_echo(fields: dict[str, Any]) -> dict[str, Any]:
    """What a portal in +03:00 returns for the values written (dates as midnight datetimes)."""
    out = dict(fields)
    if out.get("UF_CRM_9_DAY"):
        out["UF_CRM_9_DAY"] = out["UF_CRM_9_DAY"] + "T03:00:00+03:00"
    if out.get("UF_CRM_9_VISIT_AT"):
        out["UF_CRM_9_VISIT_AT"] = (
            datetime.fromisoformat(out["UF_CRM_9_VISIT_AT"]).astimezone(MSK).isoformat()
        )
    return out


rows = st.fixed_dictionaries(
    {
        "title": st.text(min_size=1, max_size=20),
        "note": st.one_of(st.none(), st.text(min_size=1, max_size=30)),
        "km": st.one_of(st.none(), st.integers(0, 10**9)),
        "rate": st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 4))),
        "ok": st.sampled_from([0, 1]),
        "day": st.one_of(st.none(), st.dates().map(lambda d: d.isoformat())),
        "visit_at": st.one_of(
            st.none(),
            st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)).map(
                lambda d: d.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
            ),
        ),
        "kind": st.one_of(st.none(), st.sampled_from(["to", "diag"])),
        "works": st.lists(st.sampled_from(["to", "tyres"]), unique=True).map(
            lambda v: json.dumps(v) if v else None
        ),
        "cost": st.one_of(st.none(), st.integers(0, 10**7).map(lambda c: c / 100)),
        "cost_currency": st.sampled_from(["RUB", "USD"]),
        "stage": st.sampled_from(["BOOKED", "WORK", "DONE", "REFUSED"]),
        "link": st.one_of(
            st.none(),
            st.tuples(st.sampled_from(["deal", "car", "company", "work_order"]), st.integers(1, 10**6)).map(
                lambda t: f"{t[0]}:{t[1]}"
            ),
        ),
        "parent_car": st.one_of(st.none(), st.integers(1, 10**6)),
    }
)


@settings(max_examples=60, deadline=None)
@given(rows)
def test_row_to_portal_and_back_round_trips(local: dict[str, Any]) -> None:
    tr = translator()
    local = {**local, "funnel": "main", "assigned_by_id": 1}
    if local["cost"] is None:
        local["cost_currency"] = None
    fields = _portal_echo(tr.to_fields(local))
    back = tr.to_row({"id": 1, **fields})
    cols = [c for c in tr.columns if c in local]
    assert changed_columns(back, local, cols) == []
