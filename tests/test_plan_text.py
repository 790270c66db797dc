"""`print(portal.plan(...).render())` prints the plan as text, as the README's Python example does.

It used to print `<rich.console.Group object at 0x...>`; the rendering is still a rich renderable
for the CLI's coloured tables, and its `str()` is the same tables as plain text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from connector import Portal
from connector.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parents[1]
HR = ROOT / "mappings" / "hr_candidates.toml"


def test_print_of_a_plan_is_text(live_emulator: EmulatorServer, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    with Portal.from_webhook(live_emulator.webhook_url, store=tmp_path / "p.db") as portal:
        rendering = portal.plan(HR).render()
        print(rendering)
    out = capsys.readouterr().out
    assert "object at 0x" not in out and "\x1b[" not in out  # no repr, no colour codes
    assert "plan for 127.0.0.1:" in out and "create" in out and "type candidate" in out
    assert "Manual steps (REST cannot set CRM role permissions; not applied):" in out
    assert str(rendering) == rendering.to_text() and out == str(rendering) + "\n"


def test_the_rendering_is_still_a_rich_renderable(live_emulator: EmulatorServer, tmp_path: Path) -> None:
    with Portal.from_webhook(live_emulator.webhook_url, store=tmp_path / "p.db") as portal:
        rendering = portal.plan(HR).render()
    console = Console(width=200, force_terminal=True, color_system="standard")
    with console.capture() as captured:
        console.print(rendering)
    shown = captured.get()
    assert "\x1b[" in shown  # coloured actions on a terminal
    assert "plan for 127.0.0.1:" in shown


def test_drift_and_an_empty_plan_print_as_text(live_emulator: EmulatorServer, tmp_path: Path) -> None:
    with Portal.from_webhook(live_emulator.webhook_url, store=tmp_path / "p.db") as portal:
        portal.apply(HR)
        again = str(portal.plan(HR).render())
        drift = str(portal.drift().render())
    assert again.startswith("nothing to do on 127.0.0.1:")
    assert drift.startswith("no drift on 127.0.0.1:")


def test_text_width_is_a_choice(live_emulator: EmulatorServer, tmp_path: Path) -> None:
    with Portal.from_webhook(live_emulator.webhook_url, store=tmp_path / "p.db") as portal:
        rendering = portal.plan(HR).render()
    narrow = rendering.to_text(width=60)
    assert max(len(line) for line in narrow.splitlines()) <= 60
    assert max(len(line) for line in str(rendering).splitlines()) <= 120
