"""The process-template model: one smart process described by stable codes (pydantic).

Templates are the lowest layer above `constants`: deploy turns them into Bitrix24 payloads
(`connector.deploy`), the store into tables; nothing here knows portal ids except through a resolver.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, PrivateAttr, model_validator

from connector.constants import SYSTEM_ENTITY_TYPES, UF_CODE_MAX
from connector.templates.limits import non_ascii_note
from connector.templates.presets import FLAG_NAMES, PRESET_NAMES, preset_flags
from connector.templates.rules import Rule

# \Z, not $: `$` also matches before a trailing newline, and "car\n" is not a code.
PROCESS_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}\Z")
FIELD_CODE_RE = re.compile(r"^[a-z][a-z0-9_]*\Z")
OPTION_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,49}\Z")
STAGE_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]*\Z")
# STATUS_ID is varchar(50); `DT{etid}_{cat}:` takes up to ~16 chars; 20 leaves room for any portal.
STAGE_CODE_MAX = 20
COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}\Z")
LANG_RE = re.compile(r"^[a-z]{2}\Z")
_FIELD_MARKER_RE = re.compile(r"^b24sync:[a-z][a-z0-9_]*:([a-z][a-z0-9_]*)$")


def field_marker(process: str, code: str) -> str:
    """The ownership marker written to a field's xmlId: `b24sync:<process>:<field>`."""
    return f"b24sync:{process}:{code}"


def marked_field_code(xml_id: str) -> str | None:
    """The field code in our ownership marker, or None when `xml_id` is not one."""
    match = _FIELD_MARKER_RE.match(xml_id)
    return match.group(1) if match else None

FieldType = Literal[
    "string",
    "integer",
    "double",
    "boolean",
    "date",
    "datetime",
    "enumeration",
    "money",
    "url",
    "address",
    "file",
    "employee",
    "crm",
]
FIELD_TYPES: tuple[str, ...] = FieldType.__args__  # type: ignore[attr-defined]
Semantics = Literal["process", "success", "failure"]
Preset = Literal["scratch", "all-inclusive", "list"]
assert PRESET_NAMES == Preset.__args__  # type: ignore[attr-defined]

DEFAULT_STAGE_COLORS: dict[str, str] = {"process": "#22B9FF", "success": "#00FF00", "failure": "#FF0000"}
SEMANTICS_CODE: dict[str, str] = {"process": "", "success": "S", "failure": "F"}

# Keys of the `crm` user-field settings for system targets.
CRM_LINK_KEYS: dict[str, str] = {
    "lead": "LEAD",
    "deal": "DEAL",
    "contact": "CONTACT",
    "company": "COMPANY",
    "quote": "QUOTE",
    "invoice": "SMART_INVOICE",
}
LINKED_USER_FIELDS: dict[str, tuple[str, ...]] = {
    "tasks": ("TASKS_TASK|UF_CRM_TASK", "TASKS_TASK_TEMPLATE|UF_CRM_TASK"),
    "calendar": ("CALENDAR_EVENT|UF_CRM_CAL_EVENT",),
}
# Local-store column names a field code must not take (docs/CONTRACTS.md "Local store layout").
RESERVED_FIELD_CODES: frozenset[str] = frozenset(
    {
        "key",
        "id",
        "title",
        "funnel",
        "stage",
        "assigned_by_id",
        "created_time",
        "updated_time",
        "moved_time",
        "deleted",
        "deleted_at",
        "contact_ids",
        "company_id",
        "funnel_name",
        "stage_name",
    }
)
# Standard item fields a card section may list: code -> (card element name, flag it needs).
STANDARD_CARD_FIELDS: dict[str, tuple[str, str | None]] = {
    "title": ("TITLE", None),
    "assigned_by": ("ASSIGNED_BY_ID", None),
    "client": ("CLIENT", "isClientEnabled"),
    "mycompany": ("MYCOMPANY_ID", "isMycompanyEnabled"),
    "opportunity": ("OPPORTUNITY_WITH_CURRENCY", "isLinkWithProductsEnabled"),
    "begindate": ("BEGINDATE", "isBeginCloseDatesEnabled"),
    "closedate": ("CLOSEDATE", "isBeginCloseDatesEnabled"),
    "observers": ("OBSERVERS", "isObserversEnabled"),
    "source": ("SOURCE_ID", "isSourceEnabled"),
    "products": ("PRODUCT_ROW_SUMMARY", "isLinkWithProductsEnabled"),
}
ACCESS_ACTIONS: tuple[str, ...] = ("read", "add", "write", "delete", "export", "import", "automation")
ACCESS_LEVELS: tuple[str, ...] = ("none", "own", "department", "subdepartments", "open", "all")

