"""Wire encoding of call parameters.

Two encodings, one value rule:

* Top-level calls travel as JSON bodies (`json_params`). JSON keeps numbers, strings, lists and
  nested objects as they are.
* Sub-commands of `batch` travel as `method?query` strings in PHP bracket form (`php_query`),
  the form PHP's `parse_str` reads: `filter[>=updatedTime]=2025-01-01T00:00:00+03:00`,
  `filter[@id][0]=1&filter[@id][1]=2`, `filter[0][logic]=OR&filter[0][0][stageId]=X`.

The value rule (the same in both encodings):

==================  =====================  ===========================================
Python value        PHP bracket query      JSON body
==================  =====================  ===========================================
``True``/``False``  ``Y`` / ``N``          ``"Y"`` / ``"N"``
``None``            ``key=`` (empty)       ``null`` (PHP reads both as empty)
``[]`` / ``{}``     ``key=`` (empty)       ``[]`` / ``{}``
date / datetime     ISO 8601               ISO 8601
int / float / str   ``str(value)``         unchanged
list / tuple        ``key[0]=..&key[1]=..``  array
dict                ``key[sub]=..``        object
==================  =====================  ===========================================

Booleans become ``Y``/``N`` because Bitrix24 reads only ``true``, ``"true"``, ``"y"``, ``"Y"`` as
true and everything else as false or empty; ``Y``/``N`` is what the portal itself returns.
`scalar_text` holds this wire rule for both encodings: `rest` sits below `crm`, whose
`naming.yn`/`from_yn` are the domain's Y/N; a test keeps the two in step.
Filters on boolean *custom* fields need ``1``/``0``: pass integers for those.
Operator prefixes (``>=``, ``@``, ``!@``, ``%``, ...) are part of the key and are percent-encoded
like any other key character. A `BatchRef` value (``$result[label][items][49][id]``, see
`references`) is written unencoded so the portal substitutes it; any other text is percent-encoded,
which does not protect it from substitution (PHP decodes first): the client keeps user text that the
server would rewrite out of batches altogether (`references.has_user_reference`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from .references import BatchRef, has_user_reference

REFERENCE = re.compile(r"^\$(result|next|total|time|error)(\[[^\[\]\s&=#]+\])+$", re.IGNORECASE)

_KEY_SAFE = "[]"
_VALUE_SAFE = ""


def scalar_text(value: Any, path: str) -> str:
    """One scalar value as PHP query text, by the rule in the module docstring."""
    if value is True:
        return "Y"
    if value is False:
        return "N"
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"parameter {path or '(root)'}: cannot encode {type(value).__name__}; allowed are "
                    "str, int, float, Decimal, bool, None, date/datetime, list, tuple and dict")


def flatten(params: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(bracket key, text) pairs for a nested parameter mapping, in insertion order."""
    for key, value in params.items():
        yield from _flatten_value(_key(key, ""), value)


def _key(key: Any, path: str) -> str:
    text = str(key)
    if not text or "[" in text or "]" in text:
        where = f" under {path}" if path else ""
        raise ValueError(f"parameter key {text!r}{where} is not allowed: keys must be non-empty and "
                         "must not contain '[' or ']'")
    return text


def _flatten_value(path: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        if not value:
            yield path, ""
        for key, item in value.items():
            yield from _flatten_value(f"{path}[{_key(key, path)}]", item)
    elif isinstance(value, list | tuple):
        if not value:
            yield path, ""
        for index, item in enumerate(value):
            yield from _flatten_value(f"{path}[{index}]", item)
    else:
        yield path, scalar_text(value, path)


def php_query(params: Mapping[str, Any]) -> str:
    """Encode params as a PHP bracket query string (for batch `cmd` entries and GET URLs)."""
    parts = []
    for key, text in flatten(params):
        deliberate = isinstance(text, BatchRef) and REFERENCE.match(text)
        encoded = text if deliberate else quote(text, safe=_VALUE_SAFE)
        parts.append(f"{quote(key, safe=_KEY_SAFE)}={encoded}")
    return "&".join(parts)


def json_params(value: Any, path: str = "") -> Any:
    """Params ready for a JSON body: bools -> Y/N, dates -> ISO, tuples -> lists."""
    if isinstance(value, Mapping):
        return {str(k): json_params(v, f"{path}[{k}]" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_params(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bool):
        return scalar_text(value, path)
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, Decimal):
        return str(value)
    return scalar_text(value, path)


class EncodedParams:
    """A batch command's params encoded once, for a command sent unchanged in many batches.

    A keyset scan sends the same 49 chained pages (`filter[>id]=$result[p{k}][items][49][id]`) in every
    batch; encoding them once saves most of a batch's encoding (12 ms of 50 commands with a 27-field
    select). `params` must not change afterwards: the text was made from them.
    """

    __slots__ = ("params", "query", "user_reference")

    def __init__(self, params: Mapping[str, Any]) -> None:
        if not isinstance(params, Mapping):
            raise ValueError(f"EncodedParams takes a mapping of params; got {type(params).__name__}")
        self.params = params
        self.query = php_query(params)
        self.user_reference = has_user_reference(params)

    def __repr__(self) -> str:
        return f"EncodedParams({self.query[:80]!r})"


def command(method: str, params: Mapping[str, Any] | EncodedParams | None) -> str:
    """One batch `cmd` entry: `method?query`."""
    query = params.query if isinstance(params, EncodedParams) else php_query(params or {})
    return f"{method}?{query}" if query else method
