"""What each exported column is: its label in the template's language and the kind of its values.

Kinds drive the writers: XLSX writes real numbers, dates and percentages with number formats, CSV
and HTML format them for people, JSON lines keep the stored values. Labels come from the template
sync keeps in the store, else from the store's labels; columns b24sync adds
itself (id, stage name, times, parent titles, ...) are named here in Russian and English.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from connector.store.reader import StoreReader
from connector.templates import Template
from connector.templates.model import Field

Kind = Literal["text", "integer", "number", "money", "percent", "date", "datetime", "boolean", "employee"]
HEADER_MODES = ("labels", "codes")

# Column -> (ru, en) label, for the columns every process table (and the labels view) has.
BUILTIN_LABELS: dict[str, tuple[str, str]] = {
    "key": ("Локальный ключ", "Local key"),
    "id": ("ID", "ID"),
    "title": ("Название", "Title"),
    "funnel": ("Воронка (код)", "Funnel (code)"),
    "funnel_name": ("Воронка", "Funnel"),
    "stage": ("Стадия (код)", "Stage (code)"),
    "stage_name": ("Стадия", "Stage"),
    "assigned_by_id": ("Ответственный", "Responsible"),
    "created_time": ("Создан", "Created"),
    "updated_time": ("Изменён", "Updated"),
    "moved_time": ("Стадия изменена", "Stage changed"),
    "deleted": ("Удалён на портале", "Deleted on the portal"),
    "deleted_at": ("Когда удалён", "Deleted at"),
    "contact_ids": ("Контакты (ID)", "Contacts (IDs)"),
    "company_id": ("Компания (ID)", "Company (ID)"),
}
BUILTIN_KINDS: dict[str, Kind] = {
    "id": "integer", "assigned_by_id": "employee", "created_time": "datetime", "updated_time": "datetime",
    "moved_time": "datetime", "deleted": "boolean", "deleted_at": "datetime", "company_id": "integer",
}
SYSTEM_NAMES: dict[str, tuple[str, str]] = {
    "deal": ("Сделка", "Deal"), "lead": ("Лид", "Lead"), "contact": ("Контакт", "Contact"),
    "company": ("Компания", "Company"), "quote": ("Предложение", "Quote"),
    "invoice": ("Счёт", "Invoice"), "smart_invoice": ("Счёт", "Invoice"),
}
_WORDS = {  # (ru, en)
    "code": ("код", "code"), "currency": ("валюта", "currency"), "link": ("ссылка", "link"),
    "key": ("локальный ключ", "local key"),
}
_FIELD_KINDS: dict[str, Kind] = {
    "integer": "integer", "double": "number", "money": "money", "date": "date", "datetime": "datetime",
    "boolean": "boolean", "employee": "employee",
}


@dataclass(frozen=True)
class Column:
    """One exported column: its code, its header text, and what its values are."""

    code: str
    label: str
    kind: Kind = "text"
    multiple: bool = False  # the value is a JSON array of such values
    currency: str | None = None  # money: the column holding the currency code
    technical: bool = False  # a code or id next to a label: left out of the HTML export by default
    hidden: bool = False  # fetched only to format another column (a money column's currency)
    fixed_currency: str | None = None  # money in one currency for the whole column (report sums)

    def header(self, mode: str) -> str:
        """The header text for `--headers labels|codes`."""
        return self.code if mode == "codes" else self.label


def language(store: StoreReader, tbl: str, template: Template | None = None) -> str:
    """The language of the store's labels view (chosen when the store was set up, by default the
    template's), else the template's; 'ru' when neither says."""
    template = template if template is not None else store.template(tbl)
    return store.view_language(tbl) or (template.language if template is not None else "ru")


def word(key: str, lang: str) -> str:
    """A small word used in derived labels, in `lang` (Russian or English)."""
    ru, en = _WORDS[key]
    return ru if lang == "ru" else en


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0] if lang == "ru" else pair[1]


def _process_name(store: StoreReader, code: str, lang: str) -> str:
    if code in SYSTEM_NAMES:
        return _pick(SYSTEM_NAMES[code], lang)
    return store.labels(code, lang).get("process", code) or code


def describe(
    store: StoreReader, tbl: str, header: Sequence[str], template: Template | None = None
) -> list[Column]:
    """A Column for each exported column name, labelled in the template's language."""
    template = template if template is not None else store.template(tbl)
    lang = language(store, tbl, template)
    field_labels = {code: text for (_s, code), text in store.labels(tbl, lang).of_kind("field").items()}
    fields = {f.code: f for f in (template.fields if template is not None else [])}
    for code, field in fields.items():
        text = _label_text(field.label, lang)
        if text:
            field_labels[code] = text
    base = set(store.columns(tbl))
    currencies = {c.removesuffix("_currency") for c in base if c.endswith("_currency")}
    present = base | set(header)
    described = []
    for name in header:
        if name not in fields and f"{name}_label" in present and name in field_labels:
            # an option code next to its label column (no template in the store to say so)
            lang_code = f"{field_labels[name]} ({word('code', lang)})"
            described.append(Column(name, lang_code, technical=True))
        else:
            described.append(_column(name, lang, fields, field_labels, currencies, store))
    return _unique(described)