Resolver = Callable[[str], int]


def _check_label(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise ValueError('give at least one language, e.g. { ru = "...", en = "..." }')
    for lang, text in value.items():
        if not LANG_RE.match(lang):
            raise ValueError(f"language key {lang!r} must be a two-letter code such as ru or en")
        if not text.strip():
            raise ValueError(f"text for language {lang!r} is empty")
    return value


def _check_optional_label(value: dict[str, str]) -> dict[str, str]:
    return _check_label(value) if value else value


Label = Annotated[dict[str, str], AfterValidator(_check_label)]
OptionalLabel = Annotated[dict[str, str], AfterValidator(_check_optional_label)]


def _pattern(regex: re.Pattern[str], rule: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"{value!r} is not allowed; {rule}{non_ascii_note(value)}")
        return value

    return check


def _field_code(value: str) -> str:
    if not FIELD_CODE_RE.match(value):
        rule = "field codes are lowercase snake: ^[a-z][a-z0-9_]*$"
        raise ValueError(f"{value!r} is not allowed; {rule}{non_ascii_note(value)}")
    if len(value) > UF_CODE_MAX:
        raise ValueError(
            f"{value!r} is {len(value)} chars; at most {UF_CODE_MAX} so that UF_CRM_<typeId>_"
            f"{value.upper()} fits Bitrix24's 50-char field-name limit"
        )
    if value in RESERVED_FIELD_CODES or value in STANDARD_CARD_FIELDS or value.startswith("parent_"):
        reserved = sorted(RESERVED_FIELD_CODES | set(STANDARD_CARD_FIELDS))
        raise ValueError(
            f"{value!r} is reserved for a standard item field or a local-store column; reserved: "
            f"{', '.join(reserved)} and parent_*"
        )
    return value


def _stage_code(value: str) -> str:
    if not STAGE_CODE_RE.match(value):
        raise ValueError(
            f"{value!r} is not allowed; stage codes are UPPER snake: ^[A-Z][A-Z0-9_]*${non_ascii_note(value)}"
        )
    if len(value) > STAGE_CODE_MAX:
        raise ValueError(
            f"{value!r} is {len(value)} chars; at most {STAGE_CODE_MAX} (STATUS_ID is 50 chars and the "
            "portal prefix DT<entityTypeId>_<categoryId>: needs the rest)"
        )
    return value


def _color(value: str) -> str:
    if not COLOR_RE.match(value):
        raise ValueError(f"{value!r} is not a color; use #RRGGBB, e.g. #22B9FF")
    return value.upper()


ProcessCode = Annotated[
    str, AfterValidator(_pattern(PROCESS_CODE_RE, "process codes match ^[a-z][a-z0-9_]{0,39}$"))
]
FieldCode = Annotated[str, AfterValidator(_field_code)]
OptionCode = Annotated[
    str, AfterValidator(_pattern(OPTION_CODE_RE, "option codes match ^[a-z0-9][a-z0-9_]{0,49}$"))
]
LowerCode = Annotated[str, AfterValidator(_pattern(PROCESS_CODE_RE, "codes match ^[a-z][a-z0-9_]{0,39}$"))]
StageCode = Annotated[str, AfterValidator(_stage_code)]
Color = Annotated[str, AfterValidator(_color)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=False)


class Option(_Model):
    """One coded option of an enumeration field; its portal xmlId is `code`."""

    code: OptionCode
    label: Label
    sort: int = 100
    default: bool = False
    renamed_from: OptionCode | None = None


class Field(_Model):
    """A custom field; the portal name is `UF_CRM_{typeId}_{CODE}`."""

    code: FieldCode
    type: FieldType
    label: Label
    multiple: bool = False
    required: bool = False
    help: OptionalLabel = {}
    show_in_filter: bool = True
    show_in_list: bool = True
    sort: int = 100
    multiline: bool = False
    renamed_from: FieldCode | None = None
    options: list[Option] = []
    targets: list[str] = []

    _process: str = PrivateAttr(default="")
    _language: str = PrivateAttr(default="ru")

    @property
    def uf_suffix(self) -> str:
        """The postfix after `UF_CRM_{typeId}_` (`candidate_source` -> `CANDIDATE_SOURCE`)."""
        return self.code.upper()

    @property
    def xml_id(self) -> str:
        """Ownership marker written to the field's xmlId."""
        return field_marker(self._process, self.code)

    def option(self, code: str) -> Option:
        for opt in self.options:
            if opt.code == code:
                return opt
        raise KeyError(
            f"field {self.code!r} has no option {code!r}; options: {[o.code for o in self.options]}"
        )

    def settings(self, resolve: Resolver | None = None) -> dict[str, Any]:
        """The userfieldconfig `settings` for this field type."""
        if self.type == "crm":
            return {crm_link_key(t, resolve): "Y" for t in self.targets}
        if self.type == "string":
            return {"ROWS": 3 if self.multiline else 1}
        if self.type == "enumeration":
            return {"DISPLAY": "UI"}
        if self.type == "boolean":
            return {"DISPLAY": "CHECKBOX"}
        return {}

    @property
    def show_filter_code(self) -> str:
        """SHOW_FILTER: N hidden, S substring for text types, I exact match otherwise."""
        if not self.show_in_filter:
            return "N"
        return "S" if self.type in ("string", "url", "address") else "I"


class Stage(_Model):
    """A kanban stage; on the portal STATUS_ID is `DT{etid}_{cat}:{code}`."""

    code: StageCode
    name: Label
    semantics: Semantics = "process"
    color: Color = "#22B9FF"
    sort: int = 10
    renamed_from: StageCode | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_color(cls, data: Any) -> Any:
        if isinstance(data, dict) and "color" not in data and data.get("semantics") in DEFAULT_STAGE_COLORS:
            return {**data, "color": DEFAULT_STAGE_COLORS[data["semantics"]]}
        return data

    @property
    def semantics_code(self) -> str:
        """crm.status SEMANTICS: "" process, "S" success, "F" failure."""
        return SEMANTICS_CODE[self.semantics]


class Funnel(_Model):
    """A funnel (crm.category) with its stages."""

    code: LowerCode
    name: Label
    default: bool = False
    sort: int = 500
    renamed_from: LowerCode | None = None
    stages: list[Stage] = []

    @property
    def success_stage(self) -> Stage:
        return next(s for s in self.stages if s.semantics == "success")

    @property
    def first_process_stage(self) -> Stage:
        return next(s for s in self.stages if s.semantics == "process")

    @property
    def first_failure_stage(self) -> Stage:
        return next(s for s in self.stages if s.semantics == "failure")

    def stage(self, code: str) -> Stage:
        for s in self.stages:
            if s.code == code:
                return s
        raise KeyError(f"funnel {self.code!r} has no stage {code!r}; stages: {[s.code for s in self.stages]}")

    def system_stage_map(self) -> dict[str, str]:
        """Template stage codes for the portal's undeletable NEW, SUCCESS and FAIL stages."""
        return {
            "NEW": self.first_process_stage.code,
            "SUCCESS": self.success_stage.code,
            "FAIL": self.first_failure_stage.code,
        }


class RelationRef(_Model):
    """A link to a system type by name (deal, contact, ...) or to another process by code."""

    target: str
    children_list: bool = True

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"target": data} if isinstance(data, str) else data

    @property
    def is_system(self) -> bool:
        return self.target in SYSTEM_ENTITY_TYPES


