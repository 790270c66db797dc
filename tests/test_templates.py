"""Template model and loader: shipped scenarios, helpers, payloads and every-mistake validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.templates import (
    FIELD_TYPES,
    FLAG_NAMES,
    Problem,
    Template,
    TemplateError,
    load_template,
    load_templates,
    loads_template,
    preset_flags,
)

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"
SCENARIOS = ["car_service.toml", "work_order.toml", "hr_candidates.toml", "production.toml", "contracts.toml"]

HEAD = """
code = "thing"
title = { ru = "Штука", en = "Thing" }
"""
STAGED = HEAD + """
[flags]
isStagesEnabled = true
"""
FUNNEL = """
[[funnels]]
code = "main"
name = { ru = "Основная" }

[[funnels.stages]]
code = "NEW"
name = { ru = "Новая" }

[[funnels.stages]]
code = "WON"
name = { ru = "Успех" }
semantics = "success"

[[funnels.stages]]
code = "LOST"
name = { ru = "Провал" }
semantics = "failure"
"""


def problems_of(text: str, *others: str) -> list[Problem]:
    if not others:
        with pytest.raises(TemplateError) as info:
            loads_template(text, "t.toml")
        return info.value.problems
    raise AssertionError("use problems_together for several templates")


def problems_together(tmp_path: Path, **texts: str) -> list[Problem]:
    paths = []
    for name, text in texts.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    with pytest.raises(TemplateError) as info:
        load_templates(paths)
    return info.value.problems


def by_path(problems: list[Problem]) -> dict[str, str]:
    return {p.path: p.message for p in problems}


# --- shipped scenarios ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> dict[str, Template]:
    return {t.code: t for t in load_templates([MAPPINGS / name for name in SCENARIOS])}


def test_shipped_scenarios_validate_together(shipped: dict[str, Template]) -> None:
    assert set(shipped) == {"car", "work_order", "candidate", "production_order", "contract"}
    assert shipped["car"].title["ru"] == "Автомобиль"
    assert shipped["work_order"].title["ru"] == "Заказ-наряд"
    assert shipped["candidate"].title["ru"] == "Кандидаты"


def test_shipped_scenarios_use_every_field_type(shipped: dict[str, Template]) -> None:
    used = {f.type for t in shipped.values() for f in t.fields}
    assert used == set(FIELD_TYPES)


def test_shipped_scenarios_have_cards_and_access(shipped: dict[str, Template]) -> None:
    for t in shipped.values():
        assert t.card_sections, t.code
        assert t.access, t.code
        assert all("role «" in line for line in t.access_checklist())


def test_scenario_relations(shipped: dict[str, Template]) -> None:
    assert [r.target for r in shipped["work_order"].relations.parents] == ["car", "deal"]
    assert [r.target for r in shipped["production_order"].relations.parents] == ["deal"]
    assert shipped["contract"].flags["isClientEnabled"] and shipped["contract"].flags["isMycompanyEnabled"]
    assert [f.code for f in shipped["candidate"].funnels] == ["hiring", "reserve"]


def test_work_order_alone_names_the_missing_parent() -> None:
    with pytest.raises(TemplateError) as info:
        load_templates([MAPPINGS / "work_order.toml"])
    [problem] = info.value.problems
    assert problem.path == "relations.parents[0]"
    assert "unknown process 'car'" in problem.message and "pass its template file" in problem.message


def test_directory_expands_to_all_templates() -> None:
    codes = {t.code for t in load_templates([MAPPINGS])}
    assert {"car", "work_order", "candidate", "production_order", "contract"} <= codes


# --- helpers for the deploy engine ----------------------------------------------------------------


def test_funnel_helpers(shipped: dict[str, Template]) -> None:
    hr = shipped["candidate"]
    assert hr.default_funnel is not None and hr.default_funnel.code == "hiring"
    hiring = hr.funnel("hiring")
    assert hiring.success_stage.code == "HIRED"
    assert hiring.first_process_stage.code == "NEW"
    assert hiring.first_failure_stage.code == "REJECTED"
    assert hiring.system_stage_map() == {"NEW": "NEW", "SUCCESS": "HIRED", "FAIL": "REJECTED"}
    assert [s.sort for s in hiring.stages] == sorted(s.sort for s in hiring.stages)
    assert hiring.stage("DECLINED").color == "#FF5752"
    assert hiring.stage("HIRED").color == "#00FF00"  # default colour by semantics
    assert hiring.stage("HIRED").semantics_code == "S"
    with pytest.raises(KeyError, match="no stage 'NOPE'"):
        hiring.stage("NOPE")


def test_field_lookup(shipped: dict[str, Template]) -> None:
    hr = shipped["candidate"]
    f = hr.field("candidate_source")
    assert f.uf_suffix == "CANDIDATE_SOURCE"
    assert [o.code for o in f.options][:2] == ["hh", "superjob"]
    with pytest.raises(KeyError, match="no field 'nope'"):
        hr.field("nope")


def test_crm_link_settings_name_their_targets(shipped: dict[str, Template]) -> None:
    field = shipped["contract"].field("related_orders")
    assert field.settings({"production_order": 1036}.__getitem__) == {"DEAL": "Y", "DYNAMIC_1036": "Y"}
    assert shipped["production_order"].field("supplier").settings() == {"COMPANY": "Y"}
    with pytest.raises(ValueError, match="resolver"):
        field.settings()


# --- presets and flags ----------------------------------------------------------------------------


def test_presets_and_overrides() -> None:
    assert preset_flags("scratch")["isSetOpenPermissions"] is True
    assert not any(v for k, v in preset_flags("scratch").items() if k != "isSetOpenPermissions")
    assert preset_flags("all-inclusive")["isAutomationEnabled"] is True
    t = loads_template(HEAD + 'preset = "all-inclusive"\n[flags]\nisCategoriesEnabled = false\n' + FUNNEL)
    assert t.flags["isCategoriesEnabled"] is False and t.flags["isClientEnabled"] is True
    assert set(t.flags) == set(FLAG_NAMES)


def test_list_preset_rejects_funnels_and_stage_flags() -> None:
    plain = loads_template(HEAD + 'preset = "list"\n')
    assert plain.flags["isStagesEnabled"] is False and plain.flags["isCategoriesEnabled"] is False
    assert plain.default_funnel is None
    found = by_path(problems_of(HEAD + 'preset = "list"\n[flags]\nisStagesEnabled = true\n' + FUNNEL))
    assert "has no funnels" in found["funnels"]
    assert "no stages or funnels" in found["flags.isStagesEnabled"]


def test_integrations_imply_use_in_userfields() -> None:
    t = loads_template(HEAD + "[integrations]\ntasks = true\n")
    assert t.flags["isUseInUserfieldEnabled"] is True
    assert t.linked_user_fields["TASKS_TASK_TEMPLATE|UF_CRM_TASK"] is True
    text = HEAD + "[flags]\nisUseInUserfieldEnabled = false\n[integrations]\ncalendar = true\n"
    found = by_path(problems_of(text))
    assert "contradicts" in found["flags.isUseInUserfieldEnabled"]


# --- validation: every mistake at once ------------------------------------------------------------

BAD = """
code = "Bad Code"
title = { ru = "Плохой" }
preset = "everything"
colour = "red"

