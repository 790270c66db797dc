"""Naming rules (connector/crm/naming.py): UF names, stage and directory ids, Y/N, short codes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.crm import naming as n

# --- user fields -------------------------------------------------------------------------------


def test_uf_name_and_budget() -> None:
    # server-behaviour.md §5: FIELD_NAME is at most 50 chars of [0-9A-Z_], UF_CRM_{typeId}_ first.
    assert n.uf_name(7, "candidate_source") == "UF_CRM_7_CANDIDATE_SOURCE"
    longest = "a" * n.UF_CODE_MAX
    assert len(n.uf_name(99999, longest)) == 50
    with pytest.raises(ValueError, match="at most 50"):
        n.uf_name(99999, longest + "b")
    with pytest.raises(ValueError, match="type id"):
        n.uf_name(0, "x")
    with pytest.raises(ValueError, match="A-Z"):
        n.uf_name(7, "bad-code")


def test_uf_suffix_and_field_owner() -> None:
    assert n.uf_suffix("UF_CRM_7_CANDIDATE_SOURCE") == "CANDIDATE_SOURCE"
    assert n.uf_suffix("UF_CRM_7_1700000000000") == "1700000000000"
    with pytest.raises(ValueError, match="UF_CRM_<typeId>_<CODE>"):
        n.uf_suffix("UF_CRM_CLIENT")
    assert n.field_entity_id(7) == "CRM_7"


_code = st.from_regex(r"[a-z][a-z0-9_]{0,36}", fullmatch=True)


@settings(max_examples=150)
@given(st.integers(1, 99999), _code)
def test_uf_suffix_inverts_uf_name(type_id: int, code: str) -> None:
    assert n.uf_suffix(n.uf_name(type_id, code)) == code.upper()


# --- stages ----------------------------------------------------------------------------------------


def test_stage_ids() -> None:
    assert n.stage_id(1032, 5, "NEW") == "DT1032_5:NEW"
    assert n.stage_entity_id(177, 87) == "DYNAMIC_177_STAGE_87"
    with pytest.raises(ValueError, match="without ':'"):
        n.stage_id(1032, 5, "A:B")
    with pytest.raises(ValueError, match="non-empty"):
        n.stage_id(1032, 5, "")


# --- Y/N -------------------------------------------------------------------------------------------


def test_yn() -> None:
    assert (n.yn(True), n.yn(False)) == ("Y", "N")
    with pytest.raises(ValueError, match="bool"):
        n.yn(1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # server-behaviour.md §3 "Defaults": flags and linkedUserFields come back as "Y"/"N".
        ("Y", True), ("N", False), ("y", True), (" n ", False), (True, True), (False, False),
        # relations are written "true"/"false"; an absent value reads as "N".
        ("true", True), ("false", False), ("1", True), ("0", False), (1, True), (0, False),
        (None, False), ("", False),
    ],
)
def test_from_yn_reads_portal_flags(value: object, expected: bool) -> None:
    assert n.from_yn(value) is expected


def test_from_yn_refuses_anything_else() -> None:
    with pytest.raises(ValueError, match="'Y' or 'N'"):
        n.from_yn("maybe")


@given(st.booleans())
def test_yn_round_trip(value: bool) -> None:
    assert n.from_yn(n.yn(value)) is value


# --- short codes -----------------------------------------------------------------------------------


def test_short_codes() -> None:
    assert n.short_code(128) == "T80"
    assert n.short_code(1032) == "T408"
    assert n.short_code(2) == "D" and n.short_code(4) == "CO"
    assert n.parse_crm_link("T80_3") == (128, 3)
    assert n.parse_crm_link("CO_5") == (4, 5)
    with pytest.raises(ValueError, match="abbreviation"):
        n.parse_short_code("X")
    with pytest.raises(ValueError, match="CRM link"):
        n.parse_crm_link("D7")


@settings(max_examples=150)
@given(st.integers(1, 10**7), st.integers(1, 10**9))
def test_crm_link_round_trip(etid: int, item_id: int) -> None:
    assert n.parse_crm_link(f"{n.short_code(etid)}_{item_id}") == (etid, item_id)
