"""Process tables: columns from a template, change-log triggers, the `<code>_labels` view."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from connector.constants import SYSTEM_ENTITY_TYPES
from connector.store.errors import StoreError
from connector.store.sqltext import COLUMN_NAME, NOW_SQL, PROCESS_CODE, ident, literal
from connector.store.values import column_types

if TYPE_CHECKING:
    from connector.templates import Template

KEY_COLUMN = '"key" TEXT PRIMARY KEY NOT NULL ON CONFLICT REPLACE DEFAULT (lower(hex(randomblob(16))))'
BUILTIN_COLUMNS: dict[str, str] = {
    "key": "TEXT",
    "id": "INTEGER UNIQUE",
    "title": "TEXT",
    "funnel": "TEXT",
    "stage": "TEXT",
    "assigned_by_id": "INTEGER",
    "created_time": "TEXT",
    "updated_time": "TEXT",
    "moved_time": "TEXT",
    "deleted": "INTEGER NOT NULL DEFAULT 0",
    "deleted_at": "TEXT",
}
CLIENT_FLAGS = ("isClientEnabled",)
VIEW_EXTRA = ("funnel_name", "stage_name")
INSERT_DEFAULTS = {"deleted": "0"}


def check_code(code: str) -> str:
    """Return a valid process code or raise naming the rule."""
    if not isinstance(code, str) or not PROCESS_CODE.match(code):
        raise StoreError(f"process code {code!r} must match ^[a-z][a-z0-9_]{{0,39}}$ (lowercase snake)")
    return code


def clients_enabled(template: Template) -> bool:
    """True when the template's type flags turn on client fields (contact/company)."""
    flags: dict[str, Any] = dict(getattr(template, "flags", None) or {})
    return any(bool(flags.get(name)) for name in CLIENT_FLAGS)


def parent_targets(template: Template) -> list[str]:
    """Codes of parent relation targets ("deal", a process code, ...), in template order."""
    relations = getattr(template, "relations", None)
    parents = getattr(relations, "parents", None) or []
    targets: list[str] = []
    for ref in parents:
        target = getattr(ref, "target", ref)
        if target not in targets:
            targets.append(target)
    return targets


def desired_columns(template: Template) -> dict[str, str]:
    """Every column the template asks for, name -> SQL type, in table order."""
    code = check_code(template.code)
    columns = dict(BUILTIN_COLUMNS)
    owner: dict[str, str] = {name: "a built-in column" for name in columns}

    def add(name: str, sql_type: str, who: str) -> None:
        if not COLUMN_NAME.match(name):
            raise StoreError(f"{who} of process {code!r} gives column name {name!r}; use lowercase snake")
        if name in owner:
            raise StoreError(
                f"{who} of process {code!r} needs column {name!r}, already used by {owner[name]}"
            )
        columns[name] = sql_type
        owner[name] = who

    for field in template.fields:
        for name, sql_type in column_types(field).items():
            add(name, sql_type, f"field {field.code!r}")
    for target in parent_targets(template):
        add(f"parent_{target}", "INTEGER", f"parent relation {target!r}")
        if target not in SYSTEM_ENTITY_TYPES:
            add(f"parent_{target}_key", "TEXT", f"parent relation {target!r}")
    if clients_enabled(template):
        add("contact_ids", "TEXT", "client fields")
        add("company_id", "INTEGER", "client fields")
    for field in template.fields:
        if field.type == "enumeration":
            view_col = f"{field.code}_label"
            if view_col in owner:
                raise StoreError(
                    f"column {view_col!r} of process {code!r} clashes with the option-label column "
                    f"of field {field.code!r} in view {code}_labels; rename one of them"
                )
    for name in VIEW_EXTRA:
        if name in owner:
            raise StoreError(
                f"column {name!r} of process {code!r} clashes with view {code}_labels; rename it"
            )
    return columns


def label_rows(template: Template) -> list[tuple[str, str, str, str, str, str]]:
    """Rows for `_labels`: (tbl, kind, scope, code, lang, label) from the template."""
    tbl = template.code
    rows: list[tuple[str, str, str, str, str, str]] = []

    def put(kind: str, scope: str, code: str, value: Any) -> None:
        for lang, text in _label_dict(value).items():
            rows.append((tbl, kind, scope, code, lang, text))

    put("process", "", tbl, getattr(template, "title", None))
    for field in template.fields:
        put("field", "", field.code, getattr(field, "label", None))
        for option in getattr(field, "options", None) or []:
            put("option", field.code, option.code, getattr(option, "label", None))
    for funnel in getattr(template, "funnels", None) or []:
        put("funnel", "", funnel.code, getattr(funnel, "name", None))
        for stage in getattr(funnel, "stages", None) or []:
            put("stage", funnel.code, stage.code, getattr(stage, "name", None))
    return sorted(set(rows))


