"""plan / apply: read the portal in batches, diff by code, write in dependency order, record ids.

Apply runs in three phases so a fresh process costs few HTTP requests:
1. one batch (per 50 commands): types (`$result` refs let fields and funnels of a new type ride in
   the same batch), the new type's default funnel, relations, fields with options, funnels;
2. one read batch: the stages Bitrix24 created in every new funnel;
3. one batch: stages (rename / recolour / reorder / add / remove defaults), card sections, fields
   linking to processes created in phase 1.
Then the touched types are re-read (2 requests) and every id is recorded in the id map.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.config import portal_key
from connector.crm.naming import stage_entity_id
from connector.crm.schema import (
    Command,
    CommandRun,
    PortalFunnel,
    PortalSnapshot,
    fill_details,
    parse_funnel,
    parse_stage,
    parse_type,
    read_types,
    run_commands,
    supports_code,
)
from connector.deploy.binding import FunnelBinding, IdView, TypeBinding, _bind_stages, bind_type
from connector.deploy.changes import type_changes
from connector.deploy.commands import (
    TypeIds,
    card_command,
    field_commands,
    funnel_commands,
    relation_command,
    stage_commands,
    type_commands,
)
from connector.deploy.desired import DesiredType, from_template
from connector.deploy.model import ApplyResult, Plan, TemplatePlan
from connector.deploy.record import record_binding
from connector.deploy.relations import RelationPlan, plan_relations, relation_changes
from connector.deploy.rules_check import add_rule_checks  # stage rules vs deal funnels
from connector.rest import Client
from connector.store import Store
from connector.templates import Template, load_template

log = logging.getLogger(__name__)


@dataclass
class Context:
    """Everything one plan/apply run knows about one portal."""

    client: Client
    ids: IdView
    snapshot: PortalSnapshot
    desired: list[DesiredType]
    bindings: dict[str, TypeBinding]
    relations: RelationPlan
    requests: int = 0


def portal_key_of(client: Client) -> str:
    """The id-map key of the client's portal (`host[:port]` of its REST base URL)."""
    base = getattr(client, "base_url", None) or client.auth.base_url
    return portal_key(str(base))


# What plan / apply / drift accept: `Template` objects or TOML paths, one or a list.
TemplateSource = Template | str | Path
Templates = TemplateSource | Sequence[TemplateSource]


def as_templates(templates: Templates) -> list[Template]:
    """Templates from `Template` objects or paths (a single one or a list)."""
    items = [templates] if isinstance(templates, Template | str | Path) else list(templates)
    return [load_template(t) if isinstance(t, str | Path) else t for t in items]


def _requests(client: Client) -> int:
    stats = getattr(client, "stats", None)
    return int(getattr(stats, "requests", 0) or 0) if stats is not None else 0


def load_context(client: Client, templates: Templates, store: Store | None) -> Context:
    """Read the portal (≤ 3 requests) and bind every template to it."""
    items = as_templates(templates)
    codes = [t.code for t in items]
    if len(set(codes)) != len(codes):
        raise ValueError(
            f"two templates share a process code: {sorted(c for c in codes if codes.count(c) > 1)}"
        )
    ids = IdView(store, portal_key_of(client))
    types = read_types(client)
    snapshot = PortalSnapshot(types=types, supports_code=supports_code(types))
    mapped = {ids.id("type", t.code) for t in items}
    titles = {t.title_text for t in items}
    # A portal that keeps no type code: our field markers are the only sign, so read every type.
    fill_details(
        client,
        [
            t
            for t in types
            if not snapshot.supports_code or t.id in mapped or t.code in codes or t.title in titles
        ],
    )

    def resolve(code: str) -> int:
        t = snapshot.by_code(code) or (snapshot.by_id(ids.id("type", code) or -1))
        if t is None:
            raise LookupError(code)
        return t.entity_type_id

    desired = [from_template(t, resolve) for t in items]
    bindings = {d.code: bind_type(d, snapshot, ids) for d in desired}
    etids = {e.code: int((e.extra or {}).get("entityTypeId", 0)) for e in ids.all("type") if e.extra}
    relations = plan_relations(bindings, snapshot, etids)
    return Context(
        client=client, ids=ids, snapshot=snapshot, desired=desired, bindings=bindings, relations=relations
    )


