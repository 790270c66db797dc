"""Leaky bucket (thread-safe, mirrors the server) and the per-method operating-time ledger."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import responses
from test_rest_support import BASE, time_info

from connector.rest import Client, RetryPolicy
from connector.rest.limits import LeakyBucket, MethodLedger, plan_limits


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_plans_come_from_constants() -> None:
    assert plan_limits("standard") == (50, 2.0) and plan_limits("enterprise") == (250, 5.0)
    with pytest.raises(ValueError, match="unknown plan 'gold'; allowed plans are enterprise, standard"):
        plan_limits("gold")


def test_bucket_lets_a_burst_of_capacity_through_then_paces_at_drain() -> None:
    fake = FakeTime()
    bucket = LeakyBucket(50, 2.0, clock=fake.clock, sleep=fake.sleep, latency=0)
    waits = [bucket.acquire() for _ in range(54)]
    assert waits[:50] == [0.0] * 50
    assert waits[50:] == pytest.approx([0.5, 0.5, 0.5, 0.5])
    assert fake.now == pytest.approx(2.0)


def test_bucket_keeps_headroom_for_late_arrivals() -> None:
    fake = FakeTime()
    bucket = LeakyBucket(50, 2.0, clock=fake.clock, sleep=fake.sleep)
    assert bucket.headroom == 1.0
    waits = [bucket.acquire() for _ in range(50)]
    assert waits[:49] == [0.0] * 49 and waits[49] == pytest.approx(0.5)
    assert LeakyBucket(50, 20.0).headroom == 5.0 and LeakyBucket(4, 100.0).headroom == 2.0


def test_bucket_drains_while_idle() -> None:
    fake = FakeTime()
    bucket = LeakyBucket(10, 5.0, clock=fake.clock, sleep=fake.sleep, latency=0)
    for _ in range(10):
        bucket.acquire()
    fake.now += 1.0
    assert bucket.level == pytest.approx(5.0)
    assert [bucket.acquire() for _ in range(5)] == [0.0] * 5
    assert bucket.acquire() == pytest.approx(0.2)


def test_saturate_makes_the_next_request_wait() -> None:
    fake = FakeTime()
    bucket = LeakyBucket(50, 2.0, clock=fake.clock, sleep=fake.sleep, latency=0)
    bucket.saturate()
    assert bucket.acquire() == pytest.approx(0.5)


def test_bad_bucket_settings() -> None:
    with pytest.raises(ValueError, match="capacity >= 1, drain > 0"):
        LeakyBucket(0, 2)


def test_bucket_is_safe_under_threads() -> None:
    """8 threads x 12 requests: sends never outrun capacity + drain x elapsed."""
    capacity, drain = 6, 60.0
    bucket = LeakyBucket(capacity, drain, latency=0)
    sent: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(12):
            bucket.acquire()
            with lock:
                sent.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    sent.sort()
    assert len(sent) == 96
    for i, start in enumerate(sent):
        for j in range(i, len(sent)):
            allowed = capacity + drain * (sent[j] - start) + 1
            assert j - i + 1 <= allowed + 1e-6
    assert sent[-1] - sent[0] >= (96 - capacity) / drain * 0.9


class ServerBucket:
    """The portal's bucket: +1 per request, drains by `drain`/s, 503 above `capacity`."""

    def __init__(self, capacity: float, drain: float) -> None:
        self.capacity, self.drain = capacity, drain
        self.level, self.at = 0.0, time.monotonic()
        self.lock = threading.Lock()
        self.rejected = 0
        self.accepted = 0

    def admit(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.level = max(0.0, self.level - (now - self.at) * self.drain)
            self.at = now
            if self.level + 1 > self.capacity:
                self.rejected += 1
                return False
            self.level += 1
            self.accepted += 1
            return True


def test_threads_sharing_one_client_never_see_503() -> None:
    server = ServerBucket(20, 40.0)

    def answer(request: Any) -> tuple[int, dict, str]:
        if not server.admit():
            return 503, {}, json.dumps({"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many"})
        return 200, {}, json.dumps({"result": True, "time": time_info()})

    client = Client.from_webhook(BASE, bucket=LeakyBucket(20, 40.0), retry=RetryPolicy(max_attempts=1))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(8):
                client.call("crm.item.get", {"id": 1})
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, BASE + "crm.item.get", callback=answer)
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == [] and server.rejected == 0 and server.accepted == 64
    assert client.stats.requests == 64 and client.stats.waited_seconds > 0


def test_ledger_uses_server_operating_and_reset() -> None:
    fake = FakeTime()
    ledger = MethodLedger(threshold=420, margin=20, clock=fake.clock)
    ledger.record("crm.item.list", {"operating": 399.0, "operating_reset_at": 300.0})
    assert ledger.pause_needed("crm.item.list") == 0.0
    ledger.record("crm.item.list", {"operating": 401.0, "operating_reset_at": 300.0})
    assert ledger.pause_needed("crm.item.list") == 300.0
    assert ledger.pause_needed("crm.item.add") == 0.0
    fake.now = 300.0
    assert ledger.pause_needed("crm.item.list") == 0.0


def test_ledger_without_reset_time_waits_for_the_oldest_charge_to_leave_the_window() -> None:
    fake = FakeTime()
    ledger = MethodLedger(threshold=60, margin=0, window=600, clock=fake.clock)
    ledger.charge("crm.item.add", {"processing": 40.0})
    fake.now = 100.0
    ledger.charge("crm.item.add", {"duration": 25.0, "processing": 0})
    assert ledger.used("crm.item.add") == 65.0
    assert ledger.pause_needed("crm.item.add") == 500.0
    fake.now = 600.0
    assert ledger.used("crm.item.add") == 25.0 and ledger.pause_needed("crm.item.add") == 0.0


def test_ledger_block_after_429() -> None:
    fake = FakeTime()
    ledger = MethodLedger(clock=fake.clock)
    ledger.block("crm.item.list", 50.0)
    assert ledger.pause_needed("crm.item.list") == 50.0
    fake.now = 51.0
    assert ledger.pause_needed("crm.item.list") == 0.0


def test_ledger_ignores_missing_or_odd_time_objects() -> None:
    ledger = MethodLedger()
    ledger.record("m", None)
    ledger.charge("m", {"processing": "n/a"})
    ledger.record("m", {"operating": "x"})
    assert ledger.used("m") == 0.0 and ledger.pause_needed("m") == 0.0
