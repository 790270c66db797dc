"""Batch references as the server reads them: the emulator's rule, the client's, deploy and sync.

Source for every expectation here: server-behaviour.md §6, `CRestUtil::processBatchElement` —
regex `/\\$(result|next|total|time|error)([^\\s]*)/i` over each parsed parameter value; the path is
every `[key]` in the match; descent stops at the last key found (`isset`); a match that is the whole
value is replaced by the raw value; inside a longer value only numbers and strings are inserted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sync_support import MAPPINGS, local_insert, local_rows, portal_items, setup_processes

from connector.crm.schema import Command, Ref, pack
from connector.deploy import apply
from connector.emulator import Emulator, serve
from connector.rest import Client
from connector.rest.references import batch_ref, has_user_reference, rewritten_in_batch, substitute
from connector.store import Store
from connector.sync import sync
from connector.templates import load_templates

HOSTILE_TEXTS = [
    "$result[w0][item][id]",
    "see $result[w0][item][id] here",
    "price$total[a][b]",
    "$next[x] and $time[y][start]",
    "$ERROR[w0][error]",
    "glued$result[w0][item][title]suffix",
]


def _batch(emu: Emulator, cmd: dict[str, str]) -> dict[str, Any]:
    return emu.call("batch", {"halt": 0, "cmd": cmd})["result"]


# ---------------------------------------------------------------------------- the emulator's rule


@pytest.fixture()
def seeded() -> tuple[Emulator, int]:
    emu = Emulator(limits="off", clock="virtual")
    etid = emu.call("crm.type.add", {"fields": {"title": "T"}})["result"]["type"]["entityTypeId"]
    return emu, etid


def _title_after(emu: Emulator, etid: int, raw_value: str) -> Any:
    """The title `crm.item.add` stores when sent in a batch after `w0` (item id 1, title 'Seven')."""
    from urllib.parse import quote

    out = _batch(emu, {
        "w0": f"crm.item.add?entityTypeId={etid}&fields[title]=Seven",
        "w1": f"crm.item.add?entityTypeId={etid}&fields[title]={quote(raw_value)}",
    })
    return out["result"]["w1"]["item"]["title"]


@pytest.mark.parametrize(("sent", "stored"), [
    # §6: "`UF_CRM_$result[c0][type][id]_SOURCE` becomes `UF_CRM_7`" — glued text is swallowed
    ("X_$result[w0][item][id]_SOURCE", "X_1"),
    # §6: "`W $result[a][item][id] end` becomes `W 7 end`" — whitespace ends the match
    ("W $result[w0][item][id] end", "W 1 end"),
    # §6: inside a longer value a string is inserted too
    ("is $result[w0][item][title]", "is Seven"),
    # §6: only scalars are inserted inside longer text; an array leaves the match as it was
    ("all $result[w0][item] here", "all $result[w0][item] here"),
    # §6: descent stops at the last key found: [nope] is missing, so `item` (an array) -> left alone
    ("x $result[w0][item][nope]", "x $result[w0][item][nope]"),
    # §6: descent stops at the last key found: [id][9] is missing below a scalar... `id` is "1", and
    # PHP's isset on a string offset [9] fails, so the value found is the id itself
    ("x $result[w0][item][id][9]", "x 1"),
    # no [key] in the match: preg_match_all on the path finds nothing, nothing happens
    ("cost $total and $result", "cost $total and $result"),
    # /i matches $RESULT, but `$arResult['RESULT']` does not exist: null, not a string, left alone
    ("x $RESULT[w0][item][id]", "x $RESULT[w0][item][id]"),
    # PCRE's \s without /u is ASCII: a no-break space does not end the match
    ("x $result[w0][item][id]\u00a0tail", "x 1"),
    # two references in one value
    ("$result[w0][item][id]-$result[w0][item][title] !", "1 !"),
])
def test_emulator_substitutes_like_process_batch_element(seeded: tuple[Emulator, int], sent: str,
                                                         stored: str) -> None:
    emu, etid = seeded
    assert _title_after(emu, etid, sent) == stored


def test_a_whole_value_reference_is_replaced_by_the_raw_value(seeded: tuple[Emulator, int]) -> None:
    emu, etid = seeded
    # §6: "If the whole value is the reference, the raw value (array, int, ...) is substituted":
    # an array reaches `filter[@id]` as an array, so the list finds exactly the ids in it.
    out = _batch(emu, {
        "a": f"crm.item.add?entityTypeId={etid}&fields[title]=A",
        "b": f"crm.item.add?entityTypeId={etid}&fields[title]=B",
        "ids": f"crm.item.list?entityTypeId={etid}&select[0]=id&filter[id]=$result[b][item][id]",
    })
    assert [i["id"] for i in out["result"]["ids"]["items"]] == [2]


REFERENCE_TEXT = st.builds(
    lambda name, path, glue: name + path + glue,
    st.sampled_from(["$result", "$RESULT", "$total", "$next", "$time", "$error"]),
    st.sampled_from(["[w0][item][id]", "[w0][item][title]", "[w0][item]", "[w0]", "[zz]", "[w0][item][id][0]",
                     "[w0][item][id][9]", "[w0][item][nope]", ""]),
    st.sampled_from(["", "_S", "x[id]", "]"]),
)
FILLER = st.sampled_from([" ", "\u00a0", "\t", "x", "$", "[", "]", "ab "])


@settings(max_examples=200)
@given(parts=st.lists(st.one_of(REFERENCE_TEXT, FILLER), min_size=1, max_size=6))
def test_client_rule_and_emulator_rule_agree(parts: list[str]) -> None:
    """The client's `substitute` (used when a command leaves its batch) and the emulator are two
    independent implementations of the same server rule; they must give the same answer, and the
    client's test for "would be rewritten" must never miss a rewrite."""
    text = "".join(parts)
    maps = {"result": {"w0": {"item": {"id": 1, "title": "Seven"}}}, "next": {}, "total": {},
            "time": {"w0": {}}, "error": {}}
    expected = substitute(text, maps)
    if expected != text:
        assert rewritten_in_batch(text)
    if not isinstance(expected, str) or not expected.strip():
        return  # an array or an empty title: crm.item.add would not store it as text
    emu = Emulator(limits="off", clock="virtual")
    etid = emu.call("crm.type.add", {"fields": {"title": "T"}})["result"]["type"]["entityTypeId"]
    assert _title_after(emu, etid, text) == expected