[flags]
isStagesEnabled = true
isCategoriesEnabled = true
isMagicEnabled = true

[relations]
parents = ["unicorn!"]

[[fields]]
code = "amount"
type = "strng"
label = { ru = "Сумма" }

[[fields]]
code = "kind"
type = "enumeration"
label = { ru = "Вид" }

[[fields]]
code = "kind"
type = "string"
label = { ru = "Вид 2" }

[[fields]]
code = "this_code_is_far_too_long_for_bitrix_fields"
type = "integer"
label = { ru = "Длинное" }

[[funnels]]
code = "main"
name = { ru = "Основная" }
default = true

[[funnels.stages]]
code = "NEW"
name = { ru = "Новая" }

[[funnels.stages]]
code = "WON"
name = { ru = "Успех" }
semantics = "success"

[[funnels.stages]]
code = "ALSO_WON"
name = { ru = "Тоже успех" }
semantics = "success"
color = "green"

[[funnels]]
code = "second"
name = { ru = "Вторая" }
default = true

[[funnels.stages]]
code = "A_STAGE_CODE_THAT_IS_TOO_LONG"
name = { ru = "Длинная" }

[[funnels.stages]]
code = "WON"
name = { ru = "Успех" }
semantics = "success"

[[funnels.stages]]
code = "LOST"
name = { ru = "Провал" }
semantics = "failure"

