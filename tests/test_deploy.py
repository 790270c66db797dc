"""deploy against the emulator: plan, apply, re-apply, resume after interruptions, drift, adopt, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from connector.deploy import adopt, apply, drift, plan
from connector.emulator import Emulator
from connector.rest import Client
from connector.store import Store
from connector.templates import TemplateError, load_template, to_toml

MAPPINGS = sorted(Path(__file__).resolve().parent.parent.joinpath("mappings").glob("*.toml"))
READS = ("list", "get", "fields")


def is_write(method: str) -> bool:
    return method.rsplit(".", 1)[-1] not in READS


def portal_shape(emu: Emulator) -> dict[str, Any]:
    """Everything deploy shapes, without ids: types, fields, options, funnels, stages, card."""
    out: dict[str, Any] = {}
    for t in emu.call("crm.type.list", {})["result"]["types"]:
        etid = t["entityTypeId"]
        fields = emu.call(
            "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{t['id']}"}}
        )
        names = sorted(f["fieldName"].split("_", 3)[-1] for f in fields["result"]["fields"])
        cats = emu.call("crm.category.list", {"entityTypeId": etid})["result"]["categories"]
        funnels = {}
        for c in cats:
            rows = emu.call("crm.status.list", {"filter": {"ENTITY_ID": f"DYNAMIC_{etid}_STAGE_{c['id']}"}})[
                "result"
            ]
            funnels[c["name"]] = sorted(
                (r["STATUS_ID"].split(":")[1], r["NAME"], int(r["SORT"])) for r in rows
            )
        out[t["title"]] = {"fields": names, "funnels": funnels}
    return out


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "portal.db")
    yield s


@pytest.fixture()
def client(emu_url: str) -> Client:
    return Client.from_webhook(emu_url)


def writes_in(emu: Emulator, since: int = 0) -> list[str]:
    return [e.method for e in emu.request_log[since:] if is_write(e.method) and e.method != "batch"]


@pytest.mark.parametrize("path", MAPPINGS, ids=lambda p: p.stem)
def test_every_shipped_template_plans_applies_and_reapplies_with_zero_writes(
    path: Path, emulator: Emulator, client: Client, store: Store
) -> None:
    templates = [load_template(p) for p in MAPPINGS]  # relations may point at each other's processes
    chosen = [t for t in templates if t.code == load_template(path).code]
    targets = {r.target for t in chosen for r in t.relations.parents + t.relations.children}
    chosen += [t for t in templates if t.code in targets and t not in chosen]
    first = plan(client, chosen, store)
    assert first.has_changes and any(c.kind == "type" and c.action == "create" for c in first.changes)
    result = apply(client, chosen, store)
    assert result.converged, result.remaining
    assert result.write_calls > 0
    before = len(emulator.request_log)
    again = apply(client, chosen, store)
    assert again.write_calls == 0 and not again.plan.has_changes
    assert writes_in(emulator, before) == []
    assert not plan(client, chosen, store).has_changes
    for t in chosen:
        assert store.idmap.get(again.portal, "type", t.code) is not None


def test_new_process_is_shaped_completely(emulator: Emulator, client: Client, store: Store) -> None:
    t = load_template("mappings/hr_candidates.toml")
    apply(client, [t], store)
    shape = portal_shape(emulator)[t.title_text]
    for funnel in t.funnels:
        got = shape["funnels"][t.text(funnel.name)]
        names = [n for _, n, _ in sorted(got, key=lambda x: x[2])]
        assert names == [t.text(s.name) for s in funnel.stages]
        codes = {c for c, _, _ in got}
        assert "PREPARATION" not in codes and "CLIENT" not in codes
        assert {"NEW", "SUCCESS", "FAIL"} <= codes  # system stages kept, mapped onto template stages
    hiring = t.funnel("hiring")
    key = f"candidate.hiring.{hiring.success_stage.code}"
    entry = store.idmap.entry(apply(client, [t], store).portal, "stage", key)
    assert entry is not None and entry.extra["status_id"].endswith(":SUCCESS")
    assert sorted(shape["fields"]) == sorted(f.code.upper() for f in t.fields)


def test_access_rules_are_a_manual_checklist_never_done(client: Client, store: Store) -> None:
    t = load_template("mappings/hr_candidates.toml")
    result = apply(client, [t], store)
    assert [c.note for c in result.manual] == t.access_checklist()
    assert all(c.action == "manual" and not c.actionable for c in result.manual)


# The interruption sweep (every write of every shipped template) is in test_deploy_resume.py.


def test_drift_finds_a_field_added_and_a_stage_renamed_by_hand(
    emulator: Emulator, client: Client, store: Store
) -> None:
    t = load_template("mappings/hr_candidates.toml")
    result = apply(client, [t], store)
    assert not drift(client, store).has_drift
    type_id = store.idmap.get(result.portal, "type", "candidate")
    emulator.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": f"CRM_{type_id}",
                "fieldName": f"UF_CRM_{type_id}_HANDMADE",
                "userTypeId": "string",
            },
        },
    )
    stage_id = store.idmap.get(result.portal, "stage", "candidate.hiring.CALL")
    emulator.call("crm.status.update", {"id": stage_id, "fields": {"NAME": "Звонок (вручную)"}})
    d = drift(client, store)
    assert d.has_drift
    found = {(i.kind, i.change, i.code) for i in d.items}
    assert ("field", "added", f"UF_CRM_{type_id}_HANDMADE") in found
    assert ("stage", "edited", "hiring.CALL") in found
    edited = next(i for i in d.items if i.code == "hiring.CALL")
    assert edited.diffs[0].new == "Звонок (вручную)"
    assert json.loads(json.dumps(d.to_json()))["has_drift"] is True


def test_existing_process_is_additive_unless_destructive_allowed(
    emulator: Emulator, client: Client, store: Store
) -> None:
    t = load_template("mappings/hr_candidates.toml")
    result = apply(client, [t], store)
    type_id = store.idmap.get(result.portal, "type", "candidate")
    emulator.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": f"CRM_{type_id}",
                "fieldName": f"UF_CRM_{type_id}_EXTRA",
                "userTypeId": "string",
            },
        },
    )
    p = plan(client, [t], store)
    delete = [c for c in p.changes if c.action == "delete" and c.kind == "field"]
    assert delete and delete[0].blocked and not p.has_changes
    assert apply(client, [t], store).write_calls == 0
    assert plan(client, [t], store, allow_destructive=True).has_changes
    done = apply(client, [t], store, allow_destructive=True)
    assert done.write_calls == 1 and done.converged
    fields = emulator.call(
        "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{type_id}"}}
    )
    assert all(not f["fieldName"].endswith("_EXTRA") for f in fields["result"]["fields"])


def test_renamed_from_renames_instead_of_recreating(client: Client, store: Store, tmp_path: Path) -> None:
    text = Path("mappings/hr_candidates.toml").read_text(encoding="utf-8")
    apply(client, [load_template("mappings/hr_candidates.toml")], store)
    renamed = text.replace('code = "city"', 'code = "home_city"\nrenamed_from = "city"', 1)
    renamed = renamed.replace('"city",', '"home_city",')
    path = tmp_path / "renamed.toml"
    path.write_text(renamed, encoding="utf-8")
    p = plan(client, [path], store)
    acts = [(c.action, c.kind, c.code) for c in p.changes if c.actionable]
    assert acts == [("rename", "field", "home_city")]
    assert apply(client, [path], store).converged
    assert store.idmap.get(p.portal, "field", "candidate.home_city") is not None
    assert store.idmap.get(p.portal, "field", "candidate.city") is None
    assert not plan(client, [path], store).has_changes


def test_adopt_round_trips_and_reproduces_on_another_portal(
    emulator: Emulator, client: Client, store: Store, tmp_path: Path
) -> None:
    original = load_template("mappings/hr_candidates.toml")
    apply(client, [original], store)
    adopted = adopt(client, "Кандидаты", store)
    assert adopted.code == original.code
    assert [(f.code, f.type, f.multiple, [o.code for o in f.options]) for f in adopted.fields] == [
        (f.code, f.type, f.multiple, [o.code for o in f.options]) for f in original.fields
    ]
    assert [(f.code, [(s.code, s.semantics) for s in f.stages]) for f in adopted.funnels] == [
        (f.code, [(s.code, s.semantics) for s in f.stages]) for f in original.funnels
    ]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        other = Emulator()
        url = other.register(rsps, "https://other.example.test")
        other_client = Client.from_webhook(url)
        other_store = Store.open(tmp_path / "other.db")
        assert apply(other_client, [adopted], other_store).converged
        assert portal_shape(other) == portal_shape(emulator)
        assert to_toml(adopt(other_client, original.code, other_store)) == to_toml(adopted)


def test_over_loopback_server(live_emulator: Any, store: Store) -> None:
    client = Client.from_webhook(live_emulator.webhook_url, allow_http=True)
    t = load_template("mappings/contracts.toml")
    first = apply(client, [t], store)
    assert first.converged and first.write_calls > 0
    assert apply(client, [t], store).write_calls == 0


def test_bad_template_fails_with_template_errors(tmp_path: Path, client: Client, store: Store) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'code = "Bad Code"\ntitle = { ru = "X" }\n[[fields]]\ncode = "a"\ntype = "colour"\n'
        'label = { ru = "A" }\n',
        encoding="utf-8",
    )
    with pytest.raises(TemplateError) as info:
        plan(client, [bad], store)
    message = str(info.value)
    assert "bad.toml" in message and "colour" in message and "Bad Code" in message
