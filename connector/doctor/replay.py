"""Holding the emulator to a recorded portal: replay a `--record` folder and list every disagreement.

The recorded requests of the sandbox (setup, probes, teardown; not the read-only checks nor the
removal of an earlier run's leftovers, which depend on the rest of the portal) are sent in order
to a fresh in-process emulator with the recorded portal's offset and clock. The portal's ids
(type id, entityTypeId, funnels, fields, options, items) differ from the emulator's: they are
learned pairwise from each answer and translated in the next requests.

Each answer is compared on what matters, by one rule:
- the HTTP status, and the error code of an error;
- the shape: keys of every object and JSON types of values (null matches any type; int and float
  are both numbers; lists compare their first elements), `time` objects excepted;
- values: `title`, `stageId`, `categoryId`, `xmlId`, `begindate`, custom field values, list
  lengths and `total`/`next`, and whether `updatedTime` still equals `createdTime`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connector.emulator import Emulator
from connector.emulator.auth import webhook_auth
from connector.emulator.clock import VirtualClock
from connector.emulator.php import parse_query
from connector.rest.encoding import php_query

from .record import load

SKIPPED_LABELS = frozenset({"checks", "leftovers"})
VALUE_KEYS = frozenset({"title", "stageId", "categoryId", "xmlId", "begindate", "error"})
TIME_KEYS = frozenset({"time", "result_time"})
_CONTEXT = {"types": "type", "type": "type", "items": "item", "item": "item", "categories": "category",
            "category": "category", "fields": "field", "field": "field", "enum": "option"}
_ID_PARAM = (("crm.type.", "type"), ("crm.item.", "item"), ("crm.category.", "category"),
             ("userfieldconfig.", "field"))
_UF_KEY = re.compile(r"^(UF_|ufCrm)")


class IdMap:
    """Portal id -> emulator id, per kind (type, etid, category, field, option, item)."""

    def __init__(self) -> None:
        self.kinds: dict[str, dict[int, int]] = {}

    def learn(self, recorded: Any, actual: Any, parent: str = "") -> None:
        """Walk a recorded answer and the emulator's side by side; pair the ids found at the same place."""
        if isinstance(recorded, dict) and isinstance(actual, dict):
            for key, value in recorded.items():
                if key in actual:
                    self._pair(key, parent, value, actual[key])
                    self.learn(value, actual[key], key)
        elif isinstance(recorded, list) and isinstance(actual, list):
            for left, right in zip(recorded, actual, strict=False):
                self.learn(left, right, parent)

    def _pair(self, key: str, parent: str, left: Any, right: Any) -> None:
        kind = {"entityTypeId": "etid", "categoryId": "category"}.get(key)
        if key == "id":
            kind = _CONTEXT.get(parent)
        elif key == "ID" and parent == "items":  # crm.item.fields: enumeration `items: [{ID, VALUE}]`
            kind = "option"
        old, new = _as_int(left), _as_int(right)
        if kind and old is not None and new is not None:
            self.kinds.setdefault(kind, {})[old] = new

    def number(self, kind: str, value: Any) -> Any:
        number = _as_int(value)
        if number is None or number not in self.kinds.get(kind, {}):
            return value
        mapped = self.kinds[kind][number]
        return mapped if isinstance(value, int) else str(mapped)

    def text(self, value: str) -> str:
        """Ids inside names (UF_CRM_<type>_, ufCrm<type>, CRM_<type>, DYNAMIC_<etid>_STAGE_<cat>, DT...:)."""
        pairs: list[tuple[str, str]] = []
        for a, b in self.kinds.get("type", {}).items():
            pairs += [(f"UF_CRM_{a}_", f"UF_CRM_{b}_"), (f"ufCrm_{a}_", f"ufCrm_{b}_"),
                      (f"ufCrm{a}", f"ufCrm{b}")]
            if value == f"CRM_{a}":
                return f"CRM_{b}"
        for e, f in self.kinds.get("etid", {}).items():
            for c, d in self.kinds.get("category", {}).items():
                pairs += [(f"DYNAMIC_{e}_STAGE_{c}", f"DYNAMIC_{f}_STAGE_{d}"),
                          (f"DT{e}_{c}:", f"DT{f}_{d}:")]
        for old, new in sorted(pairs, key=lambda p: -len(p[0])):
            if old in value:
                return value.replace(old, new)
        return value

    def request(self, method: str, params: Any, key: str = "") -> Any:
        """A recorded request with the portal's ids replaced by the emulator's."""
        if isinstance(params, dict):
            return {self.text(str(k)): self.request(method, v, str(k)) for k, v in params.items()}
        if isinstance(params, list):
            return [self.request(method, v, key) for v in params]
        if key == "entityTypeId":
            return self.number("etid", params)
        if key == "categoryId":
            return self.number("category", params)
        if key in ("id", ">id"):
            kind = next((k for prefix, k in _ID_PARAM if method.startswith(prefix)), "")
            return self.number(kind, params)
        if _UF_KEY.match(key) and _as_int(params) is not None:
            return self.number("option", params)
        if isinstance(params, str):
            return self.text(params)
        return params

    def command(self, cmd: str) -> str:
        """One batch `method?query` entry, translated."""
        parts = urlsplit(cmd)
        method = parts.path.strip()
        query = php_query(self.request(method.lower(), parse_query(parts.query)))
        return f"{method}?{query}" if query else method


