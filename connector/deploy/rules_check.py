"""`plan`/`apply` check the stage rules of templates against the portal's deal funnels.

Every deal funnel and stage a rule names must exist on the portal (funnels by name, "default" for
the default funnel; stages by code). A found target is a note; a missing one is a manual step (create
the funnel or stage on the portal, or fix the rule). The funnels read are cached in the store for sync.
"""

from __future__ import annotations

from collections.abc import Sequence

from connector.crm import deals as dealmod
from connector.crm.deals import MetaStore
from connector.deploy.model import Plan, SchemaChange
from connector.rest import Client
from connector.templates import Template


def rule_changes(
    client: Client, templates: Sequence[Template], store: MetaStore | None, portal: str
) -> list[SchemaChange]:
    """One note per rule target found, one manual step per target missing."""
    ruled = [t for t in templates if t.rules]
    if not ruled:
        return []
    funnels = dealmod.cached_deal_funnels(client, store, portal, refresh=True)
    out: list[SchemaChange] = []
    for t in ruled:
        for rule in t.rules:
            if rule.parent != "deal":
                out.append(
                    _manual(t.code, rule.code, f"parent {rule.parent!r}: only deal parents are supported")
                )
                continue
            try:
                funnel = dealmod.find_funnel(funnels, rule.parent_funnel)
                stage = dealmod.find_stage(funnel, rule.parent_stage or "")
            except dealmod.FunnelError as exc:
                out.append(_manual(t.code, rule.code, str(exc)))
                continue
            note = f"rule {rule.kind}: deal funnel {funnel.name!r} stage {stage.code} = {stage.status_id}"
            out.append(
                SchemaChange(process=t.code, kind="stage", action="note", code=f"rules.{rule.code}",
                             note=note)
            )
    return out


def _manual(process: str, rule: str, why: str) -> SchemaChange:
    return SchemaChange(
        process=process, kind="stage", action="manual", code=f"rules.{rule}", note=f"rule target: {why}"
    )


def add_rule_checks(
    client: Client, templates: Sequence[Template], store: MetaStore | None, plan: Plan
) -> Plan:
    """Append the rule checks to each process's part of `plan` (in place; returned for chaining)."""
    changes = rule_changes(client, list(templates), store, plan.portal)
    for p in plan.processes:
        p.changes += [c for c in changes if c.process == p.process]
    return plan
