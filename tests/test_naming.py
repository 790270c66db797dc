"""Naming rules: UF names and camelCase per server-behaviour.md, stage ids, Y/N, short codes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.crm import naming as n

# --- fixed examples from server-behaviour.md "Field-name casing" --------------------------------


@pytest.mark.parametrize(
    ("upper", "camel"),
    [
        ("UF_CRM_5_1700000000000", "ufCrm5_1700000000000"),
        ("UF_CRM_5_MY_FIELD", "ufCrm5MyField"),
        ("UF_CRM_CLIENT_INDUSTRY", "ufCrmClientIndustry"),
        ("UF_CRM_1721244707107", "ufCrm_1721244707107"),
        ("UF_CRM_5_FIELD1", "ufCrm_5_FIELD1"),
        ("UF_CRM_10_DIGIT10", "ufCrm_10_DIGIT10"),
        ("UF_CRM_7_F1", "ufCrm_7_F1"),
        ("UF_CRM_7_MY_FIELD", "ufCrm7MyField"),
        ("ASSIGNED_BY_ID", "assignedById"),
        ("PARENT_ID_1220", "parentId1220"),
    ],
)
def test_uf_camel_matches_server(upper: str, camel: str) -> None:
    assert n.uf_camel(upper) == camel


@pytest.mark.parametrize(
    ("camel", "upper"),
    [
        ("ufCrm5_1700000000000", "UF_CRM_5_1700000000000"),
        ("ufCrm5MyField", "UF_CRM_5_MY_FIELD"),
        (">=createdTime", ">=CREATED_TIME"),
        ("ufCrm_5_FIELD1", "UF_CRM_5_FIELD1"),
        ("parentId1220", "PARENT_ID_1220"),
        ("STAGE_ID", "STAGE_ID"),
        ("!@ufCrm7Vin", "!@UF_CRM_7_VIN"),
    ],
)
def test_camel_to_upper(camel: str, upper: str) -> None:
    assert n.camel_to_upper(camel) == upper


def test_single_letter_words_are_lossy_like_the_server() -> None:
    assert n.uf_camel("UF_CRM_1_A_B") == "ufCrm1AB"
    assert n.camel_to_upper("ufCrm1AB") == "UF_CRM_1_AB"


def test_uf_name_and_budget() -> None:
    assert n.uf_name(7, "candidate_source") == "UF_CRM_7_CANDIDATE_SOURCE"
    assert n.uf_suffix("UF_CRM_7_CANDIDATE_SOURCE") == "CANDIDATE_SOURCE"
    longest = "a" * n.UF_CODE_MAX
    assert len(n.uf_name(99999, longest)) == 50
    with pytest.raises(ValueError, match="at most 50"):
        n.uf_name(99999, longest + "b")
    with pytest.raises(ValueError, match="type id"):
        n.uf_name(0, "x")
    with pytest.raises(ValueError, match="A-Z"):
        n.uf_name(7, "bad-code")


# Words of one letter are lossy on the server too (UF_CRM_1_A_B -> ufCrm1AB -> UF_CRM_1_AB).
_word = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=8)
_digits = st.text(alphabet="0123456789", min_size=1, max_size=13).filter(lambda s: s[0] != "0")
_type_id = st.integers(min_value=1, max_value=9999)


@settings(max_examples=150)
@given(_type_id, st.lists(_word, min_size=1, max_size=4))
def test_letter_suffix_round_trip(type_id: int, words: list[str]) -> None:
    upper = f"UF_CRM_{type_id}_{'_'.join(words)}"
    camel = n.uf_camel(upper)
    assert "_" not in camel
    assert n.camel_to_upper(camel) == upper


@settings(max_examples=150)
@given(_type_id, st.lists(_digits, min_size=1, max_size=3))
def test_digit_suffix_round_trip(type_id: int, parts: list[str]) -> None:
    upper = f"UF_CRM_{type_id}_{'_'.join(parts)}"
    camel = n.uf_camel(upper)
    assert camel.startswith(f"ufCrm{type_id}_")
    assert n.camel_to_upper(camel) == upper


@settings(max_examples=150)
@given(st.integers(min_value=1, max_value=99999), _word, _digits)
def test_special_form_round_trip(type_id: int, word: str, digits: str) -> None:
    upper = f"UF_CRM_{type_id}_{word}{digits}"  # letters then digits: not a generic name
    camel = n.uf_camel(upper)
    assert camel == f"ufCrm_{type_id}_{word}{digits}"
    assert n.camel_to_upper(camel) == upper


# --- stages ----------------------------------------------------------------------------------------


def test_stage_ids() -> None:
    assert n.stage_id(1032, 5, "NEW") == "DT1032_5:NEW"
    assert n.parse_stage_id("DT1032_5:NEW") == (1032, 5, "NEW")
    assert n.stage_code("DT177_87:MY_STAGE") == "MY_STAGE"
    assert n.stage_entity_id(177, 87) == "DYNAMIC_177_STAGE_87"
    assert n.parse_stage_entity_id("DYNAMIC_177_STAGE_87") == (177, 87)
    with pytest.raises(ValueError, match="DT<entityTypeId>"):
        n.stage_code("C5:NEW")
    with pytest.raises(ValueError, match="DYNAMIC_"):
        n.parse_stage_entity_id("DEAL_STAGE")


@settings(max_examples=100)
@given(st.integers(1, 10**7), st.integers(0, 10**6), st.from_regex(r"[A-Z][A-Z0-9_]{0,19}", fullmatch=True))
def test_stage_id_round_trip(etid: int, cat: int, code: str) -> None:
    assert n.parse_stage_id(n.stage_id(etid, cat, code)) == (etid, cat, code)


# --- Y/N -------------------------------------------------------------------------------------------


def test_yn() -> None:
    assert (n.yn(True), n.yn(False)) == ("Y", "N")
    assert n.from_yn("Y") is True and n.from_yn("N") is False and n.from_yn(True) is True
    with pytest.raises(ValueError, match="'Y' or 'N'"):
        n.from_yn("true")
    with pytest.raises(ValueError, match="bool"):
        n.yn(1)  # type: ignore[arg-type]


# --- short codes -----------------------------------------------------------------------------------


def test_short_codes() -> None:
    assert n.short_code(128) == "T80"
    assert n.short_code(1032) == "T408"
    assert n.short_code(2) == "D" and n.short_code(4) == "CO"
    assert n.parse_crm_link("T80_3") == (128, 3)
    assert n.parse_crm_link("CO_5") == (4, 5)
    assert n.crm_link(1038, 12) == "T40e_12"
    with pytest.raises(ValueError, match="abbreviation"):
        n.parse_short_code("X")
    with pytest.raises(ValueError, match="CRM link"):
        n.parse_crm_link("D7")


@settings(max_examples=150)
@given(st.integers(1, 10**7), st.integers(1, 10**9))
def test_crm_link_round_trip(etid: int, item_id: int) -> None:
    assert n.parse_crm_link(n.crm_link(etid, item_id)) == (etid, item_id)
