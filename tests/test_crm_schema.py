"""connector.crm.schema: parsing REST rows and the batched writer with `$result` references."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.crm import schema
from connector.crm.naming import uf_suffix
from connector.crm.schema import Command, Ref, SchemaWriteError, run_commands
from connector.rest.models import BatchResult


class RecordingClient:
    """Answers batches like the server: `$result[...]` text is resolved against earlier results."""

    def __init__(self, fail: str | None = None) -> None:
        self.batches: list[dict[str, Any]] = []
        self.fail = fail

    def batch(self, commands: dict[str, Any], halt: bool = False) -> BatchResult:
        self.batches.append(commands)
        out = BatchResult()
        for n, (key, (method, params)) in enumerate(commands.items()):
            if method == self.fail:
                out.errors[key] = f"boom in {method}"
                break
            out.results[key] = {"type": {"id": 10 + n, "entityTypeId": 1032 + 2 * n}, "params": params}
        return out


def test_refs_inside_one_batch_become_result_references() -> None:
    client = RecordingClient()
    cmds = [
        Command("t", "crm.type.add", {"fields": {"title": "A"}}),
        Command(
            "f",
            "userfieldconfig.add",
            {
                "field": {
                    "entityId": Ref("t", ("type", "id"), "CRM_{}"),
                    "etid": Ref("t", ("type", "entityTypeId")),
                }
            },
        ),
    ]
    run_commands(client, cmds)
    sent = client.batches[0]
    assert list(sent) == ["c0", "c1"]
    assert sent["c1"][1]["field"] == {
        "entityId": "CRM_$result[c0][type][id]",
        "etid": "$result[c0][type][entityTypeId]",
    }


def test_refs_across_batches_are_resolved_to_values() -> None:
    client = RecordingClient()
    cmds = [Command("t", "crm.type.add", {})] + [
        Command(f"f{i}", "userfieldconfig.add", {"entityId": Ref("t", ("type", "id"), "CRM_{}")})
        for i in range(60)
    ]
    run = run_commands(client, cmds)
    assert len(client.batches) == 2 and run.requests == 2
    assert client.batches[1]["c55"][1] == {"entityId": "CRM_10"}
    assert client.batches[0]["c5"][1] == {"entityId": "CRM_$result[c0][type][id]"}


def test_a_failed_command_names_itself() -> None:
    client = RecordingClient(fail="crm.category.add")
    with pytest.raises(SchemaWriteError, match="create funnel x.y failed: boom"):
        run_commands(
            client,
            [
                Command("a", "crm.type.add", {}),
                Command("b", "crm.category.add", {}, note="create funnel x.y"),
            ],
        )


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=130))
def test_pack_keeps_order_and_limit(n: int) -> None:
    cmds = [Command(str(i), "m", {}) for i in range(n)]
    batches = schema.pack(cmds)
    assert all(0 < len(b) <= 50 for b in batches)
    assert [c.key for b in batches for c in b] == [str(i) for i in range(n)]


def test_parse_rows() -> None:
    stage = schema.parse_stage(
        {
            "ID": "7",
            "STATUS_ID": "DT1032_5:SUCCESS",
            "NAME": "Win",
            "SORT": "40",
            "SYSTEM": "Y",
            "COLOR": "#00ff00",
            "SEMANTICS": "S",
        }
    )
    assert (stage.code, stage.semantics, stage.sort, stage.system) == ("SUCCESS", "success", 40, True)
    assert (
        schema.parse_stage({"ID": "8", "STATUS_ID": "DT1032_5:X", "SEMANTICS": None}).semantics == "process"
    )
    f = schema.parse_field(
        {
            "id": "5",
            "fieldName": "UF_CRM_3_CITY",
            "userTypeId": "enumeration",
            "multiple": "N",
            "showFilter": "I",
            "editFormLabel": {"ru": "Город", "en": None},
            "enum": [{"id": "2", "value": "B", "sort": "20"}, {"id": "1", "value": "A", "sort": "10"}],
        }
    )
    assert f.show_filter and f.label == {"ru": "Город"} and [o.value for o in f.options] == ["A", "B"]
    t = schema.parse_type(
        {
            "id": 3,
            "entityTypeId": 1032,
            "title": "T",
            "code": "",
            "isStagesEnabled": "Y",
            "relations": {"parent": [{"entityTypeId": 2, "isChildrenListEnabled": "Y", "isPredefined": "N"}]},
        }
    )
    assert t.code is None and t.flags["isStagesEnabled"] and t.parents[0].entity_type_id == 2
    assert uf_suffix("UF_CRM_12_MY_FIELD") == "MY_FIELD"
