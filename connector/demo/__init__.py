"""The demo story on the emulator: deploy the shipped templates, sync both ways for a few days, report.

Everything goes through the public pieces a user would use: a loopback emulator server, the REST
client, `deploy.apply`, plain SQL edits of the local store, `sync.sync`, and the exports/reports.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connector.api import Portal
from connector.config import portal_key
from connector.emulator import Emulator, serve
from connector.emulator.clock import VirtualClock
from connector.reports import report
from connector.rest import Client, LeakyBucket
from connector.store import Store
from connector.templates import Field, Template, load_templates
from connector.times import utc_text

DAY = 86_400.0
WORDS = ["Иванов", "Петрова", "Сидоров", "Кузнецова", "Смирнов", "Волкова", "Орлов", "Зайцева"]
CITIES = ["Москва", "Санкт-Петербург", "Казань", "Екатеринбург", "Новосибирск", "Самара"]

Say = Callable[[str], None]


@dataclass
class DemoResult:
    """What the demo did, for the summary table and `--json`."""

    webhook_url: str
    store: str
    outputs: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def step(self, name: str, **figures: Any) -> None:
        self.steps.append({"step": name, **figures})


def run_demo(
    mappings: Path,
    out: Path,
    *,
    days: int = 6,
    items: int = 12,
    seed: int = 7,
    say: Say = print,
) -> DemoResult:
    """Run the whole story against a fresh loopback emulator; files go to `out`."""
    rng = random.Random(seed)
    templates = load_templates(sorted(mappings.glob("*.toml")))
    out.mkdir(parents=True, exist_ok=True)
    db = out / "demo.db"
    for stale in (db, out / "demo.db-wal", out / "demo.db-shm"):
        stale.unlink(missing_ok=True)
    clock = VirtualClock(start=datetime.now(UTC).timestamp() - (days + 1) * DAY)
    server = serve(Emulator(limits="off", clock=clock, seed=seed))
    try:
        return _story(server.webhook_url, templates, db, out, clock, rng, days, items, say)
    finally:
        server.stop()


def _story(url: str, templates: list[Template], db: Path, out: Path, clock: VirtualClock,
           rng: random.Random, days: int, items: int, say: Say) -> DemoResult:
    # the demo's emulator runs with limits off, so the client mirrors no limit either (else it sleeps
    # through the standard plan's 2 requests/s for no reason)
    client = Client.from_webhook(url, bucket=LeakyBucket(capacity=1_000_000, drain=1_000_000))
    key = portal_key(url)
    result = DemoResult(webhook_url=url, store=str(db))
    say(f"emulator listening at {url}")
    with Store.open(db) as store:
        api = Portal(None, client, store=store, key=key, policy="merge", name="demo")
        first = api.plan(templates)
        applied = api.apply(templates)  # also creates the local tables, as `b24sync apply` does
        again = api.apply(templates)
        say(f"apply: {applied.write_calls} writes in {applied.requests} requests; "
            f"re-apply: {again.write_calls} writes in {again.requests} requests")
        result.step("apply", changes=len(first.changes), requests=applied.requests,
                    reapply_writes=again.write_calls, reapply_requests=again.requests)
        local = _insert_local_rows(db, templates, rng, items)
        say(f"inserted {local} rows with plain SQL into {db}")
        report_ = api.sync(templates)
        result.step("first sync", pushed=report_.pushed, pulled=report_.pulled, requests=report_.requests)
        say(f"first sync: pushed {report_.pushed}, pulled {report_.pulled}")
        portal = PortalSide(client, store, key, rng)
        for day in range(1, days + 1):
            clock.advance(DAY * rng.uniform(0.6, 1.4))
            moved = portal.move_stages(templates)
            created = portal.create_items(templates, 1)
            edited = _local_edits(db, templates, rng)
            daily = api.sync(templates, full=(day == days))
            result.step(f"day {day}", portal_moves=moved, portal_creates=created, local_edits=edited,
                        pulled=daily.pulled, pushed=daily.pushed, conflicts=daily.conflicts,
                        requests=daily.requests)
            say(f"day {day}: portal moved {moved}, created {created}; local edits {edited}; "
                f"sync pulled {daily.pulled}, pushed {daily.pushed}, conflicts {daily.conflicts}")
        from connector.demo.production import production_story  # deals, orders, margin

        told = production_story(client, store, key, templates, rng, result.step, say)
        deleted = portal.delete_one(templates[0])
        final = api.sync(templates, full=True)
        result.step("reconcile", portal_deletes=deleted, tombstoned=final.deleted, requests=final.requests)
        say(f"full reconcile: {final.deleted} deletion(s) found")
    now = datetime.fromtimestamp(clock.now(), UTC)
    for t in templates:
        for fmt in ("csv", "xlsx", "jsonl"):
            target = out / f"{t.code}.{fmt}"
            api.export(t.code, fmt, target, bom=(fmt == "csv"), offline=True)  # employees as #id
            result.outputs.append(str(target))
        target = out / f"{t.code}-report.html"
        report(db, t.code, "all", "html", target, now=now, template=t)  # `now`: the virtual clock's
        result.outputs.append(str(target))
    if told:
        from connector.demo.production import margin_output

        result.outputs += margin_output(db, out)
    say(f"wrote {len(result.outputs)} files into {out}/")
    return result


@contextmanager
def _sql(db: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection, as any tool would open it: committed and closed at the end."""
    with closing(sqlite3.connect(db)) as conn, conn:
        yield conn


