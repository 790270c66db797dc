"""Funnel counts and sums, stage conversion, time in stage and aging, computed from a store file."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel

from connector.reports.catalog import FunnelInfo, default_funnel_code, load_catalog, names
from connector.reports.columns import language
from connector.reports.formats import stored_datetime
from connector.reports.readonly import require_process
from connector.store.reader import LiveItem, StoreReader
from connector.templates import Template
from connector.times import utc_now, utc_text

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


def _now(now: datetime | None) -> datetime:
    return (now or utc_now()).astimezone(UTC)


def funnel_report(
    store: StoreReader, tbl: str, *, now: datetime | None = None, template: Template | None = None
) -> FunnelReport:
    """Counts and money sums per funnel and stage, and stage-to-stage conversion."""
    require_process(store, tbl)
    lang = language(store, tbl, template)
    catalog = load_catalog(store, tbl, lang, template=template)
    default = default_funnel_code(store, tbl, template)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for f, s, n in store.stage_counts(tbl):
        counts[(f or default, s or "")] += n
    money = store.catalog(tbl).money_fields()
    sums: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for code in money:
        for f, s, cur, total in store.money_sums(tbl, code):
            key = f"{code} {cur or ''}".strip()
            stage_sums = sums[(f or default, s or "")]
            stage_sums[key] = round(stage_sums.get(key, 0.0) + total, 2)
    reached = _reached(store, tbl, default)
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
    process_name, labels = names(store, tbl, lang)
    return FunnelReport(type_code=tbl, generated_at=utc_text(_now(now)), money_fields=money, funnels=funnels,
                        process_name=process_name, field_labels={c: labels[c] for c in money if c in labels})


def _reached(store: StoreReader, tbl: str, default: str = "") -> dict[tuple[str, str], set[str]]:
    """Keys of the live items per (funnel, stage) that are there now or were there per the stage history.

    History rows of items deleted locally (row gone) or on the portal (tombstone) do not count.
    """
    reached: dict[tuple[str, str], set[str]] = defaultdict(set)
    for key, funnel, stage in store.places_reached(tbl):
        reached[(funnel or default, stage or "")].add(key)
    return reached


def _conversion(stages: list[StageFigures], reached: dict[str, set[str]]) -> None:
    """Per process stage: share of the items that reached it and went on to a later process/success stage."""
    chain = [s for s in stages if s.semantics == "process"] + [s for s in stages if s.semantics == "success"]
    for i, current in enumerate(chain[:-1]):
        here = reached.get(current.stage, set())
        later = set().union(*(reached.get(s.stage, set()) for s in chain[i + 1:]))
        if here:
            current.conversion = round(len(here & later) / len(here), 4)


Stay = tuple[str, str, str, str, str | None]  # key, funnel, stage, entered, left (None: still there)


def _stays(store: StoreReader, tbl: str, default: str = "") -> Iterator[Stay]:
    """Yield (key, funnel, stage, entered, left) per stay of a live item; left is None if open.

    Stays of items deleted locally (row gone) or on the portal (tombstone) are left out.
    """
    prev: tuple[str, str, str, str] | None = None
    for visit in store.stage_visits(tbl):
        if prev is not None:
            pkey, pfunnel, pstage, pat = prev
            yield pkey, pfunnel, pstage, pat, (visit.at if pkey == visit.key else None)
        prev = (visit.key, visit.funnel or default, visit.stage, visit.at)
    if prev is not None:
        yield (*prev, None)


def _current_items(store: StoreReader, tbl: str, default: str = "") -> dict[str, LiveItem]:
    """Live items by key, an item without a funnel placed in the default funnel."""
    return {item.key: item if item.funnel else _in_funnel(item, default) for item in store.live_items(tbl)}


def _in_funnel(item: LiveItem, funnel: str) -> LiveItem:
    return LiveItem(item.key, item.id, item.title, funnel, item.stage, item.entered)


def _entered_current(items: dict[str, LiveItem], stays: list[Stay]) -> dict[str, datetime]:
    """When each live item entered its current stage: last matching history row, else its own columns."""
    entered = {key: stored_datetime(item.entered) for key, item in items.items()}
    for key, _funnel, stage, at, left in stays:
        item = items.get(key)
        if left is None and item is not None and item.stage == stage:
            entered[key] = stored_datetime(at) or entered.get(key)
    return {k: v for k, v in entered.items() if v is not None}


def time_in_stage_report(
    store: StoreReader, tbl: str, *, now: datetime | None = None, template: Template | None = None
) -> TimeInStageReport:
    """Median and 90th percentile hours per stage over completed stays, plus items in the stage now."""
    require_process(store, tbl)
    moment = _now(now)
    catalog = load_catalog(store, tbl, language(store, tbl, template), template=template)
    default = default_funnel_code(store, tbl, template)
    stays = list(_stays(store, tbl, default))
    done: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _key, stay_funnel, stay_stage, at, left in stays:
        start, end = stored_datetime(at), stored_datetime(left)
        if start and end:
            done[(stay_funnel, stay_stage)].append(max(0.0, (end - start).total_seconds() / HOUR))
    items = _current_items(store, tbl, default)
    open_hours: dict[tuple[str, str], list[float]] = defaultdict(list)
    for key, since in _entered_current(items, stays).items():
        item = items[key]
        open_hours[(item.funnel or "", item.stage or "")].append(
            max(0.0, (moment - since).total_seconds() / HOUR))
    for place, stage in list(done) + list(open_hours):
        catalog.setdefault(place, FunnelInfo(code=place, name=place or "—")).stage(stage)
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
    return TimeInStageReport(type_code=tbl, generated_at=utc_text(moment), stages=rows)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def aging_report(
    store: StoreReader, tbl: str, *, now: datetime | None = None, limit: int = 50,
    template: Template | None = None,
) -> AgingReport:
    """Open items (not in a success or failure stage) that have been in their stage the longest."""
    require_process(store, tbl)
    moment = _now(now)
    catalog = load_catalog(store, tbl, language(store, tbl, template), template=template)
    default = default_funnel_code(store, tbl, template)
    items = _current_items(store, tbl, default)
    entered = _entered_current(items, list(_stays(store, tbl, default)))
    rows = []
    for key, item in items.items():
        item_id, title, funnel = item.id, item.title, item.funnel
        info = catalog.setdefault(funnel or "", FunnelInfo(code=funnel or "", name=funnel or "—"))
        st = info.stage(item.stage or "")
        if st.semantics != "process":
            continue
        since = entered.get(key)
        days = round((moment - since).total_seconds() / 86400.0, 2) if since else None
        rows.append(AgingItem(key=key, id=item_id, title=title, funnel_name=info.name, stage_name=st.name,
                              since=utc_text(since) if since else None, days=days))
    rows.sort(key=lambda r: -1.0 if r.days is None else r.days, reverse=True)
    return AgingReport(type_code=tbl, generated_at=utc_text(moment), items=rows[:limit])
