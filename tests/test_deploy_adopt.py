"""adopt: every shipped template adopts back to an equivalent template that reproduces the process on
another portal; a hand-made process gets readable codes and is taken over without duplicates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_deploy_resume import GROUPS, InProcessSession, portal_shape, with_related

from connector.deploy import AdoptError, adopt, apply, plan
from connector.emulator import Emulator
from connector.rest import Client
from connector.store import Store
from connector.templates import Template, load_templates, loads_template, to_toml

MAPPINGS = sorted(Path(__file__).resolve().parent.parent.joinpath("mappings").glob("*.toml"))
ALL = load_templates(MAPPINGS)


def client_for(emu: Emulator, host: str) -> Client:
    base = f"https://{host}"
    return Client.from_webhook(emu.webhook_url(base), session=InProcessSession(emu, base))


def relation_pairs(templates: list[Template]) -> set[tuple[str, str]]:
    """(parent, child) pairs, wherever declared (the portal keeps a relation on both sides)."""
    pairs = {(r.target, t.code) for t in templates for r in t.relations.parents}
    return pairs | {(t.code, r.target) for t in templates for r in t.relations.children}


def essence(t: Template) -> dict[str, Any]:
    """What a template means on a portal (adopt cannot know English labels, help in one language, ...)."""
    return {
        "code": t.code,
        "title": t.title_text,
        "flags": t.flags,
        "links": t.linked_user_fields,
        "fields": [
            (f.code, f.type, f.multiple, f.required, f.sort, t.text(f.label), sorted(f.targets), f.multiline)
            + tuple((o.code, t.text(o.label), o.sort, o.default) for o in f.options)
            for f in t.fields
        ],
        "funnels": [
            (
                fn.code,
                t.text(fn.name),
                fn.default,
                [(s.code, t.text(s.name), s.semantics, s.color, s.sort) for s in fn.stages],
            )
            for fn in t.funnels
        ],
        "card": [(s.code, t.text(s.title), s.fields) for s in t.card_sections],
    }


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_every_shipped_template_adopts_back_and_reproduces_elsewhere(name: str, tmp_path: Path) -> None:
    chosen = with_related(name, ALL)
    source, store = Emulator(), Store.open(tmp_path / "source.db")
    assert apply(client_for(source, "source.test"), chosen, store).converged
    adopted = [adopt(client_for(source, "source.test"), t.code, store) for t in chosen]
    for original, back in zip(chosen, adopted, strict=True):
        assert essence(back) == essence(original)
        assert loads_template(to_toml(back)) == back  # the written file loads to the same template
    assert relation_pairs(adopted) == relation_pairs(chosen)
    # applying the adopted templates to the same portal changes nothing
    again = apply(client_for(source, "source.test"), adopted, store)
    assert again.write_calls == 0, again.plan.changes
    # ... and on an empty portal reproduces the processes exactly
    target = Emulator()
    assert apply(client_for(target, "target.test"), adopted, Store.open(tmp_path / "target.db")).converged
    assert portal_shape(target) == portal_shape(source)


def _hand_made(emu: Emulator) -> dict[str, Any]:
    """A process made in the Bitrix24 UI: no code, digit field names, generated option xmlIds, UC_ stages."""
    t = emu.call(
        "crm.type.add",
        {"fields": {"title": "Ремонт техники", "isStagesEnabled": "Y", "isCategoriesEnabled": "Y"}},
    )["result"]["type"]
    etid, type_id = t["entityTypeId"], t["id"]
    for suffix, kind, label, extra in (
        ("1700000000001", "string", "Серийный номер", {}),
        (
            "1700000000002",
            "enumeration",
            "Тип техники",
            {"enum": [{"value": "Ноутбук"}, {"value": "Телефон"}]},
        ),
        ("WARRANTY", "boolean", "На гарантии", {}),
    ):
        emu.call(
            "userfieldconfig.add",
            {
                "moduleId": "crm",
                "field": {
                    "entityId": f"CRM_{type_id}",
                    "fieldName": f"UF_CRM_{type_id}_{suffix}",
                    "userTypeId": kind,
                    "editFormLabel": {"ru": label},
                    **extra,
                },
            },
        )
    cat = emu.call("crm.category.add", {"entityTypeId": etid, "fields": {"name": "Гарантийный ремонт"}})
    cat_id = cat["result"]["category"]["id"]
    emu.call(
        "crm.status.add",
        {
            "fields": {
                "ENTITY_ID": f"DYNAMIC_{etid}_STAGE_{cat_id}",
                "STATUS_ID": "UC_7KQ2ZS",
                "NAME": "Диагностика",
                "SORT": 25,
            }
        },
    )
    return {"etid": etid, "type_id": type_id}


def test_a_hand_made_process_gets_readable_codes_and_is_taken_over_in_place(tmp_path: Path) -> None:
    emu = Emulator()
    made = _hand_made(emu)
    store = Store.open(tmp_path / "p.db")
    client = client_for(emu, "p.test")
    t = adopt(client, "Ремонт техники", store)
    assert t.code == "remont_tekhniki"
    assert [f.code for f in t.fields] == ["seriynyy_nomer", "tip_tekhniki", "warranty"]
    assert [o.code for o in t.field("tip_tekhniki").options] == ["noutbuk", "telefon"]
    assert [fn.code for fn in t.funnels][1] == "garantiynyy_remont"
    assert "UC_7KQ2ZS" in [s.code for s in t.funnels[1].stages]
    assert store.idmap.get("p.test", "type", "remont_tekhniki") == made["type_id"]
    # applying the adopted template to the same portal only stamps our markers: nothing is created
    p = plan(client, [t], store)
    assert {c.action for c in p.changes if c.actionable} == {"update"}
    stamped = {"code", "xmlId", "settings.DISPLAY", "settings.ROWS"}  # markers; display settings we fix
    assert {d.attr for c in p.changes if c.actionable for d in c.diffs} <= stamped
    before = len(emu.call("userfieldconfig.list", {"moduleId": "crm"})["result"]["fields"])
    assert apply(client, [t], store).converged
    assert len(emu.call("userfieldconfig.list", {"moduleId": "crm"})["result"]["fields"]) == before
    assert apply(client, [t], store).write_calls == 0
    # the file written by adopt reproduces the process on another portal
    other = Emulator()
    assert apply(
        client_for(other, "o.test"), [loads_template(to_toml(t))], Store.open(tmp_path / "o.db")
    ).converged
    readd = adopt(client_for(other, "o.test"), "remont_tekhniki")
    assert essence(readd) == essence(t)


def test_adopt_errors_name_what_exists(tmp_path: Path) -> None:
    emu = Emulator()
    _hand_made(emu)
    client = client_for(emu, "p.test")
    with pytest.raises(AdoptError, match="matches no smart process.*Ремонт техники"):
        adopt(client, "Нет такого")
    with pytest.raises(AdoptError, match="--code 'Bad'"):
        adopt(client, "Ремонт техники", code="Bad")
    store = Store.open(tmp_path / "p.db")
    store.idmap.set("p.test", "type", "taken", 999)
    with pytest.raises(AdoptError, match="already mapped"):
        adopt(client, "Ремонт техники", store, code="taken")
