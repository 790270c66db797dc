"""The report tests' sample store (tests/support/stores.py) is what the product builds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from support.stores import HIRING, RESERVE, add_item, candidate_template, create_store, sample_store

__all__ = ["HIRING", "RESERVE", "add_item", "candidate_template", "create_store", "sample_store", "template"]
template = candidate_template


def test_helper_store_is_built_by_the_store(tmp_path: Path) -> None:
    """Tables, view, labels and the recorded funnels come from `ensure_process`, not copied SQL."""
    store_path = sample_store(tmp_path)
    conn = sqlite3.connect(store_path)
    cols = {r[1] for r in conn.execute("PRAGMA table_info(candidate)")}
    assert {"key", "id", "title", "funnel", "stage", "deleted", "salary", "salary_currency"} <= cols
    assert conn.execute("SELECT stage_name FROM candidate_labels WHERE key = 'c1'").fetchone() == ("Принят",)
    assert conn.execute("SELECT COUNT(*) FROM _changes").fetchone() == (0,)  # written as sync writes
    stages = conn.execute("SELECT code, semantics FROM _stages WHERE tbl = 'candidate' AND funnel = 'hiring' "
                          "ORDER BY sort, position").fetchall()
    assert stages == [(c, s) for c, _n, s in HIRING]
