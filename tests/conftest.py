"""Shared fixtures: a fresh emulator, the emulator on `responses`, a real loopback emulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses
from hypothesis import settings

from connector.emulator import Emulator, EmulatorServer, serve


@pytest.fixture(autouse=True, scope="session")
def _no_store_left_in_the_checkout() -> Iterator[None]:
    """Issue 15: a test run leaves no store file (data/*.db) in the checkout; fails the run's last test."""
    data = Path(__file__).resolve().parent.parent / "data"
    before = set(data.glob("*.db*"))
    yield
    left = sorted(str(p) for p in set(data.glob("*.db*")) - before)
    assert not left, f"tests left store files in the checkout: {left}"


@pytest.fixture()
def emulator() -> Emulator:
    """A fresh portal: limits off, no faults, virtual clock, portal offset +03:00."""
    return Emulator(limits="off", clock="virtual")


@pytest.fixture()
def emu_url(emulator: Emulator) -> Iterator[str]:
    """The `emulator` fixture served on an active `responses.RequestsMock`; yields the webhook URL."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield emulator.register(rsps)


@pytest.fixture()
def live_emulator(emulator: Emulator) -> Iterator[EmulatorServer]:
    """The `emulator` fixture on a real 127.0.0.1 socket (`.webhook_url`); stopped at teardown."""
    server = serve(emulator, "127.0.0.1", 0)
    try:
        yield server
    finally:
        server.stop()


# Hypothesis: random examples while developing; under CI (CI=true) the same examples every run, so a
# green build stays green and a failure always reproduces. No deadlines: the machine is shared.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