def _label_dict(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        return {"*": value}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if v is not None}
    raise StoreError(f"label {value!r} must be a string or a {{language: text}} table")


def default_funnel(template: Template) -> str | None:
    """Code of the template's default funnel (the first one when none is marked)."""
    funnels = list(getattr(template, "funnels", None) or [])
    for funnel in funnels:
        if getattr(funnel, "default", False):
            return str(funnel.code)
    return str(funnels[0].code) if funnels else None


FunnelRow = tuple[str, str, int, int, int]  # (tbl, code, position, sort, is_default)
StageRow = tuple[str, str, str, int, int, str]  # (tbl, funnel, code, position, sort, semantics)


def funnel_rows(template: Template) -> list[FunnelRow]:
    """Rows for `_funnels`: each funnel's place in the template, its declared sort, and the default one."""
    default = default_funnel(template)
    return [
        (template.code, funnel.code, position, funnel.sort, int(funnel.code == default))
        for position, funnel in enumerate(template.funnels)
    ]


def stage_rows(template: Template) -> list[StageRow]:
    """Rows for `_stages`: each stage's place, declared sort and meaning (process, success, failure)."""
    return [
        (template.code, funnel.code, stage.code, position, stage.sort, stage.semantics)
        for funnel in template.funnels
        for position, stage in enumerate(funnel.stages)
    ]


def _balanced(parts: list[str], op: str) -> str:
    """Join with a binary operator as a balanced tree, so wide tables stay under SQLite's depth limit."""
    if len(parts) <= 8:
        return "(" + f" {op} ".join(parts) + ")"
    mid = len(parts) // 2
    return f"({_balanced(parts[:mid], op)} {op} {_balanced(parts[mid:], op)})"


def _changed_list(columns: Iterable[str], test: str, defaults: dict[str, str] | None = None) -> str:
    """SQL building the JSON array of column names for which `test` (with {c} and {d}) holds."""
    parts = [
        f"CASE WHEN {test.format(c=ident(c), d=(defaults or {}).get(c, 'NULL'))} "
        f"THEN {literal(json.dumps(c) + ',')} ELSE '' END"
        for c in columns
    ]
    return "'[' || rtrim(" + _balanced(parts, "||") + ", ',') || ']'" if parts else "'[]'"


def trigger_sql(tbl: str, columns: list[str]) -> dict[str, str]:
    """CREATE TRIGGER statements that write local changes to `_changes`."""
    guard = "(SELECT flag FROM _applying) = 0"
    # An INSERT records the columns given a value other than the column default (the key is implied).
    insert_cols = _changed_list([c for c in columns if c != "key"], "NEW.{c} IS NOT {d}", INSERT_DEFAULTS)
    update_cols = _changed_list(columns, "OLD.{c} IS NOT NEW.{c}")
    any_change = _balanced([f"OLD.{ident(c)} IS NOT NEW.{ident(c)}" for c in columns], "OR")
    log = "INSERT INTO _changes (tbl, key, op, columns, at, status, attempts, portal_id) VALUES"
    t, q = ident(tbl), literal(tbl)
    return {
        f"_log_{tbl}_insert": (
            f"CREATE TRIGGER {ident('_log_' + tbl + '_insert')} AFTER INSERT ON {t} WHEN {guard} BEGIN "
            f"{log} ({q}, NEW.\"key\", 'I', {insert_cols}, {NOW_SQL}, 'pending', 0, NEW.\"id\"); END"
        ),
        f"_log_{tbl}_update": (
            f"CREATE TRIGGER {ident('_log_' + tbl + '_update')} AFTER UPDATE ON {t} "
            f"WHEN {guard} AND {any_change} BEGIN "
            f"{log} ({q}, NEW.\"key\", 'U', {update_cols}, {NOW_SQL}, 'pending', 0, NEW.\"id\"); END"
        ),
        f"_log_{tbl}_delete": (
            f"CREATE TRIGGER {ident('_log_' + tbl + '_delete')} AFTER DELETE ON {t} WHEN {guard} BEGIN "
            f"{log} ({q}, OLD.\"key\", 'D', '[]', {NOW_SQL}, 'pending', 0, OLD.\"id\"); END"
        ),
    }


