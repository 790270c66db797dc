"""Deploy then sync: process maps come from deploy's id map (no schema reads) for every shipped template."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses
from test_sync_support import MAPPINGS, local_insert, local_rows, portal_items, row_values

from connector.crm.items import ItemTranslator, TypeCodes
from connector.deploy import apply, portal_key_of
from connector.emulator import Emulator
from connector.rest import Client
from connector.store import Store
from connector.sync import maps as mapmod
from connector.sync import sync
from connector.sync.engine import parent_first
from connector.templates import load_templates

TEMPLATES = parent_first(load_templates(sorted(str(p) for p in MAPPINGS.glob("*.toml"))))
SCHEMA_READS = (
    "crm.type.list",
    "userfieldconfig.list",
    "userfieldconfig.get",
    "crm.category.list",
    "crm.status.list",
)


def test_sync_after_apply_uses_the_id_map_for_every_shipped_template(tmp_path: Path) -> None:
    emu = Emulator(limits="off", clock="virtual")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        client = Client.from_webhook(emu.register(rsps))
        db = tmp_path / "deployed.db"
        with Store.open(db) as store:
            result = apply(client, TEMPLATES, store)
            assert result.converged, result.remaining
            portal = portal_key_of(client)
            entries = store.idmap.all(portal)
            etids = {e.code: int((e.extra or {})["entityTypeId"]) for e in entries if e.kind == "type"}
            # the id map alone gives the same maps as reading the portal schema
            discovered = mapmod.discover(client, TEMPLATES)
            for t in TEMPLATES:
                from_ids = mapmod.from_idmap(t, entries, {**etids, "deal": 2, "contact": 3, "company": 4})
                assert from_ids is not None, t.code
                want = discovered[t.code]
                assert from_ids.entity_type_id == want.entity_type_id and from_ids.funnels == want.funnels
                assert [(f.code, f.uf_name, f.options) for f in from_ids.fields] == [
                    (f.code, f.uf_name, f.options) for f in want.fields
                ], t.code
                for funnel, stages in from_ids.stages.items():  # every template stage, same portal id
                    assert {c: want.stages[funnel][c] for c in stages} == stages, (t.code, funnel)
                assert from_ids.parents == want.parents and from_ids.clients == want.clients
            since = len(emu.request_log)
            first = sync(client, store, TEMPLATES, portal_key=portal)
            assert first.failures == []
            assert not [e.method for e in emu.request_log[since:] if e.method in SCHEMA_READS]
            # both directions for every field of every shipped template, on the deployed portal
            keys = {t.code: local_insert(db, t.code, row_values(t, 1)) for t in TEMPLATES}
            pushed = sync(client, store, None, portal_key=portal)
            assert pushed.failures == [] and pushed.total("created") == len(TEMPLATES)
            maps = mapmod.discover(client, TEMPLATES)
            types = TypeCodes({c: m.entity_type_id for c, m in maps.items()})
            for t in TEMPLATES:
                tr = ItemTranslator(maps[t.code], types)
                [item] = [i for i in portal_items(emu, etids[t.code]) if i.get("xmlId") == keys[t.code]]
                back = tr.to_row(item)
                for col, want in row_values(t, 1).items():
                    got = back[col]
                    assert got == pytest.approx(want) if isinstance(want, float) else got == want, (
                        t.code,
                        col,
                        got,
                        want,
                    )
                [row] = local_rows(db, t.code, f"key = '{keys[t.code]}'")
                other = row_values(t, 2)
                fields = tr.to_fields({**row, **other}, list(other))
                emu.call(
                    "crm.item.update",
                    {
                        "entityTypeId": etids[t.code],
                        "id": item["id"],
                        "fields": fields,
                        "useOriginalUfNames": "Y",
                    },
                )
            pulled = sync(client, store, None, portal_key=portal)
            assert pulled.failures == [] and pulled.total("pulled") == len(TEMPLATES)
            for t in TEMPLATES:
                [row] = local_rows(db, t.code, f"key = '{keys[t.code]}'")
                for col, want in row_values(t, 2).items():
                    got = row[col]
                    assert got == pytest.approx(want) if isinstance(want, float) else got == want, (
                        t.code,
                        col,
                        got,
                        want,
                    )
