"""The temporary smart process the probes work in: created the same way on both sides, then removed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.crm.naming import from_yn

from .cleanup import CODE_PREFIX, TITLE_PREFIX, remove_type
from .side import Side

# field code -> (UF name suffix, userTypeId). Suffixes chosen for the camelCase rules of
# server-behaviour.md §1 "Field-name casing": letters with `_` (generic camelCase) and mixed
# letters+digits (the "special" `ufCrm_` form).
FIELDS = {
    "text": ("DOCTOR_TEXT", "string"),
    "mixed": ("DOCTOR2", "string"),
    "choice": ("DOCTOR_CHOICE", "enumeration"),
    "day": ("DOCTOR_DAY", "date"),
    "moment": ("DOCTOR_MOMENT", "datetime"),
}
OPTIONS = ("alpha", "beta")


@dataclass
class Sandbox:
    """Ids of the sandbox on one side; `values` are the inputs both sides share (dates, stamp)."""

    side: Side
    stamp: str
    type_id: int = 0
    etid: int = 0
    default_cat: int = 0
    second_cat: int = 0
    stages: dict[int, dict[str, str]] = field(default_factory=dict)   # category -> code -> STATUS_ID
    fields: dict[str, str] = field(default_factory=dict)             # field code -> UF name
    options: dict[str, int] = field(default_factory=dict)            # option xmlId -> option id
    option_ids_raw: list[Any] = field(default_factory=list)           # ids as userfieldconfig sent them
    values: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return f"{CODE_PREFIX}{self.stamp}"

    def add_item(self, fields: dict[str, Any], original: bool = True) -> dict[str, Any]:
        """`crm.item.add` in the sandbox; returns the item."""
        params: dict[str, Any] = {"entityTypeId": self.etid, "fields": fields}
        if original:
            params["useOriginalUfNames"] = "Y"
        return self.side.call("crm.item.add", params)["item"]

    def add_items(self, rows: dict[str, dict[str, Any]], original: bool = True) -> dict[str, Any]:
        """Several `crm.item.add` in one batch: label -> item, or the label's B24Error."""
        extra = {"useOriginalUfNames": "Y"} if original else {}
        done = self.side.client.batch({label: ("crm.item.add", {"entityTypeId": self.etid, "fields": fields,
                                                                **extra}) for label, fields in rows.items()})
        return {label: done.errors.get(label) or done.results[label]["item"] for label in rows}

    def get_item(self, item_id: int, original: bool = True) -> dict[str, Any]:
        params: dict[str, Any] = {"entityTypeId": self.etid, "id": item_id}
        if original:
            params["useOriginalUfNames"] = "Y"
        return self.side.call("crm.item.get", params)["item"]

    def update_item(self, item_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        return self.side.call("crm.item.update", {"entityTypeId": self.etid, "id": item_id, "fields": fields,
                                                  "useOriginalUfNames": "Y"})["item"]

    def stage_code(self, stage_id: Any) -> str:
        """`DT1032_7:NEW` -> "default:NEW" / "second:NEW" (ids differ between sides, funnels do not)."""
        for cat, stages in self.stages.items():
            for code, sid in stages.items():
                if sid == stage_id:
                    return f"{'default' if cat == self.default_cat else 'second'}:{code}"
        return f"other:{stage_id}"

    def norm(self, value: Any) -> Any:
        """Replace this side's ids in text by placeholders, so both sides compare."""
        if not isinstance(value, str):
            return value
        for number, name in ((self.etid, "{E}"), (self.type_id, "{T}")):
            value = value.replace(f"_{number}_", f"_{name}_").replace(f"Crm{number}", f"Crm{name}")
        return value


def create(side: Side, stamp: str, values: dict[str, str]) -> Sandbox:
    """Type (code `b24sync_doctor_<stamp>`), a second funnel, five fields; raises B24Error on refusal
    (after removing what it had made)."""
    side.mark("setup")
    sb = Sandbox(side, stamp, values=values)
    smart = side.call("crm.type.add", {"fields": {
        "title": f"{TITLE_PREFIX} {stamp}", "code": sb.code, "isCategoriesEnabled": "Y",
        "isStagesEnabled": "Y", "isBeginCloseDatesEnabled": "Y"}})["type"]
    sb.type_id, sb.etid = int(smart["id"]), int(smart["entityTypeId"])
    try:
        _furnish(sb)
    except BaseException:
        remove(sb)
        raise
    return sb


def _furnish(sb: Sandbox) -> None:
    """The second funnel, the stage ids of both funnels, and the fields."""
    side = sb.side
    categories = side.call("crm.category.list", {"entityTypeId": sb.etid})["categories"]
    sb.default_cat = int(next(c["id"] for c in categories if from_yn(c.get("isDefault"))))
    second = side.call("crm.category.add", {"entityTypeId": sb.etid,
                                            "fields": {"name": f"{TITLE_PREFIX} second", "sort": 600}})
    sb.second_cat = int(second["category"]["id"])
    funnels = (sb.default_cat, sb.second_cat)
    stages = side.client.batch({f"s{cat}": ("crm.status.list", {"filter": {
        "ENTITY_ID": f"DYNAMIC_{sb.etid}_STAGE_{cat}"}}) for cat in funnels}, halt=True)
    for cat in funnels:
        rows = stages.get(f"s{cat}")
        sb.stages[cat] = {str(r["STATUS_ID"]).split(":", 1)[-1]: str(r["STATUS_ID"]) for r in rows}
    made = side.client.batch({code: ("userfieldconfig.add", _field_spec(sb.type_id, code))
                              for code in FIELDS}, halt=True)
    for code in FIELDS:
        field_json = made.get(code)["field"]
        sb.fields[code] = str(field_json.get("fieldName") or f"UF_CRM_{sb.type_id}_{FIELDS[code][0]}")
        for option in field_json.get("enum") or []:
            sb.option_ids_raw.append(option.get("id"))
            sb.options[str(option.get("xmlId"))] = int(option["id"])


def _field_spec(type_id: int, code: str) -> dict[str, Any]:
    suffix, user_type = FIELDS[code]
    spec: dict[str, Any] = {"moduleId": "crm", "field": {
        "entityId": f"CRM_{type_id}", "fieldName": f"UF_CRM_{type_id}_{suffix}", "userTypeId": user_type,
        "xmlId": f"b24sync:doctor:{code}", "editFormLabel": {"en": f"doctor {code}"}}}
    if user_type == "enumeration":
        spec["field"]["enum"] = [{"value": o.title(), "xmlId": o, "sort": 10 * (i + 1)}
                                 for i, o in enumerate(OPTIONS)]
    return spec


def remove(sb: Sandbox) -> None:
    """Delete the sandbox's items and type (nothing else); a type already gone is fine."""
    sb.side.mark("teardown")
    if sb.type_id:
        remove_type(sb.side, sb.type_id, sb.etid)