def _column(
    name: str, lang: str, fields: dict[str, Field], labels: dict[str, str], money: set[str],
    store: StoreReader,
) -> Column:
    field = fields.get(name)
    if field is not None:
        ftype, multiple = field.type, field.multiple
        label = labels.get(name, name)
        if ftype == "enumeration":
            return Column(name, f"{label} ({word('code', lang)})", technical=True)
        if ftype == "crm":
            return Column(name, f"{label} ({word('link', lang)})", technical=True)
        kind = _FIELD_KINDS.get(ftype, "text")
        currency = f"{name}_currency" if kind == "money" and not multiple else None
        return Column(name, label, kind, multiple=multiple, currency=currency)
    if name in BUILTIN_LABELS:
        technical = name in {"key", "funnel", "stage", "deleted", "deleted_at", "contact_ids", "company_id"}
        return Column(name, _pick(BUILTIN_LABELS[name], lang), BUILTIN_KINDS.get(name, "text"),
                      technical=technical)
    stem = name.rpartition("_")[0]
    if name.endswith("_label") and stem in labels:
        return Column(name, labels[stem])
    if name.endswith("_currency") and stem in labels:
        return Column(name, f"{labels[stem]}, {word('currency', lang)}", technical=True)
    if name.endswith("_title") and stem in labels:
        return Column(name, labels[stem])
    if name in money:  # an amount with a `<name>_currency` sibling, known without the template
        return Column(name, labels.get(name, name), "money", currency=f"{name}_currency")
    if name.startswith("parent_"):
        return _parent_column(name, lang, store)
    return Column(name, labels.get(name, name))


def _parent_column(name: str, lang: str, store: StoreReader) -> Column:
    target = name.removeprefix("parent_")
    if target.endswith("_title"):
        return Column(name, _process_name(store, target.removesuffix("_title"), lang))
    if target.endswith("_key"):
        process = _process_name(store, target.removesuffix("_key"), lang)
        return Column(name, f"{process} ({word('key', lang)})", technical=True)
    return Column(name, f"{_process_name(store, target, lang)} (ID)", "integer", technical=True)


def _label_text(label: dict[str, str], lang: str) -> str:
    if not label:
        return ""
    for key in (lang, "*", "ru", "en"):
        if label.get(key):
            return str(label[key])
    return str(next(iter(label.values()), ""))


def _unique(columns: list[Column]) -> list[Column]:
    """Make labels unique: a repeated label gets its column code in brackets."""
    seen: dict[str, int] = {}
    for c in columns:
        seen[c.label] = seen.get(c.label, 0) + 1
    return [
        replace(c, label=f"{c.label} [{c.code}]")
        if seen[c.label] > 1 else c
        for c in columns
    ]
