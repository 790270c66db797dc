"""Batch commands encoded once (`EncodedParams`): the same wire text, the same batch, the same scan.

A keyset scan sends the same 49 chained pages in every batch, so it encodes them once per scan
(`connector/rest/paging.py`). Nothing the portal receives may change: every test below compares the
encoded path with the plain one, byte for byte.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rest_support import BASE, FakeListPortal, time_info

from connector.rest import Client, EncodedParams, command
from connector.rest.paging import _page, _reference
from connector.rest.references import batch_ref, has_user_reference

KEYS = st.text(st.characters(blacklist_characters="[]", blacklist_categories=("Cs",)), min_size=1, max_size=6)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12), st.sampled_from(["$result[a][b]", "x $next[p0] y", "$time[q][start]"]),
    st.builds(lambda label: batch_ref(label, "items", 49, "id"), st.sampled_from(["p0", "w1"])),
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)
PARAMS = st.dictionaries(KEYS, VALUES, max_size=5)


@settings(max_examples=300, deadline=None)
@given(PARAMS)
def test_encoded_params_are_the_plain_encoding(params: dict[str, Any]) -> None:
    encoded = EncodedParams(params)
    assert command("crm.item.list", encoded) == command("crm.item.list", params)
    assert encoded.user_reference == has_user_reference(params)


def test_encoded_params_refuse_what_is_not_a_mapping() -> None:
    with pytest.raises(ValueError, match="EncodedParams takes a mapping of params; got str"):
        EncodedParams("filter[>id]=5")  # type: ignore[arg-type]


def test_a_batch_command_of_another_type_names_what_is_allowed() -> None:
    client = Client.from_webhook(BASE)
    with pytest.raises(ValueError, match="params must be a mapping, EncodedParams or None"):
        client.batch({"a": ("crm.item.get", "id=5")})  # type: ignore[dict-item]


def _sent_batches(commands: dict[str, Any]) -> list[dict[str, Any]]:
    """The request bodies one `Client.batch(commands)` sends (every answer: each label's result is 1)."""
    bodies: list[dict[str, Any]] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        bodies.append({"url": request.url, "body": body})
        if request.url.endswith("/batch"):
            result = {"result": {label: 1 for label in body["cmd"]}, "result_error": [], "result_total": [],
                      "result_next": [], "result_time": []}
        else:
            result = 1
        return 200, {}, json.dumps({"result": result, "time": time_info()})

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, re.compile(r".*"), callback=answer)
        Client.from_webhook(BASE).batch(commands, halt=True)
    return bodies


@pytest.mark.parametrize("title", ["plain", "$result[a][item][id]"])  # the second is split out of the batch
def test_a_batch_sends_the_same_requests_encoded_or_not(title: str) -> None:
    plain = {
        "a": ("crm.item.get", {"entityTypeId": 1032, "id": 5}),
        "b": ("crm.item.update", {"entityTypeId": 1032, "id": batch_ref("a", "item", "id"),
                                  "fields": {"title": title}}),
        "c": ("crm.item.list", {"filter": {">id": batch_ref("a", "item", "id")}, "select": ["id", "title"]}),
    }
    encoded = {label: (method, EncodedParams(params)) for label, (method, params) in plain.items()}
    sent = _sent_batches(plain)
    assert _sent_batches(encoded) == sent
    assert len(sent) == (1 if title == "plain" else 3)  # a, then b alone as a plain call, then c


def test_a_keyset_scan_sends_what_the_plain_builder_would() -> None:
    """Every batch of a scan: p0 from the last id read, p1..pn-1 chained; the text of each is exactly
    `command(method, _page(...))` built afresh (the pre-encoding reaches only how often it is built)."""
    portal = FakeListPortal(list(range(1, 400)))
    params = {"entityTypeId": 1032, "select": ["title", "id"], "filter": {"stageId": "DT1032_1:NEW"}}
    with responses.RequestsMock() as rsps:
        portal.install(rsps)
        client = Client.from_webhook(BASE)
        rows = list(client.iter_list("crm.item.list", params, pages_per_request=3))
        bodies = [json.loads(call.request.body) for call in rsps.calls]
    assert [r["id"] for r in rows] == list(range(1, 400))
    base = {"entityTypeId": 1032, "select": ["title", "id"]}
    last = 50
    for body in bodies[1:]:
        after = [last, _reference("p0", "items", "id"), _reference("p1", "items", "id")]
        caller = {"stageId": "DT1032_1:NEW"}
        expected = {f"p{i}": command("crm.item.list", _page(base, caller, "id", after[i])) for i in range(3)}
        assert body["cmd"] == expected
        last += 150
    assert len(bodies) == 4  # 1 head page of 50, then 3 batches of 150 (the last one short)
