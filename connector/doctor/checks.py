"""The read-only checks of `b24sync doctor` (no `--sandbox`): nothing here writes to the portal.

Every check says how it found its answer (`how`), so a user can repeat it by hand.
"""

from __future__ import annotations

import time
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel

from connector.rest import AccessDenied, AuthError, B24Error, NotFound, TransportError
from connector.times import local_moment, offset_text, utc_now

from .side import DoctorError, Side

Status = Literal["ok", "warn", "fail"]

# Methods the connector calls (deploy, sync, reports); `methods` must list them, or probing finds them.
READS = ("crm.type.list", "crm.type.get", "crm.type.fields", "crm.category.list", "crm.status.list",
         "crm.status.entity.items", "userfieldconfig.list", "userfieldconfig.get", "crm.item.list",
         "crm.item.get", "crm.item.fields", "crm.item.details.configuration.get", "crm.stagehistory.list")
# Writes whose call without parameters is refused before anything happens: a missing required
# parameter is error 100 (server-behaviour.md §1 "Signature": the binder refuses before the action
# runs; §2 "Parameters": all params without defaults are required; §5: moduleId/field required), and
# `crm.type.delete` without `id` answers `null` and deletes nothing (bitrix24-rest.md §5.3).
SAFE_WRITES = ("crm.type.add", "crm.type.update", "crm.type.delete", "crm.category.add",
               "crm.category.update", "crm.category.delete", "userfieldconfig.add", "userfieldconfig.update",
               "userfieldconfig.delete", "crm.item.add", "crm.item.update", "crm.item.delete",
               "crm.item.details.configuration.set")
# Writes with no documented refusal of an empty call: listed by `methods` only, never probed.
UNPROBED_WRITES = ("crm.status.add", "crm.status.update", "crm.status.delete")
NEEDED_SCOPES = ("crm", "userfieldconfig")


class Check(BaseModel):
    """One line of the read-only report."""

    check: str
    result: str
    status: Status = "ok"
    how: str = ""


class Facts(BaseModel):
    """What later steps need from the checks: the portal's UTC offset and server date."""

    offset: str = "+00:00"
    server_date: str = ""
    server_start: float | None = None
    host: str = ""


def run_checks(side: Side) -> tuple[list[Check], Facts]:
    """Every read-only check, in order; raises DoctorError when the portal cannot be talked to."""
    side.mark("checks")
    host = side.client.auth.host
    checks = [_transport(side, host)]
    first = _first_answer(side)
    checks.append(Check(check="reachable", result=f"answered in {first['ms']} ms",
                        how="one call to `scope` (any JSON answer counts)"))
    checks.append(Check(check="auth", result=side.client.auth.kind,
                        how="the configured credentials (incoming webhook URL or OAuth application)"))
    facts = Facts(host=host)
    checks.append(_clock(first["time"], facts))
    checks.append(_scopes(first))
    admin = _crm_admin(side)
    checks.append(admin)
    checks.append(_field_rights(side, admin.status == "ok"))
    checks.extend(_methods(side))
    checks.append(_limits(side, first["time"]))
    if side.client.auth.kind == "webhook":
        checks.append(Check(check="offline event queue", result="not available to webhooks", status="warn",
                            # bitrix24-rest.md §1.1: event.* methods work only with application auth
                            how="event.offline.* work only for OAuth apps; deletions are then found "
                                "by the `sync --full` reconcile"))
    return checks, facts


def _transport(side: Side, host: str) -> Check:
    scheme = urlsplit(side.client.auth.base_url).scheme
    if scheme == "https":
        return Check(check="TLS", result=f"https to {host}, certificate verified",
                     how="requests verifies the certificate chain and host name on every call")
    return Check(check="TLS", result=f"plain http to {host} (loopback or allow_http)", status="warn",
                 how="secrets travel unencrypted; real portals use https")


def _first_answer(side: Side) -> dict[str, Any]:
    """Call `scope` once: reachability, TLS errors, auth errors, the server's clock."""
    started = time.monotonic()
    try:
        try:
            response = side.client.call("scope")
            scopes: Any = response.result
        except NotFound:  # ERROR_METHOD_NOT_FOUND, answered before auth (server-behaviour.md §7)
            response, scopes = side.client.call("crm.type.fields"), None  # so the credentials are tried
    except AccessDenied:  # credentials accepted, rights missing: the checks below say which
        response, scopes = None, None
    except AuthError as err:
        raise DoctorError(f"{side.client.auth.host} refused the credentials ({err.code}): check the "
                          "webhook URL / OAuth tokens") from None
    except TransportError as err:
        cause = "TLS certificate check failed" if "SSL" in err.description else "unreachable"
        raise DoctorError(f"{side.client.auth.host} is {cause}: {err.description}") from None
    except requests.RequestException as err:  # pragma: no cover - the client wraps these
        raise DoctorError(f"{side.client.auth.host} is unreachable: {type(err).__name__}") from None
    timing = response.time if response is not None else {}
    return {"ms": round((time.monotonic() - started) * 1000), "scopes": scopes, "time": timing}


