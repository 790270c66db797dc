"""A streaming XLSX (SpreadsheetML) writer: rows go straight into the zip, memory stays flat.

Chosen on measurement over openpyxl write-only, xlsxwriter constant_memory and pyexcelerate (see
docs/guide.md, "Export"): cells are built column by column for a chunk of rows, so the per-cell work
is one small function call. Text is always an inline string cell (`t="inlineStr"`): a title such
as `=HYPERLINK(...)` can never become a formula. Dates and datetimes are serial numbers with a date
format, shown in the portal's time zone; money gets a number format with its currency sign;
percentages a percent format. Cells carry no `r` attribute (optional in ECMA-376): an empty value
is written as `<c/>` so that positions stay right.
"""

from __future__ import annotations

import math
import queue
import re
import threading
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from html import escape
from itertools import chain, repeat, zip_longest
from operator import itemgetter
from typing import IO, Any

from connector.reports.columns import Column
from connector.reports.formats import CURRENCY_SIGNS, Display, finite, stored_date

EMPTY = "<c/>"
_EPOCH = datetime(1899, 12, 30)
_EPOCH_DATE = _EPOCH.date()
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
# Fixed cell styles (cellXfs indexes); money styles per currency are added after these.
HEADER, DATE, DATETIME, PERCENT, AMOUNT, INTEGER = 1, 2, 3, 4, 5, 6
_FIXED_FORMATS = {DATE: 164, DATETIME: 165, PERCENT: 166, AMOUNT: 167, INTEGER: 1}
MAX_ROWS = 1_048_575  # Excel's 1,048,576 rows a sheet, less the header row
_DATE_CODES = {"ru": ("dd.mm.yyyy", "dd.mm.yyyy hh:mm"), "en": ("yyyy-mm-dd", "yyyy-mm-dd hh:mm")}
Chunk = Sequence[Sequence[Any]]


def text_cell(value: Any) -> str:
    """An inline string cell (never a formula); None is an empty cell."""
    if value is None:
        return EMPTY
    text = value if value.__class__ is str else str(value)
    if not text.isprintable():
        text = _ILLEGAL.sub("", text)
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "\r" in text:  # a literal CR would be read back as LF (XML end-of-line handling)
        text = text.replace("\r", "&#13;")
    return '<c t="inlineStr"><is><t xml:space="preserve">' + text + "</t></is></c>"


def number_cell(value: Any, style: int = 0) -> str:
    """A number cell (with a style); text that is not a number stays text."""
    if value is None:
        return EMPTY
    if finite(value):
        return f'<c s="{style}"><v>{value!r}</v></c>' if style else "<c><v>" + repr(value) + "</v></c>"
    if isinstance(value, bool):
        return '<c t="b"><v>' + ("1" if value else "0") + "</v></c>"
    return text_cell(value)


def any_cell(value: Any) -> str:
    """A number cell for a number (SQLite keeps the type per value), else an inline string."""
    return number_cell(value) if finite(value) else text_cell(value)


