"""Match template objects to portal objects by code: id map first, then ownership markers.

Markers: type `code` (where the portal keeps no code: our field markers, else the exact title),
field `xmlId` and `UF_CRM_{id}_{CODE}` name, enumeration option `xmlId`, stage code
(`DT..:CODE`), funnel name. The template's first process, success and first failure stage are
mapped onto the system stages NEW / SUCCESS / FAIL when no stage has their code. A process this
tool created is "owned": its default stages are shaped away.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from connector.constants import DEFAULT_STAGE_CODES, SYSTEM_STAGE_CODES
from connector.crm.schema import (
    PortalField,
    PortalFunnel,
    PortalOption,
    PortalSnapshot,
    PortalStage,
    PortalType,
)
from connector.deploy.desired import DesiredField, DesiredFunnel, DesiredOption, DesiredStage, DesiredType
from connector.store import IdMapEntry, Store

_DEFAULT_SORTS = dict(zip(DEFAULT_STAGE_CODES, (10, 20, 30, 40, 50), strict=True))
_DEFAULT_SEMANTICS = {"SUCCESS": "success", "FAIL": "failure"}


class IdView:
    """The id map of one portal, or an empty one (`store=None`)."""

    def __init__(self, store: Store | None, portal: str) -> None:
        self.store = store
        self.portal = portal

    def entry(self, kind: str, code: str) -> IdMapEntry | None:
        """The id map entry (with `.portal_id`, `.extra`) or None."""
        if self.store is None:
            return None
        return self.store.idmap.entry(self.portal, kind, code)

    def id(self, kind: str, code: str) -> int | None:
        """The mapped portal id as an int, or None."""
        e = self.entry(kind, code)
        try:
            return int(e.portal_id) if e is not None else None
        except (TypeError, ValueError):
            return None

    def set(self, kind: str, code: str, portal_id: int | str, extra: dict[str, Any] | None = None) -> None:
        """Record a mapping (no-op without a store)."""
        if self.store is not None:
            self.store.idmap.set(self.portal, kind, code, portal_id, extra)

    def delete(self, kind: str, code: str) -> None:
        """Forget a mapping (no-op without a store)."""
        if self.store is not None:
            self.store.idmap.delete(self.portal, kind, code)

    def all(self, kind: str | None = None) -> list[IdMapEntry]:
        """Every entry of this portal."""
        return [] if self.store is None else self.store.idmap.all(self.portal, kind)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Group many `set`/`delete` calls into one store transaction (one commit)."""
        if self.store is None:
            yield
            return
        with self.store.transaction():
            yield


class RenamedView(IdView):
    """The id map of a process being renamed: codes under the new process code fall back to the old."""

    def __init__(self, base: IdView, new: str, old: str) -> None:
        super().__init__(base.store, base.portal)
        self.new, self.old = new, old

    def entry(self, kind: str, code: str) -> IdMapEntry | None:
        """The entry under the new code, else under the old process code."""
        found = super().entry(kind, code)
        if found is None and kind != "type" and code.startswith(self.new + "."):
            found = super().entry(kind, self.old + code[len(self.new) :])
        return found


@dataclass
class OptionBinding:
    desired: DesiredOption
    portal: PortalOption | None
    renamed_from: str | None = None


@dataclass
class FieldBinding:
    desired: DesiredField
    portal: PortalField | None
    renamed_from: str | None = None
    options: list[OptionBinding] = field(default_factory=list)
    extra_options: list[PortalOption] = field(default_factory=list)


@dataclass
class StageBinding:
    desired: DesiredStage
    portal: PortalStage | None
    renamed_from: str | None = None
    anchored: bool = False


@dataclass
class FunnelBinding:
    desired: DesiredFunnel
    portal: PortalFunnel | None
    predicted: bool = False
    shape_defaults: bool = False
    renamed_from: str | None = None
    stages: list[StageBinding] = field(default_factory=list)
    extra_stages: list[PortalStage] = field(default_factory=list)


@dataclass
class TypeBinding:
    desired: DesiredType
    portal: PortalType | None
    owned: bool
    matched_by: str
    renamed_from: str | None = None
    fields: list[FieldBinding] = field(default_factory=list)
    extra_fields: list[PortalField] = field(default_factory=list)
    funnels: list[FunnelBinding] = field(default_factory=list)
    extra_funnels: list[PortalFunnel] = field(default_factory=list)

    @property
    def code(self) -> str:
        return self.desired.code