def guard_sql(tbl: str) -> dict[str, str]:
    """BEFORE triggers that refuse, with a clear message, local writes sync could not carry out.

    Only writes by other SQLite clients are checked (the engine's run with `_applying.flag` = 1).
    """
    guard = "(SELECT flag FROM _applying) = 0"
    t = ident(tbl)

    def why(text: str) -> str:
        return literal(f"b24sync: {text}")

    on_insert = [
        (
            'NEW."deleted" IS NOT 0',
            why(f"INSERT INTO {tbl} with deleted set is refused: deleted is set by sync"),
        ),
        (
            f'EXISTS (SELECT 1 FROM {t} x WHERE x."key" = NEW."key")',
            why(
                f"INSERT INTO {tbl} with a key already in the table is refused (it would replace that "
                "row and create a second portal item); UPDATE the row instead"
            ),
        ),
    ]
    on_update = [
        (
            'OLD."deleted" = 1',
            why(
                f"this {tbl} row is a tombstone (its item was deleted on the portal), so an edit would never "
                "reach the portal; INSERT a new row to create the item again"
            ),
        ),
        (
            'NEW."deleted" IS NOT OLD."deleted"',
            why(
                f"column deleted of {tbl} is set by sync only; to delete an item use "
                f"DELETE FROM {tbl} WHERE ..."
            ),
        ),
        ('NEW."key" IS NOT OLD."key"', why(f"column key of {tbl} identifies the row and cannot change")),
        ('NEW."id" IS NOT OLD."id"', why(f"column id of {tbl} is given by the portal and cannot be set")),
    ]
    for col in ("created_time", "updated_time", "moved_time", "deleted_at"):
        on_update.append(
            (
                f"NEW.{ident(col)} IS NOT OLD.{ident(col)}",
                why(f"column {col} of {tbl} is read-only (set by the portal or by sync)"),
            )
        )

    def body(cases: list[tuple[str, str]]) -> str:
        return "SELECT CASE " + " ".join(f"WHEN {c} THEN RAISE(ABORT, {m})" for c, m in cases) + " END;"

    return {
        f"_guard_{tbl}_insert": (
            f"CREATE TRIGGER {ident('_guard_' + tbl + '_insert')} BEFORE INSERT ON {t} WHEN {guard} "
            f"BEGIN {body(on_insert)} END"
        ),
        f"_guard_{tbl}_update": (
            f"CREATE TRIGGER {ident('_guard_' + tbl + '_update')} BEFORE UPDATE ON {t} WHEN {guard} "
            f"BEGIN {body(on_update)} END"
        ),
    }


def _label_lookup(tbl: str, kind: str, scope_sql: str, code_sql: str, lang: str) -> str:
    return (
        f"(SELECT l.label FROM _labels l WHERE l.tbl = {literal(tbl)} AND l.kind = {literal(kind)} "
        f"AND l.scope = {scope_sql} AND l.code = {code_sql} "
        f"ORDER BY l.lang = {literal(lang)} DESC, l.lang = '*' DESC, l.lang = 'en' DESC, l.lang LIMIT 1)"
    )


def view_sql(template: Template, lang: str) -> str:
    """CREATE VIEW `<code>_labels`: the rows plus funnel_name, stage_name and option labels."""
    tbl = template.code
    funnel = default_funnel(template)
    funnel_sql = f"COALESCE(t.funnel, {literal(funnel)})" if funnel else "t.funnel"
    empty = "''"
    extra = [
        f"{_label_lookup(tbl, 'funnel', empty, funnel_sql, lang)} AS funnel_name",
        f"{_label_lookup(tbl, 'stage', funnel_sql, 't.stage', lang)} AS stage_name",
    ]
    for field in template.fields:
        if field.type != "enumeration":
            continue
        col = f"t.{ident(field.code)}"
        scope = literal(field.code)
        if field.multiple:
            one = f"COALESCE({_label_lookup(tbl, 'option', scope, 'j.value', lang)}, j.value)"
            expr = (
                f"CASE WHEN json_valid({col}) THEN "
                f"(SELECT json_group_array({one}) FROM json_each({col}) j) END"
            )
        else:
            expr = _label_lookup(tbl, "option", scope, col, lang)
        extra.append(f"{expr} AS {ident(field.code + '_label')}")
    return (
        f"CREATE VIEW {ident(tbl + '_labels')} AS SELECT t.*, " + ", ".join(extra) + f" FROM {ident(tbl)} t"
    )