[[card_sections]]
code = "main"
title = { ru = "Главное" }
fields = ["kind", "ghost"]
"""


def test_bad_template_reports_every_mistake() -> None:
    problems = problems_of(BAD)
    found = by_path(problems)
    assert all(p.file == "t.toml" for p in problems)
    assert "process codes match" in found["code"]
    assert "allowed: scratch, all-inclusive, list" in found["preset"]
    assert "unknown key 'colour'" in found["colour"] and "card_sections" in found["colour"]
    assert "isCategoriesEnabled" in found["flags.isMagicEnabled"]
    assert "unknown relation target" in found["relations.parents[0]"]
    assert "allowed: string, integer" in found["fields[0].type"]
    assert "needs at least one option" in found["fields[1].options"]
    assert "duplicate field code 'kind'" in found["fields[2].code"]
    assert "50-char" in found["fields[3].code"]
    funnel0 = [p.message for p in problems if p.path == "funnels[0].stages"]
    assert any("exactly one success stage (found 2: stages[1], stages[2])" in m for m in funnel0)
    assert any("at least one stage with semantics = \"failure\"" in m for m in funnel0)
    assert "#RRGGBB" in found["funnels[0].stages[2].color"]
    assert "at most 20" in found["funnels[1].stages[0].code"]
    assert "exactly one funnel must have default = true (found 2" in found["funnels"]
    assert "unknown field 'ghost'" in found["card_sections[0].fields[1]"]
    assert "kind" in found["card_sections[0].fields[1]"]  # lists what is allowed
    assert len(problems) >= 15


def test_error_text_lists_every_problem() -> None:
    with pytest.raises(TemplateError) as info:
        loads_template(BAD, "t.toml")
    text = str(info.value)
    assert text.count("t.toml: ") == len(info.value.problems)


def test_toml_syntax_error_has_line_and_column() -> None:
    [problem] = problems_of('code = "x"\ntitle = { ru = "X" \n')
    assert "TOML syntax error" in problem.message and "line 2" in problem.message
    assert "column" in problem.message


def test_unknown_key_in_nested_table_lists_allowed_keys() -> None:
    found = by_path(problems_of(STAGED + FUNNEL + 'shade = "x"\n'))
    allowed = "allowed keys: code, name, semantics, color, sort, renamed_from"
    assert allowed in found["funnels[0].stages[2].shade"]


def test_wrong_value_types_are_named() -> None:
    field = '[[fields]]\ncode = "n"\ntype = "integer"\nlabel = { ru = "N" }\n'
    text = HEAD + field + 'required = "yes"\nsort = "1"\n'
    found = by_path(problems_of(text))
    assert "expected true or false" in found["fields[0].required"]
    assert "expected an integer" in found["fields[0].sort"]


def test_stage_order_rules() -> None:
    text = STAGED + FUNNEL.replace('semantics = "failure"', 'semantics = "failure"\nsort = 5')
    found = by_path(problems_of(text))
    assert "after the success stage" in found["funnels[0].stages[2].sort"]


def test_funnels_need_stages_flag_and_categories() -> None:
    found = by_path(problems_of(HEAD + FUNNEL))
    assert "isStagesEnabled" in found["funnels"]
    two = STAGED + FUNNEL + FUNNEL.replace('code = "main"', 'code = "extra"')
    messages = [p.message for p in problems_of(two)]
    assert any("isCategoriesEnabled" in m for m in messages)
    assert any("exactly one funnel must have default" in m for m in messages)


def test_stages_flag_without_funnels() -> None:
    found = by_path(problems_of(STAGED))
    assert "declare at least one [[funnels]]" in found["funnels"]


def test_field_kind_rules() -> None:
    text = HEAD + """
