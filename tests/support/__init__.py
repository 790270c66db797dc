"""Helpers shared by the tests: the vendored doc fixtures, emulator factories, the import graph.

The tests folder is on `sys.path` while pytest runs (it has no `__init__.py`), so test files write
`from support import DOCS_FIXTURES`.
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
# JSON examples from the official Bitrix24 REST docs (INDEX.tsv names the source page of each file).
DOCS_FIXTURES = TESTS / "fixtures" / "bitrix24-docs"

__all__ = ["DOCS_FIXTURES", "ROOT", "TESTS"]
