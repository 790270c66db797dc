"""What an export reads: the process's rows with labels, as one streaming SELECT."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.reports.chunks import ColumnChunk
from connector.reports.errors import ReportError
from connector.reports.labels import FastLabel, fast_labels, functions
from connector.reports.readonly import require_process
from connector.reports.where import check_where
from connector.store.reader import SqlFunction, StoreReader
from connector.store.sqltext import ident, literal
from connector.templates import Template

_FETCH_ROWS = 2000
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")


Chunk = list[tuple[Any, ...]]


@dataclass(frozen=True)
class ExportQuery:
    """The SELECT behind an export: header names, the SQL, and what completes each fetched chunk."""

    header: list[str]
    sql: str
    post: Callable[[Chunk], ColumnChunk] | None = None  # adds the in-memory label columns
    functions: dict[str, SqlFunction] = field(default_factory=dict)  # what the SQL calls (fast labels)


def _parent_links(base_columns: Sequence[str], processes: Sequence[str]) -> list[str]:
    """Parent processes whose titles can be joined in: `parent_<code>` columns pointing at a process."""
    return [
        col.removeprefix("parent_")
        for col in base_columns
        if col.startswith("parent_") and not col.endswith("_key") and col.removeprefix("parent_") in processes
    ]


def build_query(
    store: StoreReader,
    type_code: str,
    *,
    where: str | None = None,
    columns: Sequence[str] | None = None,
    include_deleted: bool = False,
) -> ExportQuery:
    """The labelled SELECT for a process: the `<code>_labels` view (or the table) plus parent titles."""
    require_process(store, type_code)
    processes = store.processes()
    catalog = store.catalog(type_code)
    template = store.template(type_code)
    source = catalog.view or type_code
    source_columns = list(catalog.view_columns or catalog.columns)
    base_columns = list(catalog.columns)

    selects = {col: f"s.{ident(col)}" for col in source_columns}
    fast = fast_labels(store, catalog, template) if catalog.view else []
    sql_functions, label_sql = functions(fast, "s.")
    selects.update(label_sql)  # so that --where can use them
    for name, expr in linked_titles(template, base_columns, processes).items():
        selects.setdefault(name, expr)
    joins = []
    for i, parent in enumerate(_parent_links(base_columns, processes)):
        name = f"parent_{parent}_title"
        if name in selects:
            continue
        alias = f"p{i}"
        key_col = f"parent_{parent}_key"
        on = f"{alias}.id = s.{ident('parent_' + parent)}"
        if key_col in source_columns:
            on = f"({on} OR ({alias}.key = s.{ident(key_col)} AND s.{ident('parent_' + parent)} IS NULL))"
        joins.append(f"LEFT JOIN {ident(parent)} AS {alias} ON {on}")
        selects[name] = f"{alias}.title"

    header = _choose_columns(list(selects), columns)
    hide_deleted = not include_deleted and "deleted" in source_columns
    inner_where = " WHERE COALESCE(s.deleted, 0) = 0" if hide_deleted else ""
    inner = (
        "SELECT " + ", ".join(f"{expr} AS {ident(name)}" for name, expr in selects.items())
        + f" FROM {ident(source)} AS s " + " ".join(joins) + inner_where
        + (" ORDER BY s.rowid" if source == type_code else "")
    )
    labels = sorted((f for f in fast if f.name in header), key=lambda f: header.index(f.name))
    in_sql = [h for h in header if h not in {f.name for f in labels}]
    inputs = [c for f in labels for c in f.inputs if c not in in_sql]
    fetched = [*in_sql, *dict.fromkeys(inputs)]
    sql = "SELECT " + ", ".join(map(ident, fetched)) + f" FROM ({inner})"
    if where and ";" in _STRING_LITERAL.sub("", where):
        raise ReportError("--where must be one SQL condition (no ';'): it filters rows, never changes them")
    if where and where.strip():
        sql += f" WHERE ({check_where(where, selects)})"
    post = _label_chunks(header, labels, fetched) if labels else None
    used = {name: fn for name, fn in sql_functions.items() if name in sql}
    return ExportQuery(header=header, sql=sql, post=post, functions=used)


def _label_chunks(
    header: Sequence[str], labels: Sequence[FastLabel], fetched: Sequence[str]
) -> Callable[[Chunk], ColumnChunk]:
    """A chunk transform: fetched rows (`fetched` columns) plus the labels -> the header's columns."""
    positions = [[fetched.index(c) for c in f.inputs] for f in labels]
    at = {name: i for i, name in enumerate([*fetched, *(f.name for f in labels)])}
    order = [at[name] for name in header]

    def post(chunk: Chunk) -> ColumnChunk:
        columns: list[Sequence[Any]] = list(zip(*chunk, strict=True)) or [() for _ in fetched]
        columns += [f.column([columns[p] for p in pos]) for f, pos in zip(labels, positions, strict=True)]
        return ColumnChunk([columns[i] for i in order], len(chunk))

    return post