# ---------------------------------------------------------------------------- the client keeps user text


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_user_text_reaches_the_portal_verbatim_through_batch(emu_url: str, emulator: Emulator,
                                                             text: str) -> None:
    etid = emulator.call("crm.type.add", {"fields": {"title": "T"}})["result"]["type"]["entityTypeId"]
    client = Client.from_webhook(emu_url)
    answer = client.batch({
        "w0": ("crm.item.add", {"entityTypeId": etid, "fields": {"title": "first"}}),
        "w1": ("crm.item.add", {"entityTypeId": etid, "fields": {"title": text}}),
        "w2": ("crm.item.get", {"entityTypeId": etid, "id": batch_ref("w1", "item", "id")}),
    }, halt=True)
    assert answer.ok
    assert answer.results["w1"]["item"]["title"] == text
    assert answer.results["w2"]["item"]["title"] == text  # the deliberate reference still resolved
    assert [i["title"] for i in portal_items(emulator, etid)] == ["first", text]


@responses.activate
def test_a_command_with_such_text_travels_as_a_plain_call() -> None:
    base = "https://portal.bitrix24.test/rest/1/abcdefgh12345678/"
    inner = {"result": {"w0": {"item": {"id": 5}}}, "result_error": [], "result_total": [],
             "result_next": [], "result_time": []}
    responses.post(base + "batch", json={"result": inner})
    responses.post(base + "crm.item.add", json={"result": {"item": {"id": 6, "title": "x"}}})
    client = Client.from_webhook(base)
    answer = client.batch({
        "w0": ("crm.item.add", {"entityTypeId": 1032, "fields": {"title": "plain"}}),
        "w1": ("crm.item.add", {"entityTypeId": 1032, "fields": {
            "title": "$result[w0][item][id]", "parentId1032": batch_ref("w0", "item", "id")}}),
    })
    assert [c.request.url.rsplit("/", 1)[1] for c in responses.calls] == ["batch", "crm.item.add"]
    sent = json.loads(responses.calls[1].request.body)
    # the user text is verbatim in a JSON body (no substitution outside batch); the deliberate
    # reference to the earlier segment was resolved by the client with the server's rule
    assert sent["fields"] == {"title": "$result[w0][item][id]", "parentId1032": 5}
    assert answer.results == {"w0": {"item": {"id": 5}}, "w1": {"item": {"id": 6, "title": "x"}}}