def default_funnel(category_id: int | None = None, entity_type_id: int | None = None) -> PortalFunnel:
    """The funnel Bitrix24 creates for a new type or category: NEW, PREPARATION, CLIENT, SUCCESS, FAIL."""
    prefix = f"DT{entity_type_id}_{category_id}:" if entity_type_id and category_id else ""
    stages = [
        PortalStage(
            id=0,
            status_id=prefix + code,
            code=code,
            name="",
            sort=_DEFAULT_SORTS[code],
            semantics=_DEFAULT_SEMANTICS.get(code, "process"),  # type: ignore[arg-type]
            system=code in SYSTEM_STAGE_CODES,
        )
        for code in DEFAULT_STAGE_CODES
    ]
    return PortalFunnel(id=category_id, name="", is_default=True, stages=stages)


def bind_type(desired: DesiredType, snapshot: PortalSnapshot, ids: IdView) -> TypeBinding:
    """Find the portal type of `desired` and match everything inside it."""
    portal, via, renamed = _find_type(desired, snapshot, ids)
    entry = ids.entry("type", desired.code) or (ids.entry("type", renamed) if renamed else None)
    if renamed:
        ids = RenamedView(ids, desired.code, renamed)
    created = bool(entry and (entry.extra or {}).get("created"))
    # Without an id map record: our type code (or, where the portal keeps no code, our field
    # markers, or an empty type of the same title left by an interrupted create) means we made it.
    fresh = via == "title" and not snapshot.supports_code and portal is not None and not portal.fields
    owned = portal is None or created or (entry is None and (via in ("code", "marker") or fresh))
    b = TypeBinding(desired=desired, portal=portal, owned=owned, matched_by=via, renamed_from=renamed)
    _bind_fields(b, ids)
    _bind_funnels(b, ids)
    return b


def _find_type(
    desired: DesiredType, snapshot: PortalSnapshot, ids: IdView
) -> tuple[PortalType | None, str, str | None]:
    codes = [(desired.code, None)] + (
        [(desired.renamed_from, desired.renamed_from)] if desired.renamed_from else []
    )
    for code, renamed in codes:
        type_id = ids.id("type", code)
        if type_id is not None and (t := snapshot.by_id(type_id)) is not None:
            return t, "idmap", renamed
    for code, renamed in codes:
        if (t := snapshot.by_code(code)) is not None:
            return t, "code", renamed
    if not snapshot.supports_code:
        for code, renamed in codes:
            marked = [t for t in snapshot.types if any(is_marker_of(f.xml_id, code) for f in t.fields)]
            if len(marked) == 1:
                return marked[0], "marker", renamed
    candidates = [t for t in snapshot.by_title(desired.title) if not t.code or t.code == desired.code]
    if len(candidates) == 1:
        return candidates[0], "title", None
    return None, "", None


def is_marker_of(xml_id: str, process: str) -> bool:
    """Whether a field's xmlId is our ownership marker `b24sync:<process>:<field>`."""
    return xml_id.startswith(f"b24sync:{process}:")


def _key(*parts: str) -> str:
    return ".".join(parts)


def _bind_fields(b: TypeBinding, ids: IdView) -> None:
    portal_fields = list(b.portal.fields) if b.portal else []
    claimed: set[int] = set()
    prefix = f"UF_CRM_{b.portal.id}_" if b.portal else ""

    def find(code: str, xml_id: str, suffix: str) -> PortalField | None:
        fid = ids.id("field", _key(b.code, code))
        for rule in (
            lambda f: f.id == fid,
            lambda f: f.xml_id == xml_id,
            lambda f: f.field_name == prefix + suffix,
        ):
            hit = next((f for f in portal_fields if f.id not in claimed and rule(f)), None)
            if hit is not None:
                return hit
        return None

    for d in b.desired.fields:
        hit, renamed = find(d.code, d.xml_id, d.uf_suffix), None
        if hit is None and d.renamed_from:
            hit = find(d.renamed_from, d.old_xml_id or "", d.renamed_from.upper())
            renamed = d.renamed_from if hit is not None else None
        if hit is not None:
            claimed.add(hit.id)
        fb = FieldBinding(desired=d, portal=hit, renamed_from=renamed)
        _bind_options(b, fb, ids)
        b.fields.append(fb)
    b.extra_fields = [f for f in portal_fields if f.id not in claimed]


