"""Recognising our processes: type `code` where the portal keeps it, field markers or title where not."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from test_deploy_resume import InProcessSession, portal_shape, write_subcalls

from connector.deploy import apply, plan
from connector.emulator import Emulator
from connector.rest import Client, OutcomeUnknown, TransportError
from connector.rest.retry import RetryPolicy
from connector.store import Store
from connector.templates import load_template

HR = "mappings/hr_candidates.toml"


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "code" or "entityTypeId" not in value}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


class NoCodeClient(Client):
    """A portal whose crm.type has no `code`: the key is dropped from writes and from answers."""

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        params = dict(params or {})
        if method.startswith("crm.type.") and isinstance(params.get("fields"), dict):
            params["fields"] = {k: v for k, v in params["fields"].items() if k != "code"}
        response = super().call(method, params)
        if method.startswith("crm.type."):
            response.result = _strip(response.result)
        return response

    def batch(self, commands: Mapping[str, Any], halt: bool = False) -> Any:
        clean = {}
        for label, (method, params) in commands.items():
            if method.startswith("crm.type.") and isinstance(params.get("fields"), dict):
                params = {**params, "fields": {k: v for k, v in params["fields"].items() if k != "code"}}
            clean[label] = (method, params)
        result = super().batch(clean, halt=halt)
        for label, (method, _) in commands.items():
            if method.startswith("crm.type.") and label in result.results:
                result.results[label] = _strip(result.results[label])
        return result


def no_code_client(emu: Emulator, host: str, crash_after: int | None = None) -> NoCodeClient:
    base = f"https://{host}"
    retry = RetryPolicy(max_attempts=1) if crash_after is not None else RetryPolicy()
    return NoCodeClient.from_webhook(
        emu.webhook_url(base), session=InProcessSession(emu, base, crash_after), retry=retry
    )


def codes_on(emu: Emulator) -> list[str]:
    return [t["code"] for t in emu.call("crm.type.list", {})["result"]["types"]]


def test_the_emulator_keeps_the_type_code_like_the_portal() -> None:
    """crm.type.fields lists `code` (writable string); get/list return it ("" when unset)."""
    emu = Emulator()
    fields = emu.call("crm.type.fields", {})["result"]["fields"]
    assert fields["code"]["type"] == "string" and not fields["code"]["isReadOnly"]
    emu.call("crm.type.add", {"fields": {"title": "Без кода"}})
    emu.call("crm.type.add", {"fields": {"title": "С кодом", "code": "with_code"}})
    assert [c or "" for c in codes_on(emu)] == ["", "with_code"]


def test_where_the_portal_keeps_codes_the_code_is_the_marker(tmp_path: Path) -> None:
    emu = Emulator()
    client = Client.from_webhook(
        emu.webhook_url("https://a.test"), session=InProcessSession(emu, "https://a.test")
    )
    t = load_template(HR)
    apply(client, [t], Store.open(tmp_path / "a.db"))
    assert codes_on(emu) == ["candidate"]
    type_id = emu.call("crm.type.list", {})["result"]["types"][0]["id"]
    emu.call("crm.type.update", {"id": type_id, "fields": {"title": "Соискатели"}})  # renamed by hand
    p = plan(client, [t], Store.open(tmp_path / "fresh.db"))  # id map lost
    assert p.processes[0].matched_by == "code" and p.processes[0].owned
    assert [(c.kind, c.action) for c in p.changes if c.actionable] == [("type", "update")]


def test_a_same_titled_process_without_our_code_is_existing_not_ours(tmp_path: Path) -> None:
    """A hand-made «Кандидаты» is taken over additively: its default stages are not deleted."""
    emu = Emulator()
    emu.call("crm.type.add", {"fields": {"title": "Кандидаты", "isStagesEnabled": "Y"}})
    client = Client.from_webhook(
        emu.webhook_url("https://a.test"), session=InProcessSession(emu, "https://a.test")
    )
    p = plan(client, [load_template(HR)], Store.open(tmp_path / "a.db"))
    proc = p.processes[0]
    assert proc.matched_by == "title" and not proc.owned
    assert ("type", "update", "code") in {(c.kind, c.action, d.attr) for c in p.changes for d in c.diffs}
    kept = [
        c for c in p.changes if c.kind == "stage" and c.action == "delete" and c.code.startswith("hiring.")
    ]
    assert {c.code for c in kept} == {"hiring.PREPARATION", "hiring.CLIENT"} and all(c.blocked for c in kept)
    created = [
        c for c in p.changes if c.kind == "stage" and c.action == "delete" and c.code.startswith("reserve.")
    ]
    assert created and not any(c.blocked for c in created)  # the reserve funnel is new: shaped fully


def test_without_type_codes_our_field_markers_find_the_process(tmp_path: Path) -> None:
    emu = Emulator()
    client = no_code_client(emu, "nocode.test")
    t = load_template(HR)
    first = apply(client, [t], Store.open(tmp_path / "a.db"))
    assert first.converged and not any(codes_on(emu))
    assert apply(client, [t], Store.open(tmp_path / "a.db")).write_calls == 0
    type_id = emu.call("crm.type.list", {})["result"]["types"][0]["id"]
    emu.call("crm.type.update", {"id": type_id, "fields": {"title": "Соискатели"}})
    emu.call("crm.type.add", {"fields": {"title": "Кандидаты"}})  # a stranger now has our title
    p = plan(client, [t], Store.open(tmp_path / "lost.db"))  # id map lost: only markers are left
    assert p.processes[0].matched_by == "marker" and p.processes[0].type_id == type_id
    assert [(c.kind, c.action) for c in p.changes if c.actionable] == [("type", "update")]


@pytest.mark.parametrize("k", [1, 2, 5])
def test_without_type_codes_an_interrupted_create_resumes_without_duplicates(k: int, tmp_path: Path) -> None:
    t = load_template(HR)
    clean = Emulator()
    apply(no_code_client(clean, "clean.test"), [t], Store.open(tmp_path / "clean.db"))
    emu = Emulator()
    store = Store.open(tmp_path / "a.db")
    with pytest.raises((TransportError, OutcomeUnknown)):  # the lost answer ends the first run
        apply(no_code_client(emu, "a.test", crash_after=k), [t], store)
    assert write_subcalls(emu) == k
    resumed = apply(no_code_client(emu, "a.test"), [t], store)
    assert resumed.converged, resumed.remaining
    assert portal_shape(emu) == portal_shape(clean)
