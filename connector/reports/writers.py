"""Streaming writers for exports: CSV (three dialects), XLSX, JSON lines and a readable HTML table.

Every writer takes the described columns (columns.py), chunks of rows as fetched from SQLite, the
output stream and the options; it returns the number of rows written. Values are converted column
by column for a whole chunk, so the per-row cost stays in C wherever the value needs no change.
"""

from __future__ import annotations

import codecs
import html
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import IO, Any

from connector.reports.columns import Column, Kind
from connector.reports.csvtext import CsvText
from connector.reports.formats import Display
from connector.reports.memo import Memo
from connector.reports.xlsx import XlsxBook

FORMATS = ("csv", "xlsx", "jsonl", "html")
DIALECTS = ("excel-ru", "excel", "rfc4180")
Chunk = Sequence[Sequence[Any]]
Rows = Iterable[Chunk]  # chunks of rows (lists of tuples), as fetched from SQLite


@dataclass
class WriteOptions:
    """How to write: header texts, CSV dialect and BOM, the formula guard, how values look."""

    title: str = "export"
    headers: str = "labels"  # labels | codes
    dialect: str = "excel-ru"  # CSV only
    bom: bool | None = None  # CSV: None = as the dialect says
    formula_guard: bool = True  # CSV: neutralise cells a spreadsheet would run as formulas
    display: Display = field(default_factory=Display)
    note: str = ""  # HTML: a line under the title (time zone, how many columns are shown)


Writer = Callable[[Sequence[Column], Rows, IO[bytes], WriteOptions], int]


def default_dialect(lang: str) -> str:
    """`excel-ru` (`;`, decimal comma, BOM) for a Russian template, else `excel`."""
    return "excel-ru" if lang == "ru" else "excel"


# ---- CSV ------------------------------------------------------------------------------------------


# Kinds that CSV (people's dialects) and HTML both show as the same text: local times, names, yes/no.
SHOWN_AS_TEXT: dict[str, Callable[[Display], Callable[[Any], Any]]] = {
    "datetime": lambda show: show.when,
    "date": lambda show: show.day,
    "employee": lambda show: show.user,
    "boolean": lambda show: show.yes_no,
}


def _csv_converter(column: Column, dialect: str, show: Display) -> Callable[[Any], Any] | None:
    """What a CSV cell of this column holds: None = the stored value as it is."""
    if dialect == "rfc4180":
        return None  # for machines: the stored values (UTC times, ids, codes)
    comma = dialect == "excel-ru"
    kind = column.kind
    if kind in SHOWN_AS_TEXT:
        return SHOWN_AS_TEXT[kind](show)
    if kind == "percent":  # `40%`: what Excel itself reads as a percentage
        return _percent_comma if comma else _percent
    if kind in ("number", "money"):
        return _decimal_comma if comma else _plain_number
    return None


def _plain_number(value: Any) -> Any:
    """`109000` rather than `109000.0`; other values as they are."""
    if value.__class__ is float and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return value


def _percent(value: Any) -> Any:
    return f"{round(value * 100, 2):g}%" if isinstance(value, int | float) and value is not True else value


def _percent_comma(value: Any) -> Any:
    text = _percent(value)
    return text.replace(".", ",") if isinstance(text, str) else text


def _decimal_comma(value: Any) -> Any:
    """`90000,5` and `109000` (Russian Excel reads a decimal comma)."""
    plain = _plain_number(value)
    if plain is value and value.__class__ is float:
        return repr(value).replace(".", ",")
    return plain


def write_csv(columns: Sequence[Column], rows: Rows, out: IO[bytes], opts: WriteOptions) -> int:
    """CSV in UTF-8: `excel-ru` (`;`, BOM, local times, decimal comma), `excel` (`,`, BOM, local
    times) or `rfc4180` (`,`, no BOM, stored values); formula-like text is neutralised unless
    `formula_guard` is off. Returns the number of rows."""
    dialect = opts.dialect
    bom = opts.bom if opts.bom is not None else dialect != "rfc4180"
    if bom:
        out.write(codecs.BOM_UTF8)
    shown = [(i, c) for i, c in enumerate(columns) if not c.hidden]
    # dates, numbers and yes/no as the dialect's spreadsheet reads them (Russian Excel: 25.11.2026)
    show = replace(opts.display, lang="ru" if dialect == "excel-ru" else "en")
    converters = [(i, Memo(conv) if (conv := _csv_converter(c, dialect, show)) else None) for i, c in shown]
    text = CsvText(";" if dialect == "excel-ru" else ",", converters, opts.formula_guard)
    out.write(text.header([c.header(opts.headers) for _i, c in shown]).encode("utf-8"))
    n = 0
    for chunk in rows:
        out.write(text.chunk(chunk).encode("utf-8"))
        n += len(chunk)
    return n


# ---- JSON lines -----------------------------------------------------------------------------------


def write_jsonl(columns: Sequence[Column], rows: Rows, out: IO[bytes], opts: WriteOptions) -> int:
    """One JSON object per line, UTF-8 without escapes; keys are the column codes, values as stored."""
    shown = [(i, c.code) for i, c in enumerate(columns) if not c.hidden]
    keys = [code for _i, code in shown]
    pick = itemgetter(*[i for i, _c in shown]) if len(shown) > 1 else None
    n = 0
    dumps = json.dumps
    for chunk in rows:
        picked = map(pick, chunk) if pick else ((row[shown[0][0]],) for row in chunk)
        lines = [dumps(dict(zip(keys, row, strict=True)), ensure_ascii=False) for row in picked]
        out.write(("\n".join(lines) + "\n").encode("utf-8") if lines else b"")
        n += len(chunk)
    return n


# ---- XLSX -----------------------------------------------------------------------------------------


