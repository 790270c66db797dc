"""docs/guide.md documents every command, argument and option of the CLI, and every public Portal method.

The CLI's command tree is walked (click, under typer): every command and subcommand needs a
`### b24sync <command> ...` entry in the guide's "Command reference", naming its arguments and
every option (long and short forms, `--no-...` forms and hidden options too). Every public method
and property of `Portal` must be named in the guide's "Python API" section.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from connector.api import Portal
from connector.cli.main import app

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """(`name sub`, command) for the root ("") and every command and subcommand below it.

    Duck-typed: typer >= 0.20 builds its commands with its own copy of click, not `click`'s classes.
    """
    yield " ".join(path), command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from commands(sub, (*path, name))


def section(text: str, title: str) -> str:
    """The body of the `## title` section (up to the next `## ` heading)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/guide.md has no '## {title}' section"
    return match.group(1)


def reference_entries(text: str) -> dict[str, str]:
    """`### b24sync <command> ...` headings of the command reference -> heading line plus body."""
    body = section(text, "Command reference")
    entries: dict[str, str] = {}
    for block in re.split(r"^### ", body, flags=re.M)[1:]:
        heading = block.splitlines()[0]
        match = re.match(r"`b24sync((?: [a-z][a-z-]*)*)", heading)
        assert match, f"command reference heading {heading!r} does not start with `b24sync COMMAND"
        entries[match.group(1).strip()] = block
    return entries


def mentioned(option: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def missing_from_guide(text: str) -> list[str]:
    """Everything of the CLI the guide does not name, one line each (empty when all is documented)."""
    entries = reference_entries(text)
    root = typer.main.get_command(app)
    missing: list[str] = []
    walked = [path for path, _ in commands(root)]
    assert {"plan", "sync", "conflicts resolve", "emulator serve"} <= set(walked), walked  # the walk works
    for path, command in commands(root):
        if hasattr(command, "commands") and path:
            continue  # a group (`conflicts`, `emulator`, ...) is documented through its subcommands
        where = f"b24sync {path}".strip()
        entry = entries.get(path)
        if entry is None:
            missing.append(f"{where}: no `### {where} ...` entry in the command reference")
            continue
        heading = entry.splitlines()[0]
        for param in command.params:
            if param.param_type_name == "argument":
                if str(param.metavar or param.name).upper() not in heading:
                    missing.append(f"{where}: argument {param.metavar or param.name} not in its heading")
                continue
            for option in [*param.opts, *param.secondary_opts]:
                if not mentioned(option, entry):
                    hidden = " (hidden)" if getattr(param, "hidden", False) else ""
                    missing.append(f"{where}: option {option}{hidden} not documented")
    for option in ("-h", "--help"):
        if not mentioned(option, entries.get("", "")):
            missing.append(f"b24sync: {option} not documented with the global options")
    return missing


def public_portal_names() -> list[str]:
    return sorted(name for name, _ in inspect.getmembers(Portal) if not name.startswith("_"))


def test_every_command_and_option_is_in_the_guide() -> None:
    missing = missing_from_guide(GUIDE.read_text(encoding="utf-8"))
    assert not missing, "docs/guide.md lacks:\n" + "\n".join(missing)


def test_every_portal_method_is_in_the_python_api_section() -> None:
    api = section(GUIDE.read_text(encoding="utf-8"), "Python API")
    missing = [name for name in public_portal_names() if not mentioned(name, api)]
    assert not missing, f"the Python API section of docs/guide.md does not name Portal.{missing}"


def test_the_check_names_what_is_missing() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    cut = re.sub(r"`--no-formula-guard`", "", text)  # drop one option's mention from the reference
    cut = re.sub(r"^### `b24sync conflicts resolve.*?(?=^### )", "", cut, flags=re.S | re.M)
    missing = missing_from_guide(cut)
    assert "b24sync export: option --no-formula-guard not documented" in missing
    gone = "b24sync conflicts resolve: no `### b24sync conflicts resolve ...` entry in the command reference"
    assert gone in missing


def test_hidden_options_are_checked_too() -> None:
    serve = typer.main.get_command(app).commands["emulator"].commands["serve"]  # type: ignore[attr-defined]
    hidden = [o for p in serve.params if getattr(p, "hidden", False) for o in p.opts]
    assert hidden == ["--deviate"]
    text = GUIDE.read_text(encoding="utf-8").replace("--deviate", "--dev1ate")
    assert "b24sync emulator serve: option --deviate (hidden) not documented" in missing_from_guide(text)


@pytest.mark.parametrize("name", ["plan", "apply", "drift", "adopt", "sync", "conflicts", "resolve_conflict",
                                  "export", "report", "status", "call", "doctor"])
def test_the_commands_methods_are_public(name: str) -> None:
    assert name in public_portal_names()
