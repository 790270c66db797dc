"""What a template asks for, in the portal's vocabulary (flag names, user types, labels).

This is the only module that reads `connector.templates` objects; the planner works on these
small dataclasses, so a template-model change touches one file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.constants import SYSTEM_ENTITY_TYPES
from connector.crm.schema import TYPE_FLAGS
from connector.templates.model import Field, Resolver, Template, field_marker

LANGS = ("ru", "en")


def text(value: Any, lang: str = "ru") -> str:
    """A single string from a label that may be a language map."""
    if isinstance(value, dict):
        for key in (lang, *LANGS):
            if value.get(key):
                return str(value[key])
        return next((str(v) for v in value.values() if v), "")
    return "" if value is None else str(value)


def labels(value: Any) -> dict[str, str]:
    """A language map from a label that may be a plain string."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if v}
    return {"ru": str(value)} if value else {}


@dataclass
class DesiredOption:
    code: str
    label: str
    sort: int
    default: bool = False
    renamed_from: str | None = None


@dataclass
class DesiredField:
    code: str
    user_type_id: str
    uf_suffix: str
    xml_id: str = ""
    old_xml_id: str | None = None
    multiple: bool = False
    mandatory: bool = False
    label: dict[str, str] = field(default_factory=dict)
    help: dict[str, str] = field(default_factory=dict)
    sort: int = 100
    show_filter: bool = False
    show_filter_code: str = "N"
    show_in_list: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    options: list[DesiredOption] = field(default_factory=list)
    renamed_from: str | None = None
    targets: list[str] = field(default_factory=list)
    pending_targets: list[str] = field(default_factory=list)


@dataclass
class DesiredStage:
    code: str
    name: str
    semantics: str
    color: str
    sort: int
    renamed_from: str | None = None


@dataclass
class DesiredFunnel:
    code: str
    name: str
    default: bool
    sort: int
    stages: list[DesiredStage] = field(default_factory=list)
    renamed_from: str | None = None

    def anchors(self) -> dict[str, str]:
        """Template stage code → system stage code (first process → NEW, success, first failure)."""
        out: dict[str, str] = {}
        for semantics, system in (("process", "NEW"), ("success", "SUCCESS"), ("failure", "FAIL")):
            first = next((s for s in self.stages if s.semantics == semantics), None)
            if first is not None:
                out[first.code] = system
        return out


@dataclass
class DesiredSection:
    code: str
    title: str
    fields: list[str]


@dataclass
class DesiredType:
    code: str
    title: str
    flags: dict[str, bool]
    linked_user_fields: dict[str, bool]
    parents: list[str]
    children: list[str]
    fields: list[DesiredField]
    funnels: list[DesiredFunnel]
    sections: list[DesiredSection]
    access: list[str]
    renamed_from: str | None = None
    source: str = ""

    def field(self, code: str) -> DesiredField | None:
        """The field with this code."""
        return next((f for f in self.fields if f.code == code), None)


def relation_target(target: str) -> int | str:
    """A relation target: a system type's entityTypeId, or a process code."""
    return SYSTEM_ENTITY_TYPES.get(target.lower(), target)


def from_template(t: Template, resolve: Resolver | None = None) -> DesiredType:
    """Translate a `connector.templates.Template` into a `DesiredType`.

    `resolve(process_code) -> entityTypeId` is used for crm-link field settings; a link to a
    process not yet on the portal is left out of `settings` and marked in `DesiredField.targets`.
    """
    flags = {k: bool(v) for k, v in t.flags.items() if k in TYPE_FLAGS}
    return DesiredType(
        code=t.code,
        title=t.title_text,
        flags=flags,
        linked_user_fields=dict(t.linked_user_fields),
        parents=[r.target for r in t.relations.parents],
        children=[r.target for r in t.relations.children],
        fields=[_field(t, f, resolve) for f in t.fields],
        funnels=_funnels(t),
        sections=[
            DesiredSection(code=s.code, title=t.text(s.title), fields=list(s.fields)) for s in t.card_sections
        ],
        access=t.access_checklist(),
        renamed_from=getattr(t, "renamed_from", None),
    )


def _field(t: Template, f: Field, resolve: Resolver | None) -> DesiredField:
    try:
        settings = f.settings(resolve)
        pending: list[str] = []
    except (ValueError, KeyError, LookupError):
        settings = f.settings(lambda code: 0)
        settings = {k: v for k, v in settings.items() if k != "DYNAMIC_0"}
        pending = [x for x in f.targets if x not in SYSTEM_ENTITY_TYPES]
    options = [
        DesiredOption(
            code=o.code,
            label=t.text(o.label),
            sort=o.sort,
            default=o.default,
            renamed_from=getattr(o, "renamed_from", None),
        )
        for o in f.options
    ]
    return DesiredField(
        code=f.code,
        user_type_id=f.type,
        uf_suffix=f.uf_suffix,
        xml_id=f.xml_id,
        old_xml_id=field_marker(t.code, f.renamed_from) if f.renamed_from else None,
        multiple=f.multiple,
        mandatory=f.required,
        label=dict(f.label),
        help=dict(f.help),
        sort=f.sort,
        show_filter=f.show_in_filter,
        show_filter_code=f.show_filter_code,
        show_in_list=f.show_in_list,
        settings=settings,
        options=options,
        renamed_from=f.renamed_from,
        targets=list(f.targets),
        pending_targets=pending,
    )


def _funnels(t: Template) -> list[DesiredFunnel]:
    return [
        DesiredFunnel(
            code=fn.code,
            name=t.text(fn.name),
            default=fn.default,
            sort=fn.sort,
            renamed_from=fn.renamed_from,
            stages=[
                DesiredStage(
                    code=s.code,
                    name=t.text(s.name),
                    semantics=s.semantics,
                    color=s.color,
                    sort=s.sort,
                    renamed_from=s.renamed_from,
                )
                for s in fn.stages
            ],
        )
        for fn in t.funnels
    ]