class Relations(_Model):
    parents: list[RelationRef] = []
    children: list[RelationRef] = []


class Integrations(_Model):
    """Tasks and calendar links (linkedUserFields) and use in CRM link fields."""

    tasks: bool = False
    calendar: bool = False
    use_in_crm_links: bool | None = None


class CardSection(_Model):
    """A section of the item card listing fields by code (custom or standard)."""

    code: LowerCode
    title: Label
    fields: list[str] = []


class AccessRule(_Model):
    """Declared intent for a CRM role; REST cannot set it, so it is only printed."""

    role: str
    permissions: dict[str, str] = {}
    note: str | None = None


def text(label: dict[str, str], language: str) -> str:
    """The text of a label map in one language, falling back to ru, en, then any."""
    for lang in (language, "ru", "en"):
        if label.get(lang):
            return label[lang]
    return next(iter(label.values()), "")


def crm_link_key(target: str, resolve: Resolver | None) -> str:
    """Settings key of a crm-link target: `DEAL`, `SMART_INVOICE`, `DYNAMIC_1032`."""
    if target in CRM_LINK_KEYS:
        return CRM_LINK_KEYS[target]
    return f"DYNAMIC_{resolve_entity_type_id(target, resolve)}"


def resolve_entity_type_id(target: str, resolve: Resolver | None) -> int:
    """entityTypeId of a system type name or (through `resolve`) of a process code."""
    if target in SYSTEM_ENTITY_TYPES:
        return SYSTEM_ENTITY_TYPES[target]
    if resolve is None:
        raise ValueError(f"process {target!r} needs a resolver (process code -> entityTypeId)")
    return int(resolve(target))


