"""The reference for the compiled item reader: every column's converter called in turn."""

from __future__ import annotations

from typing import Any

from connector.crm.items import ItemTranslator


def per_column(tr: ItemTranslator, item: dict[str, Any]) -> list[Any]:
    """An item's store values column by column: absent, None or '' is NULL, else its converter's result."""
    out: list[Any] = [int(item["id"])]
    for key, convert in zip(tr._keys, tr._converters, strict=True):
        v = item.get(key)
        out.append(None if v is None or v == "" else convert(v))
    return out
