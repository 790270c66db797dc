"""`Portal.export(include_deleted=...)` and `Portal.report(template=...)` mirror the CLI's options."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from connector import Portal
from connector.emulator import EmulatorServer
from connector.templates import load_template

ROOT = Path(__file__).resolve().parents[1]
HR = ROOT / "mappings" / "hr_candidates.toml"


def test_export_with_and_without_tombstones(live_emulator: EmulatorServer, tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with Portal.from_webhook(live_emulator.webhook_url, store=db) as portal:
        portal.apply(HR)
        with sqlite3.connect(db) as conn:
            conn.executemany("INSERT INTO candidate (title, funnel, stage) VALUES (?, 'hiring', 'NEW')",
                             [("Анна",), ("Борис",)])
        conn.close()
        portal.sync(HR)
        etid = portal.store.idmap.entry(portal.key, "type", "candidate").extra["entityTypeId"]
        gone = portal.store.conn.execute("SELECT id FROM candidate WHERE title = 'Борис'").fetchone()[0]
        portal.client.call("crm.item.delete", {"entityTypeId": etid, "id": gone})
        assert portal.sync(HR, full=True).deleted == 1
        live = portal.export("candidate", "csv", tmp_path / "live.csv")
        every = portal.export("candidate", "csv", tmp_path / "all.csv", include_deleted=True)
    assert (live.rows, every.rows) == (1, 2)
    assert "Борис" not in (tmp_path / "live.csv").read_text(encoding="utf-8")
    assert "Борис" in (tmp_path / "all.csv").read_text(encoding="utf-8")


def test_report_takes_the_template(live_emulator: EmulatorServer, tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    template = load_template(HR)
    with Portal.from_webhook(live_emulator.webhook_url, store=db) as portal:
        portal.apply(HR)
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO candidate (title, funnel, stage) VALUES ('Анна', 'hiring', 'NEW')")
        conn.close()
        portal.sync(HR)
        by_file = portal.report("candidate", "funnel", "html", tmp_path / "a.html", template=HR)
        by_object = portal.report("candidate", "funnel", "html", tmp_path / "b.html", template=template)
    assert by_file.output == str(tmp_path / "a.html") and by_object.output == str(tmp_path / "b.html")
    html = (tmp_path / "a.html").read_text(encoding="utf-8")
    assert html == (tmp_path / "b.html").read_text(encoding="utf-8")
    hiring = template.funnel("hiring")
    names = [template.text(s.name) for s in sorted(hiring.stages, key=lambda s: s.sort)
             if s.semantics == "process"]
    positions = [html.find(name) for name in names]
    assert -1 not in positions and positions == sorted(positions), names  # the template's stage order
