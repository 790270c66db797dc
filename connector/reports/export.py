"""`export(...)`: a process's items with labels to CSV, XLSX, JSON lines or HTML, streamed."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import IO

from pydantic import BaseModel

from connector.reports.catalog import names
from connector.reports.columns import HEADER_MODES, Column, describe, language
from connector.reports.errors import ReportError
from connector.reports.formats import Display, parse_tz, tz_name
from connector.reports.readonly import open_store, require_process
from connector.reports.source import build_query, iter_chunks
from connector.reports.writers import DIALECTS, FORMATS, WRITERS, WriteOptions, default_dialect
from connector.store.reader import StoreReader


class ExportResult(BaseModel):
    """What an export wrote."""

    type_code: str
    format: str
    rows: int
    columns: list[str]
    output: str
    headers: list[str] = []  # the header texts written (labels or codes)
    time_zone: str = "UTC"


def check_format(fmt: str, allowed: Sequence[str] = FORMATS) -> str:
    """Normalise a format name or raise a ReportError listing the allowed ones."""
    norm = fmt.lower().lstrip(".")
    if norm not in allowed:
        raise ReportError(f"unknown format {fmt!r}; allowed: {', '.join(allowed)}")
    return norm


def check_choice(value: str, allowed: Sequence[str], what: str) -> str:
    """A value from a fixed list, or a ReportError naming the option and the allowed values."""
    if value not in allowed:
        raise ReportError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")
    return value


def to_tz(tz: tzinfo | str | None) -> tzinfo | None:
    """A time zone given as a tzinfo, an offset/name string, or None."""
    return parse_tz(tz) if isinstance(tz, str) else tz


def export(
    db_path: str | Path,
    type_code: str,
    fmt: str,
    out: str | Path | IO[bytes] | None,
    where: str | None = None,
    columns: Sequence[str] | None = None,
    bom: bool = False,
    include_deleted: bool = False,
    *,
    headers: str = "labels",
    dialect: str | None = None,
    formula_guard: bool = True,
    tz: tzinfo | str | None = None,
    users: Mapping[int, str] | None = None,
) -> ExportResult:
    """Export one process's items (labels, not ids) from a store file; `out=None` writes to stdout.

    `headers`: `labels` (the template's, in its language) or `codes`. `dialect` (CSV): `excel-ru`,
    `excel` or `rfc4180`; default `excel-ru` for a Russian template, else `excel`. `bom` adds a BOM
    to any dialect. `formula_guard=False` keeps text starting with = + - @ as it is (CSV for
    machines; XLSX text is always text). `tz`: the portal's time zone for dates and times (UTC when
    not known). `users`: user id -> name, for employee fields (see people.portal_people).
    """
    fmt = check_format(fmt)
    check_choice(headers, HEADER_MODES, "--headers")
    with open_store(db_path) as store:
        require_process(store, type_code)
        lang = language(store, type_code)
        chosen = check_choice(dialect or default_dialect(lang), DIALECTS, "--dialect")
        described = _columns(store, type_code, fmt, columns, include_deleted)
        query = build_query(store, type_code, where=where, columns=[c.code for c in described],
                            include_deleted=include_deleted)
        display = display_for(lang, tz, users)
        process_name = names(store, type_code, lang)[0]
        shown = [c for c in described if not c.hidden]
        note = _note(lang, display, len(shown), fmt, not columns)
        opts = WriteOptions(title=process_name or type_code, headers=headers, dialect=chosen,
                            bom=True if bom else None, formula_guard=formula_guard, display=display,
                            note=note)
        chunks = iter_chunks(store, query)
        first = next(chunks, [])  # runs the query: a bad --where fails before any file is created
        rows = itertools.chain([first], chunks)
        writer = WRITERS[fmt]
        if out is None:
            n = writer(described, rows, sys.stdout.buffer, opts)
            sys.stdout.buffer.flush()
            target = "-"
        elif isinstance(out, str | Path):
            target = str(out)
            n = _write_file(Path(out), lambda f: writer(described, rows, f, opts))
        else:
            n = writer(described, rows, out, opts)
            target = getattr(out, "name", "<stream>")
    return ExportResult(type_code=type_code, format=fmt, rows=n, columns=[c.code for c in shown],
                        output=str(target), headers=[c.header(headers) for c in shown],
                        time_zone=tz_name(display.tz))


def display_for(lang: str, tz: tzinfo | str | None, users: Mapping[int, str] | None) -> Display:
    """How values are shown: the language, the time zone (UTC when not known) and user names."""
    zone = to_tz(tz)
    if zone is None:
        return Display(lang=lang, users=dict(users or {}))
    return Display(lang=lang, users=dict(users or {}), tz=zone)


def _columns(
    store: StoreReader, type_code: str, fmt: str, wanted: Sequence[str] | None, include_deleted: bool
) -> list[Column]:
    """The exported columns, described: the ones asked for (all; for HTML the readable default set),
    plus hidden currency columns that money columns need for their format."""
    available = build_query(store, type_code, include_deleted=include_deleted).header
    every = describe(store, type_code, available)
    if wanted:
        build_query(store, type_code, columns=wanted)  # unknown names: an error listing the valid ones
        by_code = {c.code: c for c in every}
        chosen = [by_code[name] for name in dict.fromkeys(wanted)]
    elif fmt == "html":  # what a person reads first: id, title, funnel and stage; codes left out
        readable = [c for c in every if not c.technical]
        lead = ("id", "title", "funnel_name", "stage_name")
        first = [c for name in lead for c in readable if c.code == name]
        chosen = first + [c for c in readable if c not in first]
    else:
        chosen = every
    codes = {c.code for c in chosen}
    extra = {c.currency for c in chosen if c.currency and c.currency not in codes and c.currency in available}
    by_code = {c.code: c for c in every}
    return chosen + [Column(code, by_code[code].label, hidden=True) for code in sorted(extra)]


def _note(lang: str, display: Display, shown: int, fmt: str, default_set: bool) -> str:
    """The HTML page's line under the title: the time zone, and how to see every column."""
    if fmt != "html":
        return ""
    zone = tz_name(display.tz)
    if lang == "ru":
        text = f"Время: {zone}."
        if default_set:
            text += f" Показаны {shown} основных столбцов; все столбцы и коды: --columns или -f xlsx."
    else:
        text = f"Times: {zone}."
        if default_set:
            text += f" Showing the {shown} main columns; every column and code: --columns or -f xlsx."
    return text


def _write_file(path: Path, write: Callable[[IO[bytes]], int]) -> int:
    """Write to `<path>.part` and rename, so a failed export never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    try:
        with open(part, "wb") as f:
            n = write(f)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return n
