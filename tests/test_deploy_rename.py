"""renamed_from on a process and on an enumeration option: applied as renames, never re-created."""

from __future__ import annotations

from pathlib import Path

from test_deploy_resume import client_for, portal_shape

from connector.deploy import apply, plan
from connector.emulator import Emulator
from connector.store import Store
from connector.templates import load_template, loads_template, to_toml

HR = Path("mappings/hr_candidates.toml")


def test_a_process_renamed_in_the_template_is_renamed_on_the_portal(tmp_path: Path) -> None:
    emu, store = Emulator(), Store.open(tmp_path / "p.db")
    client = client_for(emu, "p.test")
    apply(client, [load_template(HR)], store)
    text = HR.read_text(encoding="utf-8").replace(
        'code = "candidate"\n', 'code = "applicant"\nrenamed_from = "candidate"\n', 1
    )
    renamed = loads_template(text)
    assert loads_template(to_toml(renamed)) == renamed
    p = plan(client, [renamed], store)
    actions = {(c.kind, c.action) for c in p.changes if c.actionable}
    assert ("type", "rename") in actions and not any(a == "create" for _, a in actions)
    fields_before = len(emu.call("userfieldconfig.list", {"moduleId": "crm"})["result"]["fields"])
    assert apply(client, [renamed], store).converged
    assert [t["code"] for t in emu.call("crm.type.list", {})["result"]["types"]] == ["applicant"]
    assert len(emu.call("userfieldconfig.list", {"moduleId": "crm"})["result"]["fields"]) == fields_before
    codes = [e.code for e in store.idmap.all("p.test")]
    assert not any(c == "candidate" or c.startswith("candidate.") for c in codes)
    assert "applicant.hiring.HIRED" in codes
    assert apply(client, [renamed], store).write_calls == 0


def test_an_option_renamed_in_the_template_keeps_its_portal_id(tmp_path: Path) -> None:
    emu, store = Emulator(), Store.open(tmp_path / "p.db")
    client = client_for(emu, "p.test")
    apply(client, [load_template(HR)], store)
    old_id = store.idmap.get("p.test", "option", "candidate.candidate_source.hh")
    text = HR.read_text(encoding="utf-8").replace(
        '{ code = "hh", label', '{ code = "headhunter", renamed_from = "hh", label', 1
    )
    p = plan(client, [loads_template(text)], store)
    assert [(c.kind, c.action, c.code) for c in p.changes if c.actionable] == [
        ("option", "rename", "candidate_source.headhunter")
    ]
    before = portal_shape(emu)
    assert apply(client, [loads_template(text)], store).converged
    assert store.idmap.get("p.test", "option", "candidate.candidate_source.headhunter") == old_id
    assert store.idmap.get("p.test", "option", "candidate.candidate_source.hh") is None
    assert str(portal_shape(emu)).count("'headhunter'") == 1 and str(before).count("'hh'") == 1
    assert "'hh'" not in str(portal_shape(emu))


def test_rename_mistakes_are_reported() -> None:
    import pytest

    from connector.templates import TemplateError

    text = HR.read_text(encoding="utf-8")
    bad = text.replace('code = "candidate"\n', 'code = "candidate"\nrenamed_from = "candidate"\n', 1)
    bad = bad.replace('{ code = "superjob", label', '{ code = "superjob", renamed_from = "hh", label', 1)
    with pytest.raises(TemplateError) as info:
        loads_template(bad, "hr.toml")
    paths = {p.path for p in info.value.problems}
    assert paths == {"renamed_from", "fields[0].options[1].renamed_from"}
