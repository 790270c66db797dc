"""The words around the data in reports, in Russian and English (the template's language picks)."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    # page
    "generated": ("Сформирован {when} ({tz}) программой b24sync по локальной базе.",
                  "Generated {when} ({tz}) by b24sync from the local store."),
    "process": ("Процесс", "Process"),
    "title.funnel": ("воронка", "funnel"),
    "title.time-in-stage": ("время в стадиях", "time in stage"),
    "title.aging": ("зависшие элементы", "stuck items"),
    "no_data": ("Нет данных", "No data"),
    # funnel
    "funnel.heading": ("Воронка: элементы по стадиям", "Funnel: items per stage"),
    "funnel.caption": ("Рядом со столбцом: сейчас в стадии · сумма «{name}».",
                       "Next to each bar: items now · sum of «{name}»."),
    "funnel.none": ("Пока нет ни воронок, ни элементов.", "No funnels and no items yet."),
    "funnel.empty": ("В этой воронке пока нет элементов.", "No items in this funnel yet."),
    "funnel.chart": ("{funnel}: элементы по стадиям", "{funnel}: items per stage"),
    "legend.process": ("в работе", "in progress"),
    "legend.success": ("успех", "success"),
    "legend.failure": ("провал", "failure"),
    "col.stage": ("Стадия", "Stage"),
    "col.stage_code": ("Стадия (код)", "Stage (code)"),
    "col.funnel": ("Воронка", "Funnel"),
    "col.funnel_code": ("Воронка (код)", "Funnel (code)"),
    "col.semantics": ("Тип стадии", "Stage type"),
    "col.count": ("Сейчас", "Items now"),
    "col.reached": ("Всего побывало", "Ever reached"),
    "col.conversion": ("Прошли дальше", "Went on further"),
    "col.sum": ("Σ {name}, {currency}", "Σ {name}, {currency}"),
    # time in stage
    "time.heading": ("Время в стадиях", "Time in stage"),
    "time.caption": ("Тёмный столбец — медиана завершённых пребываний, светлый — 90-й перцентиль. "
                     "По локальной истории стадий.",
                     "Dark bar: median of completed stays; light bar: 90th percentile. "
                     "Computed from the locally recorded stage history."),
    "time.none": ("Пока нет ни стадий, ни истории стадий.", "No stages and no stage history yet."),
    "time.empty": ("В этой воронке ещё никого не было.", "No items have been in this funnel yet."),
    "time.chart": ("{funnel}: время в стадиях", "{funnel}: time in stage"),
    "time.no_stays": ("нет завершённых · сейчас {n}", "no completed stays · {n} here now"),
    "time.bar": ("медиана {median} · p90 {p90} · n={n}", "median {median} · p90 {p90} · n={n}"),
    "col.completed": ("Завершённых пребываний", "Completed stays"),
    "col.median": ("Медиана", "Median"),
    "col.p90": ("90-й перцентиль", "90th percentile"),
    "col.current": ("Сейчас в стадии", "Here now"),
    "col.current_max": ("Дольше всех сейчас", "Longest now"),
    "col.median_hours": ("Медиана, ч", "Median, h"),
    "col.p90_hours": ("90-й перцентиль, ч", "90th percentile, h"),
    "col.current_max_hours": ("Дольше всех сейчас, ч", "Longest now, h"),
    "unit.min": ("мин", "min"),
    "unit.h": ("ч", "h"),
    "unit.d": ("дн", "d"),
    # aging
    "aging.heading": ("Дольше всего без движения (открытые)", "Stuck longest (open items)"),
    "aging.none": ("Открытых элементов нет.", "No open items."),
    "aging.not_on_portal": ("ещё не на портале", "not on the portal yet"),
    "col.key": ("Локальный ключ", "Local key"),
    "col.item": ("Элемент", "Item"),
    "col.id": ("ID", "ID"),
    "col.since": ("В стадии с ({tz})", "In stage since ({tz})"),
    "col.days": ("Дней", "Days"),
    "semantics.process": ("в работе", "in progress"),
    "semantics.success": ("успех", "success"),
    "semantics.failure": ("провал", "failure"),
}


def text(key: str, lang: str, **values: object) -> str:
    """The text for `key` in `lang` (Russian for `ru`, else English), with `{name}` filled in."""
    ru, en = TEXTS[key]
    template = ru if lang == "ru" else en
    return template.format(**values) if values else template


def items_word(n: int, lang: str) -> str:
    """`1 элемент`, `3 элемента`, `5 элементов` / `1 item`, `5 items` (just the word)."""
    if lang != "ru":
        return "item" if n == 1 else "items"
    if n % 10 == 1 and n % 100 != 11:
        return "элемент"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "элемента"
    return "элементов"
