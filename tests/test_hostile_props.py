"""Property tests: whatever a portal sends, reading it ends in rows or in a typed `B24Error`, never in
a KeyError, TypeError or AttributeError from deep inside the client (issue 14)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests
from hypothesis import example, given
from hypothesis import strategies as st

from connector.emulator.faults import SHAPE_KINDS, reshape
from connector.rest import B24Error, Client, RetryPolicy
from connector.rest.client import body_error, check_batch_shape
from connector.rest.errors import TransportError, UnexpectedAnswer
from connector.rest.paging import check_page_ids, page_rows

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.sampled_from(["id", "ID", "items", "result", "stageId", "x"]),
                                             inner, max_size=4), max_leaves=20)
pages = st.dictionaries(st.sampled_from(["items", "total", "next"]), json_values, max_size=3) | json_values


@given(pages, st.sampled_from(["items", None]))
def test_a_page_of_any_shape_gives_row_objects_or_a_typed_error(result: Any, key: str | None) -> None:
    try:
        rows = page_rows(result, key, "crm.item.list")
    except UnexpectedAnswer as exc:
        assert exc.method == "crm.item.list" and exc.code == "BAD_PAGE"
        return
    assert isinstance(rows, list) and all(isinstance(r, Mapping) for r in rows)
    try:
        check_page_ids(rows, "id", "crm.item.list", "p0")
    except UnexpectedAnswer as exc:
        assert exc.code in ("BAD_ID", "DUPLICATE_ID", "BAD_ORDER")
        return
    ids = [r["id"] for r in rows]
    assert all(type(i) is int and i > 0 for i in ids) and ids == sorted(set(ids))


@given(json_values)
def test_a_batch_result_of_any_shape_is_an_object_or_a_typed_error(inner: Any) -> None:
    try:
        assert isinstance(check_batch_shape(inner), dict)
    except UnexpectedAnswer as exc:
        assert exc.method == "batch"


@given(st.binary(max_size=200), st.sampled_from(["application/json", "text/html", "text/plain", ""]))
def test_any_body_that_is_not_a_json_object_gets_a_named_transport_error(body: bytes, ctype: str) -> None:
    error = body_error(body, ctype, 200, "crm.item.get")
    assert isinstance(error, TransportError) and error.code in ("HTML", "TRUNCATED", "BAD_BODY")
    assert "crm.item.get failed (HTTP 200)" in str(error)


class Canned(requests.Session):
    """A transport that answers every request with the same body."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def post(self, url: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = requests.Response()
        response.status_code = 200
        response._content = self.body
        response.headers["Content-Type"] = "application/json"
        return response


@given(st.one_of(st.binary(max_size=100), json_values.map(lambda v: json.dumps(v).encode()),
                 pages.map(lambda r: json.dumps({"result": r, "time": {}}).encode())))
def test_a_list_scan_over_any_answer_returns_rows_or_raises_a_b24error(body: bytes) -> None:
    client = Client.from_webhook("https://p.bitrix24.test/rest/1/code/", session=Canned(body),
                                 retry=RetryPolicy(max_attempts=1), sleep=lambda _s: None)
    try:
        rows = list(client.iter_list("crm.item.list", {"entityTypeId": 1032}))
    except B24Error as exc:
        assert exc.method in ("crm.item.list", "batch")
        return
    assert all(isinstance(r, Mapping) for r in rows)


answers = st.dictionaries(st.sampled_from(["result", "time", "total"]), json_values)


@given(st.sampled_from(SHAPE_KINDS), answers)
@example("ids_float", {"result": [{"id": ""}]})  # found by this test: float('') raised
@example("ids_float", {"result": {"items": [{"id": "x7", "entityTypeId": "-3"}]}})
def test_the_emulator_reshapes_any_answer_without_failing(kind: str, body: dict[str, Any]) -> None:
    before = json.dumps(body, sort_keys=True)
    assert isinstance(reshape(kind, body, None), dict)
    assert json.dumps(body, sort_keys=True) == before  # a copy is rewritten, never the answer itself
