"""The behaviours the connector depends on, each probed by the same calls on both sides.

A probe returns an observation: a small JSON-able dict with the side's ids replaced by
placeholders (`<id>`, `{T}`, `{E}`, funnel names), so the portal's and the emulator's observations
can be compared with `==`. The expected server behaviour is written beside each probe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from connector.rest import B24Error
from connector.rest.encoding import command

from .sandbox import Sandbox
from .side import error_text

Observation = dict[str, Any]


@dataclass(frozen=True)
class Probe:
    key: str
    behaviour: str
    run: Callable[[Sandbox], Observation]


def _batch(sb: Sandbox, cmd: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send hand-built `cmd` strings (the client's encoder would never send a glued reference)."""
    answer = sb.side.call("batch", {"halt": 0, "cmd": cmd})
    results, errors = answer.get("result"), answer.get("result_error")
    return (results if isinstance(results, dict) else {}), (errors if isinstance(errors, dict) else {})


def _title_after(sb: Sandbox, title: str) -> Observation:
    """Add an item and update its title to `title` (which holds a reference) in one batch."""
    add = command("crm.item.add", {"entityTypeId": sb.etid, "fields": {"title": "doctor batch"}})
    update = (f"crm.item.update?entityTypeId={sb.etid}&id=$result[add][item][id]"
              f"&fields[title]={quote(title, safe='')}")
    results, errors = _batch(sb, {"add": add, "upd": update})
    if "upd" in errors:
        return {"update": f"error {errors['upd'].get('error')}"}
    item_id = str(results["add"]["item"]["id"])
    return {"title": str(results["upd"]["item"]["title"]).replace(item_id, "<id>")}


def batch_whole(sb: Sandbox) -> Observation:
    # server-behaviour.md §6 "References": a reference that is the whole value is replaced by the raw value.
    add = command("crm.item.add", {"entityTypeId": sb.etid, "fields": {"title": "doctor batch"}})
    get = f"crm.item.get?entityTypeId={sb.etid}&id=$result[add][item][id]"
    results, errors = _batch(sb, {"add": add, "get": get})
    if "get" in errors:
        return {"get": f"error {errors['get'].get('error')}"}
    return {"get by $result[add][item][id]": "same item" if results["get"]["item"]["id"] ==
            results["add"]["item"]["id"] else "another item"}


def batch_spaced(sb: Sandbox) -> Observation:
    # server-behaviour.md §6: `W $result[a][item][id] end` becomes `W 7 end` (the match stops at whitespace).
    return _title_after(sb, "A $result[add][item][id] B")


def batch_glued(sb: Sandbox) -> Observation:
    # Expected on a real portal: {"title": "G<id>"}. server-behaviour.md §6 "References": regex
    # `/\$(result|next|total|time|error)([^\s]*)/i` runs to the next whitespace, so the glued `_S` is part
    # of the match, the descent stops at the last found key and the whole match becomes the id
    # ("`UF_CRM_$result[c0][type][id]_SOURCE` becomes `UF_CRM_7`").
    return _title_after(sb, "G$result[add][item][id]_S")


def keyset_paging(sb: Sandbox) -> Observation:
    # server-behaviour.md §1 "Page size, start, next, total": start=-1 gives neither `next` nor `total`;
    # bitrix24-rest.md §2.1: order {id: ASC} + filter >id + start=-1 for full scans.
    added = sb.add_items({f"p{n}": {"title": f"page {n}"} for n in range(3)})
    ids = [int(added[f"p{n}"]["id"]) for n in range(3)]
    params = {"entityTypeId": sb.etid, "order": {"id": "ASC"}, "filter": {">id": ids[0]}, "select": ["id"]}
    keyset = sb.side.client.call("crm.item.list", {**params, "start": -1})
    counted = sb.side.client.call("crm.item.list", {**params, "start": 0})
    rows = [int(r["id"]) for r in keyset.result["items"]]
    return {"start=-1 total": "absent" if keyset.total is None else keyset.total,
            "start=-1 next": "absent" if keyset.next is None else keyset.next,
            "rows after the cursor": "the 2 newer, ascending" if rows == ids[1:] else f"{len(rows)} rows",
            "start=0 total": "absent" if counted.total is None else counted.total}


