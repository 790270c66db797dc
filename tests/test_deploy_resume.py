"""apply interrupted after EVERY write call of EVERY shipped template resumes without duplicates.

A cheap harness keeps the sweep fast: the client's `requests.Session` is replaced by one that hands
the request straight to the emulator's HTTP router (no `responses` registry, no socket), and one
store file holds every run (each run is a different portal host, hence its own id map).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from connector.deploy import apply
from connector.emulator import Emulator
from connector.emulator.server import route
from connector.rest import Client, OutcomeUnknown, TransportError
from connector.rest.retry import RetryPolicy
from connector.store import Store
from connector.templates import Template, load_templates

MAPPINGS = sorted(Path(__file__).resolve().parent.parent.joinpath("mappings").glob("*.toml"))
READS = ("list", "get", "fields")


def is_write(method: str) -> bool:
    return method.rsplit(".", 1)[-1] not in READS


class InProcessSession(requests.Session):
    """Sends each POST straight to `route(emulator, ...)`; after `crash_after` write sub-calls, the
    batch holding that write is cut after it, executed, and its answer lost (as is everything later)."""

    def __init__(self, emu: Emulator, base: str, crash_after: int | None = None) -> None:
        super().__init__()
        self.emu, self.base = emu, base
        self.left = crash_after
        self.crashed = False

    def post(self, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self.crashed:
            raise requests.ConnectionError("connection lost (injected)")
        body = kwargs.get("json") or {}
        lose = False
        if self.left is not None:
            if str(url).rstrip("/").endswith("/batch"):
                kept: dict[str, str] = {}
                for key, cmd in body["cmd"].items():
                    kept[key] = cmd
                    if is_write(cmd.split("?", 1)[0]):
                        self.left -= 1
                        if self.left == 0:
                            break
                body = {**body, "cmd": kept}
            elif is_write(str(url).rstrip("/").rsplit("/", 1)[-1]):
                self.left -= 1
            lose = self.left <= 0
        parts = urlsplit(str(url))
        raw = json.dumps(body).encode("utf-8")
        answer = route(self.emu, "POST", parts.path, parts.query, raw, "application/json", self.base)
        if lose:
            self.crashed = True
            raise requests.ConnectionError("connection lost after a write (injected)")
        response = requests.Response()
        response.status_code = answer.status
        response._content = answer.body
        response.headers["Content-Type"] = answer.content_type
        response.url = str(url)
        return response


def client_for(emu: Emulator, host: str, crash_after: int | None = None) -> Client:
    base = f"https://{host}"
    session = InProcessSession(emu, base, crash_after)
    retry = RetryPolicy(max_attempts=1) if crash_after is not None else RetryPolicy()
    return Client.from_webhook(emu.webhook_url(base), session=session, retry=retry)


def portal_shape(emu: Emulator) -> list[Any]:
    """Everything deploy shapes, without ids, as sorted lists (a duplicate shows up as an extra entry)."""
    out = []
    for t in emu.call("crm.type.list", {})["result"]["types"]:
        etid = t["entityTypeId"]
        full = emu.call("crm.type.get", {"id": t["id"]})["result"]["type"]
        fields = emu.call(
            "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{t['id']}"}}
        )["result"]["fields"]
        field_shape = []
        for f in fields:
            enum = emu.call("userfieldconfig.get", {"moduleId": "crm", "id": f["id"]})["result"]["field"]
            options = sorted((o["xmlId"], o["value"]) for o in enum.get("enum") or [])
            field_shape.append((f["fieldName"].split("_", 3)[-1], f["userTypeId"], f["xmlId"], options))
        funnels = []
        for c in emu.call("crm.category.list", {"entityTypeId": etid})["result"]["categories"]:
            rows = emu.call("crm.status.list", {"filter": {"ENTITY_ID": f"DYNAMIC_{etid}_STAGE_{c['id']}"}})[
                "result"
            ]
            stages = sorted(
                (int(r["SORT"]), r["STATUS_ID"].split(":")[1], r["NAME"], r["COLOR"]) for r in rows
            )
            funnels.append((c["name"], c["isDefault"], stages))
        card = emu.call("crm.item.details.configuration.get", {"entityTypeId": etid, "scope": "C"})["result"]
        relations = sorted(
            (side, r["entityTypeId"] - etid if r["entityTypeId"] >= 1000 else r["entityTypeId"])
            for side in ("parent", "child")
            for r in full["relations"][side]
        )
        flags = sorted((k, v) for k, v in full.items() if k.startswith("is"))
        out.append((t["title"], t["code"], flags, relations, sorted(field_shape), sorted(funnels), card))
    return sorted(out, key=lambda x: json.dumps(x, ensure_ascii=False, default=str))


def with_related(code: str, templates: list[Template]) -> list[Template]:
    """The template `code` plus the processes it relates or links to (they are applied together)."""
    by_code = {t.code: t for t in templates}
    chosen = [by_code[code]]
    for t in chosen:
        targets = [r.target for r in t.relations.parents + t.relations.children]
        targets += [x for f in t.fields for x in f.targets]
        chosen += [by_code[x] for x in targets if x in by_code and by_code[x] not in chosen]
    return chosen


def write_subcalls(emu: Emulator) -> int:
    return sum(1 for e in emu.request_log if is_write(e.method) and e.method != "batch")


ALL = load_templates(MAPPINGS)
# Applied together, these groups hold every write of every shipped template (a child and the
# process it points at must be applied together anyway).
GROUPS = {
    "contract": ["contract", "production_order"],
    "work_order": ["work_order", "car"],
    "candidate": ["candidate"],
}
FULL_REAPPLY_EVERY = 8


def idmap_keys(store: Store, portal: str) -> list[tuple[str, str]]:
    return sorted((e.kind, e.code) for e in store.idmap.all(portal))


def test_groups_cover_every_shipped_template() -> None:
    covered = {code for codes in GROUPS.values() for code in codes}
    assert covered == {t.code for t in ALL}
    for name, codes in GROUPS.items():
        assert sorted(t.code for t in with_related(name, ALL)) == sorted(codes)


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_apply_interrupted_after_each_write_resumes_without_duplicates(name: str, tmp_path: Path) -> None:
    chosen = with_related(name, ALL)
    store = Store.open(tmp_path / "sweep.db")
    clean = Emulator()
    apply(client_for(clean, "clean.test"), chosen, store)
    expected, total = portal_shape(clean), write_subcalls(clean)
    expected_ids = idmap_keys(store, "clean.test")
    assert total > 5
    assert len(expected) == len(chosen)
    for k in range(1, total + 1):
        emu = Emulator()
        host = f"k{k}.test"
        with pytest.raises((TransportError, OutcomeUnknown)):  # any transport error ends the first run
            apply(client_for(emu, host, crash_after=k), chosen, store)
        assert write_subcalls(emu) == k, "the crash must come right after write call k"
        resumed = apply(client_for(emu, host), chosen, store)
        assert resumed.converged, (k, resumed.remaining)
        assert portal_shape(emu) == expected, f"after an interruption at write {k} of {total}"
        assert idmap_keys(store, host) == expected_ids, k
        if k % FULL_REAPPLY_EVERY == 0 or k == total:
            assert apply(client_for(emu, host), chosen, store).write_calls == 0, k


def test_harness_counts_single_calls_and_cuts_batches() -> None:
    """The crashing session really stops after the k-th write and loses its answer."""
    emu = Emulator()
    client = client_for(emu, "h.test", crash_after=2)
    client.call("crm.type.list", {})
    with pytest.raises((TransportError, OutcomeUnknown)):  # the lost answer surfaces as a transport error
        client.batch(
            {
                "a": ("crm.type.add", {"fields": {"title": "A"}}),
                "b": ("crm.type.add", {"fields": {"title": "B"}}),
                "c": ("crm.type.add", {"fields": {"title": "C"}}),
            }
        )
    assert [t["title"] for t in emu.call("crm.type.list", {})["result"]["types"]] == ["A", "B"]
    with pytest.raises(requests.ConnectionError):
        client.session.post(emu.webhook_url("https://h.test") + "crm.type.list", json={})