def make_plan(ctx: Context, allow_destructive: bool) -> Plan:
    """The per-object plan from a loaded context."""
    names = {t.entity_type_id: (t.code or t.title) for t in ctx.snapshot.types}
    processes = []
    for code, b in ctx.bindings.items():
        changes = type_changes(b, allow_destructive)
        split = next((i for i, c in enumerate(changes) if c.kind != "type"), len(changes))
        changes[split:split] = relation_changes(code, ctx.relations, allow_destructive, names)
        processes.append(
            TemplatePlan(
                process=code,
                exists=b.portal is not None,
                owned=b.owned,
                type_id=b.portal.id if b.portal else None,
                entity_type_id=b.portal.entity_type_id if b.portal else None,
                matched_by=b.matched_by,
                changes=changes,
            )
        )
    return Plan(portal=ctx.ids.portal, processes=processes, allow_destructive=allow_destructive)


def plan(
    client: Client, templates: Templates, store: Store | None, *, allow_destructive: bool = False
) -> Plan:
    """What apply would do on this portal, per object in code terms (reads only)."""
    the_plan = make_plan(load_context(client, templates, store), allow_destructive)
    return add_rule_checks(client, as_templates(templates), store, the_plan)


def apply(
    client: Client,
    templates: Templates,
    store: Store | None,
    *,
    allow_destructive: bool = False,
    dry_run: bool = False,
) -> ApplyResult:
    """Make the portal match the templates; record every portal id in the store's id map."""
    start = _requests(client)
    ctx = load_context(client, templates, store)
    the_plan = make_plan(ctx, allow_destructive)
    add_rule_checks(client, as_templates(templates), store, the_plan)
    type_ids = {code: TypeIds(b) for code, b in ctx.bindings.items()}
    phase1 = _phase1(ctx, type_ids, allow_destructive)
    result = ApplyResult(portal=ctx.ids.portal, plan=the_plan, dry_run=dry_run)
    if dry_run:
        result.commands = [c.note for c in phase1] + [
            f"{c.describe()}" for c in the_plan.changes if c.actionable and c.kind in ("stage", "section")
        ]
        result.requests = _requests(client) - start
        return result
    if not the_plan.has_changes:
        with ctx.ids.writing():
            for b in ctx.bindings.values():
                record_binding(ctx.ids, b)
        result.requests = _requests(client) - start
        return result
    writes = 0
    run1 = run_commands(client, phase1, on_batch=lambda run, batch: _record_created(ctx, run, batch))
    writes += _writes(phase1)
    result.commands += [c.note for c in phase1]
    new_types = _learn_types(ctx, run1)
    _read_new_funnel_stages(ctx, run1, new_types)
    phase3 = _phase3(ctx, allow_destructive)
    run_commands(client, phase3)
    writes += _writes(phase3)
    result.commands += [c.note for c in phase3]
    final = _reread(ctx, new_types)
    with ctx.ids.writing():
        for b in final.bindings.values():
            record_binding(ctx.ids, b)
    remaining = [c for c in make_plan(final, allow_destructive).changes if c.actionable]
    result.write_calls = writes
    result.converged = not remaining
    result.remaining = [c.describe() for c in remaining]
    result.requests = _requests(client) - start
    return result


def _writes(commands: Iterable[Command]) -> int:
    return sum(1 for c in commands if not c.method.endswith((".list", ".get")))


def _phase1(ctx: Context, type_ids: dict[str, TypeIds], allow_destructive: bool) -> list[Command]:
    commands: list[Command] = []
    for code, b in ctx.bindings.items():
        commands += type_commands(b, type_ids[code])
    for code, b in ctx.bindings.items():
        commands += relation_command(b, type_ids[code], ctx.relations, allow_destructive, type_ids)
        commands += field_commands(b, type_ids[code], allow_destructive, pending=False)
        commands += funnel_commands(b, type_ids[code], allow_destructive)
    return commands


def _record_created(ctx: Context, run: CommandRun, batch: list[Command]) -> None:
    """Right after each batch, remember what this apply created (ownership survives an interruption)."""
    for c in batch:
        res = run.results.get(c.key)
        if not isinstance(res, dict):
            continue
        kind, _, rest = c.key.partition(".")
        if kind == "type" and isinstance(res.get("type"), dict):
            t = res["type"]
            ctx.ids.set("type", rest, int(t["id"]), {"entityTypeId": int(t["entityTypeId"]), "created": True})
        elif kind == "cat" and c.method == "crm.category.add" and isinstance(res.get("category"), dict):
            ctx.ids.set("funnel", rest, int(res["category"]["id"]), {"created": True})


