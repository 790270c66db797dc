"""docs/ARCHITECTURE.md tells the truth: the real import graph, the layer rules, every store table;
and the product docs never point outside the repository."""

from __future__ import annotations

import re
import sqlite3
from functools import cache
from pathlib import Path

from support import ROOT
from support.import_graph import DOC, Graph, doc_section, render, violations
from support.import_graph import import_graph as compute_graph

from connector.api import Portal
from connector.emulator import EmulatorServer

HR = ROOT / "mappings" / "hr_candidates.toml"


@cache
def _graph() -> Graph:
    return compute_graph()


def import_graph() -> Graph:
    """The graph of the source (parsed once per test run; a fresh copy each call)."""
    return {source: dict(edges) for source, edges in _graph().items()}


def test_no_import_breaks_a_layer_rule() -> None:
    assert violations(import_graph()) == []


def test_the_layer_rules_catch_an_upward_import() -> None:
    graph = import_graph()
    graph["rest"] = {**graph["rest"], "sync": False}
    graph["emulator"] = {**graph["emulator"], "rest": True}
    graph["newpkg"] = {}
    assert violations(graph) == [
        "package 'newpkg' has no layer in tests/support/import_graph.py LAYERS",
        "the emulator imports connector.rest (only constants is allowed)",
        "rest (layer 1) imports sync (layer 4)",
    ]


def test_the_documented_import_graph_is_the_real_one() -> None:
    documented = doc_section(DOC.read_text(encoding="utf-8"))
    assert documented == render(import_graph()), (
        "docs/ARCHITECTURE.md's import graph is stale: run `python tests/support/import_graph.py --write`")


def test_every_package_has_a_row_in_the_layer_table() -> None:
    text = DOC.read_text(encoding="utf-8").split("## Import graph")[0]
    for package in sorted(import_graph()):
        if package in ("connector", "__main__"):
            continue
        assert f"`{package}/`" in text or f"`{package}.py`" in text, f"{package} is not in the layer table"


def test_every_internal_table_of_a_synced_store_is_documented(live_emulator: EmulatorServer,
                                                               tmp_path: Path) -> None:
    """A store after apply + a two-way sync with a local row holds every internal table there is."""
    db = tmp_path / "p.db"
    with Portal.from_webhook(live_emulator.webhook_url, store=db) as portal:
        portal.apply(HR)
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO candidate (title, funnel, stage) VALUES ('Анна', 'hiring', 'NEW')")
        conn.close()
        assert portal.sync(HR).pushed == 1
    with sqlite3.connect(db) as conn:
        objects = conn.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite%'")
        objects = objects.fetchall()
    conn.close()
    text = DOC.read_text(encoding="utf-8")
    internal = sorted(name for kind, name in objects if kind == "table" and name.startswith("_"))
    assert {"_changes", "_base", "_idmap", "_sync_maps", "_sync_inflight"} <= set(internal)
    missing = [name for name in internal if f"| `{name}` |" not in text]
    assert missing == [], f"tables without a row in docs/ARCHITECTURE.md: {missing}"
    assert ("view", "candidate_labels") in objects and "`<code>_labels`" in text
    assert ("trigger", "_log_candidate_insert") in objects and "`_log_<code>_insert|update|delete`" in text


def test_docs_never_point_outside_the_repository() -> None:
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\.\./|shared/|/work/", text), f"{path.name} points outside the repository"
        assert not re.search(r"\bissues? \d+\b", text), f"{path.name} names issue numbers"
