"""`export(...)`: a process's items with labels to CSV, XLSX, JSON lines or HTML, streamed."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import IO

from pydantic import BaseModel

from connector.reports.errors import ReportError
from connector.reports.readonly import connect_readonly
from connector.reports.source import build_query, iter_chunks
from connector.reports.writers import FORMATS, WRITERS


class ExportResult(BaseModel):
    """What an export wrote."""

    type_code: str
    format: str
    rows: int
    columns: list[str]
    output: str


def check_format(fmt: str, allowed: Sequence[str] = FORMATS) -> str:
    """Normalise a format name or raise a ReportError listing the allowed ones."""
    norm = fmt.lower().lstrip(".")
    if norm not in allowed:
        raise ReportError(f"unknown format {fmt!r}; allowed: {', '.join(allowed)}")
    return norm


def export(
    db_path: str | Path,
    type_code: str,
    fmt: str,
    out: str | Path | IO[bytes] | None,
    where: str | None = None,
    columns: Sequence[str] | None = None,
    bom: bool = False,
    include_deleted: bool = False,
) -> ExportResult:
    """Export one process's items (labels, not ids) from a store file; `out=None` writes to stdout."""
    fmt = check_format(fmt)
    with closing(connect_readonly(db_path)) as conn:
        query = build_query(conn, type_code, where=where, columns=columns, include_deleted=include_deleted)
        chunks = iter_chunks(conn, query)
        first = next(chunks, [])  # runs the query: a bad --where fails before any file is created
        rows = itertools.chain([first], chunks)
        writer = WRITERS[fmt]
        if out is None:
            n = writer(query.header, rows, sys.stdout.buffer, bom, type_code)
            sys.stdout.buffer.flush()
            target = "-"
        elif isinstance(out, str | Path):
            target = str(out)
            n = _write_file(Path(out), lambda f: writer(query.header, rows, f, bom, type_code))
        else:
            n = writer(query.header, rows, out, bom, type_code)
            target = getattr(out, "name", "<stream>")
    return ExportResult(type_code=type_code, format=fmt, rows=n, columns=query.header, output=str(target))


def _write_file(path: Path, write) -> int:  # type: ignore[no-untyped-def]
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
