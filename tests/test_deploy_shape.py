"""A process created by apply is shaped completely: every funnel holds exactly the template's stages
in order (system NEW/SUCCESS/FAIL carry the first process, the success and the first failure stage),
fields, card sections; a `list` process keeps the portal's default funnel untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_deploy_resume import ALL, GROUPS, client_for, with_related

from connector.deploy import apply, plan
from connector.emulator import Emulator
from connector.store import Store
from connector.templates import loads_template


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_every_created_process_matches_its_template(name: str, tmp_path: Path) -> None:
    chosen = with_related(name, ALL)
    emu, store = Emulator(), Store.open(tmp_path / "p.db")
    result = apply(client_for(emu, "p.test"), chosen, store)
    assert result.converged
    for t in chosen:
        type_id = int(store.idmap.get("p.test", "type", t.code))  # type: ignore[arg-type]
        row = emu.call("crm.type.get", {"id": type_id})["result"]["type"]
        etid = row["entityTypeId"]
        assert row["title"] == t.title_text and row["code"] == t.code
        assert {
            k: row[k] == "Y"
            for k in t.flags
            if k in row and k not in ("isPaymentsEnabled", "isCountersEnabled")
        } == {
            k: v
            for k, v in t.flags.items()
            if k in row and k not in ("isPaymentsEnabled", "isCountersEnabled")
        }
        cats = emu.call("crm.category.list", {"entityTypeId": etid})["result"]["categories"]
        assert sorted(c["name"] for c in cats) == sorted(t.text(f.name) for f in t.funnels)
        for funnel in t.funnels:
            cat_id = int(store.idmap.get("p.test", "funnel", f"{t.code}.{funnel.code}"))  # type: ignore[arg-type]
            cat = next(c for c in cats if c["id"] == cat_id)
            assert cat["name"] == t.text(funnel.name) and (cat["isDefault"] == "Y") == funnel.default
            rows = emu.call("crm.status.list", {"filter": {"ENTITY_ID": f"DYNAMIC_{etid}_STAGE_{cat_id}"}})[
                "result"
            ]
            on_portal = [
                (r["STATUS_ID"].split(":")[1], r["NAME"], r["COLOR"].upper(), r["SEMANTICS"] or "")
                for r in sorted(rows, key=lambda r: int(r["SORT"]))
            ]
            system = {v: k for k, v in funnel.system_stage_map().items()}
            assert on_portal == [
                (system.get(s.code, s.code), t.text(s.name), s.color, s.semantics_code) for s in funnel.stages
            ]
            for s in funnel.stages:  # the mapping (incl. system stages) is kept in the id map
                entry = store.idmap.entry("p.test", "stage", f"{t.code}.{funnel.code}.{s.code}")
                assert (
                    entry is not None
                    and entry.extra["status_id"] == f"DT{etid}_{cat_id}:{system.get(s.code, s.code)}"
                )
        fields = emu.call(
            "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{type_id}"}}
        )
        assert sorted(f["xmlId"] for f in fields["result"]["fields"]) == sorted(f.xml_id for f in t.fields)
        card = emu.call("crm.item.details.configuration.get", {"entityTypeId": etid, "scope": "C"})["result"]
        assert [(s["name"], s["title"], len(s["elements"])) for s in card] == [
            (s.code, t.text(s.title), len(s.fields)) for s in t.card_sections
        ]


LIST = """
code = "incoming_letter"
title = { ru = "Входящие письма", en = "Incoming letters" }
preset = "list"

[[fields]]
code = "sender"
type = "string"
label = { ru = "Отправитель" }

[[fields]]
code = "received_on"
type = "date"
label = { ru = "Дата получения" }
"""


def test_a_list_process_has_no_funnels_and_keeps_the_default_one(tmp_path: Path) -> None:
    t = loads_template(LIST)
    emu, store = Emulator(), Store.open(tmp_path / "p.db")
    client = client_for(emu, "p.test")
    result = apply(client, [t], store)
    assert result.converged
    row = emu.call("crm.type.list", {})["result"]["types"][0]
    assert row["isStagesEnabled"] == "N" and row["isCategoriesEnabled"] == "N"
    again = plan(client, [t], store)
    assert not again.has_changes
    notes = [c for c in again.changes if c.kind == "funnel"]
    assert notes and all(c.action == "note" and "cannot be deleted" in c.note for c in notes)
    assert apply(client, [t], store).write_calls == 0
