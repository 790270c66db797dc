"""The fast export path writes what the plain one wrote (issue 13).

The CSV, JSON lines and HTML pins are the sha256 of what the export path wrote before it was made
fast (recorded at 059ac80, where each CSV cell went through csv.writer); the XLSX pins are of the
sheet and styles XML, whose cells were compared one by one (value, number format, type, font)
with openpyxl against that version's. Each case is listed in tests/support/export_pins.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.export_pins import CASES, digest, varied_store

PINNED = {
    "csv-excel-ru": "32bdfc3df01de408ff36af0e8f62e1fd617c12868eea82ac3afda3be564644ef",
    "csv-excel-ny": "5d521814a0beee87ed4c1eaf1f64aa21614db8255b48bc0e8528d5e6d0a03761",
    "csv-rfc4180": "0b89d11d22b42e9f097de067b4e08339180d07903ae8a044676cb3653eedfca0",
    "csv-unguarded-codes-bom": "8942214267413a2fb09f1318975730076fbc6d26e96d0108b0e7387955ea5d73",
    "csv-columns-where": "92d0b9b48b0de2c19ff94406838ffaccdf71a9f3789123ab74237a5b2ac2a03e",
    "csv-deleted-utc": "79bc87dcefe4c2e9de175cc50ab809bd4daa8b9ad91e5f64859a928165e823dd",
    "csv-one-column": "2953db79c28b4913ec541bfb3878c95f38b57e5b0027d25326232e3c9c949949",
    "csv-en": "d39357ee39eb9771e773d40eca8271cd0287854473ae47b3227bb8239901cc98",
    "jsonl": "3810e432488e5f7fda87e50313ef5b240c2d813c5a56471c38eb7b15772596df",
    "html": "297e4cefe310238e3d0fee47d6c4998e05301dba9e880e7d5908420625ce1bdf",
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pins")
    return {lang: varied_store(folder / f"{lang}.db", lang) for lang in ("ru", "en")}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_export_output_is_pinned(stores: dict[str, Path], case: str) -> None:
    lang = CASES[case][0]
    assert digest(stores[lang], case) == PINNED[case], f"{case}: the export wrote different bytes"