def _learn_types(ctx: Context, run: CommandRun) -> dict[str, Any]:
    """Attach the types created in phase 1 (and their funnels) to their bindings."""
    new: dict[str, Any] = {}
    for code, b in ctx.bindings.items():
        res = run.results.get(f"type.{code}")
        if b.portal is not None or not isinstance(res, dict):
            continue
        t = parse_type(res["type"])
        t.detailed = True
        t.fields = []
        ctx.snapshot.types.append(t)
        b.portal = t
        new[code] = t
        cats = (run.results.get(f"cats.{code}") or {}).get("categories") or []
        for fb in b.funnels:
            cat = run.results.get(f"cat.{code}.{fb.desired.code}")
            if fb.predicted and cats:
                fb.portal = parse_funnel({**cats[0], "name": fb.desired.name, "sort": fb.desired.sort})
            elif isinstance(cat, dict) and isinstance(cat.get("category"), dict):
                fb.portal = parse_funnel(cat["category"])
    for code, b in ctx.bindings.items():
        if code in new:
            continue
        for fb in b.funnels:
            cat = run.results.get(f"cat.{code}.{fb.desired.code}")
            if fb.portal is None and isinstance(cat, dict) and isinstance(cat.get("category"), dict):
                fb.portal = parse_funnel(cat["category"])
    return new


def _read_new_funnel_stages(ctx: Context, run: CommandRun, new_types: dict[str, Any]) -> None:
    """Phase 2: one read batch for the stages Bitrix24 put in every funnel created in phase 1."""
    wanted: dict[str, tuple[TypeBinding, FunnelBinding, PortalFunnel]] = {}
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    for code, b in ctx.bindings.items():
        for fb in b.funnels:
            created = fb.portal is not None and (
                code in new_types or run.results.get(f"cat.{code}.{fb.desired.code}")
            )
            if created and b.portal is not None and fb.portal is not None and not fb.portal.stages:
                key = f"s{len(wanted)}"
                wanted[key] = (b, fb, fb.portal)
                calls[key] = ("crm.status.list", {
                    "filter": {"ENTITY_ID": stage_entity_id(b.portal.entity_type_id, int(fb.portal.id or 0))},
                    "order": {"SORT": "ASC"},
                })
    if not wanted:
        return
    answer = ctx.client.batch_all(calls)
    for key, (b, fb, funnel) in wanted.items():
        rows = answer.results.get(key) or []
        funnel.stages = sorted(
            (parse_stage(r) for r in rows if isinstance(r, dict)), key=lambda s: (s.sort, s.id)
        )
        fb.predicted = False
        _bind_stages(b, fb, funnel, ctx.ids)


def _phase3(ctx: Context, allow_destructive: bool) -> list[Command]:
    commands: list[Command] = []
    for b in ctx.bindings.values():
        assert b.portal is not None
        ids = TypeIds(b)
        for fb in b.fields:
            for target in fb.desired.pending_targets:
                other = ctx.bindings.get(target)
                if other is not None and other.portal is not None:
                    fb.desired.settings[f"DYNAMIC_{other.portal.entity_type_id}"] = "Y"
        commands += field_commands(b, ids, allow_destructive, pending=True)
        for nb in b.funnels:
            if nb.portal is not None and nb.portal.id is not None:
                commands += stage_commands(b, nb, b.portal.entity_type_id, nb.portal.id, allow_destructive)
        if b.desired.sections and any(c.kind == "section" and c.actionable for c in type_changes(b, False)):
            commands.append(card_command(b, b.portal.id, b.portal.entity_type_id))
    return commands


def _reread(ctx: Context, new_types: dict[str, Any]) -> Context:
    """Re-read the touched types (2 requests) and bind again, for the id map and a convergence check."""
    touched = [b.portal for b in ctx.bindings.values() if b.portal is not None]
    for t in touched:
        t.detailed = False
    fill_details(ctx.client, touched)
    bindings = {d.code: bind_type(d, ctx.snapshot, ctx.ids) for d in ctx.desired}
    for code in new_types:
        bindings[code].owned = True
        for fb in bindings[code].funnels:
            fb.shape_defaults = True
    for code, b in bindings.items():
        if code not in new_types and any(f.shape_defaults for f in ctx.bindings[code].funnels):
            for fb, old in zip(b.funnels, ctx.bindings[code].funnels, strict=True):
                fb.shape_defaults = fb.shape_defaults or old.shape_defaults
    etids = {e.code: int((e.extra or {}).get("entityTypeId", 0)) for e in ctx.ids.all("type") if e.extra}
    relations = plan_relations(bindings, ctx.snapshot, etids)
    return Context(
        client=ctx.client,
        ids=ctx.ids,
        snapshot=ctx.snapshot,
        desired=ctx.desired,
        bindings=bindings,
        relations=relations,
    )


__all__ = ["apply", "plan", "load_context", "make_plan", "portal_key_of", "PortalFunnel"]
