"""drift: hand edits since the last apply (id map record), and differences from the templates given."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from connector.deploy import DriftError, apply, drift
from connector.emulator import Emulator
from connector.rest import Client
from connector.store import Store
from connector.templates import load_template

HR = "mappings/hr_candidates.toml"


@pytest.fixture()
def applied(emulator: Emulator, emu_url: str, tmp_path: Path) -> tuple[Client, Store, str]:
    client, store = Client.from_webhook(emu_url), Store.open(tmp_path / "p.db")
    result = apply(client, [load_template(HR)], store)
    assert result.converged
    return client, store, result.portal


def found(d: object) -> set[tuple[str, str, str, str]]:
    return {(i.kind, i.change, i.code, i.against) for i in d.items}  # type: ignore[attr-defined]


def test_no_drift_right_after_apply_with_or_without_templates(applied: tuple[Client, Store, str]) -> None:
    client, store, _ = applied
    assert not drift(client, store).has_drift
    d = drift(client, store, [load_template(HR)])
    assert not d.has_drift, [i.describe() for i in d.items]
    assert d.to_json()["compared_with_templates"] == ["candidate"]


def test_flags_and_title_edited_by_hand_are_drift(
    emulator: Emulator, applied: tuple[Client, Store, str]
) -> None:
    client, store, portal = applied
    type_id = store.idmap.get(portal, "type", "candidate")
    emulator.call(
        "crm.type.update", {"id": type_id, "fields": {"title": "Соискатели", "isAutomationEnabled": "N"}}
    )
    d = drift(client, store)
    edited = next(i for i in d.items if i.kind == "type")
    assert {(x.attr, x.old, x.new) for x in edited.diffs} == {
        ("title", "Кандидаты", "Соискатели"),
        ("isAutomationEnabled", True, False),
    }


def test_with_templates_the_portal_is_compared_with_them(
    emulator: Emulator, applied: tuple[Client, Store, str], tmp_path: Path
) -> None:
    """A field the template gained, a stage colour changed by hand, an option removed by hand."""
    client, store, portal = applied
    text = Path(HR).read_text(encoding="utf-8")
    newer = text.replace(
        "[[funnels]]",
        '[[fields]]\ncode = "telegram_nick"\ntype = "string"\nlabel = { ru = "Ник в Telegram" }\n\n'
        "[[funnels]]",
        1,
    )
    path = tmp_path / "hr_newer.toml"
    path.write_text(newer, encoding="utf-8")
    stage_id = store.idmap.get(portal, "stage", "candidate.hiring.OFFER")
    emulator.call("crm.status.update", {"id": stage_id, "fields": {"COLOR": "#000000"}})
    # without templates: only what changed since the apply
    plain = found(drift(client, store))
    assert ("stage", "edited", "hiring.OFFER", "last_apply") in plain
    assert not any(code == "telegram_nick" for _, _, code, _ in plain)
    # with the template: also what apply would create
    d = drift(client, store, [path])
    assert ("field", "missing", "telegram_nick", "template") in found(d)
    assert ("stage", "edited", "hiring.OFFER", "last_apply") in found(d)
    assert not any(i.code == "hiring.OFFER" and i.against == "template" for i in d.items)  # no duplicate
    assert all(i.process == "candidate" for i in d.items)


def test_with_templates_a_hand_added_field_is_reported_once(
    emulator: Emulator, applied: tuple[Client, Store, str]
) -> None:
    client, store, portal = applied
    type_id = store.idmap.get(portal, "type", "candidate")
    emulator.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": f"CRM_{type_id}",
                "fieldName": f"UF_CRM_{type_id}_NOTE",
                "userTypeId": "string",
            },
        },
    )
    d = drift(client, store, [load_template(HR)])
    hits = [i for i in d.items if i.kind == "field"]
    assert [(i.change, i.code) for i in hits] == [("added", f"UF_CRM_{type_id}_NOTE")]


def test_with_templates_a_process_never_applied_is_missing(applied: tuple[Client, Store, str]) -> None:
    client, store, _ = applied
    d = drift(client, store, [load_template("mappings/contracts.toml")])
    assert ("type", "missing", "", "template") in found(d)
    assert {i.process for i in d.items} == {"contract"}


def test_a_store_without_this_portals_apply_is_an_error_not_no_drift(
    applied: tuple[Client, Store, str], tmp_path: Path
) -> None:
    """The store keys a portal by host:port: an emulator restarted on another port is another portal."""
    client, _, portal = applied
    fresh = Store.open(tmp_path / "fresh.db")
    with pytest.raises(DriftError) as caught:
        drift(client, fresh)
    text = str(caught.value)
    assert f"no apply recorded for this portal ({portal}) in {tmp_path / 'fresh.db'}" in text
    assert "pass template FILEs or run apply first" in text and "records for" not in text
    fresh.idmap.set("127.0.0.1:41489", "type", "candidate", 7)  # the same portal before a restart
    with pytest.raises(DriftError, match=r"records for 127\.0\.0\.1:41489 only"):
        drift(client, fresh)
    assert isinstance(caught.value, RuntimeError)  # the CLI's exit 1 (runtime), not 2 (drift)


def test_without_a_record_templates_are_compared_alone(
    emulator: Emulator, applied: tuple[Client, Store, str], tmp_path: Path
) -> None:
    client, store, portal = applied
    fresh = Store.open(tmp_path / "fresh.db")
    d = drift(client, fresh, [load_template(HR)])
    assert not d.has_drift and d.last_apply is False
    assert "no apply recorded for this portal" in str(d.render())
    stage_id = store.idmap.get(portal, "stage", "candidate.hiring.OFFER")
    emulator.call("crm.status.update", {"id": stage_id, "fields": {"NAME": "Предложение"}})
    edited = found(drift(client, fresh, [load_template(HR)]))
    assert edited == {("stage", "edited", "hiring.OFFER", "template")}


def test_old_to_new_reads_expected_then_portal_against_the_record_and_the_template(
    emulator: Emulator, applied: tuple[Client, Store, str], tmp_path: Path
) -> None:
    client, store, portal = applied
    stage_id = store.idmap.get(portal, "stage", "candidate.hiring.OFFER")
    emulator.call("crm.status.update", {"id": stage_id, "fields": {"NAME": "Предложение"}})
    hr = load_template(HR)
    name = next(hr.text(s.name) for f in hr.funnels for s in f.stages if s.code == "OFFER")
    fresh = Store.open(tmp_path / "fresh.db")
    for d in (drift(client, store), drift(client, fresh, [load_template(HR)])):
        (item,) = [i for i in d.items if i.code == "hiring.OFFER"]
        assert [(x.attr, x.old, x.new) for x in item.diffs] == [("name", name, "Предложение")]
        assert d.to_json()["diff_meaning"]["new"] == "on the portal now"
        assert "expected → on portal" in _text(d.render())


def test_a_marked_field_missing_from_the_template_is_named_by_its_code(
    applied: tuple[Client, Store, str], tmp_path: Path
) -> None:
    client, store, _ = applied
    text = Path(HR).read_text(encoding="utf-8")
    hobby = '[[fields]]\ncode = "hobby"\ntype = "string"\nlabel = { ru = "Хобби" }\n\n[[funnels]]'
    path = tmp_path / "hr_hobby.toml"
    path.write_text(text.replace("[[funnels]]", hobby, 1), encoding="utf-8")
    assert apply(client, [load_template(path)], store).converged
    d = drift(client, store, [load_template(HR)])
    assert [(i.kind, i.change, i.code) for i in d.items] == [("field", "added", "hobby")]
    assert "UF_CRM_" in d.items[0].note and "b24sync:" not in d.items[0].describe()


def _text(renderable: object) -> str:
    console = Console(width=200)
    with console.capture() as captured:
        console.print(renderable)
    return captured.get()