class Sheet:
    """One worksheet being written: its cells come from column converters applied chunk by chunk."""

    def __init__(self, book: XlsxBook, columns: Sequence[Column], display: Display, headers: str) -> None:
        self.book = book
        self.display = display
        self.headers = headers
        self._datetimes: dict[str, str] = {}
        self._names: dict[Any, str | None] = {}
        at = {c.code: i for i, c in enumerate(columns)}
        self.shown = [(i, c, at.get(c.currency) if c.currency else None)
                      for i, c in enumerate(columns) if not c.hidden]
        self.columns = [c for c in columns if not c.hidden]

    def header_xml(self) -> str:
        texts = (_clean(escape(c.header(self.headers), False)) for c in self.columns)
        cells = "".join(f'<c t="inlineStr" s="{HEADER}"><is><t>{t}</t></is></c>' for t in texts)
        return f"<row>{cells}</row>"

    def cells(self, column: Column, values: list[Any], currencies: list[Any] | None) -> Iterable[str]:
        """The cells of one column of a chunk."""
        kind, show = column.kind, self.display
        if kind in ("integer", "number"):
            return number_column(values)
        if kind == "money":
            if column.fixed_currency:
                return number_column(values, self.book.money_style(column.fixed_currency))
            if currencies is None:
                return number_column(values, AMOUNT)
            return self.money_column(values, currencies)
        if kind == "percent":
            return number_column(values, PERCENT)
        if kind == "datetime":
            cache = self._datetimes
            return [cache[v] if v in cache else self.datetime_cell(v) for v in values]
        if kind == "date":
            return map(self.date_cell, values)
        if kind == "boolean":
            return map(_bool_cell, values)
        if kind == "employee":
            names = self._names
            if len(names) > 50_000:
                names.clear()
            known = [names[v] if v in names else names.setdefault(v, show.user(v)) for v in values]
            return text_column(known)
        return text_column(values)

    def datetime_cell(self, value: Any) -> str:
        """A datetime cell in the portal's time zone (remembered per stored value)."""
        if value is None:
            return EMPTY
        local: datetime | None = value if value.__class__ is datetime else self.display.local(value)
        if local is None:
            return text_cell(value)
        serial = (local - _EPOCH).total_seconds() / 86400.0
        cell = f'<c s="{DATETIME}"><v>{serial:.8f}</v></c>'
        if value.__class__ is str:
            if len(self._datetimes) > 50_000:
                self._datetimes.clear()
            self._datetimes[value] = cell
        return cell

    def date_cell(self, value: Any) -> str:
        if value is None:
            return EMPTY
        day = value if value.__class__ is date else stored_date(value)
        if day is None:
            return text_cell(value)
        return f'<c s="{DATE}"><v>{(day - _EPOCH_DATE).days}</v></c>'

    def money_column(self, amounts: list[Any], currencies: list[Any]) -> Iterable[str]:
        """Amount cells, each with its row's currency format (a comprehension for plain numbers)."""
        kinds = set(map(type, amounts))
        present = [v for v in amounts if v is not None]
        if not kinds <= {int, float, type(None)} or not all(map(math.isfinite, present)):
            return map(self.money_cell, amounts, currencies)
        heads = {c: f'<c s="{self.book.money_style(c)}"><v>' for c in set(currencies)}
        pairs = zip(amounts, currencies, strict=True)
        return [EMPTY if a is None else heads[c] + repr(a) + "</v></c>" for a, c in pairs]

    def money_cell(self, amount: Any, currency: Any) -> str:
        if amount is None or not finite(amount):
            return number_cell(amount)
        return f'<c s="{self.book.money_style(currency)}"><v>{amount!r}</v></c>'

    def rows_xml(self, chunk: Chunk) -> bytes:
        """`<row>…</row>` for every row of a chunk, as UTF-8 without characters XML cannot hold."""
        if not chunk:
            return b""
        columns: list[Iterable[bytes]] = []
        for i, column, cur_at in self.shown:
            values = list(map(itemgetter(i), chunk))
            currencies = list(map(itemgetter(cur_at), chunk)) if cur_at is not None else None
            cells = self.cells(column, values, currencies)
            columns.append(cells if isinstance(cells, ByteCells) else as_bytes(cells))
        columns.append(repeat(b"</row><row>", len(chunk) - 1))  # between rows; one join for the chunk
        return b"<row>" + b"".join(chain.from_iterable(zip_longest(*columns, fillvalue=b""))) + b"</row>"


class ByteCells(list):  # type: ignore[type-arg]
    """Cells already encoded as UTF-8."""


def as_bytes(cells: Iterable[str]) -> ByteCells:
    """Encode a column of cells at once (join, encode, split: no Python code per cell)."""
    return ByteCells("\x00".join(cells).encode("utf-8", "replace").split(b"\x00"))


_OPEN = '<c t="inlineStr"><is><t xml:space="preserve">'
_CLOSE = "</t></is></c>"
_NONE_MARK = "\x01"
_CONTROL_BYTES = bytes([*range(1, 9), 11, 12, *range(14, 32)])  # not NUL: it separates cells


def text_column(values: list[Any]) -> Iterable[str] | ByteCells:
    """Inline string cells for a column of a chunk.

    When the values are all text (or empty), they are escaped, encoded, cleaned of what XML 1.0
    cannot hold (C0 controls, never part of a multi-byte UTF-8 character) and wrapped with a few
    C-level operations on the joined column instead of one Python call per cell.
    """
    kinds = set(map(type, values))
    if not kinds <= {str, type(None)}:
        return map(any_cell, values)
    if type(None) in kinds:
        values = [_NONE_MARK if v is None else v for v in values]
    joined = "\x00".join(values)
    if joined.count("\x00") != len(values) - 1 or "\ufffe" in joined or "\uffff" in joined:
        return map(text_cell, values)
    if "&" in joined or "<" in joined or ">" in joined:
        joined = joined.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "\r" in joined:  # a literal CR would be read back as LF (XML end-of-line handling)
        joined = joined.replace("\r", "&#13;")
    wrapped = _OPEN + joined.replace("\x00", _CLOSE + "\x00" + _OPEN) + _CLOSE
    if type(None) in kinds:
        wrapped = wrapped.replace(_OPEN + _NONE_MARK + _CLOSE, EMPTY)
    data = wrapped.encode("utf-8", "replace")
    return ByteCells(data.translate(None, _CONTROL_BYTES).split(b"\x00"))