def _clock(timing: dict[str, Any], facts: Facts) -> Check:
    stamp = timing.get("date_start")
    if not isinstance(stamp, str):
        return Check(check="server time", result="not reported", status="warn",
                     how="`time.date_start` of the first answer was missing")
    server = local_moment(stamp, "+00:00")
    facts.offset = offset_text(server)
    facts.server_date = server.date().isoformat()
    facts.server_start = server.timestamp()
    skew = round(server.timestamp() - utc_now().timestamp())
    status: Status = "ok" if abs(skew) < 120 else "warn"
    return Check(check="server time", result=f"{stamp} (offset {facts.offset}, local clock {skew:+d} s)",
                 status=status, how="`time.date_start` of the first answer")  # server-behaviour.md §7


def _scopes(first: dict[str, Any]) -> Check:
    scopes = first["scopes"]
    if not isinstance(scopes, list):
        return Check(check="scopes", result="unknown: the portal has no `scope` method", status="warn",
                     how="`scope` answered ERROR_METHOD_NOT_FOUND; rights are judged by the calls below")
    missing = [s for s in NEEDED_SCOPES if s not in scopes]
    return Check(check="scopes", result=", ".join(map(str, scopes)) or "(none)",
                 status="fail" if missing else "ok",
                 how=f"`scope`; needed: {', '.join(NEEDED_SCOPES)}"
                     + (f"; missing: {', '.join(missing)}" if missing else ""))


def _crm_admin(side: Side) -> Check:
    # bitrix24-rest.md §5: crm.type add/update/list/delete/fields require a CRM administrator
    how = "`crm.type.fields` answered: like crm.type.add it needs CRM administrator rights"
    try:
        side.call("crm.type.fields")
    except AccessDenied as err:
        return Check(check="may create smart processes", result=f"no ({err.code})", status="fail", how=how)
    except B24Error as err:
        return Check(check="may create smart processes", result=f"unknown ({err.code})", status="warn",
                     how=how)
    return Check(check="may create smart processes", result="yes", how=how)


def _field_rights(side: Side, admin: bool) -> Check:
    # bitrix24-rest.md §10: scopes userfieldconfig + crm; add needs CRM admin or "Allow to modify settings"
    how = ("`userfieldconfig.getTypes` answered (so the userfieldconfig and crm scopes are granted) "
           "and the user is a CRM administrator")
    try:
        side.call("userfieldconfig.getTypes", {"moduleId": "crm"})
    except B24Error as err:
        return Check(check="may create fields", result=f"no ({err.code})", status="fail", how=how)
    if not admin:
        return Check(check="may create fields", result="no (not a CRM administrator)", status="fail", how=how)
    return Check(check="may create fields", result="yes", how=how)


def _methods(side: Side) -> list[Check]:
    try:
        listed = side.call("methods")
    except NotFound:
        listed = None
    except B24Error:
        listed = None
    if isinstance(listed, list):
        names = {str(m).lower() for m in listed}
        wanted = READS + SAFE_WRITES + UNPROBED_WRITES
        missing = [m for m in wanted if m.lower() not in names]
        return [Check(check="methods the connector uses", status="fail" if missing else "ok",
                      result=f"{len(wanted) - len(missing)}/{len(wanted)} listed"
                             + (f"; missing: {', '.join(missing)}" if missing else ""),
                      how="`methods` (the portal's list of methods open to these credentials)")]
    return [_probe_methods(side)]


def _probe_methods(side: Side) -> Check:
    """No `methods`: call each method without parameters in batches; ERROR_METHOD_NOT_FOUND = missing."""
    probed = READS + SAFE_WRITES
    missing: list[str] = []
    for start in range(0, len(probed), 25):
        chunk = probed[start:start + 25]
        cmd = {f"m{start + i}": name for i, name in enumerate(chunk)}
        result = side.call("batch", {"halt": 0, "cmd": cmd})
        errors = result.get("result_error") if isinstance(result, dict) else None
        errors = errors if isinstance(errors, dict) else {}
        missing += [name for label, name in zip(cmd, chunk, strict=True)
                    if isinstance(errors.get(label), dict)
                    and errors[label].get("error") == "ERROR_METHOD_NOT_FOUND"]
    present = len(probed) - len(missing)
    return Check(check="methods the connector uses", status="fail" if missing else "ok",
                 result=f"{present}/{len(probed)} answer"
                        + (f"; missing: {', '.join(missing)}" if missing else "")
                        + f"; not probed: {', '.join(UNPROBED_WRITES)}",
                 how="`methods` is not served, so each method was called with no parameters inside "
                     "`batch` (refused as a missing parameter before anything runs)")


def _limits(side: Side, timing: dict[str, Any]) -> Check:
    stats = side.client.stats.as_dict()
    refused = stats["statuses"].get(503, 0) + stats["statuses"].get(429, 0)
    budget = "operating-time budget active (`time.operating` present)" if "operating" in timing \
        else "no operating-time budget reported (`time.operating` absent: limiter off, self-hosted)"
    bucket = side.client.bucket
    rate = f"client paces at the {side.client.plan} plan ({bucket.capacity:g} burst, {bucket.drain:g}/s)"
    seen = f"{refused} of {stats['requests']} requests refused by the rate limits so far"
    return Check(check="limits", result=f"{budget}; {rate}; {seen}",
                 status="warn" if refused else "ok",
                 how="the `time` object of the answers; the burst size itself cannot be "
                     "measured without overloading the portal")
