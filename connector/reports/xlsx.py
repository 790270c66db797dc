"""A streaming XLSX (SpreadsheetML) writer: rows go straight into the zip, memory stays flat.

Chosen on measurement over openpyxl write-only, xlsxwriter constant_memory and pyexcelerate (see
docs/guide.md, "Export"): cells are built column by column for a chunk of rows (xlsxcells.py), so
most cells cost a few C-level operations. Text is always an inline string cell: a title such as
`=HYPERLINK(...)` can never become a formula. Dates and datetimes are serial numbers with a date
format, shown in the portal's time zone; money gets a number format with its currency sign;
percentages a percent format.
"""

from __future__ import annotations

import queue
import threading
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from html import escape
from typing import IO, Any

from connector.reports.chunks import columns_of
from connector.reports.columns import Column
from connector.reports.formats import CURRENCY_SIGNS, Display, finite, stored_date
from connector.reports.memo import Memo
from connector.reports.xlsxcells import (
    EMPTY,
    EMPTY_B,
    ILLEGAL,
    Part,
    any_cell_bytes,
    bool_cell,
    each,
    encoded,
    number_cell,
    number_column,
    plain_numbers,
    repr_bytes,
    rows_xml,
    text_cell,
    text_column,
)

_EPOCH = datetime(1899, 12, 30)
_EPOCH_DATE = _EPOCH.date()
_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
# Fixed cell styles (cellXfs indexes); money styles per currency are added after these.
HEADER, DATE, DATETIME, PERCENT, AMOUNT, INTEGER = 1, 2, 3, 4, 5, 6
_FIXED_FORMATS = {DATE: 164, DATETIME: 165, PERCENT: 166, AMOUNT: 167, INTEGER: 1}
MAX_ROWS = 1_048_575  # Excel's 1,048,576 rows a sheet, less the header row
_DATE_CODES = {"ru": ("dd.mm.yyyy", "dd.mm.yyyy hh:mm"), "en": ("yyyy-mm-dd", "yyyy-mm-dd hh:mm")}
Chunk = Sequence[Sequence[Any]]


class Sheet:
    """One worksheet being written: its cells come from column converters applied chunk by chunk."""

    def __init__(self, book: XlsxBook, columns: Sequence[Column], display: Display, headers: str) -> None:
        self.book = book
        self.display = display
        self.headers = headers
        at = {c.code: i for i, c in enumerate(columns)}
        self.shown = [(i, c, at.get(c.currency) if c.currency else None)
                      for i, c in enumerate(columns) if not c.hidden]
        self.columns = [c for c in columns if not c.hidden]
        self.memos = [self._memo(c) for c in self.columns]

    def header_xml(self) -> str:
        texts = (_clean(escape(c.header(self.headers), False)) for c in self.columns)
        cells = "".join(f'<c t="inlineStr" s="{HEADER}"><is><t>{t}</t></is></c>' for t in texts)
        return f"<row>{cells}</row>"

    def _memo(self, column: Column) -> Memo:
        """What one value of the column becomes, remembered: a whole cell (UTF-8), or a number's repr."""
        kind, show = column.kind, self.display
        if kind == "datetime":
            return Memo(lambda v: self.datetime_cell(v).encode("utf-8", "replace"), EMPTY_B)
        if kind == "date":
            return Memo(lambda v: self.date_cell(v).encode("utf-8", "replace"), EMPTY_B)
        if kind == "boolean":
            return Memo(lambda v: bool_cell(v).encode("utf-8", "replace"), EMPTY_B)
        if kind == "employee":
            return Memo(lambda v: text_cell(show.user(v)).encode("utf-8", "replace"), EMPTY_B)
        if kind == "text":
            return Memo(any_cell_bytes, EMPTY_B)
        return Memo(repr_bytes)

    def part(
        self, column: Column, memo: Memo, values: Sequence[Any], currencies: Sequence[Any] | None
    ) -> Part:
        """The cells of one column of a chunk."""
        kind = column.kind
        if kind in ("integer", "number"):
            return number_column(values, memo)
        if kind == "money":
            if column.fixed_currency:
                return number_column(values, memo, self.book.money_style(column.fixed_currency))
            if currencies is None:
                return number_column(values, memo, AMOUNT)
            return self.money_column(values, memo, currencies)
        if kind == "percent":
            return number_column(values, memo, PERCENT)
        if kind in ("datetime", "date", "boolean", "employee"):
            return each(memo.column(values))
        return text_column(values, memo)

    def datetime_cell(self, value: Any) -> str:
        """A datetime cell in the portal's time zone."""
        if value is None:
            return EMPTY
        local: datetime | None = value if value.__class__ is datetime else self.display.local(value)
        if local is None:
            return text_cell(value)
        serial = (local - _EPOCH).total_seconds() / 86400.0
        return f'<c s="{DATETIME}"><v>{serial:.8f}</v></c>'

    def date_cell(self, value: Any) -> str:
        if value is None:
            return EMPTY
        day = value if value.__class__ is date else stored_date(value)
        if day is None:
            return text_cell(value)
        return f'<c s="{DATE}"><v>{(day - _EPOCH_DATE).days}</v></c>'

    def money_column(self, amounts: Sequence[Any], memo: Memo, currencies: Sequence[Any]) -> Part:
        """Amount cells, each with its row's currency format (styles added in the order of use)."""
        if not plain_numbers(amounts) or not set(map(type, currencies)) <= {str, type(None)}:
            return each(encoded(map(self.money_cell, amounts, currencies)))  # (1 and 1.0 are one key)
        if currencies.count(currencies[0]) == len(currencies):
            return number_column(amounts, memo, self.money_style_if_used(currencies[0], amounts))
        texts = memo.column(amounts)
        heads: dict[Any, bytes] = {}

        def head(currency: Any) -> bytes:
            found = heads[currency] = f'<c s="{self.book.money_style(currency)}"><v>'.encode()
            return found

        pairs = zip(texts, currencies, strict=True)
        return each([EMPTY_B if t is None else (heads[c] if c in heads else head(c)) + t + b"</v></c>"
                     for t, c in pairs])

    def money_style_if_used(self, currency: Any, amounts: Sequence[Any]) -> int:
        """The currency's style when an amount uses it (else none is added to the book)."""
        return self.book.money_style(currency) if amounts.count(None) != len(amounts) else 0

    def money_cell(self, amount: Any, currency: Any) -> str:
        if amount is None or not finite(amount):
            return number_cell(amount)
        return f'<c s="{self.book.money_style(currency)}"><v>{amount!r}</v></c>'

    def rows_xml(self, chunk: Chunk) -> bytes:
        """`<row>…</row>` for every row of a chunk, as UTF-8."""
        if not chunk:
            return b""
        by_column = columns_of(chunk)
        parts = [self.part(column, memo, by_column[i], by_column[cur] if cur is not None else None)
                 for (i, column, cur), memo in zip(self.shown, self.memos, strict=True)]
        return rows_xml(parts, len(chunk))


def _clean(xml: str) -> str:
    """Drop characters XML 1.0 cannot hold (control characters other than tab and newlines)."""
    return ILLEGAL.sub("", xml)


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