[[fields]]
code = "link"
type = "crm"
label = { ru = "Связь" }

[[fields]]
code = "flag"
type = "boolean"
multiple = true
label = { ru = "Флаг" }
options = [{ code = "x", label = { ru = "X" } }]

[[fields]]
code = "title"
type = "string"
label = { ru = "Название" }
"""
    found = by_path(problems_of(text))
    assert "needs targets" in found["fields[0].targets"]
    assert "cannot be multiple" in found["fields[1].multiple"]
    assert "only for type 'enumeration'" in found["fields[1].options"]
    assert "reserved" in found["fields[2].code"]


def test_client_parent_is_redundant() -> None:
    text = HEAD + '[flags]\nisClientEnabled = true\n[relations]\nparents = ["contact"]\n'
    assert "client field" in by_path(problems_of(text))["relations.parents[0]"]


def test_card_standard_field_needs_its_flag() -> None:
    text = HEAD + '[[card_sections]]\ncode = "s"\ntitle = { ru = "С" }\nfields = ["opportunity"]\n'
    assert "isLinkWithProductsEnabled" in by_path(problems_of(text))["card_sections[0].fields[0]"]


def test_access_rules_are_checked() -> None:
    text = HEAD + '[[access]]\nrole = "Менеджер"\npermissions = { read = "everything", fly = "all" }\n'
    found = by_path(problems_of(text))
    assert "allowed: none, own" in found["access[0].permissions.read"]
    assert "unknown action 'fly'" in found["access[0].permissions.fly"]


def test_cross_template_checks(tmp_path: Path) -> None:
    a = HEAD.replace('"thing"', '"alpha"') + '[relations]\nchildren = ["beta", "gamma"]\n' + (
        '[[fields]]\ncode = "link"\ntype = "crm"\ntargets = ["beta"]\nlabel = { ru = "L" }\n'
    )
    b = HEAD.replace('"thing"', '"beta"')
    c = HEAD.replace('"thing"', '"beta"')
    found = problems_together(tmp_path, a=a, b=b, c=c)
    messages = {(Path(p.file).name, p.path): p.message for p in found}
    assert "also used by" in messages[("c.toml", "code")]
    assert "unknown process 'gamma'" in messages[("a.toml", "relations.children[1]")]
    assert "use_in_crm_links" in messages[("a.toml", "fields[0].targets[0]")]


def test_load_template_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as info:
        load_template(tmp_path / "nope.toml")
    assert "cannot read" in info.value.problems[0].message


def test_problem_json_shape() -> None:
    problem = problems_of(HEAD + "bogus = 1\n")[0]
    assert json.loads(json.dumps(problem.to_dict())) == {
        "file": "t.toml",
        "path": "bogus",
        "message": problem.message,
    }


def test_docs_complete_example_loads() -> None:
    doc = (MAPPINGS.parent / "docs" / "templates.md").read_text(encoding="utf-8")
    example = doc.split("## Complete example")[1].split("```toml")[1].split("```")[0]
    t = loads_template(example, "docs/templates.md")
    assert t.code == "repair_request"
    assert t.default_funnel is not None and t.default_funnel.success_stage.code == "DONE"
