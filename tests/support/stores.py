"""Store files for report tests, built as the product builds them: `Store.open` + `ensure_process` for
real templates, rows written on the engine path (no change log), stage moves through the store API.

The sample is a small hiring process: `candidate` (two funnels, a money field, a single-choice field,
a multiple text field, a parent `vacancy`) and `vacancy`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connector.store import Store
from connector.templates import Template

# The hiring funnel in template order: (code, Russian name, meaning).
HIRING = [
    ("NEW", "Новый отклик", "process"),
    ("SCREENING", "Телефонное интервью с очень длинным названием этапа для проверки переноса", "process"),
    ("INTERVIEW", "Собеседование", "process"),
    ("OFFER", "Оффер", "process"),
    ("HIRED", "Принят", "success"),
    ("REJECTED", "Отказ", "failure"),
]
RESERVE = [("WAIT", "Ждёт", "process"), ("DONE", "Готово", "success"), ("FAIL", "Провал", "failure")]

Moves = list[tuple[str, str]]  # (stage, at) in time order


def _funnel(code: str, name: str, stages: Sequence[tuple[str, str, str]], default: bool) -> dict[str, Any]:
    return {"code": code, "name": {"ru": name}, "default": default, "stages": [
        {"code": c, "name": {"ru": n, "en": c.title()}, "semantics": s} for c, n, s in stages]}


def candidate_template() -> Template:
    """The `candidate` process: funnels `hiring` (default) and `reserve`."""
    return Template.model_validate({
        "code": "candidate", "title": {"ru": "Кандидаты"}, "language": "ru",
        "relations": {"parents": [{"target": "vacancy"}]},
        "fields": [
            {"code": "salary", "type": "money", "label": {"ru": "Зарплата"}},
            {"code": "channel", "type": "enumeration", "label": {"ru": "Источник"}, "options": [
                {"code": "hh", "label": {"ru": "HeadHunter"}},
                {"code": "friend", "label": {"ru": "Рекомендация"}}]},
            {"code": "skills", "type": "string", "multiple": True, "label": {"ru": "Навыки"}},
        ],
        "funnels": [_funnel("hiring", "Найм", HIRING, True), _funnel("reserve", "Резерв", RESERVE, False)],
    })


def vacancy_template() -> Template:
    """The `vacancy` process (no funnels of its own)."""
    return Template.model_validate({"code": "vacancy", "title": {"ru": "Вакансии"}, "language": "ru"})


def create_store(path: Path, *, lang: str | None = None) -> Store:
    """A new store with the `vacancy` and `candidate` process tables (labels view in `lang`)."""
    store = Store.open(path)
    store.conn.execute("PRAGMA synchronous = OFF")  # test files need no durability
    for template in (vacancy_template(), candidate_template()):
        store.ensure_process(template, lang=lang)
    return store


def add_item(
    store: Store, key: str, stage: str | None, *, tbl: str = "candidate", funnel: str | None = "hiring",
    history: Moves | None = None, **values: Any,
) -> None:
    """Write an item as sync does (not a local change) and its stage moves [(stage, at), ...]."""
    row = {"key": key, "funnel": funnel, "stage": stage, **values}
    row = {k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v for k, v in row.items()}
    store.upsert_rows(tbl, [row], by="key")
    moves, prev = [], None
    for to_stage, at in history or []:
        moves.append((key, values.get("id"), funnel, prev, to_stage, at, "pull"))
        prev = to_stage
    if moves:
        store.add_stage_moves(tbl, moves)


def sample_store(tmp_path: Path) -> Path:
    """A small store: 2 vacancies, 5 live candidates with history, one tombstone."""
    path = tmp_path / "portal.db"
    with create_store(path) as store:
        add_item(store, "v1", "NEW", tbl="vacancy", funnel="f", id=10, title="Механик")
        add_item(store, "v2", "NEW", tbl="vacancy", funnel="f", title="Повар")
        add_item(store, "c1", "HIRED", id=1, title="Иванов Иван", salary=100000.5, salary_currency="RUB",
                 channel="hh", parent_vacancy=10,
                 history=[("NEW", "2026-01-01T00:00:00Z"), ("INTERVIEW", "2026-01-01T02:00:00Z"),
                          ("HIRED", "2026-01-03T02:00:00Z")])
        add_item(store, "c2", "INTERVIEW", id=2, title="Петров, \"Пётр\"", salary=90000,
                 salary_currency="RUB", channel="friend", parent_vacancy_key="v2",
                 history=[("NEW", "2026-01-01T00:00:00Z"), ("INTERVIEW", "2026-01-01T04:00:00Z")])
        add_item(store, "c3", "NEW", id=3, title="Сидорова Анна", salary=1500, salary_currency="USD",
                 channel="hh", created_time="2026-01-05T00:00:00Z", history=[("NEW", "2026-01-05T00:00:00Z")])
        add_item(store, "c4", "REJECTED", id=4, title="Кузнецов", channel=None,
                 history=[("NEW", "2026-01-01T00:00:00Z"), ("REJECTED", "2026-01-01T08:00:00Z")])
        add_item(store, "c5", "NEW", title="Новый локальный", skills=["сварка", "покраска"],
                 moved_time="2026-01-09T00:00:00Z")
        add_item(store, "c6", "INTERVIEW", id=6, title="Удалён на портале", deleted=1,
                 deleted_at="2026-01-02T00:00:00Z")
    return path
