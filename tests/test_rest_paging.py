"""iter_list: keyset paging chained inside one batch, over dense and gappy id sets."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rest_support import BASE, FakeListPortal, parse_command, time_info

from connector.rest import Client, NotFound, RetryPolicy, TransportError
from connector.rest.limits import LeakyBucket


def make_client() -> Client:
    return Client.from_webhook(BASE, bucket=LeakyBucket(10_000, 10_000), retry=RetryPolicy(max_attempts=1))


def scan(ids: list[int], method: str = "crm.item.list", **kwargs: Any) -> tuple[list[Any], FakeListPortal]:
    portal = FakeListPortal(ids)
    with responses.RequestsMock() as rsps:
        portal.install(rsps)
        rows = list(make_client().iter_list(method, {"entityTypeId": 1032}, **kwargs))
    return rows, portal


@pytest.mark.parametrize("count", [0, 1, 49, 50, 51, 2549, 2550, 2551, 5050, 6000])
def test_dense_ids_every_row_once_and_few_requests(count: int) -> None:
    ids = list(range(1, count + 1))
    rows, portal = scan(ids)
    assert [row["id"] for row in rows] == ids
    assert portal.http_requests <= math.ceil(count / 2500) + 2


def test_one_request_carries_2500_rows() -> None:
    rows, portal = scan(list(range(1, 5051)))
    assert len(rows) == 5050
    assert portal.http_requests == 4  # 50 rows, 2,500, 2,500, then the short tail


def test_gappy_ids_half_deleted() -> None:
    rng = random.Random(7)
    ids = sorted(rng.sample(range(1, 20_001), 10_000))
    rows, portal = scan(ids)
    assert [row["id"] for row in rows] == ids
    assert portal.http_requests <= math.ceil(len(ids) / 2500) + 2


@pytest.mark.parametrize("count", [50 + 50 * 7, 50 + 50 * 7 + 13])
def test_short_or_empty_page_mid_batch_ignores_the_junk_after_it(count: int) -> None:
    """Page 8 of the batch is empty (or short); later references resolve to arrays -> errors."""
    rows, portal = scan(list(range(1, count + 1)))
    assert len(rows) == count
    assert portal.http_requests == 2
    junk = [f for f in portal.seen_filters if isinstance(f.get(">id"), dict | list)]
    assert len(junk) == 1  # halt stopped the portal at the first junk command


def test_junk_after_a_short_page_is_never_yielded_even_without_halting() -> None:
    """A portal that answers junk pages (rows from the start) after the short page."""
    portal = FakeListPortal(list(range(1, 121)))

    def lenient(after: Any) -> Any:
        return 0 if isinstance(after, dict | list) else after

    original = portal._run

    def run(method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        params = dict(params)
        params["filter"] = {k: lenient(v) for k, v in (params.get("filter") or {}).items()}
        return original(method, params)

    portal._run = run  # type: ignore[method-assign]
    with responses.RequestsMock() as rsps:
        portal.install(rsps)
        rows = list(make_client().iter_list("crm.item.list", {"entityTypeId": 1032}))
    assert [row["id"] for row in rows] == list(range(1, 121))


def test_plain_array_methods_use_upper_case_id() -> None:
    rows, portal = scan(list(range(1, 3001)), method="demo.list", rows_key=None)
    assert [int(row["ID"]) for row in rows] == list(range(1, 3001))
    assert portal.http_requests == 3
    assert any(f.get(">ID") == "50" or f.get(">ID") == 50 for f in portal.seen_filters)


def test_batch_pages_chain_through_result_references() -> None:
    portal = FakeListPortal(list(range(1, 200)))
    bodies: list[dict[str, Any]] = []
    with responses.RequestsMock() as rsps:
        portal.install(rsps)
        rows = list(make_client().iter_list("crm.item.list", {"entityTypeId": 1032, "select": ["title"]},
                                            pages_per_request=3))
        bodies = [json.loads(call.request.body) for call in rsps.calls]
    assert len(rows) == 199
    first = bodies[0]
    assert first["start"] == -1 and first["order"] == {"id": "ASC"} and first["filter"] == {">id": 0}
    assert first["select"] == ["title", "id"]
    cmd = bodies[1]["cmd"]
    assert list(cmd) == ["p0", "p1", "p2"] and bodies[1]["halt"] == 1
    assert parse_command(cmd["p0"])[1]["filter"] == {">id": "50"}
    assert parse_command(cmd["p1"])[1]["filter"] == {">id": "$result[p0][items][49][id]"}
    assert parse_command(cmd["p2"])[1]["start"] == "-1"


def test_caller_filter_is_anded_with_the_keyset() -> None:
    portal = FakeListPortal(list(range(1, 400)))
    with responses.RequestsMock() as rsps:
        portal.install(rsps)
        client = make_client()
        rows = list(client.iter_list("crm.item.list", {"entityTypeId": 1032, "filter": {"<=id": 180}}))
        nested = list(client.iter_list("crm.item.list", {"entityTypeId": 1032, "filter": {">id": 300}}))
    assert [row["id"] for row in rows] == list(range(1, 181))
    assert [row["id"] for row in nested] == list(range(301, 400))


def test_error_on_a_page_after_a_full_page_is_raised() -> None:
    portal = FakeListPortal(list(range(1, 300)))
    original = portal._run

    def run(method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        after = (params.get("filter") or {}).get(">id")
        if str(after) == "150":
            return 400, {"error": "NOT_FOUND", "error_description": "Smart process not found"}
        return original(method, params)

    portal._run = run  # type: ignore[method-assign]
    with responses.RequestsMock() as rsps:
        portal.install(rsps)
        seen: list[int] = []
        with pytest.raises(NotFound):
            for row in make_client().iter_list("crm.item.list", {"entityTypeId": 1032}):
                seen.append(row["id"])
    assert seen == list(range(1, 151))


def test_a_portal_that_ignores_the_keyset_filter_is_detected_not_looped() -> None:
    def answer(request: Any) -> tuple[int, dict, str]:
        items = [{"id": i} for i in range(1, 51)]
        if request.url.endswith("batch"):
            cmd = json.loads(request.body)["cmd"]
            result = {"result": {label: {"types": items} for label in cmd}}
            return 200, {}, json.dumps({"result": result, "time": time_info()})
        return 200, {}, json.dumps({"result": {"types": items}, "time": time_info()})

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, BASE + "crm.type.list", callback=answer)
        rsps.add_callback(responses.POST, BASE + "batch", callback=answer)
        with pytest.raises(TransportError, match="ignored the >id filter"):
            list(make_client().iter_list("crm.type.list"))


@pytest.mark.parametrize(("method", "key", "rows"), [
    ("crm.category.list", "categories", [{"id": i} for i in range(1, 62)]),
    ("crm.status.list", None, [{"ID": str(i)} for i in range(1, 306)]),
])
def test_unpaged_methods_are_one_plain_call_with_the_callers_params(method: str, key: str | None,
                                                                    rows: list[dict[str, Any]]) -> None:
    """crm.category.list / crm.status.list take no start, order or >id: every row comes at once."""
    result = {key: rows} if key else rows
    with responses.RequestsMock() as rsps:
        rsps.post(BASE + method, json={"result": result, "total": len(rows), "time": time_info()})
        got = list(make_client().iter_list(method, {"filter": {"ENTITY_ID": "X"}}))
        body = json.loads(rsps.calls[0].request.body)
        assert len(rsps.calls) == 1
    assert got == rows
    assert body == {"filter": {"ENTITY_ID": "X"}}


def test_unpaged_method_paged_by_the_portal_after_all_follows_next() -> None:
    pages = [({"categories": [{"id": i} for i in range(1, 51)]}, 50), ({"categories": [{"id": 51}]}, None)]
    with responses.RequestsMock() as rsps:
        for result, nxt in pages:
            rsps.post(BASE + "crm.category.list", json={"result": result, "total": 51, "time": time_info()}
                      | ({"next": nxt} if nxt else {}))
        got = list(make_client().iter_list("crm.category.list", {"entityTypeId": 1032}))
        starts = [json.loads(c.request.body).get("start") for c in rsps.calls]
    assert [c["id"] for c in got] == list(range(1, 52)) and starts == [None, 50]
    with pytest.raises(ValueError, match="start"):
        list(make_client().iter_list("crm.status.list", {"start": 0}))


def test_rows_keys_for_types_and_categories() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(BASE + "crm.type.list", json={"result": {"types": [{"id": 1}, {"id": 2}]}})
        rsps.post(BASE + "crm.category.list", json={"result": {"categories": [{"id": 7}]}})
        client = make_client()
        assert [t["id"] for t in client.iter_list("crm.type.list")] == [1, 2]
        assert [c["id"] for c in client.iter_list("crm.category.list", {"entityTypeId": 1032})] == [7]


def test_wrong_rows_key_is_a_clear_error() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(BASE + "crm.item.list", json={"result": {"rows": []}})
        with pytest.raises(TransportError, match=r"result\.items.*rows_key"):
            list(make_client().iter_list("crm.item.list", {"entityTypeId": 1}))


@pytest.mark.parametrize(("params", "message"), [
    ({"start": 50}, "start"), ({"order": {"title": "ASC"}}, "orders by"), ({"filter": [1]}, "filter must"),
])
def test_bad_scan_params(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        list(make_client().iter_list("crm.item.list", params))


@settings(max_examples=25, deadline=None)
@given(st.sets(st.integers(1, 6000), max_size=3000), st.integers(1, 50))
def test_any_id_set_is_read_exactly_once_in_order(ids: set[int], pages: int) -> None:
    ordered = sorted(ids)
    portal = FakeListPortal(ordered)
    with responses.RequestsMock() as rsps:
        portal.install(rsps)
        rows = list(make_client().iter_list("crm.item.list", {"entityTypeId": 1}, pages_per_request=pages))
    assert [row["id"] for row in rows] == ordered
    assert portal.http_requests <= 1 + math.ceil(max(len(ordered) - 50 + 1, 0) / (50 * pages)) + 1


def test_rows_stream_one_request_at_a_time() -> None:
    """Memory is bounded by one request: the generator sends the next request only when needed."""
    portal = FakeListPortal(list(range(1, 6001)))
    with responses.RequestsMock() as rsps:
        portal.install(rsps)
        rows = make_client().iter_list("crm.item.list", {"entityTypeId": 1032})
        assert portal.http_requests == 0
        assert [next(rows)["id"] for _ in range(50)] == list(range(1, 51)) and portal.http_requests == 1
        assert next(rows)["id"] == 51 and portal.http_requests == 2
        for _ in range(2499):
            next(rows)
        assert portal.http_requests == 2
        assert next(rows)["id"] == 2551 and portal.http_requests == 3
        rows.close()