def _bind_options(b: TypeBinding, fb: FieldBinding, ids: IdView) -> None:
    portal_options = list(fb.portal.options) if fb.portal else []
    claimed: set[int] = set()

    def find(code: str, label: str | None) -> PortalOption | None:
        oid = ids.id("option", _key(b.code, fb.desired.code, code))
        rules = [lambda o: o.id == oid, lambda o: o.xml_id == code]
        if label is not None:
            rules.append(lambda o: o.value == label)
        for rule in rules:
            hit = next((o for o in portal_options if o.id not in claimed and rule(o)), None)
            if hit is not None:
                return hit
        return None

    for d in fb.desired.options:
        hit, renamed = find(d.code, None), None
        if hit is None and d.renamed_from:
            hit = find(d.renamed_from, None)
            renamed = d.renamed_from if hit is not None else None
        if hit is None:
            hit = find(d.code, d.label)
        if hit is not None:
            claimed.add(hit.id)
        fb.options.append(OptionBinding(desired=d, portal=hit, renamed_from=renamed))
    fb.extra_options = [o for o in portal_options if o.id not in claimed]


def _bind_funnels(b: TypeBinding, ids: IdView) -> None:
    if b.portal is None:
        for d in b.desired.funnels:
            fb = FunnelBinding(
                desired=d,
                portal=default_funnel() if d.default else None,
                predicted=d.default,
                shape_defaults=True,
            )
            _bind_stages(b, fb, fb.portal or default_funnel(), ids)
            b.funnels.append(fb)
        return
    portal_funnels = list(b.portal.funnels)
    claimed: set[int] = set()
    found: dict[str, tuple[PortalFunnel | None, str | None, bool]] = {}

    def by_idmap(code: str) -> tuple[PortalFunnel | None, bool]:
        e = ids.entry("funnel", _key(b.code, code))
        if e is None:
            return None, False
        hit = next((f for f in portal_funnels if f.id == int(e.portal_id) and f.id not in claimed), None)
        return hit, bool((e.extra or {}).get("created"))

    for d in b.desired.funnels:
        hit, created = by_idmap(d.code)
        renamed = None
        if hit is None and d.renamed_from:
            hit, created = by_idmap(d.renamed_from)
            renamed = d.renamed_from if hit else None
        if hit is not None:
            claimed.add(int(hit.id or 0))
        found[d.code] = (hit, renamed, created)
    for rule in ("default", "name"):
        for d in b.desired.funnels:
            if found[d.code][0] is not None:
                continue
            if rule == "default":
                hit = (
                    next((f for f in portal_funnels if f.is_default and f.id not in claimed), None)
                    if d.default
                    else None
                )
            else:
                hit = next((f for f in portal_funnels if f.name == d.name and f.id not in claimed), None)
            if hit is not None:
                claimed.add(int(hit.id or 0))
                found[d.code] = (hit, None, False)
    for d in b.desired.funnels:
        hit, renamed, created = found[d.code]
        shape = b.owned or created or hit is None
        fb = FunnelBinding(desired=d, portal=hit, shape_defaults=shape, renamed_from=renamed)
        _bind_stages(b, fb, hit or default_funnel(), ids)
        b.funnels.append(fb)
    b.extra_funnels = [f for f in portal_funnels if f.id not in claimed]


def _bind_stages(b: TypeBinding, fb: FunnelBinding, funnel: PortalFunnel, ids: IdView) -> None:
    stages = list(funnel.stages)
    claimed: set[str] = set()
    result: dict[str, StageBinding] = {}
    anchors = fb.desired.anchors()

    def take(d: DesiredStage, hit: PortalStage | None, **kw: Any) -> None:
        if hit is not None and d.code not in result:
            claimed.add(hit.status_id)
            result[d.code] = StageBinding(desired=d, portal=hit, **kw)

    for d in fb.desired.stages:
        sid = ids.id("stage", _key(b.code, fb.desired.code, d.code)) if funnel.id is not None else None
        take(
            d,
            next((s for s in stages if sid is not None and s.id == sid and s.status_id not in claimed), None),
        )
    for d in fb.desired.stages:
        take(d, next((s for s in stages if s.code == d.code and s.status_id not in claimed), None))
    for d in fb.desired.stages:
        if d.renamed_from:
            take(
                d,
                next((s for s in stages if s.code == d.renamed_from and s.status_id not in claimed), None),
                renamed_from=d.renamed_from,
            )
    for d in fb.desired.stages:
        if d.code in anchors:
            system = anchors[d.code]
            take(
                d,
                next((s for s in stages if s.code == system and s.status_id not in claimed), None),
                anchored=True,
            )
    fb.stages = [result.get(d.code) or StageBinding(desired=d, portal=None) for d in fb.desired.stages]
    fb.extra_stages = [s for s in stages if s.status_id not in claimed]
