"""Funnels and stages of a process, in order, with names and the meaning the template declares.

Order and meaning (process, success, failure) are what `ensure_process` recorded from the template
(or the template given to a report). A store made before they were recorded, with no template that
sync remembered, shows every stage as an open (`process`) stage, in the order items moved through
them, until the next `b24sync apply` or `sync` records them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from connector.store.reader import FunnelEntry, Labels, Semantics, StoreReader, funnels_from_template
from connector.templates import Template


@dataclass
class StageInfo:
    """One stage of one funnel."""

    code: str
    name: str
    semantics: Semantics


@dataclass
class FunnelInfo:
    """One funnel with its stages in order."""

    code: str
    name: str
    stages: list[StageInfo] = field(default_factory=list)

    def stage(self, code: str) -> StageInfo:
        """The stage with this code, added at the end (named by its code, an open stage) if unknown."""
        for stage in self.stages:
            if stage.code == code:
                return stage
        info = StageInfo(code=code, name=code, semantics="process")
        self.stages.append(info)
        return info


def label_text(label: dict[str, str] | None, lang: str) -> str:
    """A template label in `lang` (else ru, en, `*`, the first one)."""
    if not label:
        return ""
    for key in (lang, "ru", "en", "*"):
        if label.get(key):
            return str(label[key])
    return str(next(iter(label.values()), ""))


def default_funnel_code(store: StoreReader, tbl: str, template: Template | None = None) -> str:
    """The funnel of items stored without one: the template's default (or first) funnel; '' when the
    process has none or the store has not recorded it."""
    entries = funnels_from_template(template) if template is not None else store.catalog(tbl).funnels
    marked = [f.code for f in entries if f.default]
    return (marked or [f.code for f in entries] or [""])[0]


def load_catalog(
    store: StoreReader, tbl: str, lang: str = "ru", template: Template | None = None
) -> dict[str, FunnelInfo]:
    """Funnels (by code) of a process with stages in order, plus any stage items are in that the
    catalog lacks. Names from the template given, else from the store's labels in `lang`."""
    entries = funnels_from_template(template) if template is not None else store.catalog(tbl).funnels
    labels = store.labels(tbl, lang)
    default = default_funnel_code(store, tbl, template)
    if entries:
        catalog = _named(entries, labels, template, lang)
        for funnel, stage in _positions(store, tbl, default):
            catalog.setdefault(funnel, FunnelInfo(code=funnel, name=funnel or "—")).stage(stage)
        return catalog
    funnel_names = {code: text for (_s, code), text in labels.of_kind("funnel").items()}
    stage_names = labels.of_kind("stage")
    catalog = {code: FunnelInfo(code=code, name=name) for code, name in sorted(funnel_names.items())}
    positions = _positions(store, tbl, default)
    ordered = sorted(positions, key=lambda k: sum(positions[k]) / len(positions[k]))
    ordered += [place for place in sorted(stage_names) if place not in positions]
    for funnel, stage in ordered:
        name = funnel_names.get(funnel) or funnel or "—"
        info = catalog.setdefault(funnel, FunnelInfo(code=funnel, name=name))
        info.stages.append(StageInfo(stage, stage_names.get((funnel, stage)) or stage, "process"))
    return catalog


def _named(
    entries: tuple[FunnelEntry, ...], labels: Labels, template: Template | None, lang: str
) -> dict[str, FunnelInfo]:
    """Display funnels from catalog entries: names from the template when given, else the labels."""
    funnel_names: dict[str, str] = {}
    stage_names: dict[tuple[str, str], str] = {}
    if template is not None:
        for f in template.funnels:
            funnel_names[f.code] = label_text(f.name, lang)
            stage_names.update({(f.code, s.code): label_text(s.name, lang) for s in f.stages})
    catalog: dict[str, FunnelInfo] = {}
    for funnel in entries:
        name = funnel_names.get(funnel.code) or labels.get("funnel", funnel.code) or funnel.code
        info = FunnelInfo(code=funnel.code, name=name)
        for st in funnel.stages:
            stage_name = (stage_names.get((funnel.code, st.code))
                          or labels.get("stage", st.code, funnel.code) or st.code)
            info.stages.append(StageInfo(st.code, stage_name, st.semantics))
        catalog[funnel.code] = info
    return catalog


def _positions(store: StoreReader, tbl: str, default: str = "") -> dict[tuple[str, str], list[int]]:
    """Positions of each (funnel, stage) in live items' stage histories; current stages without
    history last."""
    positions: dict[tuple[str, str], list[int]] = defaultdict(list)
    last_key, index = None, 0
    for visit in store.stage_visits(tbl):
        index = 0 if visit.key != last_key else index + 1
        last_key = visit.key
        positions[(visit.funnel or default, visit.stage)].append(index)
    for funnel, stage, _count in store.stage_counts(tbl):
        if stage is not None:
            positions.setdefault((funnel or default, stage), [10_000])
    return positions


def names(store: StoreReader, tbl: str, lang: str = "ru") -> tuple[str, dict[str, str]]:
    """The process's display name (its code when unnamed) and its field labels by field code."""
    labels = store.labels(tbl, store.view_language(tbl) or lang)
    fields = {code: text for (_s, code), text in labels.of_kind("field").items()}
    return labels.get("process", tbl) or tbl, fields
