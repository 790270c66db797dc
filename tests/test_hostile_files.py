"""Files we did not write (issue 14): hostile template and job files are refused before anything is
written, with every problem named; no code reaches SQL or a file path unquoted."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from connector.api import Portal
from connector.scheduler import JobConfigError, load_job, load_jobs
from connector.store.errors import StoreError
from connector.store.process import check_code
from connector.store.sqltext import COLUMN_NAME, PROCESS_CODE, ident
from connector.templates import TemplateError, load_templates, loads_template
from connector.templates.limits import MAX_FIELDS, MAX_TEMPLATE_BYTES
from connector.templates.model import FIELD_CODE_RE, OPTION_CODE_RE, PROCESS_CODE_RE, STAGE_CODE_RE

GOOD = """\
code = "car"
title = { ru = "Автомобиль" }

[[fields]]
code = "vin"
type = "string"
label = { ru = "VIN" }

[[fields]]
code = "plate"
type = "string"
label = { ru = "Госномер" }
"""
HOSTILE_CODES = ['x"; DROP TABLE car; --', "../../etc", "cаr", "car\n", "car ", "Car", "c/ar", "car;", "",
                 "ｃar"]


def problems(text: str) -> list[str]:
    with pytest.raises(TemplateError) as info:
        loads_template(text, "hostile.toml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("code", HOSTILE_CODES)
def test_a_process_code_that_is_sql_a_path_or_a_look_alike_is_refused(code):
    text = GOOD.replace('code = "car"', f"code = {json.dumps(code, ensure_ascii=False)}")
    found = problems(text)
    assert len(found) == 1 and found[0].startswith("hostile.toml: code: ") and "not allowed" in found[0]


def test_a_cyrillic_look_alike_is_named_by_its_unicode_name():
    (found,) = problems(GOOD.replace('code = "vin"', 'code = "vіn"'))  # U+0456, Ukrainian i
    assert "fields[0].code: 'vіn' is not allowed" in found
    assert "'і' at position 2 is U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I, not ASCII" in found


def test_every_problem_of_a_file_is_named_at_once():
    text = GOOD.replace('code = "vin"', 'code = "x\\"; DROP TABLE"').replace(
        'code = "plate"', 'code = "../../etc"').replace('title = { ru = "Автомобиль" }',
                                                         'title = { ru = "Автомобиль" }\nlanguage = 7')
    found = problems(text)
    assert any("fields[0].code: 'x\"; DROP TABLE' is not allowed" in p for p in found)
    assert any("fields[1].code: '../../etc' is not allowed" in p for p in found)
    assert any("language: expected a string, got 7" in p for p in found)


@pytest.mark.parametrize("extra,words", [
    ("sort = 99999999999999999999", "out of range; allowed -2147483648..2147483647"),
    ('sort = "ten"', "expected an integer, got 'ten'"),
    ('multiple = "yes"', "expected true or false, got 'yes'"),
    ("required = 1", "expected true or false, got 1"),
    ('help = { ru = "' + "ы" * 300 + '" }', "text of 300 characters; at most 255"),
    ("options = 5", "options"),
])
def test_wrong_types_and_huge_values_are_refused(extra, words):
    found = problems(GOOD.replace('code = "vin"\ntype = "string"', f'code = "vin"\ntype = "string"\n{extra}'))
    assert any("fields[0]" in p and words in p for p in found), found


def test_ten_thousand_fields_are_refused_in_one_problem():
    fields = "".join(f'[[fields]]\ncode = "f{i}"\ntype = "string"\nlabel = {{ ru = "F{i}" }}\n'
                     for i in range(10_000))
    text = 'code = "car"\ntitle = { ru = "A" }\n' + fields
    assert len(text.encode()) < MAX_TEMPLATE_BYTES  # the count, not the size, refuses it
    found = problems(text)
    assert f"hostile.toml: fields: 10000 entries; at most {MAX_FIELDS} are allowed" in found


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.toml"
    path.write_text(GOOD + "# " + "x" * MAX_TEMPLATE_BYTES + "\n")
    with pytest.raises(TemplateError, match=f"templates are at most {MAX_TEMPLATE_BYTES} bytes"):
        load_templates([path])


@pytest.mark.parametrize("depth", [8, 5_000, 200_000])
def test_deep_nesting_is_refused_not_a_crash(depth):
    text = GOOD + "deep = " + "[" * depth + "]" * depth + "\n"
    found = problems(text)
    assert any("nest" in p for p in found), found


def test_names_colliding_after_case_folding_are_refused():
    text = GOOD.replace('label = { ru = "Госномер" }', 'label = { ru = "vin " }')
    (found,) = problems(text)
    assert "fields[1].label.ru: 'vin ' is the same name as fields[0] apart from letter case" in found


def test_duplicate_keys_are_refused():
    (found,) = problems(GOOD.replace('type = "string"', 'type = "string"\ntype = "integer"', 1))
    assert "TOML syntax error: Cannot overwrite a value" in found


def test_cycles_in_relations_are_refused(tmp_path):
    for code, parent in (("alpha", "gamma"), ("beta", "alpha"), ("gamma", "beta")):
        (tmp_path / f"{code}.toml").write_text(
            f'code = "{code}"\ntitle = {{ ru = "{code}" }}\n[integrations]\nuse_in_crm_links = true\n'
            f'[relations]\nparents = ["{parent}"]\n')
    with pytest.raises(TemplateError) as info:
        load_templates([tmp_path])
    cycles = [str(p) for p in info.value.problems if "cycle" in str(p)]
    assert cycles == [f"{tmp_path / 'alpha.toml'}: relations: parent/child links form a cycle: "
                      "alpha -> beta -> gamma -> alpha; a process cannot be its own ancestor"]


def test_a_refused_template_writes_nothing_to_the_portal_or_the_store(tmp_path, emulator, emu_url):
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('code = "vin"', 'code = "x\\"; DROP TABLE _runs; --"'))
    store = tmp_path / "store" / "s.db"
    portal = Portal.from_webhook(emu_url, store=store)
    with pytest.raises(TemplateError, match="DROP TABLE _runs"):
        portal.apply([bad])
    assert emulator.request_log == [] and not store.exists()


# -- job files ------------------------------------------------------------------------------------

SYNC = 'kind = "sync"\nportal = "demo"\ninterval = "5m"\n'


@pytest.mark.parametrize("text,words", [
    (SYNC + 'processes = ["x\\"; DROP TABLE"]\n',
     "key 'processes': process 'x\"; DROP TABLE' is not allowed"),
    (SYNC + 'processes = ["cаr"]\n', "'а' is U+0430, not ASCII"),
    (SYNC + 'name = "../../etc"\n', "key 'name': job name '../../etc' is not allowed"),
    ('kind = "export"\nportal = "demo"\ninterval = 60\ntype = "car"\noutput = "../../etc/passwd"\n',
     "may not climb out of its folder"),
    ('kind = "export"\nportal = "demo"\ninterval = 60\ntype = "../car"\noutput = "a.csv"\n',
     "key 'type': process '../car' is not allowed"),
    ('kind = "export"\nportal = "demo"\ninterval = 60\ntype = "car"\noutput = "a.csv"\n'
     'columns = ["id; --"]\n', "key 'columns': column 'id; --' is not allowed"),
    ('kind = "export"\nportal = "https://x.bitrix24.ru/rest/1/sekretcode/"\ninterval = 60\ntype = "car"\n'
     'output = "{portal}.csv"\n', "puts the portal into a file name"),
    (SYNC.replace('"5m"', '"99999999999999d"'), "longer than a year"),
    (SYNC + "misfire_grace_time = 99999999999999999\n", "key 'misfire_grace_time'"),
    (SYNC + 'enabled = "yes"\n', "key 'enabled': Input should be a valid boolean"),
    (SYNC + "deep = " + "[" * 20_000 + "]" * 20_000 + "\n", "nest deeper than a job file allows"),
    (SYNC + "# " + "x" * 70_000 + "\n", "job files are at most 65536 bytes"),
    (SYNC + "portal = \"other\"\n", "not a readable TOML file: Cannot overwrite a value"),
])
def test_hostile_job_files_are_refused_naming_file_and_key(tmp_path, text, words):
    path = tmp_path / "jobs" / "job.toml"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(JobConfigError) as info:
        load_job(path, portals={"demo", "https://x.bitrix24.ru/rest/1/sekretcode/"})
    assert str(path) in str(info.value) and words in str(info.value)
    assert "sekretcode" not in str(info.value)


def test_job_names_colliding_after_case_folding_are_refused(tmp_path):
    for name in ("Nightly", "nightly"):
        (tmp_path / f"{name}_x.toml").write_text(SYNC + f'name = "{name}"\n')
    with pytest.raises(JobConfigError, match="job name 'nightly' is also used by .*letter case"):
        load_jobs(tmp_path, portals={"demo"})


# -- the audit: every name that reaches SQL or a path is checked against an anchored pattern -----


@given(st.text(max_size=45))
def test_every_accepted_code_is_plain_ascii_snake(text):
    for pattern in (PROCESS_CODE_RE, FIELD_CODE_RE, OPTION_CODE_RE, STAGE_CODE_RE, PROCESS_CODE, COLUMN_NAME):
        if pattern.match(text):
            assert re.fullmatch(r"[A-Za-z0-9_]+", text) and text.isascii(), (pattern.pattern, text)


@given(st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s))
def test_the_store_refuses_any_non_code_and_quotes_any_name(name):
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
        with pytest.raises(StoreError, match="must match"):
            check_code(name)
    assume(name.lower() != "keep" and not name.lower().startswith("sqlite_"))
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE keep (x)")
    conn.execute(f"CREATE TABLE {ident(name)} ({ident(name)})")  # one statement, whatever the name holds
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"keep", name}
