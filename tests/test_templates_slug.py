"""Codes from names (used by adopt): transliteration, shape, uniqueness."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.templates.slug import slug, transliterate, unique_code


def test_russian_names_become_readable_codes() -> None:
    assert slug("Кадровый резерв") == "kadrovyy_rezerv"
    assert slug("Заказ-наряд") == "zakaz_naryad"
    assert slug("Щётка №5") == "shchetka_no5"
    assert slug("Объект (ЖК «Юг»)") == "obekt_zhk_yug"
    assert slug("Résumé link") == "resume_link"
    assert slug("2024 отчёт") == "otchet"
    assert slug("!!!") == "" and slug("") == ""
    assert transliterate("Хлеб") == "khleb"


def test_unique_code_suffixes_and_falls_back() -> None:
    taken: set[str] = {"main"}
    assert unique_code("main", taken, "x") == "main_2"
    assert unique_code("", taken, "funnel_1") == "funnel_1"
    assert unique_code("a" * 40, {"a" * 40}, "x") == "a" * 38 + "_2"
    assert taken == {"main", "main_2", "funnel_1"}


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60), st.integers(min_value=5, max_value=50))
def test_slug_is_always_a_valid_lower_code(text: str, max_len: int) -> None:
    code = slug(text, max_len)
    assert code == "" or re.fullmatch(r"[a-z][a-z0-9_]*", code)
    assert len(code) <= max_len and not code.endswith("_")