def number_column(values: list[Any], style: int = 0) -> Iterable[str]:
    """Number cells for a column of a chunk (a comprehension when every value is a finite number)."""
    kinds = set(map(type, values))
    present = [v for v in values if v is not None]
    if not kinds <= {int, float, type(None)} or not all(map(math.isfinite, present)):
        return map(number_cell, values, repeat(style))
    head = f'<c s="{style}"><v>' if style else "<c><v>"
    return [EMPTY if v is None else head + repr(v) + "</v></c>" for v in values]


def _bool_cell(value: Any) -> str:
    if value is None:
        return EMPTY
    if value in (0, 1, True, False):
        return '<c t="b"><v>' + ("1" if value else "0") + "</v></c>"
    return text_cell(value)


def _clean(xml: str) -> str:
    """Drop characters XML 1.0 cannot hold (control characters other than tab and newlines)."""
    return _ILLEGAL.sub("", xml)


class Deflater:
    """Writes (so compresses) on a second thread while the next chunk is built: zlib and crc32 let go
    of the GIL. At most `depth` chunks wait, so memory stays flat."""

    def __init__(self, out: IO[bytes], depth: int = 3) -> None:
        self.out = out
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="xlsx-deflate", daemon=True)

    def _run(self) -> None:
        while (data := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.out.write(data)
                except BaseException as exc:  # handed to the writing thread
                    self.error = exc

    def __call__(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(data)

    def __enter__(self) -> Deflater:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error


class XlsxBook:
    """A workbook written as a zip stream: sheets one after another, styles and index at the end."""

    def __init__(self, out: IO[bytes], lang: str = "ru") -> None:
        self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        self.lang = lang
        self.sheet_names: list[str] = []
        self.currencies: dict[str, int] = {}

    def money_style(self, currency: Any) -> int:
        """The cell style of an amount in this currency (added on first use)."""
        code = str(currency or "")
        style = self.currencies.get(code)
        if style is None:
            style = self.currencies[code] = INTEGER + 1 + len(self.currencies)
        return style

    def write_sheet(
        self, title: str, columns: Sequence[Column], chunks: Iterable[Chunk], display: Display,
        headers: str = "labels", freeze: bool = True, max_rows: int = MAX_ROWS,
    ) -> int:
        """Write rows from chunks into a sheet, continued on `<title> (2)`, ... past Excel's row limit;
        returns the number of rows."""
        sheet = Sheet(self, columns, display, headers)
        pending = iter(chunks)
        carry: Chunk = []
        total = 0
        while True:
            n, carry, more = self._one_sheet(title, sheet, pending, carry, freeze, max_rows)
            total += n
            if not more:
                return total

    def _one_sheet(
        self, title: str, sheet: Sheet, chunks: Iterator[Chunk], carry: Chunk, freeze: bool, max_rows: int,
    ) -> tuple[int, Chunk, bool]:
        """One worksheet part: (rows written, rows left over for the next sheet, whether more follow)."""
        columns = sheet.columns
        name = _sheet_name(title, self.sheet_names)
        self.sheet_names.append(name)
        n, more = 0, False
        left: Chunk = list(carry)
        # no zip64 records (some spreadsheet programs refuse them); a sheet's XML past 2 GB, far beyond
        # Excel's row limit, is refused by zipfile instead
        with self.zip.open(f"xl/worksheets/sheet{len(self.sheet_names)}.xml", "w") as f:
            f.write(_sheet_head(columns, freeze).encode())
            f.write(sheet.header_xml().encode())
            with Deflater(f) as deflate:
                while True:
                    chunk: Chunk | None = left or next(chunks, None)
                    left = []
                    if chunk is None:
                        break
                    room = max_rows - n
                    if len(chunk) > room:
                        chunk, left, more = chunk[:room], list(chunk[room:]), True
                    deflate(sheet.rows_xml(chunk))
                    n += len(chunk)
                    if more:
                        break
            last = _column_letter(len(columns)) + str(n + 1)
            last_filter = f'<autoFilter ref="A1:{last}"/>' if columns else ""
            f.write(f"</sheetData>{last_filter}</worksheet>".encode())
        return n, left, more

    def close(self) -> None:
        """Write styles, workbook index and package parts; finish the zip."""
        sheets = range(1, len(self.sheet_names) + 1)
        self.zip.writestr("[Content_Types].xml", _content_types(len(self.sheet_names)))
        self.zip.writestr("_rels/.rels", _ROOT_RELS)
        entries = "".join(
            f'<sheet name="{escape(name)}" sheetId="{i}" r:id="rId{i}"/>'
            for i, name in zip(sheets, self.sheet_names, strict=True)
        )
        self.zip.writestr("xl/workbook.xml", (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook {_NS} xmlns:r="{_REL_NS}">'
            f"<sheets>{entries}</sheets></workbook>"
        ))
        rels = "".join(
            f'<Relationship Id="rId{i}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in sheets
        )
        styles_id = len(self.sheet_names) + 1
        rels += f'<Relationship Id="rId{styles_id}" Type="{_REL_NS}/styles" Target="styles.xml"/>'
        self.zip.writestr("xl/_rels/workbook.xml.rels", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}'
            "</Relationships>"
        ))
        self.zip.writestr("xl/styles.xml", self._styles())
        self.zip.close()

    def _styles(self) -> str:
        date_code, datetime_code = _DATE_CODES.get(self.lang, _DATE_CODES["en"])
        formats = {164: date_code, 165: datetime_code, 166: "0.0%", 167: "#,##0.00"}
        xfs = ['<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>',
               '<xf numFmtId="0" fontId="1" fillId="2" borderId="0" xfId="0" applyFont="1" applyFill="1"/>']
        xfs += [f'<xf numFmtId="{fmt}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
                for fmt in _FIXED_FORMATS.values()]
        for i, code in enumerate(self.currencies):
            fmt_id = 168 + i
            sign = CURRENCY_SIGNS.get(code, code)
            formats[fmt_id] = f'#,##0.00\\ "{sign}"' if sign else "#,##0.00"
            xfs.append(f'<xf numFmtId="{fmt_id}" fontId="0" fillId="0" borderId="0" xfId="0" '
                       'applyNumberFormat="1"/>')
        num_fmts = "".join(
            f'<numFmt numFmtId="{i}" formatCode="{escape(code)}"/>' for i, code in formats.items()
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet {_NS}>'
            f'<numFmts count="{len(formats)}">{num_fmts}</numFmts>'
            '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
            '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
            '<fills count="3"><fill><patternFill patternType="none"/></fill>'
            '<fill><patternFill patternType="gray125"/></fill>'
            '<fill><patternFill patternType="solid"><fgColor rgb="FFE4E7EB"/><bgColor indexed="64"/>'
            "</patternFill></fill></fills>"
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
            f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
            "</styleSheet>"
        )


