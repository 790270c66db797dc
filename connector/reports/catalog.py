"""Funnels and stages of a process, in order, with names and (best-known) semantics."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from connector.reports.readonly import column_names, table_names

_SUCCESS = re.compile(r"(^|_)(SUCCESS|WON|WIN|DONE|HIRED|SIGNED|CLOSED_WON|COMPLETED?)($|_)")
_FAILURE = re.compile(
    r"(^|_)(FAIL|FAILED|FAILURE|LOSE|LOST|REJECT|REJECTED|CANCEL|CANCELLED|CANCELED|JUNK)($|_)"
)


def guess_semantics(stage_code: str) -> str:
    """'success' | 'failure' | 'process' from a stage code (the store keeps no semantics)."""
    code = stage_code.upper()
    if _FAILURE.search(code):
        return "failure"
    if _SUCCESS.search(code):
        return "success"
    return "process"


@dataclass
class StageInfo:
    """One stage of one funnel."""

    code: str
    name: str
    semantics: str


@dataclass
class FunnelInfo:
    """One funnel with its stages in order."""

    code: str
    name: str
    stages: list[StageInfo] = field(default_factory=list)

    def stage(self, code: str) -> StageInfo:
        """The stage with this code, added at the end (unknown name) if the catalog lacked it."""
        for stage in self.stages:
            if stage.code == code:
                return stage
        info = StageInfo(code=code, name=code, semantics=guess_semantics(code))
        self.stages.append(info)
        return info


StageRows = list[tuple[str, str, str]]


def _labels(conn: sqlite3.Connection, tbl: str, lang: str) -> tuple[dict[str, str], StageRows]:
    """Funnel names and (funnel, stage, name) rows in template order, from the store's `_labels` table."""
    if "_labels" not in table_names(conn):
        return {}, []
    if not {"tbl", "kind", "scope", "code", "lang", "label"} <= set(column_names(conn, "_labels")):
        return {}, []
    rows = conn.execute(
        "SELECT kind, scope, code, lang, label FROM _labels WHERE tbl = ? AND kind IN ('funnel', 'stage') "
        "ORDER BY rowid",
        (tbl,),
    ).fetchall()
    langs = {r[3] for r in rows}
    chosen = lang if lang in langs else (sorted(langs)[0] if langs else lang)
    funnels = {code: label for kind, _s, code, lg, label in rows if kind == "funnel" and lg == chosen}
    stages = [(scope, code, name) for kind, scope, code, lg, name in rows if kind == "stage" and lg == chosen]
    return funnels, stages


def from_template(template: Any, lang: str = "ru") -> dict[str, FunnelInfo]:
    """Funnels and stages in template order, with the template's names and semantics."""
    catalog: dict[str, FunnelInfo] = {}
    for funnel in getattr(template, "funnels", None) or []:
        info = FunnelInfo(code=funnel.code, name=_text(funnel.name, lang) or funnel.code)
        for stage in funnel.stages:
            info.stages.append(StageInfo(stage.code, _text(stage.name, lang) or stage.code, stage.semantics))
        catalog[funnel.code] = info
    return catalog


def stored_template(conn: sqlite3.Connection, tbl: str) -> Any:
    """The process template sync remembered in the store (`_sync_templates`), as attribute objects."""
    if "_sync_templates" not in table_names(conn):
        return None
    row = conn.execute("SELECT data FROM _sync_templates WHERE code = ?", (tbl,)).fetchone()
    if not row:
        return None
    try:
        return json.loads(row[0], object_hook=lambda d: SimpleNamespace(**d))
    except (ValueError, TypeError):
        return None


def _text(label: Any, lang: str) -> str:
    if isinstance(label, SimpleNamespace):
        label = vars(label)
    if isinstance(label, dict):
        for key in (lang, "ru", "en", "*"):
            if label.get(key):
                return str(label[key])
        return str(next(iter(label.values()), ""))
    return str(label or "")


def default_funnel_code(conn: sqlite3.Connection, tbl: str, template: Any = None) -> str:
    """The funnel of items stored without one: the template's default (or first) funnel, else the one
    the `<tbl>_labels` view assumes; '' when the process has none."""
    from connector.reports.labels import default_funnel, view_sql

    template = template if template is not None else stored_template(conn, tbl)
    funnels = getattr(template, "funnels", None) or []
    if funnels:
        marked = [f for f in funnels if getattr(f, "default", False)]
        return str((marked or funnels)[0].code)
    return default_funnel(view_sql(conn, f"{tbl}_labels")) or ""


