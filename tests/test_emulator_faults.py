"""Fault injection of the emulator: spec parsing, seeded randomness, programmatic faults."""

from __future__ import annotations

import json

import pytest

from connector.emulator.faults import FaultPlan, FaultSpec, make_fault


def test_spec_from_the_issue_parses():
    spec = FaultSpec.parse("5xx=0.05,503=0.02,html=0.01,slow=0.01:2.5,drop=crm.item.add:1.0,seed=7")
    assert spec.rate_500 == pytest.approx(0.025) and spec.rate_502 == pytest.approx(0.025)
    assert (spec.rate_503, spec.rate_html, spec.rate_slow, spec.slow_seconds) == (0.02, 0.01, 0.01, 2.5)
    assert spec.drops[0].method == "crm.item.add" and spec.drops[0].rate == 1.0
    assert spec.seed == 7


def test_contract_colon_form_and_aliases_parse():
    spec = FaultSpec.parse("drop_after_write:crm.item.add:1.0,5xx:0.1")
    assert spec.drops[0].method == "crm.item.add"
    assert spec.rate_500 + spec.rate_502 == pytest.approx(0.1)
    anywrite = FaultSpec.parse("drop=0.5")
    assert anywrite.drops[0].method is None and anywrite.drops[0].rate == 0.5


@pytest.mark.parametrize("text", ["", "off", None])
def test_empty_spec_means_no_faults(text):
    plan = FaultPlan.parse(text)
    assert not plan.active
    assert all(plan.before("crm.item.add") is None for _ in range(200))
    assert not any(plan.drop_after("crm.item.add") for _ in range(200))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("explode=0.1", "unknown key 'explode'; allowed: 5xx, 500, 502, 503, html, slow, truncate, drop"),
        ("5xx=2", "5xx='2' must be a probability between 0 and 1"),
        ("503=lots", "503='lots' is not a probability"),
        ("slow=0.1:forever", "slow delay 'forever' is not a number of seconds"),
        ("drop=crm item add:0.5", "drop method 'crm item add' is not a REST method name"),
        ("seed=x", "seed='x' is not an integer"),
        ("html", "'html' is not key=value"),
    ],
)
def test_bad_spec_names_what_is_wrong_and_what_is_allowed(text, message):
    with pytest.raises(ValueError) as info:
        FaultSpec.parse(text)
    assert message in str(info.value)


def test_same_seed_same_faults_different_seed_different_faults():
    def run(seed: int) -> list[str | None]:
        plan = FaultPlan.parse("5xx=0.2,503=0.1,html=0.1,slow=0.1:1,truncate=0.1", seed=seed)
        out = []
        for _ in range(300):
            fault = plan.before("crm.item.list")
            out.append(fault.kind if fault else None)
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_rates_are_roughly_honoured():
    plan = FaultPlan.parse("503=0.2,seed=1")
    hits = sum(plan.before("crm.item.get") is not None for _ in range(5000))
    assert 850 < hits < 1150
    assert plan.injected["503"] == hits


def test_fault_shapes():
    f500 = make_fault("500")
    assert f500.replaces_response and f500.status == 500
    assert json.loads(f500.body) == {"error": "ERROR_CORE", "error_description": "SQL query error!"}
    f502 = make_fault("502")
    assert f502.status == 502 and f502.content_type == "text/html" and b"502 Bad Gateway" in f502.body
    f503 = make_fault("503")
    assert json.loads(f503.body)["error"] == "QUERY_LIMIT_EXCEEDED" and f503.status == 503
    html = make_fault("html")
    assert html.status == 200 and html.content_type.startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(html.body)
    slow = make_fault("slow", delay=3.0)
    assert not slow.replaces_response and slow.delay == 3.0
    cut = make_fault("truncate")
    body = json.dumps({"result": {"items": [{"id": i} for i in range(50)]}}).encode()
    assert not cut.replaces_response and cut.truncates
    assert body.startswith(cut.cut(body)) and len(cut.cut(body)) < len(body)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.cut(body))
    with pytest.raises(ValueError, match="allowed: 500, 502, 503, html, slow, truncate"):
        make_fault("teapot")


