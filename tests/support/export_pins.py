"""Representative exports for pinning the export path's output (tests/test_export_speed.py).

`varied_store` builds, through the product's own `Store`, the shipped hr template's store with odd
values in every kind of column: empty and missing values, formula-looking text, separators, quotes,
line breaks, XML specials and control characters, mixed types SQLite keeps as they are (text in a
REAL column), money in several currencies, invalid dates, unknown users and labels. It has
more rows than one fetched chunk: the first 2,100 hold only everyday values (text, some empty,
valid dates, numbers, two currencies), so the writers' fast paths are pinned too; the rest hold
everything, so chunk boundaries, slow paths and the converters' memories are crossed.
`digest` runs one export case and returns the sha256 of what it wrote (for XLSX: of the sheet and
styles XML, since the zip records the time it was written).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile
from pathlib import Path
from typing import Any

from connector.reports import export
from connector.store import Store
from connector.sync.engine import remember_templates
from connector.templates import load_template

HR = Path(__file__).resolve().parents[2] / "mappings" / "hr_candidates.toml"
USERS = {1: "Администратор", 7: "Анна Смирнова", 3: "=cmd|' /C calc'!A0", 5: "O'Brien & <Co>"}
ROWS = 2700  # more than one fetched chunk (2000 rows)
CLEAN_ROWS = 2100  # so the first chunk holds everyday values only, with or without tombstones

Pool = tuple[list[Any], list[Any]]  # (everyday values, odd values)
TEXTS: Pool = (["Иванов Иван", "Механик, старший смены", "", None, None, "Анна-Мария О'Нил"], [
    "=SUM(A1:A3)", "+7 999 123-45-67", "-5", "-5,5", "+7,5", "@cmd", "\tTab", "\rCR first", "a;b", "a,b",
    'say "hi"', "line\nbreak", "cr\rlf\r\nend", "a & b <c> >", "ctrl\x01\x1f\x0b", "nul\x00inside",
    "bad\ufffechar\uffff", "emoji 😀", "  spaces  ", "x" * 300, "sep\u2028para", "٣٤", "-", "=", "1e5", "+",
    "'quoted'", "%s %d {0}", "\\back\\slash", "\u202f"])
DATETIMES: Pool = (["2026-11-25T06:16:48Z", "2026-03-29T01:30:00Z", "2026-10-25T00:30:00Z", None], [
    "2026-12-31T23:59:59Z", "2026-01-01T00:00:00+03:00", "", "not a date", "2026-07-01"])
DATES: Pool = (["2026-12-01", "2026-01-15", None], ["2026-02-30", "", "2026-12-01T10:00:00Z", "1899-12-30",
                                                     "01.02.2026"])
NUMBERS: Pool = ([2.5, 0.0, -1.5, 1e16, 1e-7, None, 12.0], [3, 0.1 + 0.2, -0.0, "abc", 1e300, 7.25])
AMOUNTS: Pool = ([109000.0, 1500.5, None, 0.1], [-0.0, 123456789.125, 42, "n/a", 99.99, 1e15, -250.0])
CURRENCIES: Pool = (["RUB", "RUB", "USD"], ["EUR", "XYZ", "", None])
USER_VALUES: Pool = ([1, 7, 99, None], [3, 5, "x7"])
TEAMS: Pool = ([json.dumps([1, 7]), "[]", None], ["bad", json.dumps([1, 99]), json.dumps(5), '[1, "a"]'])
FLAGS: Pool = ([1, 0, None], ["Y", "N", 2])


def varied_store(path: Path, lang: str = "ru", rows: int = ROWS) -> Path:
    """The hr template's store (labels view in `lang`, template remembered as sync does) with odd rows."""
    template = load_template(HR)
    stages: Pool = ([s.code for f in template.funnels for s in f.stages], ["GONE", None])
    funnels: Pool = ([f.code for f in template.funnels], [None, "nofunnel"])
    sources: Pool = (["hh", "avito", "referral", None], ["zzz"])
    scores: Pool = (["1", "2", "5", None], ["9"])
    reasons: Pool = (["experience", "salary", None, "security"], ["bogus"])
    cities: Pool = (["Москва", None, "Омск"], [])
    rnd = random.Random(7)
    items = []
    for i in range(1, rows + 1):
        everyday = i <= CLEAN_ROWS

        def pick(pool: Pool, everyday: bool = everyday) -> Any:
            return rnd.choice(pool[0] if everyday else pool[0] + pool[1])

        item: dict[str, Any] = {
            "key": f"k{i:05d}", "id": i, "title": pick(TEXTS), "funnel": pick(funnels), "stage": pick(stages),
            "assigned_by_id": pick(USER_VALUES), "created_time": pick(DATETIMES),
            "updated_time": pick(DATETIMES), "moved_time": f"2026-01-{i % 28 + 1:02d}T{i % 24:02d}:00:00Z",
            "deleted": 1 if i % 97 == 0 else 0, "deleted_at": pick(DATETIMES) if i % 97 == 0 else None,
            "candidate_source": pick(sources), "vacancy": pick(TEXTS), "city": pick(cities),
            "resume_url": f"https://hh.ru/r/{i}" if i % 3 else pick(TEXTS),
            "resume_file": json.dumps(["cv.pdf", "a;b.doc"]) if i % 500 == 0 else None,
            "experience_years": pick(NUMBERS), "salary_expected": pick(AMOUNTS),
            "salary_expected_currency": pick(CURRENCIES), "interview_at": pick(DATETIMES),
            "interviewers": pick(TEAMS), "score": pick(scores), "start_date": pick(DATES),
            "reject_reason": pick(reasons), "pd_consent": pick(FLAGS),
            "salary_offered": pick(AMOUNTS) if i % 5 == 0 else None,
            "salary_offered_currency": pick(CURRENCIES) if i % 5 == 0 else None,
            "contact_ids": json.dumps([i, i + 1]) if i % 7 == 0 else None,
            "company_id": i % 11 or None,
        }
        items.append(item)
    with Store.open(path) as store:
        store.conn.execute("PRAGMA synchronous = OFF")  # test files need no durability
        store.ensure_process(template, lang=lang)
        remember_templates(store, [template])
        store.upsert_rows("candidate", items)
    return path


