"""drift: hand edits since the last apply (id map record), and differences from the templates given."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.deploy import apply, drift
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
