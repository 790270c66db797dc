"""One error root: every package error derives from B24SyncError, and the CLI exits with its class's code."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import connector
from connector import errors
from connector.api import Portal
from connector.cli.errors import describe
from connector.cli.main import app
from connector.errors import B24SyncError, BusyError, InputError, PortalError, UsageError

ROOT = Path(__file__).resolve().parents[1]
# Not errors a caller ever sees: the emulator is an island (its ApiError is the fake server's answer,
# it imports nothing from the client), `_`-names are private control flow, and BodyTooLarge is a
# requests exception the transport raises and catches itself (rest/client.py turns it into a B24Error).
OUTSIDE_THE_TREE = {"connector.rest.client.BodyTooLarge"}


def package_exceptions() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(connector.__path__, "connector."):
        if info.name.startswith(("connector.emulator", "connector.__main__")):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name
                    and not name.startswith("_") and f"{info.name}.{name}" not in OUTSIDE_THE_TREE):
                found.append(obj)
    return found


def test_every_exception_class_of_the_package_derives_from_the_root() -> None:
    classes = package_exceptions()
    names = {c.__name__ for c in classes}
    assert {"ConfigError", "TemplateError", "StoreError", "SyncError", "MapError", "SyncLocked",
            "DriftError", "AdoptError", "SchemaWriteError", "FunnelError", "TranslationError", "ReportError",
            "JobConfigError", "DoctorError", "B24Error", "UsageError"} <= names  # the walk finds them all
    outside = sorted(f"{c.__module__}.{c.__name__}" for c in classes if not issubclass(c, B24SyncError))
    assert not outside, f"exception classes outside the B24SyncError tree: {outside}"
    for cls in classes:
        assert isinstance(cls.exit_code, int) and cls.exit_code not in (0, 4, errors.EXIT_CHANGES), cls


@pytest.mark.parametrize(("dotted", "code", "builtin"), [
    ("connector.templates.TemplateError", 2, ValueError),
    ("connector.config.ConfigError", 2, None),
    ("connector.scheduler.JobConfigError", 2, ValueError),
    ("connector.reports.ReportError", 2, ValueError),
    ("connector.deploy.AdoptError", 2, ValueError),
    ("connector.sync.SyncError", 2, RuntimeError),
    ("connector.crm.items.TranslationError", 2, ValueError),
    ("connector.crm.deals.FunnelError", 2, LookupError),
    ("connector.rest.B24Error", 1, None),
    ("connector.rest.PortalUnreachable", 1, None),
    ("connector.store.StoreError", 1, None),
    ("connector.sync.maps.MapError", 1, RuntimeError),
    ("connector.deploy.DriftError", 1, RuntimeError),
    ("connector.crm.schema.SchemaWriteError", 1, None),
    ("connector.doctor.DoctorError", 1, None),
    ("connector.sync.SyncLocked", 75, RuntimeError),
])
def test_exit_code_on_the_class_and_the_old_builtin_base_kept(dotted: str, code: int,
                                                               builtin: type[Exception] | None) -> None:
    module, _, name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert cls.exit_code == code
    if builtin is not None:  # callers that catch ValueError / RuntimeError / LookupError keep working
        assert issubclass(cls, builtin)


def test_the_root_module_imports_nothing_from_the_package() -> None:
    tree = ast.parse((ROOT / "connector" / "errors.py").read_text(encoding="utf-8"))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("connector")], imported


def test_describe_uses_the_class_attribute_not_the_name() -> None:
    class Refused(PortalError):
        pass

    class Busy(BusyError):
        pass

    class Odd(InputError):
        exit_code = 9  # a subclass may choose its own code: the CLI follows it

    assert describe(Refused("x"))[1] == 1  # type: ignore[index]
    assert describe(Busy("held"))[1] == 75  # type: ignore[index]
    assert describe(Odd("odd")) == ("odd", 9)
    assert describe(ValueError("a bug")) is None  # not a b24sync error: a bug
    assert describe(KeyError("a bug")) is None


def test_a_plain_value_error_is_a_bug_with_a_crash_report(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("B24SYNC_CRASH_DIR", str(tmp_path / "crash"))

    def broken(self: Portal) -> None:
        raise ValueError("int('x') somewhere deep")

    monkeypatch.setattr(Portal, "status", broken)
    result = CliRunner().invoke(app, ["status", "--db", str(tmp_path / "s.db")])
    assert result.exit_code == 4
    assert "a bug in b24sync" in result.stderr and "ValueError" in result.stderr
    reports = list((tmp_path / "crash").glob("crash-*.txt"))
    assert len(reports) == 1 and "int('x') somewhere deep" in reports[0].read_text(encoding="utf-8")


def test_usage_errors_of_portal_methods_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", "-t", "candidate", "--db", str(tmp_path / "s.db"),
                                      "--format", "xlsx"])
    assert result.exit_code == 2 and "--format xlsx needs -o FILE" in result.stderr
    with pytest.raises(UsageError, match="--pull-only and --push-only exclude each other"):
        Portal.from_webhook("https://acme.example/rest/1/code/", store=tmp_path / "a.db").sync(
            pull_only=True, push_only=True)
    assert not (tmp_path / "a.db").exists()  # refused before the store was created


def test_changes_found_has_its_own_code() -> None:
    codes = {errors.EXIT_OK, errors.EXIT_ERROR, errors.EXIT_USAGE, errors.EXIT_FAILED_ROWS, errors.EXIT_BUG,
             errors.EXIT_LOCKED, errors.EXIT_INTERRUPTED}
    assert errors.EXIT_CHANGES not in codes and len(codes) == 7
    from connector.doctor import EXIT_DIFFERENT

    assert EXIT_DIFFERENT == errors.EXIT_CHANGES  # doctor differences are "changes found" too
    guide = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| {errors.EXIT_CHANGES} | changes found |" in guide
    assert f"{errors.EXIT_CHANGES} changes found" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"ci_doctor {errors.EXIT_CHANGES} noop_update" in ci
