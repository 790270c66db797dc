"""The fast paths of a full pull give the same values as the plain per-field rules they replace.

- client: `ItemTranslator.to_values` (one compiled reader per map, which skips the converter of a
  multiple field holding `[]`) against converting every column in turn;
- emulator: the compiled `crm.item.list` renderer against assigning every output field in turn,
  in-process and over a real loopback socket.
Property tests (hypothesis) over the values a portal may send, empty lists and duplicates included.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from support.translation import per_column

from connector.crm.items import FieldMap, ItemTranslator, ProcessMap, TranslationError
from connector.emulator import Emulator, serve
from connector.emulator.common import require_type
from connector.emulator.items import _converter, _renderer, output_plan
from connector.emulator.itemschema import item_schema

PMAP = ProcessMap(
    code="job",
    entity_type_id=1036,
    type_id=9,
    funnels={"main": 7},
    stages={"main": {"NEW": "DT1036_7:NEW", "DONE": "DT1036_7:SUCCESS"}},
    fields=[
        FieldMap(code="note", type="string", uf_name="UF_CRM_9_NOTE"),
        FieldMap(code="km", type="integer", uf_name="UF_CRM_9_KM"),
        FieldMap(code="tags", type="string", multiple=True, uf_name="UF_CRM_9_TAGS"),
        FieldMap(code="sizes", type="integer", multiple=True, uf_name="UF_CRM_9_SIZES"),
        FieldMap(code="prices", type="money", multiple=True, uf_name="UF_CRM_9_PRICES"),
        FieldMap(code="price", type="money", uf_name="UF_CRM_9_PRICE"),
        FieldMap(code="seen", type="datetime", uf_name="UF_CRM_9_SEEN"),
    ],
    parents={"deal": 2},
    clients=True,
)

# values a portal (or a broken one) may put in any field: empty forms, lists, text, numbers
ANY_VALUE = st.one_of(
    st.none(),
    st.just(""),
    st.just([]),
    st.lists(st.one_of(st.none(), st.just(""), st.integers(-5, 5), st.sampled_from(["a", "7", "3|RUB"])),
             max_size=3),
    st.integers(-(2**40), 2**40),
    st.sampled_from(["x", "12", "100.5|RUB", "2026-01-02T06:04:05+03:00", "DT1036_7:NEW", "Y"]),
)


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except (TranslationError, ValueError, KeyError, TypeError) as exc:
        return "error", type(exc).__name__


@settings(max_examples=300, deadline=None)
@given(values=st.fixed_dictionaries({}, optional={k: ANY_VALUE for k in PMAP.select() if k != "id"}),
       item_id=st.integers(1, 10**6))
def test_reader_matches_per_column_rules(values: dict[str, Any], item_id: int) -> None:
    tr = ItemTranslator(PMAP)
    item = {"id": item_id, **values}
    assert outcome(tr.to_values, item) == outcome(per_column, tr, item)


def test_empty_lists_of_multiple_fields_are_null_and_full_ones_convert() -> None:
    tr = ItemTranslator(PMAP)
    row = tr.to_row({"id": 1, "UF_CRM_9_TAGS": [], "UF_CRM_9_SIZES": [3, 4], "contactIds": [],
                     "UF_CRM_9_PRICES": ["10|RUB"]})
    assert row["tags"] is None and row["contact_ids"] is None
    assert json.loads(row["sizes"]) == [3, 4]
    assert json.loads(row["prices"]) == [{"amount": 10.0, "currency": "RUB"}]


# ---- emulator --------------------------------------------------------------------------------


def reference_render(fields: list[tuple[str, str, Any, bool]], row: dict[str, Any],
                     entity_type_id: int | None) -> Any:
    """The plain rule: assign every output field in turn (a converter only on a non-None value)."""
    if not fields:
        return []
    out: dict[str, Any] = {}
    for key, upper, conv, multiple in fields:
        value = row.get(upper)
        if multiple:
            value = [conv(v) if conv is not None and v is not None else v for v in (value or [])]
        elif conv is not None and value is not None:
            value = conv(value)
        out[key] = value
    if entity_type_id is not None:
        out["entityTypeId"] = entity_type_id
    return out


def _portal() -> tuple[Emulator, int]:
    emu = Emulator(limits="off", clock="virtual")
    etid = emu.call("crm.type.add", {"fields": {"title": "Jobs"}})["result"]["type"]["entityTypeId"]
    return emu, etid


STORED = st.one_of(st.none(), st.just(""), st.just([]), st.integers(0, 2**31), st.booleans(),
                   st.lists(st.one_of(st.none(), st.integers(0, 9)), max_size=3), st.text(max_size=5))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), original=st.booleans(), use_select=st.booleans(), repeat=st.booleans())
def test_renderer_matches_field_by_field_assignment(data: Any, original: bool, use_select: bool,
                                                    repeat: bool) -> None:
    emu, etid = _portal()
    state = emu.state
    schema = item_schema(state, require_type(state, etid))
    specs = list(schema.fields)
    select = data.draw(st.lists(st.sampled_from(specs), max_size=8)) if use_select else None
    if select is not None and repeat and select:
        select = [*select, select[0]]  # a key named twice keeps its first place and its last value
    row = {s.upper: data.draw(STORED) for s in specs}
    row.update({s.upper: data.draw(st.one_of(st.none(), st.integers(0, 2**31))) for s in specs
                if s.kind == "datetime"})
    fields = [(s.key(original), s.upper, _converter(s, state, "http://x"), s.multiple)
              for s in (specs if select is None else select)]
    expected = reference_render(fields, row, etid if select is None else None)
    got = output_plan(schema, state, original, select, "http://x")(row)
    assert got == expected
    assert list(got) == list(expected)  # same key order, so the same JSON text


CONVERTERS = (None, lambda v: f"<{v}>", lambda v: None)  # none, a rewrite, one that empties


@settings(max_examples=300, deadline=None)
@given(
    spec=st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d'q", "e\\"]), st.sampled_from(["A", "B", "C"]),
                            st.integers(0, 2), st.booleans()), max_size=6),
    row=st.dictionaries(st.sampled_from(["A", "B", "C"]), STORED),
    etid=st.one_of(st.none(), st.integers(1, 5000)),
)
def test_compiled_renderer_matches_assignment_in_turn(spec: list[tuple[str, str, int, bool]],
                                                      row: dict[str, Any], etid: int | None) -> None:
    fields = [(key, upper, CONVERTERS[c], multiple) for key, upper, c, multiple in spec]
    expected = outcome(reference_render, fields, row, etid)
    got = outcome(_renderer(fields, etid), row)
    assert got == expected
    if got[0] == "ok":
        assert list(got[1]) == list(expected[1])  # same key order, so the same JSON text


def test_listed_items_over_loopback_are_the_items_read_one_by_one() -> None:
    emu, etid = _portal()
    ids = emu.seed_items(etid, 120)
    server = serve(emu, host="127.0.0.1", port=0)
    try:
        url = server.webhook_url
        listed = requests.post(f"{url}crm.item.list", json={"entityTypeId": etid, "start": -1,
                                                            "filter": {">id": ids[59]}}, timeout=30).json()
        one = requests.post(f"{url}crm.item.get", json={"entityTypeId": etid, "id": ids[60]},
                            timeout=30).json()
    finally:
        server.stop()
    items = listed["result"]["items"]
    assert [i["id"] for i in items] == ids[60:110]  # a keyset page: 50 rows after the given id
    assert items[0] == one["result"]["item"]


# ---- bench/compare.py: the scan's end is not a failure ---------------------------------------


def _compare_module() -> Any:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "compare.py"
    spec = importlib.util.spec_from_file_location("bench_compare", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_counts_the_refused_page_after_a_short_page_as_the_scans_end() -> None:
    from urllib.parse import urlsplit

    import responses

    from connector.emulator.server import route
    from connector.rest import Client

    compare = _compare_module()
    emu, etid = _portal()
    emu.seed_items(etid, 120)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        client = Client.from_webhook(emu.register(rsps))
        rows = list(client.iter_list("crm.item.list", {"entityTypeId": etid}))
        sent = [c.request for c in rsps.calls]
    assert len(rows) == 120 and sent[-1].url.rstrip("/").endswith("batch")  # a head page, then one batch
    parts = urlsplit(sent[-1].url)
    body = sent[-1].body
    # the same (read-only) request answered again, as the counting proxy keeps it
    answer = route(emu, "POST", parts.path, parts.query, body if isinstance(body, bytes) else body.encode(),
                   sent[-1].headers.get("Content-Type", ""), f"{parts.scheme}://{parts.netloc}").body.decode()
    params = compare.decode_params(body if isinstance(body, bytes) else body.encode(), "application/json")
    if not params.get("cmd"):  # form-encoded
        params = compare.decode_params(body if isinstance(body, bytes) else body.encode(), "")
    # server-behaviour.md §1 (keyset paging): page p2 holds 20 rows, p3 filters on p2's 50th id
    assert compare.batch_failures(params, answer.encode()) == ([], 1)
    # a refusal of any other kind (or after a full page) stays a failure
    data = json.loads(answer)
    label = next(iter(data["result"]["result_error"]))
    data["result"]["result_error"][label]["error"] = "OPERATION_TIME_LIMIT"
    assert compare.batch_failures(params, json.dumps(data).encode()) == (["OPERATION_TIME_LIMIT"], 0)
    data["result"]["result_error"][label]["error"] = "INVALID_ARG_VALUE"
    labels = compare._command_labels(params)
    before = labels[labels.index(label) - 1]
    data["result"]["result"][before]["items"] = [{"id": i} for i in range(50)]
    assert compare.batch_failures(params, json.dumps(data).encode()) == (["INVALID_ARG_VALUE"], 0)
