"""Reading every row of a list method without COUNT, up to 2,500 rows per HTTP request.

Each page is `start=-1` (no COUNT), `order {id: ASC}` and `filter {">id": last id}`. The first
request reads one page with a plain call (a short incremental scan costs one small request);
later requests chain `pages_per_request` pages inside one `batch`, page k+1 filtering on
`$result[p{k}][items][49][id]` (`$result[p{k}][49][ID]` for plain-array methods).

Batch k+1 leaves as soon as its id is known: read from batch k's raw answer before it is decoded,
or from the decoded answer before its pages are checked and handed on (`ahead.BatchChain`).

When page k is short or empty, the reference of page k+1 points at a row that does not exist;
the portal then stops descending at the last key it found and substitutes an array, so pages
after k hold junk or errors. The scan therefore stops at the first short page of a batch and
never looks at what follows it; `halt` stops the portal early when the junk is an error.

A few list methods take no `start`, `order` or `>id` filter and answer every row at once
(`crm.category.list` by `Category::listAction`, `crm.status.list` by `CCrmStatus::GetList`
without navigation). For them (`UNPAGED_METHODS`) the scan is one plain call with the caller's
params; should a portal page them anyway (a `next` in the answer), `start=next` is followed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from connector.constants import BATCH_MAX, PAGE_SIZE

from .ahead import BatchChain
from .encoding import EncodedParams
from .errors import TransportError, UnexpectedAnswer
from .references import BatchRef, batch_ref

if TYPE_CHECKING:
    from .client import Client, Command

ROWS_KEYS: dict[str, str] = {
    "crm.item.list": "items",
    "crm.type.list": "types",
    "crm.category.list": "categories",
    "crm.automatedsolution.list": "automatedSolutions",
    "crm.stagehistory.list": "items",
    "userfieldconfig.list": "fields",
}


UNPAGED_METHODS = frozenset({"crm.category.list", "crm.status.list", "crm.status.entity.items"})

# Methods whose row ids are JSON integers (doc fixtures crm.item.list.json, crm.type.list.json);
# others may send decimal strings (userfieldconfig.list.json: "id": "7095").
INTEGER_ID_METHODS = frozenset({"crm.item.list", "crm.type.list"})


def default_rows_key(method: str) -> str | None:
    """Where a list method puts its rows: `result.items`, `result.types`, ... or None (bare array)."""
    return ROWS_KEYS.get(method.lower())


def iter_list_pages(client: Client, method: str, params: Mapping[str, Any] | None, rows_key: str | None,
                    id_key: str | None, pages_per_request: int, *, batch_first: bool = False,
                    on_time: Callable[[dict[str, Any]], None] | None = None) -> Iterator[Any]:
    """The generator behind `Client.iter_list`.

    `batch_first`: the first request is already a chained batch (a scan expected to be long, or one
    that must cost a single request up to 2,500 rows). `on_time`: called with each response's `time`
    object (for a batch, the outer request's) before that response's rows are yielded.
    """
    if not 1 <= pages_per_request <= BATCH_MAX:
        raise ValueError(f"pages_per_request must be 1..{BATCH_MAX}; got {pages_per_request}")
    key = default_rows_key(method) if rows_key == "auto" else rows_key
    if method.lower() in UNPAGED_METHODS:
        yield from _iter_unpaged(client, method, dict(params or {}), key)
        return
    ident = id_key or ("id" if key else "ID")
    base = _scan_params(method, dict(params or {}), ident)
    caller_filter = base.pop("filter", None) or {}
    last: Any = 0
    while not batch_first or pages_per_request == 1:  # plain calls: the first page, or every page
        answer = client.call(method, _page(base, caller_filter, ident, last))
        if on_time is not None:
            on_time(answer.time)
        rows = page_rows(answer.result, key, method)
        check_page_ids(rows, ident, method, "p0")
        _check_continues(rows, ident, last, method, "p0")
        yield from rows
        if len(rows) < PAGE_SIZE:
            return
        last = rows[-1][ident]
        if pages_per_request > 1:
            break
    pages = pages_per_request
    chained: dict[str, Command] = {}  # pages 1..n-1 are the same in every batch: encoded once
    for index in range(1, pages):
        chained[f"p{index}"] = (method, EncodedParams(_page(base, caller_filter, ident,
                                                            _reference(f"p{index - 1}", key, ident))))

    def build(after: Any) -> dict[str, Command]:
        return {"p0": (method, _page(base, caller_filter, ident, after)), **chained}

    chain = BatchChain(client, build, f"p{pages - 1}", key, ident)
    try:
        while True:
            batch = chain.take(last)
            if on_time is not None:
                on_time(batch.time)
            chain.send_after(batch, last)  # the next batch travels while this one is checked and handed on
            for index in range(pages):
                label = f"p{index}"
                if label in batch.errors:
                    raise batch.errors[label]
                if label not in batch.results:
                    text = f"chained page {label} is missing from the batch answer"
                    raise TransportError("BAD_BATCH", text, 200, method)
                rows = page_rows(batch.results[label], key, method)
                check_page_ids(rows, ident, method, label)
                _check_continues(rows, ident, last, method, label)
                yield from rows
                if len(rows) < PAGE_SIZE:
                    return
                last = rows[-1][ident]
    finally:
        chain.close()


def _iter_unpaged(client: Client, method: str, params: dict[str, Any], key: str | None) -> Iterator[Any]:
    """One plain call; `start=next` only if the portal pages the answer after all."""
    if "start" in params:
        raise ValueError(f"iter_list({method}) reads every row itself; do not pass 'start'")
    start = 0
    while True:
        page = client.call(method, {**params, "start": start} if start else params)
        yield from page_rows(page.result, key, method)
        if page.next is None:
            return
        if page.next <= start:
            raise TransportError("BROKEN_CHAIN", f"next={page.next} does not move past start={start}", 200,
                                 method)
        start = page.next


def _scan_params(method: str, params: dict[str, Any], ident: str) -> dict[str, Any]:
    if "start" in params:
        raise ValueError(f"iter_list({method}) pages by keyset with start=-1; do not pass 'start'")
    order = params.pop("order", None)
    if order not in (None, {ident: "ASC"}, {ident: "asc"}):
        raise ValueError(f"iter_list({method}) orders by {{{ident!r}: 'ASC'}} (keyset paging); "
                         f"got order={order!r}; sort the rows after reading them")
    select = params.get("select")
    if select is not None:
        if not isinstance(select, list | tuple):
            raise ValueError(f"iter_list({method}): select must be a list of field names; got {select!r}")
        if ident not in select and "*" not in select:
            params["select"] = [*select, ident]
    filter_ = params.get("filter")
    if filter_ is not None and not isinstance(filter_, Mapping):
        raise ValueError(f"iter_list({method}): filter must be a mapping; got {type(filter_).__name__}")
    return params


def _page(base: dict[str, Any], caller_filter: Mapping[str, Any], ident: str, after: Any) -> dict[str, Any]:
    """Params of one page: the caller's filter ANDed with `>id`."""
    keyset = f">{ident}"
    if keyset in caller_filter:
        free = next(str(n) for n in range(len(caller_filter) + 1) if str(n) not in caller_filter)
        filter_: dict[str, Any] = {free: dict(caller_filter), keyset: after}
    else:
        filter_ = {**caller_filter, keyset: after}
    return {**base, "filter": filter_, "order": {ident: "ASC"}, "start": -1}


def _reference(label: str, key: str | None, ident: str) -> BatchRef:
    path = (key, PAGE_SIZE - 1, ident) if key else (PAGE_SIZE - 1, ident)
    return batch_ref(label, *path)


def page_rows(result: Any, key: str | None, method: str) -> list[Any]:
    """The rows of one page: `result[key]`, or `result` itself for plain-array methods.

    A page that is null, or whose rows are null or not a list, is refused (`UnexpectedAnswer`):
    read as "no rows" it would end the scan early and a pull would skip the rest.
    """
    if result is None:
        raise UnexpectedAnswer("BAD_PAGE", "result is null, expected a page of rows", 200, method)
    if key is not None:
        if isinstance(result, Mapping) and key in result:
            return _rows_of(result[key], f"result.{key}", method)
        shape = sorted(result) if isinstance(result, Mapping) else json_kind(result)
        raise UnexpectedAnswer("BAD_PAGE", f"expected rows in result.{key}, got {shape}; pass rows_key=", 200,
                               method)
    if isinstance(result, list):
        return _rows_of(result, "result", method)
    if isinstance(result, Mapping) and all(str(k).isdecimal() for k in result):
        return _rows_of(result, "result", method)
    text = f"expected a plain array of rows, got {json_kind(result)}; pass rows_key= for wrapped results"
    raise UnexpectedAnswer("BAD_PAGE", text, 200, method)


def _rows_of(rows: Any, where: str, method: str) -> list[Any]:
    """A list of row objects from a JSON array or a PHP map (`{"0": row, ...}`)."""
    if isinstance(rows, Mapping):
        rows = list(rows.values())
    if not isinstance(rows, list):
        text = f"{where} is {json_kind(rows)}, expected a list of rows"
        raise UnexpectedAnswer("BAD_PAGE", text, 200, method)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            text = f"{where}[{index}] is {json_kind(row)}, expected an object"
            raise UnexpectedAnswer("BAD_PAGE", text, 200, method)
    return rows


def check_page_ids(rows: list[Any], ident: str, method: str, label: str) -> None:
    """Every row of a keyset page has a whole-number id, in strictly ascending order (no duplicates)."""
    integers_only = method.lower() in INTEGER_ID_METHODS
    previous: int | None = None
    for index, row in enumerate(rows):
        raw = row.get(ident) if isinstance(row, Mapping) else None
        number = _whole_id(raw, integers_only)
        if number is None:
            allowed = "an integer" if integers_only else "an integer or a string of digits"
            raise UnexpectedAnswer("BAD_ID", f"page {label} row {index}: {ident}={raw!r} ({json_kind(raw)}), "
                                   f"expected {allowed}", 200, method)
        if previous is not None and number <= previous:
            what = "appears twice" if number == previous else f"comes after {previous}"
            raise UnexpectedAnswer("DUPLICATE_ID" if number == previous else "BAD_ORDER",
                                   f"page {label}: {ident} {number} {what} (rows must be unique, by {ident} "
                                   "ascending)", 200, method)
        previous = number


def _whole_id(raw: Any, integers_only: bool) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw if raw > 0 else None
    if not integers_only and isinstance(raw, str) and raw.isascii() and raw.isdecimal() and raw[0] != "0":
        return int(raw)
    return None


def json_kind(value: Any) -> str:
    """How an unexpected JSON value is named in an error: `null`, `a string`, `a number`, ..."""
    if value is None:
        return "null"
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "a list",
             dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _order_key(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _check_continues(rows: list[Any], ident: str, last: Any, method: str, label: str) -> None:
    """Each page must start after the previous page's last id, else the keyset chain broke."""
    if not rows:
        return
    if not isinstance(rows[0], Mapping) or ident not in rows[0] or not isinstance(rows[-1], Mapping) \
            or ident not in rows[-1]:
        raise TransportError("BAD_PAGE", f"rows of page {label} lack the id key {ident!r}; pass id_key=", 200,
                             method)
    try:
        broken = last != 0 and _order_key(rows[0][ident]) <= _order_key(last)
    except TypeError:
        broken = False
    if broken:
        raise UnexpectedAnswer("BROKEN_CHAIN", f"page {label} starts at id {rows[0][ident]!r}, not after "
                             f"{last!r}: the portal ignored the >{ident} filter or the order", 200, method)
