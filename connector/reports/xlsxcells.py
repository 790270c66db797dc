"""Worksheet cells (SpreadsheetML), a column of a chunk of rows at a time.

`text_cell`, `number_cell`, `any_cell` and `bool_cell` say what one value becomes. The column
functions give the same cells for a whole column of a chunk with C-level operations: a column is
checked once (a count of empty values, one join, a few substring searches) and, when nothing in it
needs escaping or cleaning, its text goes into the rows as it is, between a constant head and
tail. `rows_xml` then joins the parts of each row; a column that holds one value all the way down
(often empty) becomes part of the constant text between the others.

Text is always an inline string cell (`t="inlineStr"`): a title such as `=HYPERLINK(...)` can
never become a formula. Cells carry no `r` attribute (optional in ECMA-376): an empty value is
written as `<c/>` so that positions stay right.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any

from connector.reports.formats import finite
from connector.reports.memo import Memo

EMPTY = "<c/>"
OPEN = '<c t="inlineStr"><is><t xml:space="preserve">'
CLOSE = "</t></is></c>"
ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # what XML 1.0 cannot hold
_NONE_MARK = "\x01"  # stands for an empty value in a joined column (a control byte: never left in text)
_NONE_MARK_B = _NONE_MARK.encode()
_CONTROL_BYTES = bytes([*range(1, 9), 11, 12, *range(14, 32)])  # C0 controls XML cannot hold, but NUL
EMPTY_B, OPEN_B, CLOSE_B = EMPTY.encode(), OPEN.encode(), CLOSE.encode()

# One column of a chunk, as UTF-8: (head, cells, tail) -> each row gets head + cell + tail; cells None:
# the head alone.
Part = tuple[bytes, Sequence[bytes] | None, bytes]


def text_cell(value: Any) -> str:
    """An inline string cell (never a formula); None is an empty cell."""
    if value is None:
        return EMPTY
    text = value if value.__class__ is str else str(value)
    if not text.isprintable():
        text = ILLEGAL.sub("", text)
    return OPEN + _escaped(text) + CLOSE


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


def bool_cell(value: Any) -> str:
    """A boolean cell for 0/1, else text."""
    if value is None:
        return EMPTY
    if value in (0, 1, True, False):
        return '<c t="b"><v>' + ("1" if value else "0") + "</v></c>"
    return text_cell(value)


def _escaped(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "\r" in text:  # a literal CR would be read back as LF (XML end-of-line handling)
        text = text.replace("\r", "&#13;")
    return text


def encoded(cells: Iterable[str]) -> list[bytes]:
    """Cells as UTF-8, at once (a cell never holds NUL: `text_cell` drops it)."""
    return "\x00".join(cells).encode("utf-8", "replace").split(b"\x00")


def constant(cell: bytes) -> Part:
    """The same cell in every row."""
    return (cell, None, b"")


def each(cells: Sequence[bytes]) -> Part:
    """A whole cell per row."""
    return (b"", cells, b"")


def text_column(values: Sequence[Any], cells: Memo | None = None) -> Part:
    """Inline string cells for a column of a chunk (what `any_cell` gives for each value: SQLite
    keeps a number in a text column a number).

    The column is joined and encoded once; what XML cannot hold (control characters, U+FFFE,
    U+FFFF, or NUL, the separator here) sends it value by value through `text_cell`. A column with
    empty values takes its cells from `cells` (a memo of `any_cell`, as UTF-8) while it repeats."""
    n = len(values)
    first = values[0]
    if values[-1] == first and values.count(first) == n and (first is None or first.__class__ is str):
        return constant(text_cell(first).encode("utf-8", "replace"))  # one value all the way down
    empty = values.count(None)
    if empty and cells is not None and cells.remember:
        return each(cells.column(values))
    texts = [_NONE_MARK if v is None else v for v in values] if empty else values
    try:
        data = "\x00".join(texts).encode("utf-8", "replace")
    except TypeError:  # numbers (or something else) among the values
        return each(encoded(map(any_cell, values)))
    if (data.count(b"\x00") != n - 1 or len(data) - len(data.translate(None, _CONTROL_BYTES)) != empty
            or b"\xef\xbf\xbe" in data or b"\xef\xbf\xbf" in data):
        return each(encoded(map(text_cell, values)))  # characters to drop: value by value
    if b"&" in data or b"<" in data or b">" in data or b"\r" in data:
        data = data.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
        data = data.replace(b"\r", b"&#13;")
    if not empty:
        return (OPEN_B, data.split(b"\x00"), CLOSE_B)
    wrapped = OPEN_B + data.replace(b"\x00", CLOSE_B + b"\x00" + OPEN_B) + CLOSE_B
    return each(wrapped.replace(OPEN_B + _NONE_MARK_B + CLOSE_B, EMPTY_B).split(b"\x00"))


def number_column(values: Sequence[Any], reprs: Memo, style: int = 0) -> Part:
    """Number cells for a column of a chunk (what `number_cell` gives for each value); `reprs` is
    the column's memo of `repr_bytes`."""
    kinds = set(map(type, values))
    if not plain_numbers(values, kinds):
        return each(encoded(map(number_cell, values, repeat(style))))
    n = len(values)
    empty = values.count(None)
    if empty == n:
        return constant(EMPTY_B)
    if empty or float in kinds:
        texts = reprs.column(values, kinds)
    else:  # integers, often all different (ids): no memory, one join
        texts = "\x00".join(map(repr, values)).encode().split(b"\x00")
    head = f'<c s="{style}"><v>'.encode() if style else b"<c><v>"
    if not empty:
        return (head, texts, b"</v></c>")
    return each([EMPTY_B if t is None else head + t + b"</v></c>" for t in texts])


def any_cell_bytes(value: Any) -> bytes:
    """`any_cell` as UTF-8."""
    return any_cell(value).encode("utf-8", "replace")


def repr_bytes(value: Any) -> bytes:
    """A number as a cell value writes it."""
    return repr(value).encode()


def plain_numbers(values: Sequence[Any], kinds: set[type] | None = None) -> bool:
    """Every value an int, a finite float or None (what a number format can show); `kinds`: the
    values' types, when known."""
    kinds = set(map(type, values)) if kinds is None else kinds
    return kinds <= {int, float, type(None)} and (
        float not in kinds or all(map(math.isfinite, filter(None, values))))


def rows_xml(parts: Sequence[Part], n: int) -> bytes:
    """`<row>…</row>` for each of the n rows, as UTF-8: one join per row, constant text merged."""
    pieces: list[Iterable[bytes]] = []
    const = b"<row>"
    for head, cells, tail in parts:
        if cells is None:
            const += head
            continue
        first = cells[0]
        if cells[-1] == first and cells.count(first) == n:  # one value all the way down
            const += head + first + tail
            continue
        if const + head:
            pieces.append(repeat(const + head, n))
        pieces.append(cells)
        const = tail
    pieces.append(repeat(const + b"</row>", n))
    return b"".join(map(b"".join, zip(*pieces, strict=True)))
