"""Funnel counts and sums, stage conversion, time in stage and aging, computed from a store file."""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from connector.reports.catalog import FunnelInfo, default_funnel_code, load_catalog, names
from connector.reports.columns import language
from connector.reports.formats import stored_datetime
from connector.reports.readonly import column_names, table_names
from connector.reports.source import require_process

HOUR = 3600.0


class StageFigures(BaseModel):
    """Counts, money sums and conversion of one stage."""

    stage: str
    stage_name: str
    semantics: str
    count: int = 0
    sums: dict[str, float] = {}  # "<money field> <currency>" -> sum of amounts
    reached: int = 0  # items that are or have ever been in this stage
    conversion: float | None = None  # share of `reached` that went on to a later process/success stage


class FunnelFigures(BaseModel):
    """One funnel of the funnel report."""

    funnel: str
    funnel_name: str
    total: int
    stages: list[StageFigures]


class FunnelReport(BaseModel):
    """`report funnel`: items per funnel and stage."""

    type_code: str
    generated_at: str
    money_fields: list[str]
    funnels: list[FunnelFigures]
    process_name: str = ""
    field_labels: dict[str, str] = {}  # money field code -> its label


class StageTime(BaseModel):
    """Time spent in one stage, in hours, over completed stays; plus the items there now."""

    funnel: str
    funnel_name: str
    stage: str
    stage_name: str
    completed: int
    median_hours: float | None
    p90_hours: float | None
    current: int
    current_max_hours: float | None
    semantics: str = "process"


class TimeInStageReport(BaseModel):
    """`report time-in-stage`."""

    type_code: str
    generated_at: str
    stages: list[StageTime]


class AgingItem(BaseModel):
    """An open item and how long it has been in its current stage."""

    key: str
    id: int | None
    title: str | None
    funnel_name: str
    stage_name: str
    since: str | None
    days: float | None


class AgingReport(BaseModel):
    """`report aging`: open items stuck longest in their stage."""

    type_code: str
    generated_at: str
    items: list[AgingItem]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def money_fields(conn: sqlite3.Connection, tbl: str) -> list[str]:
    """Money fields of a process: an amount column `<code>` with a sibling `<code>_currency`."""
    cols = column_names(conn, tbl)
    return [c for c in cols if f"{c}_currency" in cols]


def _live(conn: sqlite3.Connection, tbl: str) -> str:
    return "COALESCE(deleted, 0) = 0" if "deleted" in column_names(conn, tbl) else "1"


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def funnel_report(
    conn: sqlite3.Connection, tbl: str, *, now: datetime | None = None, template: Any = None
) -> FunnelReport:
    """Counts and money sums per funnel and stage, and stage-to-stage conversion."""
    require_process(conn, tbl)
    catalog = load_catalog(conn, tbl, language(conn, tbl, template), template=template)
    default = default_funnel_code(conn, tbl, template)
    live = _live(conn, tbl)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for f, s, n in conn.execute(f'SELECT funnel, stage, COUNT(*) FROM "{tbl}" WHERE {live} GROUP BY 1, 2'):
        counts[(f or default, s)] += n
    money = money_fields(conn, tbl)
    sums: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for code in money:
        for f, s, cur, total in conn.execute(
            f'SELECT funnel, stage, "{code}_currency", SUM("{code}") FROM "{tbl}" '
            f'WHERE {live} AND "{code}" IS NOT NULL GROUP BY 1, 2, 3'
        ):
            key = f"{code} {cur or ''}".strip()
            stage_sums = sums[(f or default, s)]
            stage_sums[key] = round(stage_sums.get(key, 0.0) + (total or 0.0), 2)
    reached = _reached(conn, tbl, live, default)
    funnels = []
    for funnel in catalog.values():
        for f, s in counts:
            if f == funnel.code:
                funnel.stage(s)
        stages = [
            StageFigures(
                stage=st.code, stage_name=st.name, semantics=st.semantics,
                count=counts.get((funnel.code, st.code), 0), sums=sums.get((funnel.code, st.code), {}),
                reached=len(reached.get((funnel.code, st.code), ())),
            )
            for st in funnel.stages
        ]
        _conversion(stages, {s: keys for (f, s), keys in reached.items() if f == funnel.code})
        funnels.append(FunnelFigures(funnel=funnel.code, funnel_name=funnel.name,
                                     total=sum(s.count for s in stages), stages=stages))
    process_name, labels = names(conn, tbl, language(conn, tbl, template))
    return FunnelReport(type_code=tbl, generated_at=_iso(_now(now)), money_fields=money, funnels=funnels,
                        process_name=process_name, field_labels={c: labels[c] for c in money if c in labels})


def _reached(
    conn: sqlite3.Connection, tbl: str, live: str, default: str = ""
) -> dict[tuple[str, str], set[str]]:
    """Keys of the live items per (funnel, stage) that are there now or were there per the stage history.

    History rows of items deleted locally (row gone) or on the portal (tombstone) do not count.
    """
    history, params = "", ()
    if "_stage_history" in table_names(conn):
        history = (
            "UNION SELECT key, funnel, to_stage FROM _stage_history "
            f'WHERE tbl = ? AND key IN (SELECT key FROM "{tbl}" WHERE {live})'
        )
        params = (tbl,)
    sql = f'SELECT key, funnel, stage FROM "{tbl}" WHERE {live} {history}'
    reached: dict[tuple[str, str], set[str]] = defaultdict(set)
    for key, funnel, stage in conn.execute(sql, params):
        reached[(funnel or default, stage)].add(key)
    return reached