def replay(folder: Path) -> list[str]:
    """Replay a recorded folder against a fresh emulator; the disagreements, one line each (none = agrees)."""
    manifest, exchanges = load(folder)
    offset = str(manifest.get("offset") or "+00:00")
    clock = VirtualClock(start=float(manifest.get("server_start") or 1_767_225_600.0))
    emu = Emulator(limits="off", clock=clock, tz=offset)
    auth = webhook_auth(emu.webhook_user)
    ids = IdMap()
    problems: list[str] = []
    for exchange in exchanges:
        if exchange.get("label") in SKIPPED_LABELS:
            continue
        if exchange["method"] == "wait":
            clock.advance(float(exchange["seconds"]))
            continue
        method = exchange["method"].lower().removesuffix(".json")
        params = ids.request(method, exchange.get("request") or {})
        if method == "batch" and isinstance(params.get("cmd"), dict):
            params["cmd"] = {label: ids.command(str(c)) for label, c in exchange["request"]["cmd"].items()}
        reply = emu.handle(method, params, auth, http=True)
        where = f"{exchange['seq']:04d} {method} ({exchange['label']})"
        problems += [f"{where}: {p}" for p in differences(exchange, reply.status, reply.body, ids)]
        ids.learn(exchange.get("response"), reply.body)
    return problems


def differences(exchange: dict[str, Any], status: int, body: Any, ids: IdMap) -> list[str]:
    """What differs between a recorded exchange and the emulator's answer to the same request."""
    if exchange.get("status") != status:
        return [f"HTTP {exchange.get('status')} on the portal, {status} on the emulator"]
    found: list[str] = []
    _compare(exchange.get("response"), body, "", ids, found)
    return found


def _compare(left: Any, right: Any, path: str, ids: IdMap, found: list[str]) -> None:
    if left is None or right is None:
        if path.rsplit(".", 1)[-1] in VALUE_KEYS and (left is None) != (right is None):
            found.append(f"{path}: portal {left!r}, emulator {right!r}")
        return
    if _kind(left) != _kind(right):
        found.append(f"{path}: portal has {_kind(left)}, emulator {_kind(right)}")
        return
    if isinstance(left, dict):
        _compare_objects(left, right, path, ids, found)
    elif isinstance(left, list):
        if path.endswith((".items", ".types", ".categories", ".fields")) and len(left) != len(right):
            found.append(f"{path}: {len(left)} rows on the portal, {len(right)} on the emulator")
        if left and right:
            _compare(left[0], right[0], f"{path}[0]", ids, found)
    else:
        key = path.rsplit(".", 1)[-1]
        if (key in VALUE_KEYS or _UF_KEY.match(key)) and _translated(left, key, ids) != right:
            found.append(f"{path}: portal {left!r}, emulator {right!r}")


def _compare_objects(left: dict[str, Any], right: dict[str, Any], path: str, ids: IdMap,
                     found: list[str]) -> None:
    translated = {ids.text(str(k)): v for k, v in left.items() if k not in TIME_KEYS}
    wanted = {k: v for k, v in right.items() if k not in TIME_KEYS}
    for key in sorted(set(translated) - set(wanted)):
        found.append(f"{path}.{key}: only on the portal")
    for key in sorted(set(wanted) - set(translated)):
        found.append(f"{path}.{key}: only on the emulator")
    for key in ("total", "next"):
        if path == "" and translated.get(key) != wanted.get(key):
            found.append(f"{key}: portal {translated.get(key)!r}, emulator {wanted.get(key)!r}")
    if "updatedTime" in translated and "createdTime" in translated and "updatedTime" in wanted:
        before = translated["updatedTime"] == translated["createdTime"]
        after = wanted["updatedTime"] == wanted.get("createdTime")
        if before != after:
            found.append(f"{path}.updatedTime: {'equals' if before else 'differs from'} createdTime on the "
                         f"portal, {'equals' if after else 'differs from'} it on the emulator")
    for key in sorted(set(translated) & set(wanted)):
        _compare(translated[key], wanted[key], f"{path}.{key}" if path else key, ids, found)


def _translated(value: Any, key: str, ids: IdMap) -> Any:
    if key == "categoryId":
        return ids.number("category", value)
    if _UF_KEY.match(key) and isinstance(value, int):
        return ids.number("option", value)
    return ids.text(value) if isinstance(value, str) else value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdecimal():
        return int(value)
    return None
