"""The fast export path writes what the plain one wrote (issue 13).

Pins: the CSV, JSON lines and HTML pins are the sha256 of what the export path wrote before it was
made fast (commit 059ac80, every CSV cell through csv.writer). The XLSX pins are of the sheet and
styles XML of the fast path; their cells were compared one by one with openpyxl (value, number
format, type, bold, frozen pane, filter, widths) against that version's: identical, except that the
old path showed the empty cells of a text column as empty strings in a chunk where a value held a
NUL character (fixed), and that it numbered money styles in a set's order (differing run to run;
now in the order of use). The cases are listed in tests/support/export_pins.py.

Properties: hypothesis draws columns of every kind and chunks of rows, and the fast CSV and XLSX
paths must write exactly what a straightforward per-cell reference writes (csv.writer with each
cell converted and guarded on its own; each value's own cell function).
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.export_pins import CASES, digest, varied_store

from connector.reports.chunks import ColumnChunk, columns_of
from connector.reports.columns import Column, Kind
from connector.reports.csvtext import CsvText
from connector.reports.formats import Display, neutralise, parse_tz
from connector.reports.writers import WriteOptions, _csv_converter, write_csv
from connector.reports.xlsx import AMOUNT, PERCENT, Sheet, XlsxBook
from connector.reports.xlsxcells import any_cell, bool_cell, number_cell, text_cell

PINNED = {
    "csv-excel-ru": "32bdfc3df01de408ff36af0e8f62e1fd617c12868eea82ac3afda3be564644ef",
    "csv-excel-ny": "5d521814a0beee87ed4c1eaf1f64aa21614db8255b48bc0e8528d5e6d0a03761",
    "csv-rfc4180": "0b89d11d22b42e9f097de067b4e08339180d07903ae8a044676cb3653eedfca0",
    "csv-unguarded-codes-bom": "8942214267413a2fb09f1318975730076fbc6d26e96d0108b0e7387955ea5d73",
    "csv-columns-where": "92d0b9b48b0de2c19ff94406838ffaccdf71a9f3789123ab74237a5b2ac2a03e",
    "csv-deleted-utc": "79bc87dcefe4c2e9de175cc50ab809bd4daa8b9ad91e5f64859a928165e823dd",
    "csv-one-column": "2953db79c28b4913ec541bfb3878c95f38b57e5b0027d25326232e3c9c949949",
    "csv-en": "d39357ee39eb9771e773d40eca8271cd0287854473ae47b3227bb8239901cc98",
    "jsonl": "3810e432488e5f7fda87e50313ef5b240c2d813c5a56471c38eb7b15772596df",
    "html": "297e4cefe310238e3d0fee47d6c4998e05301dba9e880e7d5908420625ce1bdf",
    "xlsx": "7711408a2a301bdcbb7eb364554d73af8ca91b4a54de8b4e4790ee82d4d2411b",
    "xlsx-ny-codes-columns": "ff2e39685204c88e58241ab05654ede527461f452524b3f82893b680beaa7db7",
    "xlsx-en-where": "00f61c423497c2a48f6efea113094d554d6b955da0ea99f7a9b229fde0eff289",
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pins")
    return {lang: varied_store(folder / f"{lang}.db", lang) for lang in ("ru", "en")}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_export_output_is_pinned(stores: dict[str, Path], case: str) -> None:
    lang = CASES[case][0]
    assert digest(stores[lang], case) == PINNED[case], f"{case}: the export wrote different bytes"


# ---- the fast paths against a straightforward per-cell reference --------------------------------

KINDS: list[Kind] = ["text", "integer", "number", "money", "percent", "date", "datetime", "boolean",
                     "employee"]
SPECIAL_TEXTS = ["=1+2", "-5", "+7,5", "@x", "\tx", "\rx", "a;b", "a,b", 'a"b', "a\nb", "a\r\nb", "x\n=y",
                 "&<>", "nul\x00", "\x01", "\ufffe", "", " ", "Москва", "2026-11-25T06:16:48Z", "2026-12-01",
                 "[1, 7]", "1", "Y", "None"]
texts = st.one_of(st.sampled_from(SPECIAL_TEXTS),
                  st.text(st.characters(blacklist_categories=("Cs",)), max_size=8))
values = st.one_of(st.none(), texts, st.integers(-10**18, 10**18),
                   st.sampled_from([0, 1, 7, 99, 0.0, -0.0, 1.0]), st.floats(allow_nan=False, width=64))


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[Column], list[list[tuple[Any, ...]]]]:
    """Columns of every kind (money with or without its currency column) and 1-3 chunks of rows whose
    values come from a small pool per column, so that columns are often constant or repeat values."""
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6))
    columns = [Column(f"c{i}", f"C{i}", kind, multiple=False) for i, kind in enumerate(kinds)]
    if "money" in kinds and draw(st.booleans()):
        at = kinds.index("money")
        columns[at] = Column(f"c{at}", f"C{at}", "money", currency="cur")
        columns.append(Column("cur", "Валюта", hidden=draw(st.booleans())))
    # besides drawn pools: pools a memo must not mix up (0.0 and -0.0 are one dict key, so are 1 and 1.0)
    tricky = st.sampled_from([[0.0, -0.0], [-0.0, 2.5, 0.0, None], [1, 1.0], [1.0, "1", 1]])
    pools = [draw(st.one_of(st.lists(values, min_size=1, max_size=4), tricky)) for _ in columns]
    pools[-1] += ["RUB", "USD", None] if columns[-1].code == "cur" else []
    sizes = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
    chunks = [[tuple(draw(st.sampled_from(pool)) for pool in pools) for _ in range(size)] for size in sizes]
    return columns, chunks


def reference_csv(columns: list[Column], chunks: list[list[tuple[Any, ...]]], opts: WriteOptions) -> bytes:
    """CSV as csv.writer writes each row, every cell converted and guarded on its own."""
    shown = [(i, c) for i, c in enumerate(columns) if not c.hidden]
    show = replace(opts.display, lang="ru" if opts.dialect == "excel-ru" else "en")
    convert = {i: _csv_converter(c, opts.dialect, show) for i, c in shown}
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";" if opts.dialect == "excel-ru" else ",", lineterminator="\r\n")
    writer.writerow([c.header(opts.headers) for _i, c in shown])
    for row in (r for chunk in chunks for r in chunk):
        cells = []
        for i, _c in shown:
            fn, value = convert[i], row[i]
            value = fn(value) if fn is not None and value is not None else value
            cells.append(neutralise(value) if opts.formula_guard and isinstance(value, str) else value)
        writer.writerow(cells)
    return text.getvalue().encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(table=tables(), dialect=st.sampled_from(["excel-ru", "excel", "rfc4180"]), guard=st.booleans(),
       tz=st.sampled_from(["+03:00", "America/New_York", "UTC"]))
def test_csv_fast_path_writes_what_csv_writer_writes(
    table: tuple[list[Column], list[list[tuple[Any, ...]]]], dialect: str, guard: bool, tz: str,
) -> None:
    columns, chunks = table
    opts = WriteOptions(dialect=dialect, bom=False, formula_guard=guard,
                        display=Display(tz=parse_tz(tz), users={1: "Администратор", 7: "=Анна;\"С\""}))
    out = io.BytesIO()
    assert write_csv(columns, iter(chunks), out, opts) == sum(map(len, chunks))
    assert out.getvalue() == reference_csv(columns, chunks, opts)


def reference_rows(sheet: Sheet, chunk: list[tuple[Any, ...]]) -> bytes:
    """A chunk's rows as each value's own cell function writes it (money styles taken column by column,
    as the fast path takes them)."""
    show = sheet.display
    per_cell = {
        "integer": number_cell, "number": number_cell, "percent": lambda v: number_cell(v, PERCENT),
        "datetime": sheet.datetime_cell, "date": sheet.date_cell, "boolean": bool_cell,
        "employee": lambda v: text_cell(show.user(v)), "text": any_cell,  # SQLite keeps a number a number
    }
    columns = []
    for i, column, cur in sheet.shown:
        if column.kind == "money":
            columns.append([sheet.money_cell(r[i], r[cur]) if cur is not None else number_cell(r[i], AMOUNT)
                            for r in chunk])
        else:
            columns.append([per_cell[column.kind](r[i]) for r in chunk])
    rows = ("<row>" + "".join(cells) + "</row>" for cells in zip(*columns, strict=True))
    return "".join(rows).encode("utf-8", "replace")


@settings(max_examples=300, deadline=None)
@given(table=tables(), tz=st.sampled_from(["+03:00", "America/New_York", "UTC"]))
def test_xlsx_fast_path_writes_each_cell_as_its_cell_function(
    table: tuple[list[Column], list[list[tuple[Any, ...]]]], tz: str,
) -> None:
    columns, chunks = table
    display = Display(tz=parse_tz(tz), users={1: "Администратор", 7: "A & <B>\r"})
    fast = Sheet(XlsxBook(io.BytesIO()), columns, display, "labels")
    plain = Sheet(XlsxBook(io.BytesIO()), columns, display, "labels")
    for chunk in chunks:
        assert fast.rows_xml(chunk) == reference_rows(plain, chunk)
    assert fast.book.currencies == plain.book.currencies  # the same styles, in the same order
    fast.book.close()
    plain.book.close()


def test_the_pinned_store_takes_the_fast_paths(stores: dict[str, Path]) -> None:
    """The everyday first chunk goes through the column-wise paths (not csv.writer, not per cell)."""
    calls: list[int] = []
    original = CsvText._by_csv_writer

    def spy(self: CsvText, rows: Any) -> str:
        calls.append(len(rows))
        return original(self, rows)

    CsvText._by_csv_writer = spy  # type: ignore[method-assign]
    try:
        digest(stores["ru"], "csv-excel-ru")
    finally:
        CsvText._by_csv_writer = original  # type: ignore[method-assign]
    assert calls[0] == 1  # the header line only: the first chunk (2,000 everyday rows) was not handed over
    assert 2000 not in calls


def test_a_column_chunk_is_still_a_sequence_of_rows() -> None:
    """Chunks with in-memory labels arrive as columns; the row-wise writers and the XLSX row limit
    (which slices chunks) still see rows."""
    rows = [(1, "a", None), (2, "b", 2.5), (3, "c", None)]
    chunk = ColumnChunk([list(c) for c in zip(*rows, strict=True)], 3)
    assert list(chunk) == rows and len(chunk) == 3 and chunk[1] == rows[1] and chunk[-1] == rows[-1]
    assert list(chunk[1:]) == rows[1:] and len(chunk[:0]) == 0 and columns_of(chunk) is chunk.columns
    assert columns_of(rows) == [(1, 2, 3), ("a", "b", "c"), (None, 2.5, None)]
    with pytest.raises(IndexError):
        chunk[3]
    assert list(ColumnChunk([], 2)) == [(), ()]
    buf = io.BytesIO()
    book = XlsxBook(buf)
    columns = [Column("id", "ID", "integer"), Column("t", "T"), Column("x", "X", "number")]
    assert book.write_sheet("S", columns, [chunk, chunk], Display(), max_rows=4) == 6
    book.close()
    sheets = openpyxl.load_workbook(buf).worksheets
    assert [list(s.iter_rows(min_row=2, values_only=True)) for s in sheets] == [rows + rows[:1], rows[1:]]