# name -> (store language, export keyword arguments); every dialect, time zones, --columns, --where.
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "csv-excel-ru": ("ru", {"fmt": "csv", "tz": "+03:00", "users": USERS}),
    "csv-excel-ny": ("ru", {"fmt": "csv", "dialect": "excel", "tz": "America/New_York", "users": USERS}),
    "csv-rfc4180": ("ru", {"fmt": "csv", "dialect": "rfc4180", "tz": "+03:00", "users": USERS}),
    "csv-unguarded-codes-bom": ("ru", {"fmt": "csv", "formula_guard": False, "bom": True, "headers": "codes",
                                       "tz": "-05:30"}),
    "csv-columns-where": ("ru", {"fmt": "csv", "dialect": "excel", "where": "stage IN ('NEW', 'OFFER')",
                                 "columns": ["title", "salary_expected", "created_time", "stage_name",
                                             "interviewers", "start_date", "pd_consent"], "users": USERS}),
    "csv-deleted-utc": ("ru", {"fmt": "csv", "include_deleted": True}),
    "csv-one-column": ("ru", {"fmt": "csv", "dialect": "rfc4180", "columns": ["reject_reason_label"],
                              "formula_guard": False}),
    "csv-en": ("en", {"fmt": "csv", "tz": "Europe/Moscow", "users": USERS}),
    "jsonl": ("ru", {"fmt": "jsonl", "tz": "+03:00", "users": USERS}),
    "html": ("ru", {"fmt": "html", "tz": "+03:00", "users": USERS}),
    "xlsx": ("ru", {"fmt": "xlsx", "tz": "+03:00", "users": USERS}),
    "xlsx-ny-codes-columns": ("ru", {"fmt": "xlsx", "tz": "America/New_York", "headers": "codes",
                                     "columns": ["salary_offered", "title", "interview_at", "score_label",
                                                 "experience_years", "pd_consent", "assigned_by_id"]}),
    "xlsx-en-where": ("en", {"fmt": "xlsx", "where": "salary_expected > 1000", "users": USERS}),
}


def digest(db: Path, case: str) -> str:
    """sha256 of what the export case writes (XLSX: of its sheets' and styles' XML, in part order)."""
    _lang, kwargs = CASES[case]
    args = dict(kwargs)
    fmt = args.pop("fmt")
    buf = io.BytesIO()
    export(db, "candidate", fmt, buf, **args)
    data = buf.getvalue()
    if fmt != "xlsx":
        return hashlib.sha256(data).hexdigest()
    sha = hashlib.sha256()
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        for name in sorted(n for n in book.namelist() if n.startswith("xl/") and n.endswith(".xml")):
            sha.update(name.encode() + b"\n" + book.read(name))
    return sha.hexdigest()
