"""PHP's is_numeric and (int) in the emulator: what Python's float() reads besides is not a number.

PHP's is_numeric takes decimal text (sign, digits, point, exponent; trailing whitespace in PHP 8) and
refuses `nan`, `inf`, `1_000` and non-ASCII digits, all of which Python's float() reads. PHP's (int)
of NaN or an infinity is 0 (the PHP manual, "Converting to integer": "NaN and Infinity will always be
zero"). server-behaviour.md §1 is silent on these texts; before, `{">id": "inf"}` crashed the emulator
(an HTTP 500 that no portal gives). Leading whitespace stays refused, as before.
"""

from __future__ import annotations

import pytest

from connector.emulator import Emulator
from connector.emulator.params import is_numeric, php_int


@pytest.mark.parametrize("text", ["5", "-5", "+5", "5.", ".5", "5.5", "1e3", "1E-3", "5 ", "5\t", "1e999"])
def test_numeric_texts(text: str) -> None:
    assert is_numeric(text)


@pytest.mark.parametrize("text", ["", " ", " 5", "nan", "NaN", "inf", "-inf", "Infinity", "1_000", "0x10",
                                  "١٢", "5e", "e5", ".", "--5", "5..5", "５"])
def test_texts_php_does_not_take_for_numbers(text: str) -> None:
    assert not is_numeric(text)


@pytest.mark.parametrize(("value", "expected"), [("5.9", 5), ("-5.9", -5), (7, 7), (2.5, 2), ("1e999", 0),
                                                 ("-1e999", 0), (float("nan"), 0), (float("inf"), 0)])
def test_int_cast_truncates_and_makes_infinities_zero(value: object, expected: int) -> None:
    assert php_int(value) == expected  # type: ignore[arg-type]


def test_an_id_filter_with_an_infinite_or_odd_number_answers_instead_of_crashing() -> None:
    emu = Emulator(limits="off")
    etid = emu.call("crm.type.add", {"fields": {"title": "T"}})["result"]["type"]["entityTypeId"]
    for n in range(3):
        emu.call("crm.item.add", {"entityTypeId": etid, "fields": {"title": f"i{n}"}})

    def ids(value: str) -> list[int]:
        answer = emu.call("crm.item.list", {"entityTypeId": etid, "filter": {">id": value}})
        assert "error" not in answer, answer
        return [item["id"] for item in answer["result"]["items"]]

    assert ids("1e999") == ids("0") == [1, 2, 3]  # (int) of the infinity is 0
    assert ids("inf") == ids("nan") == ids("1_0") == []  # text: compared as text, nothing matches


def test_a_number_past_the_double_range_is_stored_as_no_value_and_refused_in_a_product_row() -> None:
    """PHP makes `1e999` INF, which Json::encode cannot write (server-behaviour.md §7 names the encoder; the
    notes are silent on such values): stored as empty, like other text that is no number; a product row,
    which refuses text that is no number, refuses it too."""
    from support.php_json import php_json

    from connector.emulator.server import encode_json

    emu = Emulator(limits="off")
    created = emu.call("crm.type.add", {"fields": {"title": "T"}})["result"]["type"]
    tid = created["id"]
    field = {"entityId": f"CRM_{tid}", "fieldName": f"UF_CRM_{tid}_X", "userTypeId": "double"}
    emu.call("userfieldconfig.add", {"moduleId": "crm", "field": field})
    uf = f"ufCrm{tid}X"
    fields = {"title": "a", uf: "1e999"}
    answer = emu.call("crm.item.add", {"entityTypeId": created["entityTypeId"], "fields": fields})
    assert answer["result"]["item"][uf] is None
    assert encode_json(answer) == php_json(answer)  # no infinity for the two encoders to write differently
    deal = emu.call("crm.item.add", {"entityTypeId": 2, "fields": {"title": "D"}})["result"]["item"]
    refused = emu.call("crm.item.productrow.add", {"fields": {
        "ownerType": "D", "ownerId": deal["id"], "productName": "x", "price": "1e999"}})
    assert refused.get("error") == "INVALID_ARG_VALUE", refused
    assert "price" in refused["error_description"]