def test_drop_rule_for_one_method_only():
    plan = FaultPlan.parse("drop=crm.item.add:1.0")
    assert plan.drop_after("crm.item.add")
    assert plan.drop_after("CRM.ITEM.ADD")
    assert not plan.drop_after("crm.item.update")
    assert not plan.drop_after("crm.item.list")
    assert plan.injected["drop"] == 2


def test_drop_without_method_hits_writes_only():
    plan = FaultPlan.parse("drop=1.0")
    assert plan.drop_after("crm.item.update") and plan.drop_after("crm.item.delete")
    assert not plan.drop_after("crm.item.get")


def test_drop_next_n_calls_of_a_method():
    plan = FaultPlan()
    plan.drop_next("crm.item.add", n=2)
    assert plan.active
    assert not plan.drop_after("crm.item.update")
    assert [plan.drop_after("crm.item.add") for _ in range(3)] == [True, True, False]
    assert not plan.active


def test_inject_next_forces_a_kind_on_a_method_or_any():
    plan = FaultPlan()
    plan.inject_next("503", method="crm.item.list", n=1)
    assert plan.before("crm.item.get") is None
    fault = plan.before("crm.item.list")
    assert fault is not None and fault.status == 503
    assert plan.before("crm.item.list") is None
    plan.inject_next("slow", delay=0.5)
    slow = plan.before("anything.at.all")
    assert slow is not None and slow.kind == "slow" and slow.delay == 0.5
    with pytest.raises(ValueError, match="unknown fault kind"):
        plan.inject_next("kaboom")
    with pytest.raises(ValueError, match="fault count must be >= 1"):
        plan.drop_next("crm.item.add", n=0)


def test_fail_writes_after_k_writes():
    plan = FaultPlan()
    plan.fail_writes_after(2, kind="500", times=2)
    kinds = []
    for method in ["crm.item.add", "crm.item.list", "crm.item.update", "crm.item.add", "crm.item.add",
                   "crm.item.add"]:
        fault = plan.before(method)
        kinds.append(fault.status if fault else None)
    assert kinds == [None, None, None, 500, 500, None]
    with pytest.raises(ValueError, match="k must be >= 0"):
        plan.fail_writes_after(-1)


def test_fail_writes_forever_until_cleared():
    plan = FaultPlan()
    plan.fail_writes_after(0, kind="503")
    assert all(plan.before("crm.item.add") is not None for _ in range(5))
    plan.clear()
    assert plan.before("crm.item.add") is None


# -- through the emulator core and its `responses` adapter -------------------------------------
def test_dropped_response_after_the_write_was_applied():
    import requests
    import responses

    from connector.emulator import Emulator

    emu = Emulator(faults="drop=crm.item.add:1.0", clock="virtual")
    etid = emu.call("crm.type.add", {"fields": {"title": "T"}})["result"]["type"]["entityTypeId"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        url = emu.register(rsps)
        with pytest.raises(requests.ConnectionError):
            requests.post(url + "crm.item.add", json={"entityTypeId": etid, "fields": {"title": "lost"}})
        listed = requests.post(url + "crm.item.list", json={"entityTypeId": etid}).json()
    assert [i["title"] for i in listed["result"]["items"]] == ["lost"]  # the write happened


def test_injected_fault_replaces_the_response_and_the_call_does_not_run():
    from connector.emulator import Emulator

    emu = Emulator(clock="virtual")
    emu.faults.inject_next("500", method="crm.type.add")
    body = emu.call("crm.type.add", {"fields": {"title": "T"}})
    assert body.get("error") == "ERROR_CORE" and "result" not in body
    assert emu.call("crm.type.list", {})["total"] == 0
