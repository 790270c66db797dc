"""The README's "Using it" works when pasted in order, against `b24sync emulator serve` on 127.0.0.1.

The test does what the README tells a user: it starts the emulator command of the first block, reads
the webhook URL it prints, puts that URL into the `export` line, then runs every line of the second
block in order in a fresh folder holding a copy of `mappings/` and `jobs/` (a user's clone), and the
Python example after them. The only substitutions: the emulator URL, and `--port 0` instead of
`--port 8765` (that port may be taken on a test machine; the printed URL carries the real one).
Every line must have an expectation below, so a new README step cannot go untested.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLE_URL = "http://127.0.0.1:8765/rest/1/<code>/"


@dataclass
class Step:
    """What one README line must do: its exit code and text its output must hold."""

    exit_code: int
    says: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


# The key is how the line starts; the README's comments say the same in words.
STEPS: dict[str, Step] = {
    "b24sync init demo": Step(
        0, ["wrote b24sync.toml: portal 'demo'", "$B24SYNC_PORTAL_DEMO_WEBHOOK is set (http://127.0.0.1:"],
        ["b24sync.toml"]),
    "b24sync template validate": Step(0, ["OK: 5 template(s) valid"]),
    "b24sync plan": Step(5, ["plan for 127.0.0.1:", "type candidate", "to create"]),  # exit 5: changes
    "b24sync apply": Step(0, [], ["data/demo.db"]),
    "sqlite3 data/demo.db": Step(0),
    "b24sync sync": Step(0, ["pushed 1", "failed 0"]),
    "b24sync export": Step(0, ["candidates.xlsx"], ["candidates.xlsx"]),
    "b24sync report funnel": Step(0, ["funnel.html"], ["funnel.html"]),
    "b24sync run --jobs jobs/ --once": Step(
        0, ["sync_demo (sync): ok", "reconcile_nightly (reconcile): ok", "export_daily (export): ok rows=1",
            "report_daily (report): ok"]),
    "b24sync status": Step(0, ["candidate (1 items)", "sync_demo"]),
    "b24sync call crm.type.list": Step(0, ['"title": "Кандидаты"']),
}


def using_it() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Using it")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


def lines(block: str) -> list[str]:
    return [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def step_for(line: str) -> Step:
    matches = [key for key in STEPS if line.startswith(key)]
    assert matches, f"the README gained a step this test does not know: {line!r}"
    return STEPS[max(matches, key=len)]


@pytest.fixture()
def clone(tmp_path: Path) -> Path:
    """A user's checkout: the templates and job files, no config, no data."""
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    shutil.copytree(ROOT / "jobs", tmp_path / "jobs")
    return tmp_path


@pytest.fixture()
def shell_env() -> dict[str, str]:
    """The environment of a fresh shell with the venv's `b24sync` on PATH and no b24sync settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("B24SYNC_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONIOENCODING"] = "utf-8"
    env["COLUMNS"] = "200"
    return env


@pytest.fixture()
def emulator_url(clone: Path, shell_env: dict[str, str]) -> Iterator[str]:
    """The README's emulator command, run in the background; yields the URL it prints first."""
    (serve,) = lines(blocks(using_it(), "bash")[0])
    assert serve.startswith("b24sync emulator serve") and "--port 8765" in serve
    command = shlex.split(serve.replace("--port 8765", "--port 0"))
    process = subprocess.Popen(command, cwd=clone, env=shell_env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/rest/1/[0-9a-f]+/", url), url
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_line(line: str, clone: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One pasted line through bash (comments and quoting as a shell reads them)."""
    if line.startswith("sqlite3 ") and shutil.which("sqlite3", path=env["PATH"]) is None:
        # no sqlite3 shell on this machine: run the same SQL with Python's sqlite3, as the README allows
        _, db, sql = shlex.split(line, comments=True)
        with sqlite3.connect(clone / db) as conn:
            conn.execute(sql)
        return subprocess.CompletedProcess(line, 0, "", "")
    return subprocess.run(["bash", "-c", line], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=120)


def test_using_it_works_when_pasted_in_order(clone: Path, shell_env: dict[str, str],
                                             emulator_url: str) -> None:
    pasted = lines(blocks(using_it(), "bash")[1])
    assert pasted[0].startswith("export B24SYNC_PORTAL_DEMO_WEBHOOK=") and EXAMPLE_URL in pasted[0]
    env = dict(shell_env)
    for line in pasted:
        if line.startswith("export "):
            name, value = shlex.split(line.replace(EXAMPLE_URL, emulator_url), comments=True)[1].split("=", 1)
            env[name] = value
            continue
        step = step_for(line)
        done = run_line(line, clone, env)
        output = done.stdout + done.stderr
        assert done.returncode == step.exit_code, f"{line}\n exit {done.returncode}:\n{output}"
        for text in step.says:
            assert text in output, f"{line}\n does not say {text!r}:\n{output}"
        for name in step.files:
            assert (clone / name).is_file(), f"{line}\n wrote no {name}"
        assert emulator_url.rsplit("/", 2)[-2] not in output or line.startswith("b24sync init"), \
            f"{line}\n prints the webhook code"
    assert "[portals.demo]" in (clone / "b24sync.toml").read_text(encoding="utf-8")
    assert emulator_url.rsplit("/", 2)[-2] not in (clone / "b24sync.toml").read_text(encoding="utf-8")
    reports = list((clone / "reports").glob("*/candidates.csv"))
    assert len(reports) == 1 and "Анна" in reports[0].read_text(encoding="utf-8-sig")

    (example,) = blocks(using_it(), "python")
    done = subprocess.run([sys.executable, "-c", example], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("nothing to do on 127.0.0.1:")  # the plan, printed as text
    assert "object at 0x" not in done.stdout and "'pushed': 0" in done.stdout
    assert "Анна" in (clone / "candidates.csv").read_text(encoding="utf-8-sig")


def test_the_readme_never_points_outside_the_repository() -> None:
    text = README.read_text(encoding="utf-8")
    assert "../" not in text and "shared/" not in text
    for target in re.findall(r"`((?:docs|mappings|jobs|bench)/[^`*\s]*)`", text):
        assert (ROOT / target).exists(), f"README names {target}, which is not in the repository"
