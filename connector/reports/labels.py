"""Fast label columns for exports: the `<code>_labels` view's names, looked up in memory.

The view resolves every label with a correlated sub-select that sorts `_labels` rows by language,
once per row and column (~2 µs each, most of an export's time). For an export the labels of one
process are read once into dicts instead. They are applied to each fetched chunk column-wise (C-level
`map` over `dict.get`, no Python code per row), and are also registered as deterministic SQL
functions so a `--where` filter on a label column still works in SQL. Columns the fast path cannot
reproduce exactly (multiple-choice fields, a store that has not recorded its default funnel or that
keeps no template) keep the view's own expression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from connector.store.reader import ProcessCatalog, SqlFunction, StoreReader
from connector.store.sqltext import ident
from connector.templates import Template


@dataclass(frozen=True)
class FastLabel:
    """One label column: a dict from the value(s) of some columns of the row to the label."""

    name: str
    lookup: dict[Any, str | None]
    inputs: tuple[str, ...]  # column names of the row

    def input_sql(self, alias: str) -> list[str]:
        """The input columns as SQL, prefixed with `alias` (e.g. `s.`)."""
        return [alias + ident(c) for c in self.inputs]

    def function(self) -> Callable[..., str | None]:
        """The lookup as an SQL function of the inputs."""
        if len(self.inputs) == 1:
            return self.lookup.get
        lookup = self.lookup

        def label(*args: Any) -> str | None:
            return lookup.get(args)

        return label

    def column(self, inputs: Sequence[Sequence[Any]]) -> list[str | None]:
        """The labels of a chunk whose input columns are `inputs` (C-level loops only)."""
        if len(inputs) == 1:
            return list(map(self.lookup.get, inputs[0]))
        return list(map(self.lookup.get, zip(*inputs, strict=True)))


def fast_labels(store: StoreReader, catalog: ProcessCatalog, template: Template | None) -> list[FastLabel]:
    """The view's label columns that dict lookups reproduce exactly: funnel and stage names when the
    store recorded the default funnel, and single-choice option labels of the template's fields; none
    when the store does not record which language the view shows."""
    lang = catalog.language
    if lang is None or catalog.view is None:
        return []
    labels = store.labels(catalog.code, lang)
    base, view = set(catalog.columns), set(catalog.view_columns)
    out: list[FastLabel] = []
    default = catalog.default_funnel
    if default is not None and {"funnel", "stage"} <= base and {"funnel_name", "stage_name"} <= view:
        funnels: dict[Any, str | None] = {c: lb for (_s, c), lb in labels.of_kind("funnel").items()}
        stages: dict[Any, str | None] = dict(labels.of_kind("stage"))
        if default:  # a row without a funnel is labelled as in the default funnel
            funnels[None] = funnels.get(default)
            stages.update({(None, c): lb for (s, c), lb in list(stages.items()) if s == default})
        out.append(FastLabel("funnel_name", funnels, ("funnel",)))
        out.append(FastLabel("stage_name", stages, ("funnel", "stage")))
    options: dict[str, dict[Any, str | None]] = {}
    for (scope, code), label in labels.of_kind("option").items():
        options.setdefault(scope, {})[code] = label
    single = {f.code for f in (template.fields if template is not None else [])
              if f.type == "enumeration" and not f.multiple}
    for field, codes in sorted(options.items()):
        column = f"{field}_label"
        if field in base and column in view and field in single:
            out.append(FastLabel(column, codes, (field,)))
    return out


def functions(labels: Sequence[FastLabel], alias: str) -> tuple[dict[str, SqlFunction], dict[str, str]]:
    """SQL functions for the labels (to register on the store), and column name -> SQL calling each."""
    registered: dict[str, SqlFunction] = {}
    exprs = {}
    for i, label in enumerate(labels):
        name = f"b24_label_{i}"
        registered[name] = (len(label.inputs), label.function())
        exprs[label.name] = f"{name}({', '.join(label.input_sql(alias))})"
    return registered, exprs