def noop_update(sb: Sandbox) -> Observation:
    # server-behaviour.md §2 "updatedTime": an update that changes nothing is not saved and keeps
    # updatedTime; a real change bumps it. Times have whole seconds, so wait a little over 1 s first.
    item = sb.add_item({"title": "doctor no-op"})
    sb.side.pause(1.1)
    same = sb.update_item(int(item["id"]), {"title": "doctor no-op"})
    changed = sb.update_item(int(item["id"]), {"title": "doctor changed"})
    return {"no-op update": "kept" if same["updatedTime"] == item["updatedTime"] else "bumped",
            "real change": "bumped" if changed["updatedTime"] != item["updatedTime"] else "kept"}


def stage_on_add(sb: Sandbox) -> Observation:
    # server-behaviour.md §2 "categoryId / stageId validation": a new item's stage that is not in its
    # funnel is replaced silently by the first stage of that funnel with the same semantics.
    # No categoryId: the item goes to the default funnel ("If categoryId is omitted, the default
    # category is used"), so only the stage rule is probed.
    codes = ("SUCCESS", "FAIL", "PREPARATION")
    foreign = sb.stages[sb.second_cat]
    added = sb.add_items({code: {"title": f"doctor stage {code}", "stageId": foreign.get(code)}
                          for code in codes})
    return {f"other funnel's {code}": _outcome(added[code], lambda item: sb.stage_code(item["stageId"]))
            for code in codes}


def _outcome(answer: Any, read: Callable[[Any], Any]) -> Any:
    """A batch label's answer read by `read`, or its error as an observation."""
    return error_text(answer) if isinstance(answer, B24Error) else read(answer)


def stage_on_update(sb: Sandbox) -> Observation:
    # server-behaviour.md §2: update without a category change: an invalid stage is reverted silently.
    item = sb.add_item({"title": "doctor stage update"})
    out: Observation = {"created in": sb.stage_code(item["stageId"])}
    for label, stage in (("other funnel's PREPARATION", sb.stages[sb.second_cat].get("PREPARATION")),
                         ("unknown stage", f"DT{sb.etid}_{sb.default_cat}:NO_SUCH_STAGE")):
        try:
            out[label] = sb.stage_code(sb.update_item(int(item["id"]), {"stageId": stage})["stageId"])
        except B24Error as err:
            out[label] = error_text(err)
    return out


def uf_camel_keys(sb: Sandbox) -> Observation:
    # server-behaviour.md §1 "Field-name casing": UF_CRM_5_MY_FIELD -> ufCrm5MyField (generic rule),
    # UF_CRM_5_FIELD1 -> ufCrm_5_FIELD1 (mixed letters and digits: the "special" form).
    described = sb.side.call("crm.item.fields", {"entityTypeId": sb.etid})["fields"]
    by_upper = {str(d.get("upperName")): key for key, d in described.items() if isinstance(d, dict)}
    return {code: sb.norm(by_upper.get(sb.fields[code], "(absent)")) for code in ("text", "mixed", "choice")}


def uf_both_ways(sb: Sandbox) -> Observation:
    # server-behaviour.md §1 caveat: with useOriginalUfNames=N an UPPER UF key is silently ignored on
    # add; camelCase keys are converted to UPPER; with useOriginalUfNames=Y the UPPER names work both ways.
    upper = sb.fields["text"]
    described = sb.side.call("crm.item.fields", {"entityTypeId": sb.etid})["fields"]
    camel = next((k for k, d in described.items()
                  if isinstance(d, dict) and d.get("upperName") == upper), None)
    if camel is None:
        return {"camel key": "absent from crm.item.fields"}
    cases = {"camel key, default names": (camel, False), "UPPER key, default names": (upper, False),
             "UPPER key, useOriginalUfNames=Y": (upper, True)}
    out: Observation = {}
    for label, (key, original) in cases.items():  # one add each: useOriginalUfNames differs per call
        item = sb.add_item({"title": label, key: "written"}, original=original)
        out[label] = "stored" if sb.get_item(int(item["id"]))[upper] == "written" else "ignored"
    plain = sb.get_item(int(item["id"]), original=False)
    out["read with default names"] = "camel key" if camel in plain and upper not in plain else "UPPER key"
    return out


