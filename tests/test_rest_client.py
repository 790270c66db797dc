"""Client.call / batch / batch_all and the retry policy, over `responses`."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import requests
import responses
from support import DOCS_FIXTURES
from test_rest_support import BASE, CODE, parse_command, time_info

from connector.rest import (
    B24Error,
    Client,
    InvalidArgument,
    NotFound,
    OperationTimeLimit,
    OutcomeUnknown,
    QueryLimit,
    RetryPolicy,
    TransportError,
)
from connector.rest.limits import LeakyBucket, MethodLedger
from connector.rest.references import batch_ref

FIXTURES = DOCS_FIXTURES  # the official docs' JSON examples, vendored under tests/fixtures/


class Sleeper:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_client(sleeper: Sleeper | None = None, **options: Any) -> Client:
    sleep = sleeper or Sleeper()
    options.setdefault("retry", RetryPolicy(jitter=lambda: 1.0))
    options.setdefault("bucket", LeakyBucket(1000, 1000, sleep=sleep))
    return Client.from_webhook(BASE, sleep=sleep, **options)


def ok(result: Any, **extra: Any) -> dict[str, Any]:
    return {"result": result, "time": time_info(), **extra}


# -- call -------------------------------------------------------------------------------------------

@responses.activate
def test_call_posts_json_and_parses_envelope() -> None:
    responses.post(BASE + "crm.item.list", json=ok({"items": [{"id": 1}]}, total=120, next=50))
    response = make_client().call("crm.item.list", {"entityTypeId": 1032, "useOriginalUfNames": True,
                                                    "filter": {"@id": [1, 2]}})
    assert response.result == {"items": [{"id": 1}]}
    assert (response.total, response.next, response.status) == (120, 50, 200)
    assert response.time["date_start"] == "2026-01-01T00:00:00+03:00"
    request = responses.calls[0].request
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"entityTypeId": 1032, "useOriginalUfNames": "Y",
                                        "filter": {"@id": [1, 2]}}


@responses.activate
def test_business_error_with_http_200_is_raised_not_returned() -> None:
    responses.post(BASE + "crm.item.get", json={"error": "NOT_FOUND", "error_description": "Not found"})
    with pytest.raises(NotFound):
        make_client().call("crm.item.get", {"id": 1})


@responses.activate
def test_bad_argument_is_not_retried() -> None:
    responses.post(BASE + "crm.item.list", status=400,
                   json={"error": "INVALID_ARG_VALUE", "error_description": "Invalid filter"})
    client = make_client()
    with pytest.raises(InvalidArgument):
        client.call("crm.item.list", {})
    assert len(responses.calls) == 1 and client.stats.retries == 0


@pytest.mark.parametrize("name", ["", "crm.item.get?id=1", "a/b"])
def test_bad_method_name(name: str) -> None:
    with pytest.raises(ValueError, match="method must be"):
        make_client().call(name)


# -- batch ------------------------------------------------------------------------------------------

@responses.activate
def test_batch_sends_cmd_strings_and_reads_doc_fixture() -> None:
    responses.post(BASE + "batch", json=json.loads((FIXTURES / "batch.json").read_text()))
    result = make_client().batch({
        "get_user": ("user.current", {}),
        "get_department": ("department.get", {"ID": batch_ref("get_user", "UF_DEPARTMENT")}),
    })
    body = json.loads(responses.calls[0].request.body)
    assert body["halt"] == 0
    assert parse_command(body["cmd"]["get_department"]) == (
        "department.get", {"ID": "$result[get_user][UF_DEPARTMENT]"})
    assert result.ok and set(result.results) == {"get_user", "get_department"}
    assert result.results["get_user"]["NAME"] == "John"
    assert result.totals == {"get_department": 1}
    assert result.nexts == {}
    assert set(result.times) == {"get_user", "get_department"}


@pytest.mark.parametrize("fixture", ["batch.error-halt0.json", "batch.error-halt1.json"])
@responses.activate
def test_batch_errors_per_label_with_empty_arrays(fixture: str) -> None:
    body = json.loads((FIXTURES / fixture).read_text())
    responses.post(BASE + "batch", json=body)
    result = make_client().batch({"get_user": ("user.get", {"ID": 1}),
                                  "get_department": ("department.get", {"ID": 2})},
                                 halt=fixture.endswith("halt1.json"))
    assert result.results == {} and not result.ok
    assert set(result.errors) == set(body["result"]["result_error"])
    assert result.errors["get_user"].code == "insufficient_scope"
    assert result.errors["get_user"].method == "user.get"
    assert json.loads(responses.calls[0].request.body)["halt"] == (1 if "halt1" in fixture else 0)
    with pytest.raises(B24Error):
        result.get("get_user")
    if "halt1" in fixture:
        with pytest.raises(KeyError, match="get_department"):
            result.get("get_department")


@responses.activate
def test_batch_maps_as_objects_or_arrays() -> None:
    responses.post(BASE + "batch", json={"result": {
        "result": {"a": {"items": []}, "b": {"item": {"id": 3}}},
        "result_error": {"c": {"error": 0, "error_description": "SPA not found"}},
        "result_total": {"a": 0}, "result_next": {"a": "50"},
        "result_time": {"a": time_info(), "b": time_info()}}, "time": time_info()})
    result = make_client().batch({"a": ("crm.item.list", {}), "b": ("crm.item.get", {}),
                                  "c": ("crm.type.get", {})})
    assert result.totals == {"a": 0} and result.nexts == {"a": 50}
    assert result.errors["c"].code == "0" and result.get("b") == {"item": {"id": 3}}


def test_batch_refuses_numeric_labels_naming_them() -> None:
    with pytest.raises(ValueError, match=r"label '7'.*non-numeric"):
        make_client().batch({"a": ("crm.item.get", {}), "7": ("crm.item.get", {})})


@pytest.mark.parametrize("label", ["a b", "x[1]", "-3", ""])
def test_batch_refuses_labels_that_break_references(label: str) -> None:
    with pytest.raises(ValueError, match="label"):
        make_client().batch({label: ("crm.item.get", {})})


def test_batch_refuses_more_than_50_and_nested_batch() -> None:
    with pytest.raises(ValueError, match="at most 50.*batch_all"):
        make_client().batch({f"c{i}": ("crm.item.get", {"id": i}) for i in range(51)})
    with pytest.raises(ValueError, match="nested batch"):
        make_client().batch({"a": ("batch", {"cmd": {}})})


@responses.activate
def test_batch_all_chunks_by_50_and_merges() -> None:
    def answer(request: Any) -> tuple[int, dict, str]:
        cmd = json.loads(request.body)["cmd"]
        results = {label: {"item": {"id": int(label[1:])}} for label in cmd}
        return 200, {}, json.dumps({"result": {"result": results, "result_error": []}, "time": time_info()})

    responses.add_callback(responses.POST, BASE + "batch", callback=answer)
    result = make_client().batch_all({f"c{i}": ("crm.item.get", {"id": i}) for i in range(120)})
    assert [len(json.loads(c.request.body)["cmd"]) for c in responses.calls] == [50, 50, 20]
    assert len(result.results) == 120 and result.get("c119") == {"item": {"id": 119}}


# -- retries ----------------------------------------------------------------------------------------

@responses.activate
def test_503_query_limit_backs_off_then_succeeds_also_for_writes() -> None:
    limit = {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
    responses.post(BASE + "crm.item.add", status=503, json=limit)
    responses.post(BASE + "crm.item.add", status=503, json=limit)
    responses.post(BASE + "crm.item.add", json=ok({"item": {"id": 9}}))
    sleeper = Sleeper()
    client = make_client(sleeper, bucket=LeakyBucket(1000, 1000, clock=lambda: 0.0, sleep=sleeper))
    assert client.call("crm.item.add", {"fields": {}}).result == {"item": {"id": 9}}
    assert client.stats.retries == 2 and client.stats.statuses[503] == 2
    assert [s for s in sleeper.calls if s >= 0.5] == [0.5, 1.0]
    assert client.stats.backoff_seconds == 1.5
    assert client.bucket.level >= 1000  # the 503 told the bucket that the portal's bucket is full


@responses.activate
def test_503_gives_up_after_max_attempts() -> None:
    for _ in range(3):
        responses.post(BASE + "crm.item.get", status=503, json={"error": "QUERY_LIMIT_EXCEEDED"})
    client = make_client(retry=RetryPolicy(max_attempts=3, jitter=lambda: 0.0))
    with pytest.raises(QueryLimit):
        client.call("crm.item.get", {})
    assert len(responses.calls) == 3


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=4.0, jitter=lambda: 0.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 0.5, 1.0, 2.0, 2.0]
    policy = RetryPolicy(initial_delay=0.5, max_delay=4.0, jitter=lambda: 1.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]


@responses.activate
def test_total_time_bound_stops_retries() -> None:
    responses.post(BASE + "crm.item.get", status=500, json={"error": "INTERNAL_SERVER_ERROR"})
    client = make_client(retry=RetryPolicy(max_attempts=50, max_total=2.0, jitter=lambda: 1.0))
    with pytest.raises(B24Error, match="INTERNAL_SERVER_ERROR"):
        client.call("crm.item.get", {})
    assert client.stats.retries == 2  # slept 0.5 + 1.0; the next 2.0 s would pass the 2 s bound
    assert client.stats.backoff_seconds == 1.5


@pytest.mark.parametrize(("status", "body", "content_type"), [
    (502, "<html><body>Bad gateway</body></html>", "text/html"),
    (200, '{"result": {"item": {"id"', "application/json"),
    (500, '{"error": "INTERNAL_SERVER_ERROR", "error_description": "x"}', "application/json"),
])
@responses.activate
def test_reads_retry_html_truncated_and_5xx(status: int, body: str, content_type: str) -> None:
    responses.post(BASE + "crm.item.get", status=status, body=body, content_type=content_type)
    responses.post(BASE + "crm.item.get", json=ok({"item": {"id": 1}}))
    client = make_client()
    assert client.call("crm.item.get", {"id": 1}).result == {"item": {"id": 1}}
    assert client.stats.retries == 1


@responses.activate
def test_reads_retry_connection_errors() -> None:
    responses.post(BASE + "crm.item.list", body=requests.ConnectionError("reset by peer"))
    responses.post(BASE + "crm.item.list", json=ok({"items": []}))
    assert make_client().call("crm.item.list", {}).result == {"items": []}


@pytest.mark.parametrize("failure", [
    requests.ConnectionError("Connection aborted: RemoteDisconnected"),
    requests.ReadTimeout("read timed out"),
    requests.exceptions.ChunkedEncodingError("truncated"),
])
@responses.activate
def test_write_with_lost_answer_is_outcome_unknown_and_not_resent(failure: Exception) -> None:
    responses.post(BASE + "crm.item.add", body=failure)
    responses.post(BASE + "crm.item.add", json=ok({"item": {"id": 2}}))
    with pytest.raises(OutcomeUnknown) as caught:
        make_client().call("crm.item.add", {"fields": {"title": "x"}})
    assert len(responses.calls) == 1
    assert caught.value.method == "crm.item.add" and "not re-sent" in str(caught.value)
    assert not isinstance(caught.value, TransportError)


@responses.activate
def test_write_with_truncated_body_is_outcome_unknown() -> None:
    responses.post(BASE + "crm.item.update", body='{"result": {"it', content_type="application/json")
    with pytest.raises(OutcomeUnknown):
        make_client().call("crm.item.update", {"id": 1, "fields": {}})
    assert len(responses.calls) == 1


@responses.activate
def test_batch_with_a_write_is_a_write() -> None:
    responses.post(BASE + "batch", body=requests.ReadTimeout("timeout"))
    with pytest.raises(OutcomeUnknown):
        make_client().batch({"a": ("crm.item.get", {"id": 1}), "b": ("crm.item.delete", {"id": 1})})
    assert len(responses.calls) == 1


@responses.activate
def test_read_only_batch_retries_a_lost_answer() -> None:
    responses.post(BASE + "batch", body=requests.ReadTimeout("timeout"))
    responses.post(BASE + "batch", json={"result": {"result": {"a": {"item": {}}}}, "time": time_info()})
    assert make_client().batch({"a": ("crm.item.get", {"id": 1})}).ok


def test_write_whose_connection_was_refused_fails_fast_and_safe() -> None:
    # issue 9 §4: a portal that never answered and refuses the connection fails at once (no retries);
    # retries after the portal has answered are in test_cli_errors.py
    sleeper = Sleeper()
    client = Client.from_webhook("http://127.0.0.1:9/rest/1/abc/", sleep=sleeper,
                                 retry=RetryPolicy(max_attempts=2, jitter=lambda: 0.0), timeout=(0.5, 0.5))
    with pytest.raises(TransportError) as caught:
        client.call("crm.item.add", {"fields": {}})
    assert not isinstance(caught.value, OutcomeUnknown)
    assert client.stats.retries == 0 and "abc" not in str(caught.value)
    assert "127.0.0.1:9" in str(caught.value) and "refused" in str(caught.value)


@responses.activate
def test_429_waits_until_operating_reset_at_then_retries() -> None:
    now = [1_000_000.0]
    ledger = MethodLedger(clock=lambda: now[0])
    responses.post(BASE + "crm.item.list", json=ok({"items": []}) | {
        "time": time_info(operating=100.0, operating_reset_at=now[0] + 42)})
    responses.post(BASE + "crm.item.list", status=429,
                   json={"error": "OPERATION_TIME_LIMIT", "error_description": "blocked"})
    responses.post(BASE + "crm.item.list", json=ok({"items": []}))
    sleeper = Sleeper()
    client = make_client(sleeper, ledger=ledger)
    client.call("crm.item.list", {})
    client.call("crm.item.list", {})
    assert sleeper.calls == [42.0]
    assert client.stats.waited_seconds == 42.0 and client.stats.retries == 1


@responses.activate
def test_429_with_reset_beyond_bound_raises_operation_time_limit() -> None:
    ledger = MethodLedger(clock=lambda: 0.0)
    ledger.record("crm.item.list", {"operating": 10.0, "operating_reset_at": 10_000.0})
    responses.post(BASE + "crm.item.list", status=429, json={"error": "OPERATION_TIME_LIMIT"})
    with pytest.raises(OperationTimeLimit) as caught:
        make_client(ledger=ledger, retry=RetryPolicy(max_limit_wait=600)).call("crm.item.list", {})
    assert caught.value.reset_at == 10_000.0


@responses.activate
def test_ledger_pauses_a_method_before_the_portal_would_refuse() -> None:
    now = [0.0]
    ledger = MethodLedger(threshold=420, margin=30, clock=lambda: now[0])
    responses.post(BASE + "crm.item.list",
                   json=ok({"items": []}) | {"time": time_info(operating=395.0, operating_reset_at=77.0)})
    responses.post(BASE + "crm.item.get", json=ok({"item": {}}))
    sleeper = Sleeper()
    client = make_client(sleeper, ledger=ledger)
    client.call("crm.item.list", {})
    client.call("crm.item.get", {})  # another method is not paused
    assert sleeper.calls == []
    client.call("crm.item.list", {})
    assert sleeper.calls == [77.0]


@responses.activate
def test_batch_sub_calls_are_charged_to_their_own_method() -> None:
    now = [0.0]
    ledger = MethodLedger(threshold=100, margin=10, clock=lambda: now[0])
    busy = time_info(processing=50.0, duration=50.0)
    responses.post(BASE + "batch", json={"result": {"result": {"a": {}, "b": {}},
                                                    "result_time": {"a": busy, "b": busy}},
                                         "time": time_info()})
    make_client(ledger=ledger).batch({"a": ("crm.item.list", {}), "b": ("crm.item.list", {})})
    assert ledger.used("crm.item.list") == 100.0 and ledger.used("batch") == 0.0
    assert ledger.pause_needed("crm.item.list") == 600.0
    now[0] = 601.0
    assert ledger.pause_needed("crm.item.list") == 0.0


# -- redirect, logging, secrets ---------------------------------------------------------------------

@responses.activate
def test_302_to_new_domain_reposts_body_and_moves_base_url() -> None:
    new_base = BASE.replace("portal.bitrix24.test", "renamed.bitrix24.test")
    responses.post(BASE + "crm.item.add", status=302, headers={"Location": new_base + "crm.item.add"})
    responses.post(new_base + "crm.item.add", json=ok({"item": {"id": 1}}))
    responses.post(new_base + "crm.item.get", json=ok({"item": {"id": 1}}))
    client = make_client()
    client.call("crm.item.add", {"fields": {"title": "kept"}})
    assert responses.calls[1].request.method == "POST"
    assert json.loads(responses.calls[1].request.body) == {"fields": {"title": "kept"}}
    client.call("crm.item.get", {"id": 1})
    assert responses.calls[2].request.url == new_base + "crm.item.get"


@responses.activate
def test_redirect_to_plain_http_elsewhere_is_refused() -> None:
    responses.post(BASE + "crm.item.get", status=302, headers={"Location": "http://evil.example/rest/1/x/"})
    with pytest.raises(ValueError, match="plain http"):
        make_client().call("crm.item.get", {})


@responses.activate
def test_allow_http_on_the_client_governs_redirects() -> None:
    from connector.rest import OAuthAuth

    responses.post("https://p.example/rest/crm.item.get", status=302,
                   headers={"Location": "http://moved.example/rest/crm.item.get"})
    responses.post("http://moved.example/rest/crm.item.get", json=ok(1))
    client = Client(OAuthAuth("https://p.example/rest/", "a-tok", "r-tok", "cid", "csec"), allow_http=True,
                    bucket=LeakyBucket(1000, 1000))
    assert client.call("crm.item.get", {}).result == 1
    assert client.auth.base_url == "http://moved.example/rest/"


@responses.activate
def test_debug_logs_method_and_status_but_never_the_code(caplog: pytest.LogCaptureFixture) -> None:
    responses.post(BASE + "crm.item.get", status=503, json={"error": "QUERY_LIMIT_EXCEEDED"})
    responses.post(BASE + "crm.item.get", body=requests.ConnectionError(f"cannot reach {BASE}crm.item.get"))
    responses.post(BASE + "crm.item.get", status=400,
                   json={"error": "NOT_FOUND", "error_description": f"no item at {BASE}"})
    client = make_client()
    with caplog.at_level(logging.DEBUG, logger="b24sync.rest"), pytest.raises(NotFound) as caught:
        client.call("crm.item.get", {"id": 1})
    text = caplog.text
    assert "crm.item.get -> HTTP 503" in text and "crm.item.get -> HTTP 400" in text
    assert CODE not in text
    assert CODE not in str(caught.value) and CODE not in repr(caught.value)
    assert CODE not in repr(client) and CODE not in str(client.auth)
    assert CODE not in json.dumps(client.stats.as_dict())


def test_stats_count_per_method() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(BASE + "crm.item.get", json=ok({}))
        rsps.post(BASE + "crm.type.list", json=ok({"types": []}))
        client = make_client()
        client.call("crm.item.get", {})
        client.call("crm.item.get", {})
        client.call("crm.type.list", {})
    assert client.stats.as_dict()["per_method"] == {"crm.item.get": 2, "crm.type.list": 1}
    assert client.stats.requests == 3


# -- more retry / limit / redirect rules --------------------------------------------------------------

@pytest.mark.parametrize("status", [500, 502, 504])
@responses.activate
def test_write_answered_by_a_5xx_is_outcome_unknown(status: int) -> None:
    responses.post(BASE + "crm.item.add", status=status, json={"error": "INTERNAL_SERVER_ERROR"})
    responses.post(BASE + "crm.item.add", json=ok({"item": {"id": 2}}))
    with pytest.raises(OutcomeUnknown, match="not re-sent"):
        make_client().call("crm.item.add", {"fields": {"title": "x"}})
    assert len(responses.calls) == 1


@responses.activate
def test_final_5xx_codes_are_not_retried() -> None:
    blocked = {"error": "OVERLOAD_LIMIT", "error_description": "REST API is blocked due to overload."}
    responses.post(BASE + "crm.item.get", status=503, json=blocked)
    with pytest.raises(B24Error, match="OVERLOAD_LIMIT"):
        make_client().call("crm.item.get", {})
    assert len(responses.calls) == 1


@responses.activate
def test_429_without_a_known_reset_waits_the_fallback() -> None:
    ledger = MethodLedger(clock=lambda: 5_000.0)
    responses.post(BASE + "crm.item.list", status=429, json={"error": "OPERATION_TIME_LIMIT"})
    responses.post(BASE + "crm.item.list", json=ok({"items": []}))
    sleeper = Sleeper()
    client = make_client(sleeper, ledger=ledger, retry=RetryPolicy(limit_fallback=60.0, jitter=lambda: 1.0))
    assert client.call("crm.item.list", {}).result == {"items": []}
    assert sleeper.calls == [60.0] and client.stats.retries == 1


@responses.activate
def test_429_of_a_batch_sub_call_holds_that_method_only() -> None:
    now = [1_000.0]
    ledger = MethodLedger(clock=lambda: now[0])
    responses.post(BASE + "batch", json={"result": {
        "result": {"b": {"item": {}}},
        "result_error": {"a": {"error": "OPERATION_TIME_LIMIT", "error_description": "blocked"}},
        "result_time": {"b": time_info()}}, "time": time_info()})
    responses.post(BASE + "crm.item.list", json=ok({"items": []}))
    responses.post(BASE + "crm.item.get", json=ok({"item": {}}))
    sleeper = Sleeper()
    client = make_client(sleeper, ledger=ledger, retry=RetryPolicy(limit_fallback=30.0))
    result = client.batch({"a": ("crm.item.list", {}), "b": ("crm.item.get", {})})
    assert isinstance(result.errors["a"], OperationTimeLimit)
    client.call("crm.item.get", {})
    assert sleeper.calls == []
    client.call("crm.item.list", {})
    assert sleeper.calls == [30.0]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@responses.activate
def test_every_redirect_status_reposts_a_batch_with_its_body(status: int) -> None:
    new_base = BASE.replace("portal.bitrix24.test", "moved.bitrix24.test")
    responses.post(BASE + "batch", status=status, headers={"Location": new_base + "batch"})
    responses.post(new_base + "batch", json={"result": {"result": {"a": {"item": {"id": 1}}}},
                                             "time": time_info()})
    result = make_client().batch({"a": ("crm.item.add", {"fields": {"title": "x"}})})
    assert result.get("a") == {"item": {"id": 1}}
    first, second = (json.loads(c.request.body) for c in responses.calls)
    assert first == second and second["cmd"]["a"] == "crm.item.add?fields[title]=x"
    assert responses.calls[1].request.method == "POST"


@responses.activate
def test_relative_redirect_and_a_redirect_loop() -> None:
    moved = "https://portal.bitrix24.test/b24/rest/1/s3cretcode/"
    relative = f"/b24/rest/1/{CODE}/crm.item.get"
    responses.post(BASE + "crm.item.get", status=302, headers={"Location": relative})
    responses.post(moved + "crm.item.get", status=302, headers={"Location": moved + "crm.item.get"})
    client = make_client()
    with pytest.raises(TransportError, match="gave up after 5 redirects") as caught:
        client.call("crm.item.get", {})
    assert client.auth.base_url == moved and CODE not in str(caught.value)


@pytest.mark.parametrize("params", [[1, 2], "id=1"])
def test_params_must_be_a_mapping(params: Any) -> None:
    with pytest.raises(ValueError, match="params must be a mapping"):
        make_client().call("crm.item.get", params)
