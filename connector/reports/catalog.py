"""Funnels and stages of a process, in order, with names and (best-known) semantics."""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field

from connector.reports.readonly import column_names, table_names

_SUCCESS = re.compile(r"(^|_)(SUCCESS|WON|WIN|DONE|HIRED|SIGNED|CLOSED_WON|COMPLETED?)($|_)")
_FAILURE = re.compile(
    r"(^|_)(FAIL|FAILED|FAILURE|LOSE|LOST|REJECT|REJECTED|CANCEL|CANCELLED|CANCELED|JUNK)($|_)"
)


def guess_semantics(stage_code: str) -> str:
    """'success' | 'failure' | 'process' from a stage code (the store keeps no semantics)."""
    code = stage_code.upper()
    if _FAILURE.search(code):
        return "failure"
    if _SUCCESS.search(code):
        return "success"
    return "process"


@dataclass
class StageInfo:
    """One stage of one funnel."""

    code: str
    name: str
    semantics: str


@dataclass
class FunnelInfo:
    """One funnel with its stages in order."""

    code: str
    name: str
    stages: list[StageInfo] = field(default_factory=list)

    def stage(self, code: str) -> StageInfo:
        """The stage with this code, added at the end (unknown name) if the catalog lacked it."""
        for stage in self.stages:
            if stage.code == code:
                return stage
        info = StageInfo(code=code, name=code, semantics=guess_semantics(code))
        self.stages.append(info)
        return info


StageRows = list[tuple[str, str, str]]


def _labels(conn: sqlite3.Connection, tbl: str, lang: str) -> tuple[dict[str, str], StageRows]:
    """Funnel names and (funnel, stage, name) rows in template order, from the store's `_labels` table."""
    if "_labels" not in table_names(conn):
        return {}, []
    if not {"tbl", "kind", "scope", "code", "lang", "label"} <= set(column_names(conn, "_labels")):
        return {}, []
    rows = conn.execute(
        "SELECT kind, scope, code, lang, label FROM _labels WHERE tbl = ? AND kind IN ('funnel', 'stage') "
        "ORDER BY rowid",
        (tbl,),
    ).fetchall()
    langs = {r[3] for r in rows}
    chosen = lang if lang in langs else (sorted(langs)[0] if langs else lang)
    funnels = {code: label for kind, _s, code, lg, label in rows if kind == "funnel" and lg == chosen}
    stages = [(scope, code, name) for kind, scope, code, lg, name in rows if kind == "stage" and lg == chosen]
    return funnels, stages


def load_catalog(conn: sqlite3.Connection, tbl: str, lang: str = "ru") -> dict[str, FunnelInfo]:
    """Funnels (by code) of a process: names and stage order from `_labels`, completed from the data."""
    funnel_names, stage_rows = _labels(conn, tbl, lang)
    catalog: dict[str, FunnelInfo] = {}
    for code, name in funnel_names.items():
        catalog[code] = FunnelInfo(code=code, name=name)
    for funnel, code, name in stage_rows:
        info = catalog.setdefault(funnel, FunnelInfo(code=funnel, name=funnel_names.get(funnel, funnel)))
        info.stages.append(StageInfo(code=code, name=name, semantics=guess_semantics(code)))
    _complete_from_data(conn, tbl, catalog)
    return catalog


def _complete_from_data(conn: sqlite3.Connection, tbl: str, catalog: dict[str, FunnelInfo]) -> None:
    """Add funnels/stages seen in items or history but missing from the labels, ordered by first arrival."""
    view = f"{tbl}_labels"
    names: dict[tuple[str, str], str] = {}
    funnel_names: dict[str, str] = {}
    if view in table_names(conn) and {"funnel_name", "stage_name"} <= set(column_names(conn, view)):
        for funnel, fname, stage, sname in conn.execute(
            f'SELECT DISTINCT funnel, funnel_name, stage, stage_name FROM "{view}"'
        ):
            names[(funnel or "", stage or "")] = sname or stage
            funnel_names[funnel or ""] = fname or funnel
    # Average position of each stage in items' histories: earlier stages come first.
    positions: dict[tuple[str, str], list[int]] = defaultdict(list)
    if "_stage_history" in table_names(conn):
        last_key, index = None, 0
        for key, funnel, stage in conn.execute(
            "SELECT key, funnel, to_stage FROM _stage_history WHERE tbl = ? ORDER BY key, at, id", (tbl,)
        ):
            index = 0 if key != last_key else index + 1
            last_key = key
            positions[(funnel or "", stage)].append(index)
    for funnel, stage in conn.execute(f'SELECT DISTINCT funnel, stage FROM "{tbl}" WHERE stage IS NOT NULL'):
        positions.setdefault((funnel or "", stage), [10_000])
    known = {(f.code, s.code) for f in catalog.values() for s in f.stages}
    missing = sorted(
        (k for k in positions if k not in known), key=lambda k: sum(positions[k]) / len(positions[k])
    )
    for funnel, stage in missing:
        fname = funnel_names.get(funnel) or funnel or "—"
        info = catalog.setdefault(funnel, FunnelInfo(code=funnel, name=fname))
        info.stages.append(StageInfo(stage, names.get((funnel, stage), stage), guess_semantics(stage)))
    for info in catalog.values():  # final stages go last, successes before failures
        rank = {"process": 0, "success": 1, "failure": 2}
        info.stages.sort(key=lambda s: rank[s.semantics])
