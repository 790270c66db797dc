"""Fast label columns for exports: the `<code>_labels` view's names, looked up in memory.

The view resolves every label with a correlated sub-select that sorts `_labels` rows by language,
once per row and column (~2 µs each, most of an export's time). For an export the labels of one
process are read once into dicts instead. They are applied to each fetched chunk column-wise (C-level
`map` over `dict.get`, no Python code per row), and are also registered as deterministic SQL
functions so a `--where` filter on a label column still works in SQL. Columns the fast path cannot
reproduce exactly (multiple-choice fields, an unknown view layout) keep the view's own expression.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from connector.reports.readonly import column_names, table_names

LabelKey = tuple[str, str, str]  # (kind, scope, code)
_DEFAULT_FUNNEL = re.compile(r"COALESCE\(t\.funnel, ('(?:[^']|'')*')\)")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class FastLabel:
    """One label column: a dict from the value(s) of some columns of the row to the label."""

    name: str
    lookup: dict[Any, str | None]
    inputs: tuple[str, ...]  # column names of the row

    def input_sql(self, alias: str) -> list[str]:
        """The input columns as SQL, prefixed with `alias` (e.g. `s.`)."""
        return [alias + _q(c) for c in self.inputs]

    def function(self) -> Callable[..., str | None]:
        """The lookup as an SQL function of the inputs."""
        if len(self.inputs) == 1:
            return self.lookup.get
        lookup = self.lookup

        def label(*args: Any) -> str | None:
            return lookup.get(args)

        return label

    def column(self, chunk: Sequence[tuple[Any, ...]], positions: Sequence[int]) -> list[str | None]:
        """The labels of a chunk of rows whose inputs sit at `positions` (C-level loops only)."""
        if len(positions) == 1:
            return list(map(self.lookup.get, map(itemgetter(positions[0]), chunk)))
        return list(map(self.lookup.get, zip(*(map(itemgetter(p), chunk) for p in positions), strict=True)))


def view_language(conn: sqlite3.Connection, tbl: str) -> str | None:
    """The language the store built the `<tbl>_labels` view for (`_processes.lang`), if recorded."""
    if "_processes" not in table_names(conn) or "lang" not in column_names(conn, "_processes"):
        return None
    row = conn.execute("SELECT lang FROM _processes WHERE tbl = ?", (tbl,)).fetchone()
    return str(row[0]) if row and row[0] else None


def best_labels(conn: sqlite3.Connection, tbl: str, lang: str) -> dict[LabelKey, str]:
    """One label per (kind, scope, code), preferring `lang`, then `*`, then `en`, then the first by name
    (the view's order)."""
    ranked: dict[LabelKey, tuple[tuple[bool, bool, bool, str], str]] = {}
    for kind, scope, code, lg, label in conn.execute(
        "SELECT kind, scope, code, lang, label FROM _labels WHERE tbl = ?", (tbl,)
    ):
        rank = (lg != lang, lg != "*", lg != "en", lg)
        key = (kind, scope, code)
        if key not in ranked or rank < ranked[key][0]:
            ranked[key] = (rank, label)
    return {key: label for key, (_rank, label) in ranked.items()}


def view_sql(conn: sqlite3.Connection, view: str) -> str:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?", (view,)).fetchone()
    return str(row[0]) if row and row[0] else ""


def default_funnel(sql: str) -> str | None:
    """The funnel the view gives rows without one ('' when it gives none; None for an unknown layout)."""
    found = _DEFAULT_FUNNEL.search(sql)
    if found:
        return found.group(1)[1:-1].replace("''", "'")
    return "" if "l.code = t.funnel " in sql else None


def fast_labels(
    conn: sqlite3.Connection, tbl: str, base_columns: Sequence[str], view_columns: Sequence[str]
) -> list[FastLabel]:
    """The view's label columns that dict lookups reproduce exactly; none when the store does not record
    which language the view shows."""
    lang = view_language(conn, tbl)
    if lang is None or "_labels" not in table_names(conn):
        return []
    labels = best_labels(conn, tbl, lang)
    base, view = set(base_columns), set(view_columns)
    layout = view_sql(conn, f"{tbl}_labels")
    out: list[FastLabel] = []
    default = default_funnel(layout)
    if default is not None and {"funnel", "stage"} <= base and {"funnel_name", "stage_name"} <= view:
        funnels: dict[Any, str | None] = {c: lb for (kind, _s, c), lb in labels.items() if kind == "funnel"}
        stages: dict[Any, str | None] = {(s, c): lb for (kind, s, c), lb in labels.items() if kind == "stage"}
        if default:  # a row without a funnel is labelled as in the default funnel
            funnels[None] = funnels.get(default)
            stages.update({(None, c): lb for (s, c), lb in list(stages.items()) if s == default})
        out.append(FastLabel("funnel_name", funnels, ("funnel",)))
        out.append(FastLabel("stage_name", stages, ("funnel", "stage")))
    options: dict[str, dict[Any, str | None]] = {}
    for (kind, scope, code), label in labels.items():
        if kind == "option":
            options.setdefault(scope, {})[code] = label
    for field, codes in sorted(options.items()):
        column = f"{field}_label"
        if field in base and column in view and f"json_each(t.{_q(field)})" not in layout:
            out.append(FastLabel(column, codes, (field,)))
    return out


def register(conn: sqlite3.Connection, labels: Sequence[FastLabel], alias: str) -> dict[str, str]:
    """Register each label as an SQL function on `conn`; return column name -> SQL calling it."""
    exprs = {}
    for i, label in enumerate(labels):
        name = f"b24_label_{i}"
        conn.create_function(name, len(label.inputs), label.function(), deterministic=True)
        exprs[label.name] = f"{name}({', '.join(label.input_sql(alias))})"
    return exprs
