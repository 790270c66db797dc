"""Shared fixtures: a fresh emulator, the emulator on `responses`, a real loopback emulator, and a factory.

The helpers behind them live in `tests/support/` (the vendored doc fixtures, `EmulatorFactory`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from support.emulators import EmulatorFactory

from connector.emulator import Emulator, EmulatorServer


@pytest.fixture(autouse=True, scope="session")
def _no_store_left_in_the_checkout() -> Iterator[None]:
    """Issue 15: a test run leaves no store file (data/*.db) in the checkout; fails the run's last test."""
    data = Path(__file__).resolve().parent.parent / "data"
    before = set(data.glob("*.db*"))
    yield
    left = sorted(str(p) for p in set(data.glob("*.db*")) - before)
    assert not left, f"tests left store files in the checkout: {left}"


@pytest.fixture()
def make_emulator() -> Iterator[EmulatorFactory]:
    """A factory of fresh emulators: `make_emulator(seed=7)`, `.on_responses(emu)`, `.serve(emu)`;
    every mock and server it started is stopped at teardown."""
    factory = EmulatorFactory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture()
def emulator(make_emulator: EmulatorFactory) -> Emulator:
    """A fresh portal: limits off, no faults, virtual clock, portal offset +03:00."""
    return make_emulator()


@pytest.fixture()
def emu_url(emulator: Emulator, make_emulator: EmulatorFactory) -> str:
    """The `emulator` fixture served on an active `responses.RequestsMock`; the webhook URL."""
    return make_emulator.on_responses(emulator)


@pytest.fixture()
def live_emulator(emulator: Emulator, make_emulator: EmulatorFactory) -> EmulatorServer:
    """The `emulator` fixture on a real 127.0.0.1 socket (`.webhook_url`); stopped at teardown."""
    return make_emulator.serve(emulator)


# Hypothesis: random examples while developing; under CI (CI=true) the same examples every run, so a
# green build stays green and a failure always reproduces. No deadlines: the machine is shared.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