def plain_columns(codes: Sequence[str], rows: Sequence[Sequence[Any]] = ()) -> list[Column]:
    """Columns for a computed table (a report's own rows): numbers where every value is one, else text."""
    def kind(i: int) -> Kind:
        values = [r[i] for r in rows if r[i] is not None]
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return "number"
        return "text"

    return [Column(code=c, label=c, kind=kind(i)) for i, c in enumerate(codes)]


def write_tables(tables: dict[str, tuple[Sequence[str], list[list[Any]]]], out: IO[bytes], lang: str) -> None:
    """Computed tables as XLSX sheets, through the same writer as exports (text is never a formula)."""
    book = XlsxBook(out, lang)
    for name, (header, rows) in tables.items():
        book.write_sheet(name, plain_columns(header, rows), [rows], Display(lang=lang), "codes")
    book.close()


def write_xlsx(columns: Sequence[Column], rows: Rows, out: IO[bytes], opts: WriteOptions) -> int:
    """One sheet: text cells always text, real dates in the portal's time zone, money formats."""
    book = XlsxBook(out, opts.display.lang)
    n = book.write_sheet(opts.title, columns, rows, opts.display, opts.headers)
    book.close()
    return n


# ---- HTML -----------------------------------------------------------------------------------------

TABLE_CSS = """
body{font-family:"DejaVu Sans","Segoe UI",Arial,sans-serif;margin:16px;color:#1f2933}
h1{font-size:22px;margin:0 0 4px}.meta{color:#52606d;font-size:13px;margin:0 0 10px}
.scroll{overflow:auto;max-height:calc(100vh - 110px);border:1px solid #cbd2d9}
table{border-collapse:separate;border-spacing:0;font-size:13px}
th,td{border-right:1px solid #e4e7eb;border-bottom:1px solid #e4e7eb;padding:4px 8px;text-align:left;
vertical-align:top;overflow-wrap:normal;word-break:normal;hyphens:manual}
th{background:#e4e7eb;position:sticky;top:0;z-index:1;font-weight:600}
td{max-width:26em;min-width:7em}td.n,td.d{white-space:nowrap;text-align:right;font-variant-numeric:tabular-nums}
td.d{text-align:left}tr:nth-child(even) td{background:#f5f7fa}
"""
_NUMERIC = {"integer", "number", "money", "percent"}
_NOWRAP = {"date", "datetime", "boolean"}


def _html_converter(column: Column, show: Display) -> Callable[[Any], Any]:
    kind = column.kind
    if kind in SHOWN_AS_TEXT:
        return SHOWN_AS_TEXT[kind](show)
    if kind == "percent":
        return lambda v: None if v is None else f"{show.number(round(v * 100, 1))} %"
    if kind in ("integer", "number"):
        return lambda v: show.number(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    if column.multiple:
        return _list_text
    return lambda v: v


def _list_text(value: Any) -> Any:
    """A JSON array of texts as `a, b`."""
    if isinstance(value, str) and value.startswith("["):
        try:
            items = json.loads(value)
        except ValueError:
            return value
        if isinstance(items, list):
            return ", ".join(str(i) for i in items if i is not None)
    return value


def _header_width(label: str) -> float:
    """A header's minimum width in em: room for its longest word and at most two lines of text."""
    longest = max((len(w) for w in label.split()), default=1)
    return round(max(longest, min(len(label), 36) / 2) * 0.62 + 0.2, 1)


def write_html(columns: Sequence[Column], rows: Rows, out: IO[bytes], opts: WriteOptions) -> int:
    """A self-contained page (inline CSS, no scripts, no external assets): labelled headers, a sticky
    header row, horizontal scrolling, values formatted for people."""
    esc = html.escape
    show = opts.display
    at = {c.code: i for i, c in enumerate(columns)}
    shown = [(i, c) for i, c in enumerate(columns) if not c.hidden]
    cells: list[tuple[int, Callable[..., Any], str, int | None]] = []
    for i, c in shown:
        css = ' class="n"' if c.kind in _NUMERIC else ' class="d"' if c.kind in _NOWRAP else ""
        currency_at = at.get(c.currency) if c.kind == "money" and c.currency else None
        conv = show.money if currency_at is not None else _html_converter(c, show)
        cells.append((i, conv, css, currency_at))
    head = "".join(
        f'<th scope="col" title="{esc(c.code)}" style="min-width:{_header_width(c.header(opts.headers))}em">'
        f"{esc(c.header(opts.headers))}</th>"
        for _i, c in shown
    )
    lang = esc(show.lang)
    out.write((
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(opts.title)}</title><style>{TABLE_CSS}</style></head><body><h1>{esc(opts.title)}</h1>"
        f'<p class="meta">{esc(opts.note)}</p><div class="scroll"><table>'
        f"<thead><tr>{head}</tr></thead><tbody>\n"
    ).encode())
    n = 0
    for chunk in rows:
        lines = []
        for row in chunk:
            parts = []
            for i, conv, css, cur in cells:
                value = conv(row[i], row[cur]) if cur is not None else conv(row[i])
                parts.append(f"<td{css}></td>" if value is None else f"<td{css}>{esc(str(value))}</td>")
            lines.append("<tr>" + "".join(parts) + "</tr>\n")
        out.write("".join(lines).encode("utf-8"))
        n += len(chunk)
    rows_word = "Строк" if show.lang == "ru" else "Rows"
    tail = f'</tbody></table></div><p class="meta">{rows_word}: {show.number(n)}</p></body></html>\n'
    out.write(tail.encode())
    return n


WRITERS: dict[str, Writer] = {"csv": write_csv, "xlsx": write_xlsx, "jsonl": write_jsonl, "html": write_html}