def _table_columns(conn: sqlite3.Connection, tbl: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({ident(tbl)})")]


def _create_table_sql(tbl: str, columns: dict[str, str]) -> str:
    parts = [KEY_COLUMN] + [f"{ident(name)} {sql}" for name, sql in columns.items() if name != "key"]
    return f"CREATE TABLE {ident(tbl)} (" + ", ".join(parts) + ")"


def _signature(columns: list[str], triggers: dict[str, str], view: str, labels: list[Any], lang: str,
               stages: list[Any]) -> str:
    """A digest of everything ensure_process writes (a store made before `_stages` existed differs)."""
    blob = json.dumps([columns, sorted(triggers.items()), view, labels, lang, stages], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class ProcessPlan:
    """What ensure_process would do for one template against the current file."""

    def __init__(self, conn: sqlite3.Connection, template: Template, lang: str) -> None:
        self.tbl = check_code(template.code)
        self.lang = lang
        self.desired = desired_columns(template)
        self.existing = _table_columns(conn, self.tbl)
        self.missing = {n: t for n, t in self.desired.items() if n not in self.existing}
        final = self.existing + list(self.missing) if self.existing else list(self.desired)
        self.triggers = {**trigger_sql(self.tbl, final), **guard_sql(self.tbl)}
        self.view = view_sql(template, lang)
        self.labels = label_rows(template)
        self.funnels = funnel_rows(template)
        self.stages = stage_rows(template)
        order = [self.funnels, self.stages]
        self.signature = _signature(final, self.triggers, self.view, self.labels, lang, order)

    def is_current(self, conn: sqlite3.Connection) -> bool:
        """True when the table, triggers, view and labels already match the template."""
        if not self.existing or self.missing:
            return False
        row = conn.execute("SELECT signature FROM _processes WHERE tbl = ?", (self.tbl,)).fetchone()
        if not row or row[0] != self.signature:
            return False
        names = {
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE tbl_name IN (?, ?)", (self.tbl, self.tbl + "_labels")
            )
        }
        return set(self.triggers) <= names and self.tbl + "_labels" in names

    def apply(self, conn: sqlite3.Connection) -> list[str]:
        """Create or evolve the table (never dropping data); return the columns added."""
        for name in self.triggers:
            conn.execute(f"DROP TRIGGER IF EXISTS {ident(name)}")
        conn.execute(f"DROP VIEW IF EXISTS {ident(self.tbl + '_labels')}")
        added: list[str] = []
        if not self.existing:
            conn.execute(_create_table_sql(self.tbl, self.desired))
            added = list(self.desired)
        else:
            for name, sql_type in self.missing.items():
                plain = sql_type.replace(" UNIQUE", "")  # ALTER TABLE cannot add a UNIQUE column
                conn.execute(f"ALTER TABLE {ident(self.tbl)} ADD COLUMN {ident(name)} {plain}")
                if plain != sql_type:
                    conn.execute(
                        f"CREATE UNIQUE INDEX {ident(self.tbl + '_' + name)} "
                        f"ON {ident(self.tbl)} ({ident(name)})"
                    )
                added.append(name)
        for sql in self.triggers.values():
            conn.execute(sql)
        conn.execute(self.view)
        conn.execute("DELETE FROM _labels WHERE tbl = ?", (self.tbl,))
        conn.executemany(
            "INSERT INTO _labels (tbl, kind, scope, code, lang, label) VALUES (?, ?, ?, ?, ?, ?)",
            self.labels,
        )
        conn.execute("DELETE FROM _funnels WHERE tbl = ?", (self.tbl,))
        conn.executemany(
            "INSERT INTO _funnels (tbl, code, position, sort, is_default) VALUES (?, ?, ?, ?, ?)",
            self.funnels,
        )
        conn.execute("DELETE FROM _stages WHERE tbl = ?", (self.tbl,))
        conn.executemany(
            "INSERT INTO _stages (tbl, funnel, code, position, sort, semantics) VALUES (?, ?, ?, ?, ?, ?)",
            self.stages,
        )
        conn.execute(
            f"INSERT INTO _processes (tbl, signature, lang, updated_at) VALUES (?, ?, ?, {NOW_SQL}) "
            "ON CONFLICT (tbl) DO UPDATE SET signature = excluded.signature, lang = excluded.lang, "
            "updated_at = excluded.updated_at",
            (self.tbl, self.signature, self.lang),
        )
        return added
