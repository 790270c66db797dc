"""`ColumnChunk`: a chunk of rows held as its columns, for the writers that work column by column.

An export with in-memory labels (labels.py) has its fetched rows in columns anyway when it adds the
label columns; handing the columns on saves rebuilding every row and taking it apart again in the
CSV and XLSX writers. It is still a sequence of rows (iteration, indexing, slicing) for the others.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload


class ColumnChunk(Sequence[tuple[Any, ...]]):
    """`n` rows whose values are in `columns` (one sequence per column, each of length n)."""

    __slots__ = ("columns", "n")

    def __init__(self, columns: list[Sequence[Any]], n: int) -> None:
        self.columns = columns
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        if not self.columns:
            return iter([()] * self.n)
        return zip(*self.columns, strict=True)

    @overload
    def __getitem__(self, index: int) -> tuple[Any, ...]: ...

    @overload
    def __getitem__(self, index: slice) -> ColumnChunk: ...

    def __getitem__(self, index: int | slice) -> tuple[Any, ...] | ColumnChunk:
        if isinstance(index, slice):
            return ColumnChunk([c[index] for c in self.columns], len(range(self.n)[index]))
        row = range(self.n)[index]  # IndexError past the end, as a list
        return tuple(c[row] for c in self.columns)


def columns_of(chunk: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    """A chunk's columns (rows taken apart, unless it holds columns already)."""
    if isinstance(chunk, ColumnChunk):
        return chunk.columns
    return list(zip(*chunk, strict=True))
