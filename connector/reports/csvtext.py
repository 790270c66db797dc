"""CSV text for a chunk of rows, column by column, byte for byte what `csv.writer` writes.

`csv.writer` costs about a quarter of a microsecond a cell. Here each column of a chunk is checked
at once with C-level operations (a count of empty values, one join, a few substring searches); a
column of plain text then goes into the rows as it is, and each row is one `str.join`. Only a column
that holds something special in this chunk (a separator, a quote or a line break to quote, text a
spreadsheet would run as a formula) is handled value by value, and a chunk holding a value that is
not text, a number or empty (or a table of one column, where `csv.writer` quotes an empty row) is
written by `csv.writer` itself.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any

from connector.reports.chunks import columns_of
from connector.reports.formats import FORMULA_STARTS, neutralise
from connector.reports.memo import Memo

Chunk = Sequence[Sequence[Any]]
LINE_END = "\r\n"
_FORMULA_LINE = re.compile("\n[=+\\-@\t\r]")  # a value starting like a formula, in a joined column
_FORMULA_CHARS = "".join(FORMULA_STARTS)
_CELL_TYPES = frozenset({str, int, float, type(None)})  # what csv.writer writes as str() (None: empty)


def guard_column(values: Sequence[Any]) -> Sequence[Any]:
    """The column with formula-like text neutralised (the same column when nothing needed it).

    A first pass over the joined column (C-level substring search) rules out almost every chunk;
    only a chunk with a line that starts like a formula is checked value by value."""
    kinds = set(map(type, values))
    if str not in kinds:
        return values
    texts = filter(None, values) if kinds <= {str, type(None)} else map(str, values)  # all C-level
    joined = "\n" + "\n".join(texts)
    if not _FORMULA_LINE.search(joined):
        return values
    return _neutralised(values)


def _neutralised(values: Sequence[Any]) -> Sequence[Any]:
    hits = [i for i, v in enumerate(values) if v.__class__ is str and v and v[0] in _FORMULA_CHARS]
    if not hits:
        return values
    fixed = list(values)
    for i in hits:
        fixed[i] = neutralise(fixed[i])
    return fixed


class CsvText:
    """Chunks of rows -> CSV text in one dialect (delimiter; `"` quotes; CRLF), as `csv.writer` would.

    `columns` are (row position, converter or None) of the written columns, in order; `guard`
    neutralises formula-like text (after conversion, as `formats.neutralise` says)."""

    def __init__(self, delimiter: str, columns: Sequence[tuple[int, Memo | None]], guard: bool) -> None:
        self.delimiter = delimiter
        self.columns = list(columns)
        self.guard = guard
        self._special = re.compile(f'[{re.escape(delimiter)}"\r\n]')
        self._fallback_text = io.StringIO()
        self._fallback = csv.writer(self._fallback_text, delimiter=delimiter, lineterminator=LINE_END)

    def header(self, texts: Sequence[str]) -> str:
        """The header line (always by csv.writer: it is one line)."""
        return self._by_csv_writer([texts])

    def chunk(self, chunk: Chunk) -> str:
        """The CSV lines of a chunk of rows."""
        if not chunk:
            return ""
        by_column = columns_of(chunk)
        converted = [memo.column(by_column[i]) if memo and by_column[i].count(None) != len(chunk)
                     else by_column[i] for i, memo in self.columns]
        if len(converted) > 1:
            cells = [self._cells(values) for values in converted]
            if all(c is not None for c in cells):
                merged = _constant_runs_merged(cells, self.delimiter)  # type: ignore[arg-type]
                return LINE_END.join(map(self.delimiter.join, zip(*merged, strict=True))) + LINE_END
        written = [guard_column(v) for v in converted] if self.guard else converted
        return self._by_csv_writer(list(zip(*written, strict=True)) if written else [() for _ in chunk])

    def _cells(self, values: Sequence[Any]) -> Sequence[str] | None:
        """The column's cells as CSV text (guarded, quoted where needed); None: leave the chunk to
        csv.writer."""
        n = len(values)
        empty = values.count(None)
        if empty == n:
            return [""] * n
        texts = ["" if v is None else v for v in values] if empty else values
        try:
            joined = "\n".join(texts)
        except TypeError:  # numbers (or something else) among the values
            kinds = set(map(type, values))
            if not kinds <= _CELL_TYPES:
                return None
            guarded = guard_column(values) if self.guard and str in kinds else values  # never a number
            texts = list(map(str, ["" if v is None else v for v in guarded] if empty else guarded))
            joined = "\n".join(texts)  # csv.writer writes str(value); a float's str is its repr
        else:
            if self.guard and (texts[0].startswith(FORMULA_STARTS) or _FORMULA_LINE.search(joined)):
                texts = _neutralised(texts)
        if (self.delimiter in joined or '"' in joined or "\r" in joined
                or joined.count("\n") != n - 1):
            special = self._special.search
            return [f'"{t.replace(chr(34), chr(34) * 2)}"' if special(t) else t for t in texts]
        return texts

    def _by_csv_writer(self, rows: Sequence[Sequence[Any]]) -> str:
        self._fallback.writerows(rows)
        text = self._fallback_text.getvalue()
        self._fallback_text.seek(0)
        self._fallback_text.truncate()
        return text


def _constant_runs_merged(cells: Sequence[Sequence[str]], delimiter: str) -> list[Iterable[str]]:
    """The columns, with each run of columns that hold one value all the way down (often empty)
    joined into one: the row join then has fewer pieces and writes the same text."""
    out: list[Iterable[str]] = []
    run: list[str] = []
    n = len(cells[0])
    for texts in cells:
        first = texts[0]
        if texts[-1] == first and texts.count(first) == n:
            run.append(first)
            continue
        if run:
            out.append(repeat(delimiter.join(run), n))
            run = []
        out.append(texts)
    if run:
        out.append(repeat(delimiter.join(run), n))
    return out
