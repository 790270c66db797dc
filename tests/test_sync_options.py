"""Enumeration options through sync: the store holds option codes only, in both directions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_sync import TEMPLATES, Env, env_on_emulator
from test_sync_support import MAPPINGS, local_exec, local_insert, local_rows, portal_items, setup_processes

from connector.cli.main import main
from connector.sync.engine import resolve_maps
from connector.templates import load_templates


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with env_on_emulator(tmp_path) as e:
        yield e


def _uf(env: Env, code: str, field: str) -> dict[str, Any]:
    """The portal's userfieldconfig row of one field (with its enum options)."""
    name = env.uf(code, field)
    fields = env.emu.call("userfieldconfig.list", {"moduleId": "crm", "filter": {"fieldName": name}})
    [row] = [f for f in fields["result"]["fields"] if f["fieldName"] == name]
    return env.emu.call("userfieldconfig.get", {"moduleId": "crm", "id": row["id"]})["result"]["field"]


def _set_enum(env: Env, code: str, field: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add/delete options of a field by hand on the portal; returns the options afterwards."""
    uf = _uf(env, code, field)
    out = env.emu.call(
        "userfieldconfig.update",
        {"moduleId": "crm", "id": uf["id"], "field": {"userTypeId": "enumeration", "enum": rows}},
    )
    assert "error" not in out, out
    return list(_uf(env, code, field)["enum"])


def _schema_reads(env: Env, since: int) -> int:
    return sum(1 for e in env.emu.request_log[since:] if e.method == "crm.type.list")


def test_a_digit_in_an_enumeration_column_is_never_sent_as_a_portal_option_id(env: Env) -> None:
    env.sync()
    options = resolve_maps(env.client(), env.store, TEMPLATES, "emu")["candidate"].fields
    ids = {f.code: f.options for f in options}
    bad_score = local_insert(env.db, "candidate", {"title": "a", "candidate_source": "hh", "score": "9"})
    bad_source = local_insert(env.db, "candidate", {"title": "b", "candidate_source": "3", "score": "2"})
    good = local_insert(env.db, "candidate", {"title": "c", "candidate_source": "avito", "score": 2})
    report = env.sync()
    errors = {f.key: f.error for f in report.failures}
    assert errors == {
        bad_score: "field 'score': unknown option '9'; allowed: 1, 2, 3, 4, 5",
        bad_source: "field 'candidate_source': unknown option '3'; allowed: hh, superjob, avito, telegram, "
        "referral, website, other",
    }
    [item] = env.items("candidate")  # nothing was sent for the bad rows
    assert item["xmlId"] == good
    assert item[env.uf("candidate", "score")] == ids["score"]["2"]
    assert item[env.uf("candidate", "candidate_source")] == ids["candidate_source"]["avito"]
    env.emu.clock.advance(60)
    again = env.sync()  # the next pull rewrites nothing: the bad rows keep what the user typed
    assert {f.key for f in again.failures} == {bad_score, bad_source}
    rows = {r["key"]: r for r in env.rows("candidate", "1")}
    assert (rows[bad_score]["score"], rows[bad_source]["candidate_source"]) == ("9", "3")
    assert (rows[good]["score"], rows[good]["candidate_source"]) == ("2", "avito")
    # an UPDATE of a synced row to a digit that is no code: refused, the portal keeps its value
    local_exec(env.db, "UPDATE candidate SET score = '9' WHERE key = ?", (good,))
    third = env.sync()
    assert "field 'score': unknown option '9'" in {f.key: f.error for f in third.failures}[good]
    [item] = env.items("candidate")
    assert item[env.uf("candidate", "score")] == ids["score"]["2"]
    assert env.rows("candidate", f"key = '{good}'")[0]["score"] == "9"


def test_multiple_enumeration_values_are_codes(env: Env) -> None:
    env.sync()
    wmap = resolve_maps(env.client(), env.store, TEMPLATES, "emu")["work_order"]
    ids = next(f.options for f in wmap.fields if f.code == "work_types")
    good = local_insert(env.db, "work_order", {"title": "ok", "work_types": '["tyres", "body"]'})
    raw_id = local_insert(env.db, "work_order", {"title": "id", "work_types": f"[{ids['tyres']}]"})
    not_json = local_insert(env.db, "work_order", {"title": "txt", "work_types": "tyres"})
    report = env.sync()
    errors = {f.key: f.error for f in report.failures}
    assert set(errors) == {raw_id, not_json}
    want = f"field 'work_types': unknown option '{ids['tyres']}'; allowed: maintenance, diagnostics"
    assert errors[raw_id].startswith(want)
    assert errors[not_json].startswith("field 'work_types': expected a JSON array, got 'tyres'")
    [item] = env.items("work_order")
    assert item["xmlId"] == good and item[env.uf("work_order", "work_types")] == [ids["tyres"], ids["body"]]
    env.update_remote("work_order", item["id"], {env.uf("work_order", "work_types"): [ids["air_con"]]})
    env.emu.clock.advance(60)
    env.sync()
    assert json.loads(env.rows("work_order", f"key = '{good}'")[0]["work_types"]) == ["air_con"]


def test_an_option_added_on_the_portal_refreshes_the_map_once_else_keeps_a_marker(env: Env) -> None:
    five = next(o for o in _uf(env, "candidate", "score")["enum"] if o["xmlId"] == "5")
    _set_enum(env, "candidate", "score", [{"id": five["id"], "del": "Y"}])  # gone before the first sync
    item_id = env.add_remote("candidate", {"title": "Ира"})
    env.sync()
    cached = resolve_maps(env.client(), env.store, TEMPLATES, "emu")["candidate"]
    assert "5" not in next(f.options for f in cached.fields if f.code == "score")
    # an admin puts option 5 back by hand (new id) and adds one the template does not have
    after = _set_enum(
        env,
        "candidate",
        "score",
        [{"value": "5 — отлично", "xmlId": "5", "sort": 50}, {"value": "6 — гений", "xmlId": "six"}],
    )
    new_five = next(int(o["id"]) for o in after if o["xmlId"] == "5")
    six = next(int(o["id"]) for o in after if o["xmlId"] == "six")
    other = env.add_remote("candidate", {"title": "Лев", env.uf("candidate", "score"): six})
    env.update_remote("candidate", item_id, {env.uf("candidate", "score"): new_five})
    env.emu.clock.advance(60)
    before = len(env.emu.request_log)
    report = env.sync()
    assert report.failures == [] and _schema_reads(env, before) == 1  # re-read once, not per item
    rows = {r["id"]: r for r in env.rows("candidate")}
    assert rows[item_id]["score"] == "5"  # the refreshed map knows the new id of option 5
    assert rows[other]["score"] == f"#{six}"  # still unknown: a marker, never a look-alike code
    [warning] = report.warnings
    assert f"field 'score' holds portal option id(s) {six}" in warning and f"'#{six}'" in warning
    # the marked row still syncs its other columns, and the marker is never sent back
    local_exec(env.db, "UPDATE candidate SET title = 'Лев Н.' WHERE id = ?", (other,))
    pushed = env.sync()
    assert pushed.failures == [] and pushed.processes["candidate"].updated == 1
    [item] = [i for i in env.items("candidate") if i["id"] == other]
    assert item["title"] == "Лев Н." and item[env.uf("candidate", "score")] == six
    assert env.rows("candidate", f"id = {other}")[0]["score"] == f"#{six}"
    # choosing a real code replaces it on the portal
    local_exec(env.db, "UPDATE candidate SET score = '4' WHERE id = ?", (other,))
    assert env.sync().failures == []
    [item] = [i for i in env.items("candidate") if i["id"] == other]
    four = next(int(o["id"]) for o in after if o["xmlId"] == "4")
    assert item[env.uf("candidate", "score")] == four
    assert env.rows("candidate", f"id = {other}")[0]["score"] == "4"


def test_a_marker_typed_into_a_new_row_is_refused(env: Env) -> None:
    env.sync()
    key = local_insert(env.db, "candidate", {"title": "x", "candidate_source": "hh", "score": "#503"})
    [failed] = env.sync().failures
    assert failed.key == key and failed.error.startswith("field 'score': '#503' is portal option id 503")
    assert env.items("candidate") == []


def test_cli_exit_3_names_the_field_the_value_and_the_allowed_codes(
    live_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = live_emulator.emulator if hasattr(live_emulator, "emulator") else live_emulator.emu
    hr = str(MAPPINGS / "hr_candidates.toml")
    etids = setup_processes(emu, load_templates([hr]))
    db = tmp_path / "hr.db"
    cfg = tmp_path / "b24sync.toml"
    cfg.write_text(
        f'[portals.emu]\nwebhook = "{live_emulator.webhook_url}"\nallow_http = true\nstore = "{db}"\n'
    )
    common = ("--config", str(cfg))
    assert main(["--json", *common, "sync", "--portal", "emu", "--template", hr]) == 0
    capsys.readouterr()
    key = local_insert(db, "candidate", {"title": "a", "candidate_source": "hh", "score": "9"})
    code = main(["--json", *common, "sync", "--portal", "emu"])
    data = json.loads(capsys.readouterr().out)
    assert code == 3
    assert [(f["key"], f["error"]) for f in data["failures"]] == [
        (key, "field 'score': unknown option '9'; allowed: 1, 2, 3, 4, 5")
    ]
    assert portal_items(emu, etids["candidate"]) == []
    assert local_rows(db, "candidate")[0]["score"] == "9"