def _insert_local_rows(db: Path, templates: list[Template], rng: random.Random, n: int) -> int:
    """Insert rows the way any SQLite tool would; the triggers put them in the change log."""
    count = 0
    with _sql(db) as conn:
        for t in templates:
            funnel = t.default_funnel
            parent_keys = _parent_keys(conn, t)
            for _ in range(n):
                row: dict[str, Any] = {"title": f"{t.title_text} {rng.choice(WORDS)}"}
                if funnel is not None:
                    row["funnel"] = funnel.code
                    row["stage"] = funnel.first_process_stage.code
                for f in t.fields:
                    row.update(_sample(f, rng))
                for column, keys in parent_keys.items():
                    if keys:
                        row[column] = rng.choice(keys)
                cols = ", ".join(f'"{c}"' for c in row)
                marks = ", ".join("?" for _ in row)
                conn.execute(f'INSERT INTO "{t.code}" ({cols}) VALUES ({marks})', list(row.values()))
                count += 1
    return count


def _parent_keys(conn: sqlite3.Connection, t: Template) -> dict[str, list[str]]:
    """Local keys of parent rows that are processes of the demo (children point at them)."""
    columns = {r[1] for r in conn.execute(f'PRAGMA table_info("{t.code}")')}
    found: dict[str, list[str]] = {}
    for ref in t.relations.parents:
        column = f"parent_{ref.target}_key"
        if column in columns:
            found[column] = [r[0] for r in conn.execute(f'SELECT key FROM "{ref.target}"')]
    return found


def _sample(f: Field, rng: random.Random) -> dict[str, Any]:
    """A plausible local value for one field, in the store's column conventions."""
    def one() -> Any:
        match f.type:
            case "string" | "address":
                return rng.choice(CITIES) if "city" in f.code or f.type == "address" else rng.choice(WORDS)
            case "integer":
                return rng.randint(2008, 2025) if "year" in f.code else rng.randint(1, 200_000)
            case "double":
                return round(rng.uniform(0, 20), 1)
            case "boolean":
                return rng.randint(0, 1)
            case "date":
                return (datetime(2026, 1, 1) + timedelta(days=rng.randint(0, 365))).strftime("%Y-%m-%d")
            case "datetime":
                moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 500_000))
                return utc_text(moment)
            case "enumeration":
                return rng.choice(f.options).code
            case "url":
                return f"https://example.ru/{rng.randint(1, 999)}"
            case "employee":
                return 1
            case _:
                return None

    if f.type in ("file", "crm"):
        return {}
    if f.type == "money":
        return {f.code: float(rng.randint(30, 300) * 1000), f"{f.code}_currency": "RUB"}
    if f.multiple:
        return {f.code: json.dumps([one() for _ in range(rng.randint(1, 2))], ensure_ascii=False)}
    return {f.code: one()}


