"""What a person sees: every HTML report and the HTML export rendered in headless Chromium.

Checks, measured by the browser's own layout: no word is broken across lines mid-word (a break at a
hyphen is a normal line break), no column is narrower than the longest word of its header, and the
headers are labels, not field codes. Screenshots are written as artifacts into the folder printed
by the test (`B24SYNC_ARTIFACTS`, else a `b24sync-browser-*` folder in the system temp dir).

Chromium: `apt-get install chromium-headless-shell` (what .ci/run does). Without it the test is
skipped on a developer machine and FAILS in CI (`CI` set), so CI can never pass without looking.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from connector.reports import export, report
from connector.store import Store
from connector.sync.engine import remember_templates
from connector.templates import load_template

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "headless_shell")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SNAKE_CODE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")

# Runs inside the page: measures words and header columns, appends the findings as JSON.
PROBE = """<script>
(function () {
  const found = {broken: [], narrow: [], headers: []};
  const range = document.createRange();
  function lines(node, start, end) {
    range.setStart(node, start); range.setEnd(node, end);
    const tops = new Set();
    for (const r of range.getClientRects()) { if (r.width > 0.5) tops.add(Math.round(r.top)); }
    return tops.size;
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const word = /[^\\s\\-\\u2010\\u2011\\u2013\\u2014\\/]+[\\-\\u2010\\u2013\\u2014\\/]?/g;
  let node;
  while ((node = walker.nextNode())) {
    if (node.parentElement.closest('svg')) continue;  // chart labels never wrap
    let m;
    while ((m = word.exec(node.data)) !== null) {
      if (m[0].length > 1 && lines(node, m.index, m.index + m[0].length) > 1) {
        found.broken.push(m[0]);
      }
    }
  }
  for (const th of document.querySelectorAll('th')) {
    const text = th.textContent;
    found.headers.push(text);
    const style = getComputedStyle(th);
    const inner = th.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const ruler = document.createElement('span');  // a word's own width, wherever the layout broke it
    ruler.style.cssText = 'position:absolute;visibility:hidden;white-space:nowrap;font:' + style.font;
    document.body.appendChild(ruler);
    for (const w of text.split(/\\s+/).filter(Boolean)) {
      ruler.textContent = w;
      const px = ruler.getBoundingClientRect().width;
      if (px > inner + 1) found.narrow.push({header: text, word: w, word_px: px, column_px: inner});
    }
    ruler.remove();
  }
  const out = document.createElement('pre');
  out.id = 'b24-probe';
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
})();
</script>"""


def chromium() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    message = "headless Chromium not found (apt-get install -y chromium-headless-shell)"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must run the browser test")
    pytest.skip(message)


def artifacts() -> Path:
    root = os.environ.get("B24SYNC_ARTIFACTS")
    folder = Path(root) if root else Path(tempfile.mkdtemp(prefix="b24sync-browser-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"browser screenshots: {folder}")
    return folder


def run_browser(browser: str, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="b24sync-chromium-") as profile:
        done = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def probe(browser: str, page: Path, width: int) -> dict[str, Any]:
    """Render the page (with the probe script added) and return what the probe measured."""
    probed = page.with_name(page.stem + ".probe.html")
    text = page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>")
    probed.write_text(text, encoding="utf-8")
    dom = run_browser(browser, f"--window-size={width},900", "--virtual-time-budget=2000", "--dump-dom",
                      probed.as_uri())
    found = re.search(r'<pre id="b24-probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run in {page.name}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))


def screenshot(browser: str, page: Path, shot: Path, width: int) -> None:
    run_browser(browser, f"--window-size={width},1400", f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 10_000  # a real picture, not an empty page


def build_store(path: Path, lang: str) -> list[str]:
    """The shipped hr template's store (labels in `lang`) with long Russian values; the column codes."""
    template = load_template(MAPPINGS / "hr_candidates.toml")
    rnd = random.Random(5)
    stages = [s.code for s in template.funnels[0].stages]
    titles = ["Константинопольская Александра Валерьевна", '=HYPERLINK("http://evil.example","Нажми")',
              "Иванов Иван"]
    with Store.open(path) as store:
        store.ensure_process(template, lang=lang)
        remember_templates(store, [template])
        store.upsert_rows("candidate", (
            {"id": i, "title": titles[i % 3], "funnel": "hiring", "stage": rnd.choice(stages),
             "candidate_source": rnd.choice(["hh", "avito", "referral", None]),
             "vacancy": "Механик по ремонту дизельных двигателей", "city": "Санкт-Петербург",
             "experience_years": rnd.randint(0, 20) / 2, "salary_expected": rnd.randint(50, 300) * 1000.0,
             "salary_expected_currency": "RUB", "resume_url": f"https://hh.ru/resume/{i}",
             "assigned_by_id": rnd.choice([1, 7]), "created_time": "2026-11-25T06:16:48Z",
             "updated_time": "2026-11-26T10:00:00Z", "moved_time": f"2026-11-2{i % 6}T10:00:00Z"}
            for i in range(1, 31)))
        return [r[1] for r in store.conn.execute("PRAGMA table_info(candidate)")]


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_reports_and_export_read_well_in_a_browser(tmp_path: Path, lang: str) -> None:
    browser = chromium()
    shots = artifacts()
    db = tmp_path / "hr.db"
    codes = set(build_store(db, lang))
    pages: dict[str, tuple[Path, int]] = {}
    for kind in ("funnel", "time-in-stage", "aging", "all"):
        pages[f"report-{kind}"] = (tmp_path / f"report-{kind}.html", 1100)
        report(db, "candidate", kind, "html", pages[f"report-{kind}"][0], tz="+03:00")
    pages["export"] = (tmp_path / "export.html", 1280)
    export(db, "candidate", "html", pages["export"][0], users={1: "Администратор", 7: "Анна Смирнова"},
           tz="Europe/Moscow")
    seen: dict[str, dict[str, Any]] = {}
    for name, (page, width) in pages.items():
        found = seen[name] = probe(browser, page, width)
        if name in ("report-all", "export"):  # the other reports are parts of `all`
            screenshot(browser, page, shots / f"{lang}-{name}.png", width)
        assert not found["broken"], f"{name}: words broken mid-word: {found['broken'][:10]}"
        assert not found["narrow"], f"{name}: columns narrower than their header word: {found['narrow'][:5]}"
        assert found["headers"], f"{name}: no table headers rendered"
        codes_shown = [h for h in found["headers"] if h in codes or SNAKE_CODE.match(h)]
        assert not codes_shown, f"{name}: headers show field codes: {codes_shown}"
    export_headers = seen["export"]["headers"]
    expected = {"ru": ("Название", "Стадия", "Ожидаемая зарплата", "Ответственный"),
                "en": ("Title", "Stage", "Expected salary", "Responsible")}[lang]
    assert set(expected) <= set(export_headers)


def test_probe_catches_a_word_broken_mid_word(tmp_path: Path) -> None:
    """The probe is not blind: a narrow cell with overflow-wrap:anywhere breaks a word, and it says so."""
    browser = chromium()
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><style>td,th{overflow-wrap:anywhere;width:3em}'
        "table{width:6em;table-layout:fixed}</style></head><body><table><tr><th>candidate_source_label</th>"
        "<th>Стадия</th></tr><tr><td>Константинопольская</td><td>x</td></tr></table></body></html>",
        encoding="utf-8")
    found = probe(browser, page, 800)
    assert "Константинопольская" in found["broken"]
    assert any(n["word"] == "candidate_source_label" for n in found["narrow"])
    assert SNAKE_CODE.match(found["headers"][0])