def from_idmap(conn: sqlite3.Connection, tbl: str, lang: str) -> dict[str, FunnelInfo]:
    """Funnels and stages in portal order with their semantics, as deploy recorded them in `_idmap`
    (the latest portal deployed to); names from `_labels` when it has them."""
    if "_idmap" not in table_names(conn):
        return {}
    latest = conn.execute(
        "SELECT portal FROM _idmap WHERE kind = 'stage' AND code LIKE ? ESCAPE '\\' "
        "ORDER BY updated_at DESC LIMIT 1", (tbl.replace("_", "\\_") + ".%",)).fetchone()
    if latest is None:
        return {}
    funnel_names, stage_rows = _labels(conn, tbl, lang)
    stage_names = {(f, code): name for f, code, name in stage_rows}
    rows = conn.execute(
        "SELECT kind, code, extra FROM _idmap WHERE portal = ? AND kind IN ('funnel', 'stage') "
        "AND code LIKE ? ESCAPE '\\'", (latest[0], tbl.replace("_", "\\_") + ".%")).fetchall()
    funnels: list[tuple[float, FunnelInfo]] = []
    stages: list[tuple[float, str, StageInfo]] = []
    for kind, code, extra_text in rows:
        try:
            extra = json.loads(extra_text or "{}")
        except ValueError:
            extra = {}
        parts = code.split(".")
        sort = float(extra.get("sort") or 0)
        if kind == "funnel" and len(parts) == 2:
            name = funnel_names.get(parts[1]) or str(extra.get("name") or parts[1])
            funnels.append((sort, FunnelInfo(code=parts[1], name=name)))
        elif kind == "stage" and len(parts) == 3:
            name = stage_names.get((parts[1], parts[2])) or str(extra.get("name") or parts[2])
            semantics = str(extra.get("semantics") or guess_semantics(parts[2]))
            stages.append((sort, parts[1], StageInfo(parts[2], name, semantics)))
    catalog = {info.code: info for _sort, info in sorted(funnels, key=lambda f: f[0])}
    for _sort, funnel, stage in sorted(stages, key=lambda s: s[0]):
        catalog.setdefault(funnel, FunnelInfo(code=funnel, name=funnel_names.get(funnel) or funnel))
        catalog[funnel].stages.append(stage)
    return catalog


def load_catalog(
    conn: sqlite3.Connection, tbl: str, lang: str = "ru", template: Any = None
) -> dict[str, FunnelInfo]:
    """Funnels (by code) of a process with stages in order.

    With the process template (given, or the one sync keeps in the store): its order, names and
    semantics. Else as deployed (`_idmap`). Else names from the store's `_labels`, order from the
    stage history (earlier stages first), semantics guessed from codes.
    """
    template = template if template is not None else stored_template(conn, tbl)
    default = default_funnel_code(conn, tbl, template)
    catalog = from_template(template, lang) if template is not None else from_idmap(conn, tbl, lang)
    if catalog:
        for funnel, stage in _seen_stages(conn, tbl, default):
            catalog.setdefault(funnel, FunnelInfo(code=funnel, name=funnel or "—")).stage(stage)
        return catalog
    funnel_names, stage_rows = _labels(conn, tbl, lang)
    stage_names = {(f, code): name for f, code, name in stage_rows}
    catalog = {code: FunnelInfo(code=code, name=name) for code, name in funnel_names.items()}
    positions = _positions(conn, tbl, default)
    ordered = sorted(positions, key=lambda k: sum(positions[k]) / len(positions[k]))
    ordered += [(f, code) for f, code, _n in stage_rows if (f, code) not in positions]
    view_names = _view_names(conn, tbl, default)
    for funnel, stage in ordered:
        name = stage_names.get((funnel, stage)) or view_names.get((funnel, stage)) or stage
        default_name = funnel_names.get(funnel) or view_names.get((funnel, None)) or funnel or "—"
        info = catalog.setdefault(funnel, FunnelInfo(code=funnel, name=default_name))
        info.stages.append(StageInfo(stage, name, guess_semantics(stage)))
    rank = {"process": 0, "success": 1, "failure": 2}
    for info in catalog.values():  # final stages go last, successes before failures
        info.stages.sort(key=lambda s: rank.get(s.semantics, 0))
    return catalog


def _view_names(conn: sqlite3.Connection, tbl: str, default: str = "") -> dict[tuple[str, str | None], str]:
    """Funnel and stage names shown by the `<code>_labels` view, for stages missing from `_labels`."""
    view = f"{tbl}_labels"
    names: dict[tuple[str, str | None], str] = {}
    if view in table_names(conn) and {"funnel_name", "stage_name"} <= set(column_names(conn, view)):
        for funnel, fname, stage, sname in conn.execute(
            f'SELECT DISTINCT funnel, funnel_name, stage, stage_name FROM "{view}"'
        ):
            if sname:
                names[(funnel or default, stage)] = sname
            if fname:
                names[(funnel or default, None)] = fname
    return names


def _seen_stages(conn: sqlite3.Connection, tbl: str, default: str = "") -> list[tuple[str, str]]:
    return list(_positions(conn, tbl, default))


def _positions(conn: sqlite3.Connection, tbl: str, default: str = "") -> dict[tuple[str, str], list[int]]:
    """Positions of each (funnel, stage) in items' stage histories; current stages without history last."""
    positions: dict[tuple[str, str], list[int]] = defaultdict(list)
    if "_stage_history" in table_names(conn):
        last_key, index = None, 0
        for key, funnel, stage in conn.execute(
            "SELECT key, funnel, to_stage FROM _stage_history WHERE tbl = ? ORDER BY key, at, id", (tbl,)
        ):
            index = 0 if key != last_key else index + 1
            last_key = key
            positions[(funnel or default, stage)].append(index)
    for funnel, stage in conn.execute(f'SELECT DISTINCT funnel, stage FROM "{tbl}" WHERE stage IS NOT NULL'):
        positions.setdefault((funnel or default, stage), [10_000])
    return positions


def names(conn: sqlite3.Connection, tbl: str, lang: str = "ru") -> tuple[str, dict[str, str]]:
    """The process's display name (its code when unnamed) and its field labels by field code."""
    from connector.reports.labels import best_labels, view_language

    if "_labels" not in table_names(conn):
        return tbl, {}
    labels = best_labels(conn, tbl, view_language(conn, tbl) or lang)
    fields = {code: label for (kind, _s, code), label in labels.items() if kind == "field"}
    return labels.get(("process", "", tbl), tbl), fields
