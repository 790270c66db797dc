"""to_toml round trip over generated templates (hypothesis) and over the shipped scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.templates import load_templates, loads_template, parse_template, to_toml
from connector.templates.model import ACCESS_ACTIONS, ACCESS_LEVELS, FIELD_TYPES

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"
NEUTRAL_FLAGS = [
    "isBeginCloseDatesEnabled",
    "isLinkWithProductsEnabled",
    "isMycompanyEnabled",
    "isDocumentsEnabled",
    "isSourceEnabled",
    "isObserversEnabled",
    "isRecyclebinEnabled",
    "isAutomationEnabled",
    "isBizProcEnabled",
    "isSetOpenPermissions",
]

texts = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() != "")
labels = st.dictionaries(st.sampled_from(["ru", "en", "de"]), texts, min_size=1, max_size=3)
field_codes = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda c: (
        c not in {"key", "id", "title", "funnel", "stage", "deleted", "source", "client", "products"}
        and not c.startswith("parent_")
    )
)
stage_codes = st.from_regex(r"[A-Z][A-Z0-9_]{0,9}", fullmatch=True)
colors = st.from_regex(r"#[0-9a-fA-F]{6}", fullmatch=True)


def numbered(label: dict[str, str], n: int) -> dict[str, str]:
    """Names in one list must differ after case folding (templates/checks.py `check_names`)."""
    return {lang: f"{text} #{n}" for lang, text in label.items()}


@st.composite
def fields(draw: st.DrawFn) -> dict[str, Any]:
    ftype = draw(st.sampled_from(FIELD_TYPES))
    field: dict[str, Any] = {"code": "", "type": ftype, "label": draw(labels)}
    if draw(st.booleans()):
        field["help"] = draw(labels)
    for key in ("required", "show_in_filter", "show_in_list"):
        if draw(st.booleans()):
            field[key] = draw(st.booleans())
    if ftype != "boolean" and draw(st.booleans()):
        field["multiple"] = draw(st.booleans())
    if draw(st.booleans()):
        field["sort"] = draw(st.integers(0, 10_000))
    if ftype == "string" and draw(st.booleans()):
        field["multiline"] = True
    if ftype == "enumeration":
        codes = draw(
            st.lists(
                st.from_regex(r"[a-z0-9][a-z0-9_]{0,8}", fullmatch=True), min_size=1, max_size=4, unique=True
            )
        )
        field["options"] = [{"code": c, "label": numbered(draw(labels), n)} for n, c in enumerate(codes)]
    if ftype == "crm":
        field["targets"] = draw(
            st.lists(
                st.sampled_from(["deal", "contact", "company", "lead", "invoice"]),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
    return field


@st.composite
def funnels(draw: st.DrawFn, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        semantics = (
            ["process"] * draw(st.integers(1, 3)) + ["success"] + ["failure"] * draw(st.integers(1, 2))
        )
        codes = draw(st.lists(stage_codes, min_size=len(semantics), max_size=len(semantics), unique=True))
        stages = []
        for n, (code, sem) in enumerate(zip(codes, semantics, strict=True)):
            stage: dict[str, Any] = {"code": code, "name": numbered(draw(labels), n)}
            if sem != "process" or draw(st.booleans()):
                stage["semantics"] = sem
            if draw(st.booleans()):
                stage["color"] = draw(colors)
            stages.append(stage)
        name = numbered(draw(labels), i)
        out.append({"code": f"funnel_{i}", "name": name, "default": i == 0, "stages": stages})
    return out


@st.composite
def templates(draw: st.DrawFn) -> dict[str, Any]:
    field_list = draw(st.lists(fields(), max_size=6))
    codes = draw(st.lists(field_codes, min_size=len(field_list), max_size=len(field_list), unique=True))
    for n, (field, code) in enumerate(zip(field_list, codes, strict=True)):
        field["code"] = code
        field["label"] = numbered(field["label"], n)
    n_funnels = draw(st.integers(0, 2))
    preset = draw(st.sampled_from(["scratch", "all-inclusive"] if n_funnels else ["scratch", "list"]))
    flags = {
        name: draw(st.booleans()) for name in draw(st.lists(st.sampled_from(NEUTRAL_FLAGS), unique=True))
    }
    flags["isStagesEnabled"] = n_funnels > 0
    flags["isCategoriesEnabled"] = n_funnels > 1
    flags["isClientEnabled"] = False
    card_fields = draw(st.lists(st.sampled_from(codes), unique=True)) if codes else []
    data: dict[str, Any] = {
        "code": draw(st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)),
        "title": draw(labels),
        "language": draw(st.sampled_from(["ru", "en"])),
        "preset": preset,
        "flags": flags,
        "integrations": {"tasks": draw(st.booleans()), "calendar": draw(st.booleans())},
        "relations": {
            "parents": [
                {"target": t, "children_list": draw(st.booleans())}
                for t in draw(st.lists(st.sampled_from(["deal", "lead", "quote"]), unique=True))
            ],
            "children": draw(st.lists(st.sampled_from(["invoice", "deal"]), unique=True)),
        },
        "fields": field_list,
        "funnels": draw(funnels(n_funnels)),
        "card_sections": [{"code": "main", "title": draw(labels), "fields": ["title", *card_fields]}],
        "access": [
            {
                "role": role,
                "permissions": draw(
                    st.dictionaries(st.sampled_from(ACCESS_ACTIONS), st.sampled_from(ACCESS_LEVELS))
                ),
            }
            for role in draw(st.lists(texts, max_size=2, unique=True))
        ],
    }
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(templates())
def test_to_toml_round_trips_generated_templates(data: dict[str, Any]) -> None:
    template = parse_template(data, "generated")
    text = to_toml(template)
    again = loads_template(text, "written")
    assert again == template
    assert to_toml(again) == text


def test_shipped_scenarios_round_trip() -> None:
    for template in load_templates([MAPPINGS]):
        assert loads_template(to_toml(template)) == template


def test_written_toml_is_minimal_for_flags() -> None:
    template = loads_template('code = "x"\ntitle = { ru = "X" }\npreset = "list"\n')
    text = to_toml(template)
    assert "[flags]" not in text
    assert 'preset = "list"' in text
