"""A store file in the docs/CONTRACTS.md layout, built with plain SQL, for the reports tests."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

INTERNAL = [
    """CREATE TABLE _labels (tbl TEXT NOT NULL, kind TEXT NOT NULL, scope TEXT NOT NULL DEFAULT '',
        code TEXT NOT NULL, lang TEXT NOT NULL, label TEXT NOT NULL,
        PRIMARY KEY (tbl, kind, scope, code, lang))""",
    """CREATE TABLE _stage_history (id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, key TEXT,
        portal_id INTEGER, funnel TEXT, from_stage TEXT, to_stage TEXT NOT NULL, at TEXT NOT NULL,
        source TEXT NOT NULL)""",
    """CREATE TABLE _runs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, portal TEXT, job TEXT,
        started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL DEFAULT 'running',
        figures TEXT NOT NULL DEFAULT '{}', error TEXT)""",
    """CREATE TABLE _cursors (portal TEXT NOT NULL, tbl TEXT NOT NULL, value TEXT, updated_at TEXT NOT NULL,
        PRIMARY KEY (portal, tbl))""",
    """CREATE TABLE _changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, key TEXT,
        op TEXT NOT NULL, columns TEXT NOT NULL DEFAULT '[]', at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending', error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
        portal_id INTEGER)""",
    """CREATE TABLE _conflicts (id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, key TEXT NOT NULL,
        portal_id INTEGER, fields TEXT NOT NULL DEFAULT '[]', local TEXT NOT NULL DEFAULT '{}',
        remote TEXT NOT NULL DEFAULT '{}', base TEXT, policy TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open',
        resolution TEXT, created_at TEXT NOT NULL, resolved_at TEXT)""",
]

COMMON = """key TEXT PRIMARY KEY, id INTEGER UNIQUE, title TEXT, funnel TEXT, stage TEXT,
    assigned_by_id INTEGER, created_time TEXT, updated_time TEXT, moved_time TEXT,
    deleted INTEGER NOT NULL DEFAULT 0, deleted_at TEXT"""

# The hiring funnel in template order (the store keeps `_labels` sorted by code, not in this order).
HIRING = [
    ("NEW", "Новый отклик", "process"),
    ("SCREENING", "Телефонное интервью с очень длинным названием этапа для проверки переноса", "process"),
    ("INTERVIEW", "Собеседование", "process"),
    ("OFFER", "Оффер", "process"),
    ("HIRED", "Принят", "success"),
    ("REJECTED", "Отказ", "failure"),
]
RESERVE = [("WAIT", "Ждёт", "process"), ("DONE", "Готово", "success"), ("FAIL", "Провал", "failure")]


def template() -> Any:
    """A stand-in for the `candidate` Template: just what reports read (funnels, stages, names)."""
    def funnel(code: str, name: str, stages: list[tuple[str, str, str]]) -> SimpleNamespace:
        return SimpleNamespace(code=code, name={"ru": name}, stages=[
            SimpleNamespace(code=c, name={"ru": n, "en": c.title()}, semantics=s) for c, n, s in stages
        ])
    return SimpleNamespace(code="candidate", funnels=[funnel("hiring", "Найм", HIRING),
                                                      funnel("reserve", "Резерв", RESERVE)])


def create_store(path: Path) -> sqlite3.Connection:
    """An empty store with the `candidate` and `vacancy` processes and their labels."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")  # test files need no durability
    for sql in INTERNAL:
        conn.execute(sql)
    conn.execute(f"CREATE TABLE vacancy ({COMMON})")
    conn.execute(
        f"CREATE TABLE candidate ({COMMON}, salary REAL, salary_currency TEXT, source TEXT, skills TEXT, "
        "parent_vacancy INTEGER, parent_vacancy_key TEXT)"
    )
    labels = [
        ("candidate", "funnel", "", "hiring", "ru", "Найм"),
        ("candidate", "funnel", "", "reserve", "ru", "Резерв"),
        ("candidate", "option", "source", "hh", "ru", "HeadHunter"),
        ("candidate", "option", "source", "friend", "ru", "Рекомендация"),
    ]
    labels += [("candidate", "stage", "hiring", c, "ru", n) for c, n, _s in HIRING]
    labels += [("candidate", "stage", "reserve", c, "ru", n) for c, n, _s in RESERVE]
    conn.executemany("INSERT INTO _labels VALUES (?, ?, ?, ?, ?, ?)", sorted(labels))

    def lookup(kind: str, scope: str, code: str) -> str:
        return (f"(SELECT l.label FROM _labels l WHERE l.tbl = 'candidate' AND l.kind = '{kind}' "
                f"AND l.scope = {scope} AND l.code = {code} LIMIT 1)")
    conn.execute(
        "CREATE VIEW candidate_labels AS SELECT t.*, "
        f"{lookup('funnel', repr(''), 't.funnel')} AS funnel_name, "
        f"{lookup('stage', 't.funnel', 't.stage')} AS stage_name, "
        f"{lookup('option', repr('source'), 't.source')} AS source_label FROM candidate t"
    )
    conn.commit()
    return conn


