"""One home per rule: Y/N in crm/naming, times in connector/times, and no copies in the rules' packages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connector.crm.naming import from_yn, yn
from connector.rest.encoding import json_params, php_query

CONNECTOR = Path(__file__).resolve().parent.parent / "connector"
# Packages whose copies were folded into the homes (crm/items.py is tuned for speed and switches later).
CHECKED = [p for pkg in ("crm", "templates", "deploy", "doctor", "rest")
           for p in (CONNECTOR / pkg).rglob("*.py") if p != CONNECTOR / "crm" / "items.py"]
HOMES = {CONNECTOR / "crm" / "naming.py", CONNECTOR / "rest" / "encoding.py", CONNECTOR / "times.py"}


@pytest.mark.parametrize("value", [True, False])
def test_the_wire_bool_is_the_domain_yn(value: bool) -> None:
    # rest sits below crm, so the encoder keeps its own rule; it must say what naming says.
    assert json_params({"flag": value})["flag"] == yn(value)
    assert php_query({"flag": value}) == f"flag={yn(value)}"
    assert from_yn(json_params({"flag": value})["flag"]) is value


_COPIES = {
    "Y/N": re.compile(r"""["']Y["'] if |== ["']Y["']|in \(["']Y["']"""),
    "UTC text": re.compile(r"%Y-%m-%dT%H:%M:%SZ|datetime\.now\(|\.replace\(\"Z\", \"\+00:00\"\)"),
}


@pytest.mark.parametrize("rule", sorted(_COPIES))
def test_no_second_copy_of_a_rule(rule: str) -> None:
    found = [f"{p.relative_to(CONNECTOR)}:{n}" for p in CHECKED if p not in HOMES
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if _COPIES[rule].search(line)]
    assert found == [], f"{rule} written outside its home: {found}"


def test_the_checks_can_fail() -> None:
    sample = 'x = "Y" if flag else "N"\nstamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")\n'
    assert all(pattern.search(sample) for pattern in _COPIES.values())


def test_public_class_names_do_not_clash_across_deploy_and_store() -> None:
    import connector.deploy as deploy
    import connector.store as store
    from connector.store import process as store_process

    public = {name for name in deploy.__all__ if name[:1].isupper()}
    assert not public & set(store.__all__), "deploy and store export the same class name"
    assert not public & {n for n in vars(store_process) if isinstance(getattr(store_process, n), type)}
    assert {"SchemaChange", "TemplatePlan"} <= public


def test_adopt_codes_a_field_whose_name_has_no_type_id() -> None:
    # A field made outside a smart process's own prefix (UF_CRM_<digits> from the portal UI) keeps
    # its whole name as the code source, as before naming.uf_suffix became the one rule.
    from connector.crm.schema import PortalField
    from connector.deploy.adopt import _field_code

    ui_field = PortalField(id=1, field_name="UF_CRM_1721244707107", user_type_id="string",
                           label={"ru": "Город"})
    assert _field_code(ui_field) == "uf_crm_1721244707107"
    own = PortalField(id=2, field_name="UF_CRM_7_VIN_CODE", user_type_id="string", label={"ru": "VIN"})
    assert _field_code(own) == "vin_code"