def _column_letter(n: int) -> str:
    letters = ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters or "A"


_WIDTHS = {"date": 12, "datetime": 17, "money": 16, "percent": 10, "integer": 10, "number": 12, "boolean": 8}


def _sheet_head(columns: Sequence[Column], freeze: bool) -> str:
    """Sheet start: the header row frozen, a width per column (from its header and kind)."""
    pane = (
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
        'state="frozen"/><selection pane="bottomLeft"/></sheetView></sheetViews>'
    ) if freeze else ""
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{_width(c)}" customWidth="1"/>' for i, c in enumerate(columns, 1)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_NS} xmlns:r="{_REL_NS}">'
        f"{pane}<sheetFormatPr defaultRowHeight=\"15\"/>{f'<cols>{cols}</cols>' if cols else ''}<sheetData>"
    )


def _width(column: Column) -> int:
    longest_word = max((len(w) for w in column.label.split()), default=4)
    return min(60, max(_WIDTHS.get(column.kind, 18), longest_word + 3, min(len(column.label), 28) + 2))


def _sheet_name(title: str, taken: Sequence[str]) -> str:
    """A valid, unique sheet name (no []:*?/\\, at most 31 characters)."""
    cleaned = "".join(ch for ch in title if ch not in "[]:*?/\\").strip("' ") or "Sheet"
    name, i = cleaned[:31], 2
    while name.lower() in (t.lower() for t in taken):
        suffix = f" ({i})"
        name, i = cleaned[: 31 - len(suffix)] + suffix, i + 1
    return name


_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)


def _content_types(sheets: int) -> str:
    main = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{main}.worksheet+xml"/>'
        for i in range(1, sheets + 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{main}.sheet.main+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{main}.styles+xml"/>{overrides}</Types>'
    )


def write_book(
    out: IO[bytes], sheets: Iterable[tuple[str, Sequence[Column], Iterable[Chunk]]], display: Display,
    headers: str = "labels",
) -> int:
    """Write a workbook of several sheets; returns the rows written in all."""
    book = XlsxBook(out, display.lang)
    n = sum(book.write_sheet(title, cols, chunks, display, headers) for title, cols, chunks in sheets)
    book.close()
    return n

