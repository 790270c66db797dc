"""Limits of the emulator: leaky bucket (503), operating-time ledger (429), cost model."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.emulator import cost
from connector.emulator.limits import Limiter, LimitSpec

T0 = 1_767_225_600.0


# -- LimitSpec ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "capacity", "drain", "operating"),
    [
        ("off", None, 2.0, None),
        ("standard", 50.0, 2.0, 420.0),
        ("enterprise", 250.0, 5.0, 420.0),
        ("capacity=50,drain=20,operating=420", 50.0, 20.0, 420.0),
        ("capacity=10,drain=1", 10.0, 1.0, None),
        ("standard,operating=60", 50.0, 2.0, 60.0),
        ("Enterprise, operating=off", 250.0, 5.0, None),
        ("operating=5", None, 2.0, 5.0),
    ],
)
def test_limit_spec_parses_plans_and_custom_values(text, capacity, drain, operating):
    spec = LimitSpec.parse(text)
    assert (spec.capacity, spec.drain, spec.operating) == (capacity, drain, operating)
    assert LimitSpec.parse(spec.describe()) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gold", "unknown plan 'gold'; allowed: off, standard, enterprise"),
        ("capacity=abc", "capacity='abc' is not a number"),
        ("burst=5", "unknown key 'burst'; allowed: capacity, drain, operating"),
        ("drain=0", "drain must be a positive number"),
        ("capacity=-1", "capacity must be a positive number"),
        ("operating=5,standard", "plan name 'standard' must come first"),
    ],
)
def test_limit_spec_rejects_bad_input_with_a_clear_message(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LimitSpec.parse(text)


def test_off_limiter_never_refuses_and_adds_no_time_keys():
    lim = Limiter("off")
    assert not lim.active
    for _ in range(1000):
        assert lim.admit("a", T0) is None
    assert lim.check_method("a", "crm.item.list", T0) is None
    assert lim.charge("a", "crm.item.list", 10_000, T0) == {}


# -- leaky bucket ------------------------------------------------------------------------------
def test_standard_bucket_takes_50_then_refuses_with_503():
    lim = Limiter("standard")
    for _ in range(50):
        assert lim.admit("a", T0) is None
    err = lim.admit("a", T0)
    assert err is not None
    assert (err.status, err.code, err.description) == (503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
    assert lim.rejected["QUERY_LIMIT_EXCEEDED"] == 1


def test_bucket_drains_at_plan_rate():
    lim = Limiter("standard")
    for _ in range(50):
        lim.admit("a", T0)
    assert lim.admit("a", T0 + 0.4) is not None  # drained 0.8 of a request: still full
    assert lim.admit("a", T0 + 0.5) is None  # drained 1.0
    assert lim.admit("a", T0 + 0.5) is not None
    assert lim.bucket_level(T0 + 25.5) == pytest.approx(0.0)


def test_enterprise_bucket_is_bigger_and_faster():
    lim = Limiter("enterprise")
    assert sum(lim.admit("a", T0) is None for _ in range(300)) == 250
    assert sum(lim.admit("a", T0 + 1.0) is None for _ in range(10)) == 5


def test_bucket_is_per_portal_not_per_caller():
    lim = Limiter("capacity=2,drain=1")
    assert lim.admit("app", T0) is None
    assert lim.admit("webhook", T0) is None
    assert lim.admit("third", T0) is not None


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=120))
def test_sustained_rate_at_or_below_drain_is_never_refused(gaps):
    """Property: with capacity >= 1, requests spaced >= 1/drain apart always pass."""
    lim = Limiter("capacity=3,drain=2")
    now = T0
    for gap in gaps:
        now += 0.5 + gap
        assert lim.admit("a", now) is None


@settings(max_examples=60, deadline=None)
@given(times=st.lists(st.floats(min_value=0, max_value=20), min_size=1, max_size=200))
def test_admitted_requests_never_exceed_capacity_plus_drained(times):
    """Property: over any schedule, admitted <= capacity + drain * elapsed."""
    lim = Limiter("capacity=5,drain=2")
    times = sorted(T0 + t for t in times)
    admitted = sum(lim.admit("a", t) is None for t in times)
    assert admitted <= 5 + 2 * (times[-1] - times[0]) + 1e-9


def test_bucket_is_thread_safe():
    lim = Limiter("capacity=100,drain=0.001")
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            ok = lim.admit("a", T0) is None
            with lock:
                results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 100
    assert results.count(False) == 300


# -- operating-time ledger ---------------------------------------------------------------------
def test_operating_ledger_blocks_the_next_call_after_the_budget_is_exceeded():
    lim = Limiter("operating=60")
    for i in range(3):
        assert lim.check_method("hook", "crm.item.list", T0 + i) is None
        lim.charge("hook", "crm.item.list", 20.0, T0 + i)
    assert lim.check_method("hook", "crm.item.list", T0 + 3) is None  # 60 used: not over yet
    lim.charge("hook", "crm.item.list", 0.5, T0 + 3)  # the call that crosses completes
    err = lim.check_method("hook", "crm.item.list", T0 + 4)
    assert err is not None
    assert (err.status, err.code) == (429, "OPERATION_TIME_LIMIT")
    assert err.description == "Method is blocked due to operation time limit."
    # other methods and other callers keep working
    assert lim.check_method("hook", "crm.item.get", T0 + 4) is None
    assert lim.check_method("other-app", "crm.item.list", T0 + 4) is None


def test_operating_time_and_reset_are_reported_and_buckets_expire_after_ten_minutes():
    lim = Limiter("operating=100")
    t = 1_767_225_630.0  # 30 s into a minute
    keys = lim.charge("a", "crm.item.list", 1.5, t)
    minute = int(t // 60) * 60
    assert keys == {"operating_reset_at": minute + 600, "operating": 1.5}
    keys = lim.charge("a", "crm.item.list", 2.0, t + 120)
    assert keys["operating"] == pytest.approx(3.5)
    assert keys["operating_reset_at"] == minute + 600  # the oldest bucket decides
    assert lim.operating("a", "crm.item.list", minute + 599) == pytest.approx(3.5)
    assert lim.operating("a", "crm.item.list", minute + 600) == pytest.approx(2.0)
    assert lim.operating("a", "crm.item.list", minute + 720) == pytest.approx(0.0)


def test_blocked_method_recovers_when_its_buckets_expire():
    lim = Limiter("operating=10")
    lim.charge("a", "crm.item.add", 11, T0)
    assert lim.check_method("a", "crm.item.add", T0 + 60) is not None
    assert lim.check_method("a", "crm.item.add", T0 + 600) is None


def test_outer_batch_is_not_counted_but_sub_calls_are():
    lim = Limiter("operating=5")
    keys = lim.charge("a", "batch", 100.0, T0)
    assert keys["operating"] == 0
    assert lim.check_method("a", "batch", T0) is None
    lim.charge("a", "crm.item.get", 6.0, T0)
    assert lim.check_method("a", "crm.item.get", T0) is not None
    assert lim.check_method("a", "BATCH", T0) is None


def test_method_names_are_case_insensitive_in_the_ledger():
    lim = Limiter("operating=5")
    lim.charge("a", "CRM.ITEM.LIST", 6.0, T0)
    assert lim.check_method("a", "crm.item.list", T0) is not None


def test_configure_switches_spec_and_forgets_state():
    lim = Limiter("capacity=1,drain=0.001,operating=1")
    lim.admit("a", T0)
    lim.charge("a", "m", 5, T0)
    lim.configure("off")
    assert lim.admit("a", T0) is None and lim.check_method("a", "m", T0) is None


# -- cost model --------------------------------------------------------------------------------
def test_counting_and_offset_paging_grow_with_table_size_keyset_does_not():
    p = {"entityTypeId": 1032}
    small_count = cost.estimate("crm.item.list", p, 1_000, counted=True, offset=0)
    big_count = cost.estimate("crm.item.list", p, 1_000_000, counted=True, offset=0)
    assert big_count > small_count * 50
    deep = cost.estimate("crm.item.list", p, 1_000_000, counted=False, offset=900_000)
    shallow = cost.estimate("crm.item.list", p, 1_000_000, counted=False, offset=0)
    assert deep > shallow * 20
    k_small = cost.estimate("crm.item.list", p, 1_000, counted=False, offset=0)
    k_big = cost.estimate("crm.item.list", p, 1_000_000, counted=False, offset=0)
    assert k_small == k_big


def test_cost_matches_the_documented_order_of_magnitude():
    """Docs (huge-data.md): 2.39M rows, 49.9 s per page with counting, 0.097 s without."""
    rows = 2_387_743
    counted = cost.estimate("crm.item.list", {}, rows, counted=True, offset=0)
    keyset = cost.estimate("crm.item.list", {}, rows, counted=False, offset=0)
    assert 20 < counted < 100
    assert 0.01 < keyset < 0.3


def test_writes_cost_more_than_reads_and_nothing_is_negative():
    add = cost.estimate("crm.item.add", {}, 10, counted=False, offset=0)
    get = cost.estimate("crm.item.get", {}, 10, counted=False, offset=0)
    assert add > get > 0
    assert cost.estimate("crm.item.list", {}, 0, counted=True, offset=-1) > 0


def test_cost_by_method_summarises_a_request_log():
    class Entry:
        def __init__(self, method: str, c: float) -> None:
            self.method, self.cost = method, c

    log = [Entry("crm.item.list", 0.5), Entry("crm.item.list", 0.25), Entry("crm.item.add", 0.1)]
    summary = cost.cost_by_method(log)
    assert summary["crm.item.list"] == {"calls": 2, "seconds": 0.75}
    assert summary["crm.item.add"] == {"calls": 1, "seconds": 0.1}
    assert list(summary) == ["crm.item.list", "crm.item.add"]  # most expensive first


def test_cost_model_scale_multiplies_everything():
    fast = cost.CostModel(scale=0.001)
    assert fast.estimate("crm.item.list", {}, 1000, counted=True, offset=0) == pytest.approx(
        cost.estimate("crm.item.list", {}, 1000, counted=True, offset=0) * 0.001
    )


# -- through the emulator core -----------------------------------------------------------------
def test_emulator_applies_bucket_ledger_and_cost_per_call():
    from connector.emulator import Emulator

    emu = Emulator(limits="capacity=5,drain=1,operating=0.05", clock="virtual")
    smart = emu.call("crm.type.add", {"fields": {"title": "T"}})["result"]["type"]
    emu.seed_items(smart["entityTypeId"], 500)
    body = emu.call("crm.item.list", {"entityTypeId": smart["entityTypeId"], "start": 0})
    assert set(body["time"]) >= {"operating", "operating_reset_at"} and body["time"]["operating"] > 0
    etid = smart["entityTypeId"]
    errors = [emu.call("crm.item.list", {"entityTypeId": etid}).get("error") for _ in range(4)]
    # a counted page over 500 rows costs more than the 0.05 s budget: the next calls get 429, and the
    # sixth request overflows the 5-request bucket (503), which is checked first
    assert errors == ["OPERATION_TIME_LIMIT"] * 3 + ["QUERY_LIMIT_EXCEEDED"]
    emu.clock.advance(700)
    assert "result" in emu.call("crm.item.list", {"entityTypeId": smart["entityTypeId"], "start": -1})
    summary = emu.cost_by_method()
    assert summary["crm.item.list"]["calls"] >= 2 and summary["crm.item.list"]["seconds"] > 0
