"""Streaming writers for exports: CSV, XLSX (write-only), JSON lines and a plain HTML table."""

from __future__ import annotations

import codecs
import csv
import html
import io
import json
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

FORMATS = ("csv", "xlsx", "jsonl", "html")
Rows = Iterable[Sequence[Sequence[Any]]]  # chunks of rows (lists of tuples), as fetched from SQLite

Writer = Callable[[Sequence[str], Iterable[Sequence[Any]], IO[bytes], bool, str], int]


def write_csv(header: Sequence[str], rows: Rows, out: IO[bytes], bom: bool, title: str) -> int:
    """CSV in UTF-8 (with a BOM when asked, so Excel reads Cyrillic); returns the number of rows."""
    if bom:  # written by hand: the utf-8-sig codec encodes in Python, row by row (~3 µs a row)
        out.write(codecs.BOM_UTF8)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    text._CHUNK_SIZE = 1 << 16  # type: ignore[attr-defined]  # encode and write in 64 KiB pieces
    n = 0
    try:
        writer = csv.writer(text)
        writer.writerow(header)
        for chunk in rows:
            writer.writerows(chunk)
            n += len(chunk)
        text.flush()
    finally:
        text.detach()
    return n


def write_jsonl(header: Sequence[str], rows: Rows, out: IO[bytes], bom: bool, title: str) -> int:
    """One JSON object per line, UTF-8 without escapes, keys are the column names."""
    n = 0
    dumps = json.dumps
    for chunk in rows:
        lines = [dumps(dict(zip(header, row, strict=True)), ensure_ascii=False) for row in chunk]
        out.write(("\n".join(lines) + "\n").encode("utf-8"))
        n += len(chunk)
    return n


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def write_xlsx(header: Sequence[str], rows: Rows, out: IO[bytes], bom: bool, title: str) -> int:
    """An XLSX workbook written in openpyxl's write-only mode (rows are not kept in memory)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=_sheet_title(title))
    sheet.freeze_panes = "A2"
    sheet.append(list(header))
    n = 0
    for chunk in rows:
        for row in chunk:
            sheet.append([_xlsx_value(v) for v in row])
        n += len(chunk)
    book.save(out)
    return n


def _sheet_title(title: str) -> str:
    cleaned = "".join(ch for ch in title if ch not in "[]:*?/\\")
    return (cleaned or "export")[:31]


_HTML_HEAD = """<!DOCTYPE html>
<html lang="ru"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:"DejaVu Sans","Segoe UI",Arial,sans-serif;margin:16px;color:#1f2933}}
table{{border-collapse:collapse;font-size:13px}}
th,td{{border:1px solid #cbd2d9;padding:3px 6px;text-align:left;vertical-align:top;max-width:28em;
overflow-wrap:anywhere}}
th{{background:#e4e7eb;position:sticky;top:0}}
tr:nth-child(even) td{{background:#f5f7fa}}
</style></head><body><h1>{title}</h1><table><thead><tr>{head}</tr></thead><tbody>
"""


def write_html(header: Sequence[str], rows: Rows, out: IO[bytes], bom: bool, title: str) -> int:
    """A self-contained HTML table (inline CSS, no scripts, no external assets)."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    out.write(_HTML_HEAD.format(title=esc(title), head=head).encode("utf-8"))
    n = 0
    for chunk in rows:
        for row in chunk:
            cells = "".join("<td></td>" if v is None else f"<td>{esc(str(v))}</td>" for v in row)
            out.write(f"<tr>{cells}</tr>\n".encode())
        n += len(chunk)
    out.write(f"</tbody></table><p>{n} rows</p></body></html>\n".encode())
    return n


WRITERS: dict[str, Writer] = {"csv": write_csv, "xlsx": write_xlsx, "jsonl": write_jsonl, "html": write_html}