def _local_edits(db: Path, templates: list[Template], rng: random.Random) -> int:
    """A user edits a few rows in SQLite: retitles one row per process and moves one stage."""
    edits = 0
    with _sql(db) as conn:
        for t in templates:
            # the seeded rng picks the row (SQLite's random() is not seeded: same --seed, other figures)
            live = conn.execute(f'SELECT key FROM "{t.code}" WHERE deleted = 0 ORDER BY rowid')
            keys = [r[0] for r in live]
            if not keys:
                continue
            conn.execute(f'UPDATE "{t.code}" SET title = ? WHERE key = ?',
                         (f"{t.title_text} {rng.choice(WORDS)} (изм.)", rng.choice(keys)))
            edits += 1
    return edits


class PortalSide:
    """People working in Bitrix24 itself: they move cards, add items and delete one."""

    def __init__(self, client: Client, store: Store, key: str, rng: random.Random) -> None:
        self.client, self.store, self.key, self.rng = client, store, key, rng

    def _etid(self, t: Template) -> int:
        entry = self.store.idmap.entry(self.key, "type", t.code)
        assert entry is not None, f"{t.code} was not deployed"
        return int((entry.extra or {})["entityTypeId"])

    def _status_id(self, t: Template, funnel: str, stage: str) -> str:
        entry = self.store.idmap.entry(self.key, "stage", f"{t.code}.{funnel}.{stage}")
        assert entry is not None, f"stage {t.code}.{funnel}.{stage} was not deployed"
        return str((entry.extra or {})["status_id"])

    def move_stages(self, templates: list[Template]) -> int:
        """Move about a third of the open cards one stage on (sometimes to a failure stage)."""
        commands: dict[str, tuple[str, dict[str, Any]]] = {}
        for t in templates:
            if t.default_funnel is None:
                continue
            rows = self.store.conn.execute(
                f'SELECT id, funnel, stage FROM "{t.code}" WHERE id IS NOT NULL AND deleted = 0').fetchall()
            for item_id, funnel_code, stage_code in rows:
                funnel = t.funnel(funnel_code) if funnel_code else None
                if funnel is None or self.rng.random() > 0.35:
                    continue
                target = _next_stage(funnel, stage_code, self.rng)
                if target is None:
                    continue
                fields = {"stageId": self._status_id(t, funnel.code, target)}
                commands[f"m{len(commands)}"] = (
                    "crm.item.update", {"entityTypeId": self._etid(t), "id": item_id, "fields": fields})
        if commands:
            self.client.batch_all(commands)
        return len(commands)

    def create_items(self, templates: list[Template], n: int) -> int:
        """Someone adds cards on the portal."""
        commands = {
            f"a{i}_{t.code}": ("crm.item.add", {"entityTypeId": self._etid(t),
                                                "fields": {"title": f"{t.title_text} с портала"}})
            for t in templates for i in range(n)
        }
        self.client.batch_all(commands)
        return len(commands)

    def delete_one(self, t: Template) -> int:
        """Someone deletes one card on the portal (polling cannot see it; reconcile does)."""
        row = self.store.conn.execute(
            f'SELECT id FROM "{t.code}" WHERE id IS NOT NULL AND deleted = 0 ORDER BY id DESC').fetchone()
        if row is None:
            return 0
        self.client.call("crm.item.delete", {"entityTypeId": self._etid(t), "id": row[0]})
        return 1


def _next_stage(funnel: Any, current: str | None, rng: random.Random) -> str | None:
    """The stage a card moves to next: the following process stage, success at the end, or a failure."""
    stages = sorted(funnel.stages, key=lambda s: s.sort)
    by_code = {s.code: s for s in stages}
    stage = by_code.get(current or "")
    if stage is None or stage.semantics != "process":
        return None
    if rng.random() < 0.12:
        return funnel.first_failure_stage.code
    process = [s for s in stages if s.semantics == "process"]
    index = process.index(stage)
    return process[index + 1].code if index + 1 < len(process) else funnel.success_stage.code