def _title_of(value_sql: str, targets: Sequence[str]) -> str:
    """SQL: the title of the stored item a crm link value `<process>:<id>` points at (NULL if not stored)."""
    prefix = f"substr({value_sql}, 1, instr({value_sql}, ':') - 1)"
    item_id = f"CAST(substr({value_sql}, instr({value_sql}, ':') + 1) AS INTEGER)"
    whens = " ".join(
        f"WHEN {literal(t)} THEN (SELECT x.title FROM {ident(t)} AS x WHERE x.id = {item_id})"
        for t in targets
    )
    return f"CASE {prefix} {whens} END"


def linked_titles(
    template: Template | None, base_columns: Sequence[str], processes: Sequence[str]
) -> dict[str, str]:
    """`<field>_title` columns for crm link fields (known from the template sync keeps in the store):
    the linked item's title when that process is in the store; a JSON array for multiple links."""
    out: dict[str, str] = {}
    for fld in template.fields if template is not None else []:
        if fld.type != "crm" or fld.code not in base_columns:
            continue
        targets = [t for t in (fld.targets or processes) if t in processes]
        if not targets:
            continue
        col = f"s.{ident(fld.code)}"
        if fld.multiple:
            one = f"COALESCE({_title_of('j.value', targets)}, j.value)"
            titles = f"(SELECT json_group_array({one}) FROM json_each({col}) AS j)"
            out[f"{fld.code}_title"] = f"CASE WHEN json_valid({col}) THEN {titles} END"
        else:
            out[f"{fld.code}_title"] = _title_of(col, targets)
    return out


def _choose_columns(available: list[str], wanted: Sequence[str] | None) -> list[str]:
    """The requested columns in the requested order, or all; unknown names are an error listing the valid."""
    if not wanted:
        return available
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise ReportError(
            f"unknown column(s) {', '.join(map(repr, unknown))}; valid columns: {', '.join(available)}"
        )
    return list(dict.fromkeys(wanted))


def iter_chunks(store: StoreReader, query: ExportQuery) -> Iterator[Sequence[tuple[Any, ...]]]:
    """Stream an export query as chunks of rows (lists of rows, or the rows' columns when labels were
    added in memory; constant memory); bad SQL becomes a ReportError.

    The query may read the process tables, their labels views and `_labels` only."""
    try:
        chunks = store.select_public(query.sql, query.functions, _FETCH_ROWS)
    except sqlite3.Error as exc:
        raise _where_error(exc) from None
    while True:
        try:
            chunk = next(chunks, None)
        except sqlite3.Error as exc:
            raise _where_error(exc) from None
        if chunk is None:
            return
        yield query.post(chunk) if query.post else chunk


def _where_error(exc: Exception) -> ReportError:
    text = str(exc)
    if "not authorized" in text or "readonly" in text or "read-only" in text:
        return ReportError(f"--where may only read the store (a single SELECT condition); refused: {text}")
    if "one statement" in text:
        return ReportError("--where must be one SQL condition, not several statements separated by ';'")
    return ReportError(f"bad --where condition or column: {text}")
