"""`EmulatorFactory`: fresh emulators for one test, in-process, on `responses` or on a loopback socket."""

from __future__ import annotations

from typing import Any

import responses

from connector.emulator import Emulator, EmulatorServer, serve


class EmulatorFactory:
    """Makes emulators (limits off and a virtual clock unless told otherwise) and stops what it started."""

    def __init__(self) -> None:
        self._servers: list[EmulatorServer] = []
        self._mocks: list[responses.RequestsMock] = []

    def __call__(self, **options: Any) -> Emulator:
        """A fresh portal; `options` go to `Emulator(...)` (e.g. `limits="standard"`, `seed=7`)."""
        return Emulator(**{"limits": "off", "clock": "virtual", **options})

    def on_responses(self, emulator: Emulator | None = None) -> str:
        """Serve `emulator` (or a new one) on an active `responses` mock; returns its webhook URL."""
        mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        mock.start()
        self._mocks.append(mock)
        return (emulator or self()).register(mock)

    def serve(self, emulator: Emulator | None = None) -> EmulatorServer:
        """Serve `emulator` (or a new one) on 127.0.0.1, any free port; `.webhook_url` is its URL."""
        server = serve(emulator or self(), "127.0.0.1", 0)
        self._servers.append(server)
        return server

    def close(self) -> None:
        """Stop every server and mock this factory started, newest first."""
        while self._servers:
            self._servers.pop().stop()
        while self._mocks:
            mock = self._mocks.pop()
            mock.stop()
            mock.reset()