def test_only_plain_text_counts_as_user_text() -> None:
    assert has_user_reference({"fields": {"title": "a $result[x][y] b"}})
    assert not has_user_reference({"id": batch_ref("x", "item", "id")})
    assert not has_user_reference({"title": "costs $5 [net]"})  # no reference name: never rewritten
    assert not has_user_reference({"title": "$total alone"})  # no [key] in the match


# ---------------------------------------------------------------------------- deploy


def test_a_glued_reference_waits_for_a_later_batch() -> None:
    add = Command("t", "crm.type.add", {"fields": {"title": "T"}})
    whole = Command("c", "crm.category.list", {"entityTypeId": Ref("t", ("type", "entityTypeId"))})
    tail = Command("e", "userfieldconfig.add", {"field": {"entityId": Ref("t", ("type", "id"), "CRM_{}")}})
    name = Ref("t", ("type", "id"), "UF_CRM_{}_X")
    glued = Command("f", "userfieldconfig.add", {"field": {"fieldName": name}})
    after = Command("g", "crm.category.add", {"entityTypeId": Ref("t", ("type", "entityTypeId"))})
    batches = pack([add, whole, tail, glued, after])
    assert [[c.key for c in b] for b in batches] == [["t", "c", "e"], ["f", "g"]]


def test_every_shipped_template_applies_on_the_first_run_over_http(tmp_path: Path) -> None:
    """All five templates at once on an empty portal over a real socket: the first apply converges and
    creates exactly the names a clean apply gives (`UF_CRM_{type id}_{CODE}`), the second writes nothing."""
    emu = Emulator(limits="off", clock="virtual")
    server = serve(emu, "127.0.0.1", 0)
    try:
        client = Client.from_webhook(server.webhook_url, allow_http=True)
        templates = load_templates(sorted(str(p) for p in MAPPINGS.glob("*.toml")))
        with Store.open(tmp_path / "s.db") as store:
            first = apply(client, templates, store)
            assert first.converged, first.remaining
            types = emu.call("crm.type.list", {})["result"]["types"]
            assert len(types) == len(templates)
            for t in types:
                fields = emu.call("userfieldconfig.list", {"moduleId": "crm",
                                                           "filter": {"entityId": f"CRM_{t['id']}"}})
                names = [f["fieldName"] for f in fields["result"]["fields"]]
                assert names and all(n.startswith(f"UF_CRM_{t['id']}_") and len(n) > len(f"UF_CRM_{t['id']}_")
                                     for n in names)
            second = apply(client, templates, store)
            assert second.write_calls == 0 and second.converged
    finally:
        server.stop()


# ---------------------------------------------------------------------------- sync


def test_sync_pushes_text_holding_batch_tokens_verbatim(tmp_path: Path) -> None:
    """Issue symptom: text containing `$result[w0][item][id]` (or `$next`, `$total`, `$time`, `$error`)
    was rewritten by the batch server; it must reach the portal verbatim, and come back unchanged."""
    templates = load_templates([str(MAPPINGS / "hr_candidates.toml")])
    emu = Emulator(limits="off", clock="virtual")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        url = emu.register(rsps)
        etids = setup_processes(emu, templates)
        db = tmp_path / "p.db"
        with Store.open(db) as store:
            client = Client.from_webhook(url)
            sync(client, store, templates, portal_key="emu")
            code = templates[0].code
            keys = [local_insert(db, code, {"title": text})
                    for text in HOSTILE_TEXTS]
            report = sync(client, store, templates, portal_key="emu")
            assert report.failures == []
            titles = {i["xmlId"]: i["title"] for i in portal_items(emu, etids[code])}
            assert [titles[k] for k in keys] == HOSTILE_TEXTS
            sync(client, store, templates, portal_key="emu")
            rows = {r["key"]: r["title"] for r in local_rows(db, code)}
            assert [rows[k] for k in keys] == HOSTILE_TEXTS