def _conversion(stages: list[StageFigures], reached: dict[str, set[str]]) -> None:
    """Per process stage: share of the items that reached it and went on to a later process/success stage."""
    chain = [s for s in stages if s.semantics == "process"] + [s for s in stages if s.semantics == "success"]
    for i, current in enumerate(chain[:-1]):
        here = reached.get(current.stage, set())
        later = set().union(*(reached.get(s.stage, set()) for s in chain[i + 1:]))
        if here:
            current.conversion = round(len(here & later) / len(here), 4)


def _stays(conn: sqlite3.Connection, tbl: str, default: str = ""):  # type: ignore[no-untyped-def]
    """Yield (key, funnel, stage, entered, left) per stay of a live item; left is None if open.

    Stays of items deleted locally (row gone) or on the portal (tombstone) are left out.
    """
    if "_stage_history" not in table_names(conn):
        return
    prev = None
    for key, funnel, stage, at in conn.execute(
        "SELECT key, funnel, to_stage, at FROM _stage_history "
        f'WHERE tbl = ? AND key IN (SELECT key FROM "{tbl}" WHERE {_live(conn, tbl)}) ORDER BY key, at, id',
        (tbl,),
    ):
        if prev is not None:
            pkey, pfunnel, pstage, pat = prev
            yield pkey, pfunnel, pstage, pat, (at if pkey == key else None)
        prev = (key, funnel or default, stage, at)
    if prev is not None:
        yield (*prev, None)


def _current_items(conn: sqlite3.Connection, tbl: str, default: str = "") -> dict[str, tuple]:
    """Live items by key: (id, title, funnel, stage, entered-stage time from the item's own columns)."""
    cols = set(column_names(conn, tbl))
    entered = [c for c in ("moved_time", "created_time") if c in cols]
    entered_sql = f"COALESCE({', '.join(entered)})" if entered else "NULL"
    title = "title" if "title" in cols else "NULL"
    return {
        key: (item_id, item_title, funnel or default, stage, entered)
        for key, item_id, item_title, funnel, stage, entered in conn.execute(
            f'SELECT key, id, {title}, funnel, stage, {entered_sql} FROM "{tbl}" WHERE {_live(conn, tbl)}'
        )
    }


def _entered_current(conn: sqlite3.Connection, tbl: str, default: str = "") -> dict[str, datetime]:
    """When each live item entered its current stage: last matching history row, else its own columns."""
    items = _current_items(conn, tbl, default)
    entered = {key: stored_datetime(item[4]) for key, item in items.items()}
    for key, _funnel, stage, at, left in _stays(conn, tbl, default):
        item = items.get(key)
        if left is None and item is not None and item[3] == stage:
            entered[key] = stored_datetime(at) or entered.get(key)
    return {k: v for k, v in entered.items() if v is not None}


def time_in_stage_report(
    conn: sqlite3.Connection, tbl: str, *, now: datetime | None = None, template: Any = None
) -> TimeInStageReport:
    """Median and 90th percentile hours per stage over completed stays, plus items in the stage now."""
    require_process(conn, tbl)
    moment = _now(now)
    catalog = load_catalog(conn, tbl, language(conn, tbl, template), template=template)
    default = default_funnel_code(conn, tbl, template)
    done: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _key, funnel, stage, at, left in _stays(conn, tbl, default):
        start, end = stored_datetime(at), stored_datetime(left)
        if start and end:
            done[(funnel, stage)].append(max(0.0, (end - start).total_seconds() / HOUR))
    items = _current_items(conn, tbl, default)
    open_hours: dict[tuple[str, str], list[float]] = defaultdict(list)
    for key, since in _entered_current(conn, tbl, default).items():
        _id, _title, funnel, stage, _t = items[key]
        open_hours[(funnel or "", stage)].append(max(0.0, (moment - since).total_seconds() / HOUR))
    for funnel, stage in list(done) + list(open_hours):
        catalog.setdefault(funnel, FunnelInfo(code=funnel, name=funnel or "—")).stage(stage)
    rows = []
    for funnel in catalog.values():
        for st in funnel.stages:
            spans, current = done.get((funnel.code, st.code), []), open_hours.get((funnel.code, st.code), [])
            rows.append(StageTime(
                funnel=funnel.code, funnel_name=funnel.name, stage=st.code, stage_name=st.name,
                completed=len(spans), median_hours=_round(percentile(spans, 50)),
                p90_hours=_round(percentile(spans, 90)), current=len(current),
                current_max_hours=_round(max(current) if current else None), semantics=st.semantics,
            ))
    return TimeInStageReport(type_code=tbl, generated_at=_iso(moment), stages=rows)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def aging_report(
    conn: sqlite3.Connection, tbl: str, *, now: datetime | None = None, limit: int = 50, template: Any = None
) -> AgingReport:
    """Open items (not in a success or failure stage) that have been in their stage the longest."""
    require_process(conn, tbl)
    moment = _now(now)
    catalog = load_catalog(conn, tbl, language(conn, tbl, template), template=template)
    default = default_funnel_code(conn, tbl, template)
    items = _current_items(conn, tbl, default)
    entered = _entered_current(conn, tbl, default)
    rows = []
    for key, (item_id, title, funnel, stage, _t) in items.items():
        info = catalog.setdefault(funnel or "", FunnelInfo(code=funnel or "", name=funnel or "—"))
        st = info.stage(stage or "")
        if st.semantics != "process":
            continue
        since = entered.get(key)
        days = round((moment - since).total_seconds() / 86400.0, 2) if since else None
        rows.append(AgingItem(key=key, id=item_id, title=title, funnel_name=info.name, stage_name=st.name,
                              since=_iso(since) if since else None, days=days))
    rows.sort(key=lambda r: -1.0 if r.days is None else r.days, reverse=True)
    return AgingReport(type_code=tbl, generated_at=_iso(moment), items=rows[:limit])