def enum_ids(sb: Sandbox) -> Observation:
    # bitrix24-rest.md §9.3: enumeration values are option IDs; crm.item.fields lists them as
    # `items: [{"ID": "79", "VALUE": ...}]`; server-behaviour.md §5: userfieldconfig values are strings
    # as stored.
    name = sb.fields["choice"]
    alpha = sb.options.get("alpha")
    out: Observation = {"option id type in userfieldconfig.add":
                        sorted({type(i).__name__ for i in sb.option_ids_raw}) or ["(none)"]}
    described = sb.side.call("crm.item.fields",
                             {"entityTypeId": sb.etid, "useOriginalUfNames": "Y"})["fields"]
    items = (described.get(name) or {}).get("items") or []
    out["crm.item.fields items"] = sorted({f"{k}:{type(v).__name__}" for row in items for k, v in row.items()
                                           if k in ("ID", "VALUE")})
    for label, value in (("write id as number", alpha), ("write id as text", str(alpha)),
                         ("write unknown id", (max(sb.options.values()) if sb.options else 0) + 9999)):
        try:
            item = sb.add_item({"title": label, name: value})
            back = item.get(name)
            which = "same option" if back == alpha else "no option" if back in (None, "") else "other"
            out[label] = f"read back {type(back).__name__}, {which}"
        except B24Error as err:
            out[label] = error_text(err)
    return out


def date_rendering(sb: Sandbox) -> Observation:
    # bitrix24-rest.md §14 item 13 and §9.5; server-behaviour.md §1 "Item JSON values": a date-only value
    # comes back as UTC midnight rendered in the portal offset ("2025-04-29T03:00:00+03:00" on +03:00).
    day = sb.values["day"]
    item = sb.add_item({"title": "doctor date", sb.fields["day"]: day, "begindate": day})
    return {"date field": item.get(sb.fields["day"]), "begindate": item.get("begindate")}


def datetime_rendering(sb: Sandbox) -> Observation:
    # server-behaviour.md §1 "Item JSON values": datetimes are ISO 8601 in the portal's offset, whole seconds.
    moment = sb.values["moment"]
    item = sb.add_item({"title": "doctor datetime", sb.fields["moment"]: moment})
    return {"datetime field": item.get(sb.fields["moment"])}


def xml_id_filter(sb: Sandbox) -> Observation:
    # DESIGN "Idempotent create": the sync key travels in `xmlId` and is found again by `filter {xmlId}`;
    # server-behaviour.md §1: filter keys are system fields (XML_ID) with the documented prefixes.
    key = f"b24sync-doctor-{sb.stamp}"
    item = sb.add_item({"title": "doctor xmlId", "xmlId": key})
    filters = {"filter xmlId": {"xmlId": key}, "filter =xmlId": {"=xmlId": key},
               "filter other xmlId": {"xmlId": key + "-none"}}
    found = sb.side.client.batch({f"f{n}": ("crm.item.list", {"entityTypeId": sb.etid, "filter": flt,
                                                              "select": ["id"], "start": -1})
                                  for n, flt in enumerate(filters.values())})
    out: Observation = {"echoed": item.get("xmlId") == key}
    for n, label in enumerate(filters):
        answer = found.errors.get(f"f{n}") or found.results.get(f"f{n}")
        out[label] = _outcome(answer, lambda result: f"{len(result['items'])} found")
    return out


def type_delete_refused(sb: Sandbox) -> Observation:
    # server-behaviour.md §3 "crm.type.delete": refused with BX_ERROR while the type has items.
    try:
        sb.side.call("crm.type.delete", {"id": sb.type_id})
    except B24Error as err:
        return {"delete with items": f"refused, {error_text(err)}"}
    sb.type_id = 0  # gone: teardown has nothing left to delete
    return {"delete with items": "deleted"}


PROBES: tuple[Probe, ...] = (
    Probe("batch_whole", "batch: reference as the whole value", batch_whole),
    Probe("batch_spaced", "batch: reference followed by a space", batch_spaced),
    Probe("batch_glued", "batch: reference glued to text", batch_glued),
    Probe("keyset_paging", "list: keyset paging with start=-1", keyset_paging),
    Probe("noop_update", "update: no-op keeps updatedTime", noop_update),
    Probe("stage_on_add", "stage: foreign stage on add", stage_on_add),
    Probe("stage_on_update", "stage: invalid stage on update", stage_on_update),
    Probe("uf_camel_keys", "UF names: camelCase keys", uf_camel_keys),
    Probe("uf_both_ways", "UF names: writing and reading both ways", uf_both_ways),
    Probe("enum_ids", "enumeration option ids", enum_ids),
    Probe("date_rendering", "date rendering", date_rendering),
    Probe("datetime_rendering", "datetime rendering", datetime_rendering),
    Probe("xml_id_filter", "xmlId filtering", xml_id_filter),
    Probe("type_delete_refused", "type delete refused while items exist", type_delete_refused),
)