def implied_flags(preset: str, integrations: dict[str, Any] | Integrations | None) -> dict[str, bool]:
    """Flags from the preset plus what integrations imply (before explicit overrides)."""
    flags = preset_flags(preset)
    integ = integrations.model_dump() if isinstance(integrations, Integrations) else dict(integrations or {})
    use = integ.get("use_in_crm_links")
    if isinstance(use, bool):
        flags["isUseInUserfieldEnabled"] = use
    if integ.get("tasks") is True or integ.get("calendar") is True:
        flags["isUseInUserfieldEnabled"] = True
    return flags


def normalize(raw: Any) -> Any:
    """Fill defaults that depend on position or other keys (idempotent, tolerant of bad input).

    Resolves `flags` (preset, then integrations, then explicit flags), numbers unsorted fields,
    options, funnels and stages in file order, and marks a single funnel as the default.
    """
    if not isinstance(raw, dict):
        return raw
    data = dict(raw)
    preset = data.get("preset", "scratch")
    flags_in = data.get("flags", {})
    if preset in PRESET_NAMES and isinstance(flags_in, dict):
        integ = data.get("integrations") if isinstance(data.get("integrations"), dict) else {}
        flags = implied_flags(preset, integ)
        flags.update({k: v for k, v in flags_in.items() if k in FLAG_NAMES})
        data["flags"] = flags
    data["fields"] = _number(data.get("fields"), 100, 100, _number_options)
    funnels = _number(data.get("funnels"), 500, 100, _number_stages)
    if isinstance(funnels, list) and len(funnels) == 1 and isinstance(funnels[0], dict):
        funnels[0].setdefault("default", True)
    data["funnels"] = funnels
    return data


def _number(items: Any, start: int, step: int, inner: Callable[[dict[str, Any]], None] | None = None) -> Any:
    if not isinstance(items, list):
        return [] if items is None else items
    out: list[Any] = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            item = dict(item)
            item.setdefault("sort", start + i * step)
            if inner:
                inner(item)
        out.append(item)
    return out


def _number_options(field: dict[str, Any]) -> None:
    if "options" in field:
        field["options"] = _number(field["options"], 10, 10)


def _number_stages(funnel: dict[str, Any]) -> None:
    if "stages" in funnel:
        funnel["stages"] = _number(funnel["stages"], 10, 10)


class Template(_Model):
    """One smart process: type flags, relations, fields, funnels, card and declared access."""

    code: ProcessCode
    title: Label
    renamed_from: ProcessCode | None = None
    language: Annotated[str, AfterValidator(_pattern(LANG_RE, "use a two-letter language code"))] = "ru"
    preset: Preset = "scratch"
    flags: dict[str, bool] = {}
    integrations: Integrations = Integrations()
    relations: Relations = Relations()
    fields: list[Field] = []
    funnels: list[Funnel] = []
    card_sections: list[CardSection] = []
    access: list[AccessRule] = []
    rules: list[Rule] = []  # stage rules with the parent (templates/rules.py)

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        return normalize(data)

    @model_validator(mode="after")
    def _bind_fields(self) -> Template:
        for f in self.fields:
            f._process = self.code
            f._language = self.language
        return self

    # --- lookups -----------------------------------------------------------------------------
    def field(self, code: str) -> Field:
        for f in self.fields:
            if f.code == code:
                return f
        raise KeyError(
            f"process {self.code!r} has no field {code!r}; fields: {[f.code for f in self.fields]}"
        )

    def funnel(self, code: str) -> Funnel:
        for fn in self.funnels:
            if fn.code == code:
                return fn
        raise KeyError(
            f"process {self.code!r} has no funnel {code!r}; funnels: {[f.code for f in self.funnels]}"
        )

    @property
    def default_funnel(self) -> Funnel | None:
        return next((fn for fn in self.funnels if fn.default), None)

    @property
    def title_text(self) -> str:
        """The process title in the template language (crm.type `title`)."""
        return text(self.title, self.language)

    def text(self, label: dict[str, str]) -> str:
        """A label in this template's language."""
        return text(label, self.language)

    @property
    def linked_user_fields(self) -> dict[str, bool]:
        keys = [k for keys in LINKED_USER_FIELDS.values() for k in keys]
        on = {k for name, ks in LINKED_USER_FIELDS.items() if getattr(self.integrations, name) for k in ks}
        return {k: k in on for k in keys}

    def access_checklist(self) -> list[str]:
        """Manual steps for CRM role permissions (REST cannot set them)."""
        lines = []
        for rule in self.access:
            perms = (
                ", ".join(f"{action}: {level}" for action, level in rule.permissions.items()) or "no access"
            )
            note = f" ({rule.note})" if rule.note else ""
            lines.append(
                f"CRM → Settings → Access permissions → role «{rule.role}» → «{self.title_text}»: "
                f"{perms}{note}"
            )
        return lines