Moves = list[tuple[str, str]]


def add_item(
    conn: sqlite3.Connection, key: str, stage: str, *, funnel: str = "hiring", history: Moves | None = None,
    **values: Any,
) -> None:
    """Insert a candidate and its stage history [(stage, at), ...]."""
    row = {"key": key, "funnel": funnel, "stage": stage, **values}
    if isinstance(row.get("skills"), list):
        row["skills"] = json.dumps(row["skills"], ensure_ascii=False)
    cols = ", ".join(row)
    conn.execute(f"INSERT INTO candidate ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    prev = None
    for to_stage, at in history or []:
        conn.execute(
            "INSERT INTO _stage_history (tbl, key, portal_id, funnel, from_stage, to_stage, at, source) "
            "VALUES ('candidate', ?, ?, ?, ?, ?, ?, 'pull')",
            (key, values.get("id"), funnel, prev, to_stage, at),
        )
        prev = to_stage
    conn.commit()


def sample_store(tmp_path: Path) -> Path:
    """A small store: 2 vacancies, 5 live candidates with history, one tombstone."""
    path = tmp_path / "portal.db"
    conn = create_store(path)
    vacancy = "INSERT INTO vacancy (key, id, title, funnel, stage) VALUES (?, ?, ?, 'f', 'NEW')"
    conn.execute(vacancy, ("v1", 10, "Механик"))
    conn.execute(vacancy, ("v2", None, "Повар"))
    add_item(conn, "c1", "HIRED", id=1, title="Иванов Иван", salary=100000.5, salary_currency="RUB",
             source="hh", parent_vacancy=10,
             history=[("NEW", "2026-01-01T00:00:00Z"), ("INTERVIEW", "2026-01-01T02:00:00Z"),
                      ("HIRED", "2026-01-03T02:00:00Z")])
    add_item(conn, "c2", "INTERVIEW", id=2, title="Петров, \"Пётр\"", salary=90000, salary_currency="RUB",
             source="friend", parent_vacancy_key="v2",
             history=[("NEW", "2026-01-01T00:00:00Z"), ("INTERVIEW", "2026-01-01T04:00:00Z")])
    add_item(conn, "c3", "NEW", id=3, title="Сидорова Анна", salary=1500, salary_currency="USD", source="hh",
             created_time="2026-01-05T00:00:00Z", history=[("NEW", "2026-01-05T00:00:00Z")])
    add_item(conn, "c4", "REJECTED", id=4, title="Кузнецов", source=None,
             history=[("NEW", "2026-01-01T00:00:00Z"), ("REJECTED", "2026-01-01T08:00:00Z")])
    add_item(conn, "c5", "NEW", title="Новый локальный", skills=["сварка", "покраска"],
             moved_time="2026-01-09T00:00:00Z")
    add_item(conn, "c6", "INTERVIEW", id=6, title="Удалён на портале", deleted=1,
             deleted_at="2026-01-02T00:00:00Z")
    conn.close()
    return path


def test_helper_store_follows_the_contract_layout(tmp_path: Path) -> None:
    """The helper's process table has the columns the contract lists (guards the tests' assumptions)."""
    store_path = sample_store(tmp_path)
    conn = sqlite3.connect(store_path)
    cols = {r[1] for r in conn.execute("PRAGMA table_info(candidate)")}
    assert {"key", "id", "title", "funnel", "stage", "deleted", "salary", "salary_currency"} <= cols
    assert conn.execute("SELECT stage_name FROM candidate_labels WHERE key = 'c1'").fetchone() == ("Принят",)
