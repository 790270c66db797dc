"""`b24sync init NAME` / `b24sync portal add NAME`: the config file names the variable, never the secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.cli.main import main
from connector.config import ConfigError, load_config, resolve_portal
from connector.emulator import EmulatorServer

SECRET = "Zq7s3cr3tc0de"
URL = f"https://acme.bitrix24.ru/rest/1/{SECRET}/"


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder with no config in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("B24SYNC_CONFIG", raising=False)
    for var in ("B24SYNC_PORTAL_ACME_WEBHOOK", "B24SYNC_PORTAL_DEMO_WEBHOOK", "ACME_HOOK"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_init_writes_a_config_that_reads_the_webhook_from_the_environment(
        here: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("B24SYNC_PORTAL_ACME_WEBHOOK", URL)
    code, out, err = run(capsys, "init", "acme")
    assert code == 0, err
    text = (here / "b24sync.toml").read_text(encoding="utf-8")
    assert 'webhook_env = "B24SYNC_PORTAL_ACME_WEBHOOK"' in text and "[portals.acme]" in text
    assert SECRET not in text and SECRET not in out + err  # secrets never in files or output
    assert "https://acme.bitrix24.ru/rest/1/****/" in out
    ref = resolve_portal(load_config(), "acme")
    assert ref.url == URL and ref.store == Path("data/acme.db") and ref.plan == "standard"


def test_init_says_which_variable_to_set_when_it_is_missing(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "init", "acme")
    assert code == 0
    assert "B24SYNC_PORTAL_ACME_WEBHOOK is not set yet: export B24SYNC_PORTAL_ACME_WEBHOOK=https://" in out
    with pytest.raises(ConfigError, match="has no credentials: set B24SYNC_PORTAL_ACME_WEBHOOK"):
        resolve_portal(load_config(), "acme")


def test_init_options_and_json(here: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_HOOK", URL)
    code, out, _ = run(capsys, "--json", "--config", "conf/portals.toml", "init", "acme",
                       "--webhook-env", "ACME_HOOK", "--plan", "enterprise", "--store", "stores/a.db")
    assert code == 0
    data = json.loads(out)
    assert data == {"config": "conf/portals.toml", "portal": "acme", "webhook_env": "ACME_HOOK",
                    "webhook_env_set": True, "webhook": "https://acme.bitrix24.ru/rest/1/****/"}
    ref = resolve_portal(load_config("conf/portals.toml"), "acme")
    assert (ref.url, ref.plan, ref.store) == (URL, "enterprise", Path("stores/a.db"))


def test_init_never_overwrites_without_force(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "b24sync.toml").write_text("# mine\n", encoding="utf-8")
    code, _, err = run(capsys, "init", "acme")
    assert code == 2
    assert "b24sync.toml already exists" in err and "--force" in err and "b24sync portal add acme" in err
    assert (here / "b24sync.toml").read_text(encoding="utf-8") == "# mine\n"
    code, _, err = run(capsys, "init", "acme", "--force")
    assert code == 0, err
    assert "[portals.acme]" in (here / "b24sync.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize(("args", "message"), [
    (["init", "a b"], "portal name 'a b' is not allowed: use letters, digits, '-' and '_'"),
    (["init", "acme", "--plan", "pro"], "--plan 'pro' is not a plan; allowed: standard, enterprise"),
    (["init", "acme", "--webhook-env", "1X"], "--webhook-env '1X' is not an environment variable name"),
    (["init", "acme", "--webhook-env", "A-B"], "--webhook-env 'A-B' is not an environment variable name"),
])
def test_bad_input_is_one_clear_line_and_writes_nothing(
        here: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(here.iterdir()) == []


def test_a_url_given_as_the_name_is_refused_without_echoing_it(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "init", URL)
    assert code == 2 and "NAME is the portal's name, not its URL" in err
    assert SECRET not in out + err and list(here.iterdir()) == []


def test_the_hint_names_a_config_file_given(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--config", "other.toml", "init", "acme")
    assert code == 0 and "Try: b24sync --config other.toml call crm.type.list --portal acme" in out


def test_portal_add_appends_and_never_replaces(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "init", "acme")[0] == 0
    code, out, _ = run(capsys, "portal", "add", "client-2", "--plan", "enterprise")
    assert code == 0 and "added to b24sync.toml: portal 'client-2'" in out
    config = load_config()
    assert set(config.portals) == {"acme", "client-2"}
    assert config.portals["client-2"].webhook_env == "B24SYNC_PORTAL_CLIENT_2_WEBHOOK"
    before = (here / "b24sync.toml").read_text(encoding="utf-8")
    code, _, err = run(capsys, "portal", "add", "acme")
    assert code == 2 and "portal 'acme' is already in b24sync.toml" in err
    assert (here / "b24sync.toml").read_text(encoding="utf-8") == before


def test_portal_add_creates_a_missing_file(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "portal", "add", "acme")[0] == 0
    assert set(load_config().portals) == {"acme"}


def test_portal_add_leaves_a_broken_file_alone(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "b24sync.toml").write_text("portals = {acme = {}}\n", encoding="utf-8")  # inline table
    code, _, err = run(capsys, "portal", "add", "other")
    assert code == 2 and "b24sync.toml left unchanged" in err
    assert (here / "b24sync.toml").read_text(encoding="utf-8") == "portals = {acme = {}}\n"
    assert sorted(p.name for p in here.iterdir()) == ["b24sync.toml"]  # no temporary file left


def test_unknown_portal_says_how_to_create_one(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "call", "crm.type.list", "--portal", "acme")
    assert code == 2
    assert "unknown portal 'acme'; configured portals: none configured" in err
    assert "b24sync init acme" in err
    run(capsys, "init", "demo")
    code, _, err = run(capsys, "call", "crm.type.list", "--portal", "acme")
    assert code == 2 and "configured portals: demo" in err and "b24sync portal add acme" in err


def test_init_then_call_over_loopback(here: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch, live_emulator: EmulatorServer) -> None:
    monkeypatch.setenv("B24SYNC_PORTAL_DEMO_WEBHOOK", live_emulator.webhook_url)
    assert run(capsys, "init", "demo")[0] == 0
    code, out, err = run(capsys, "--json", "call", "crm.type.list", "--portal", "demo")
    assert code == 0, err
    assert json.loads(out)["result"] == {"types": []}


def test_a_named_variable_that_is_unset_is_named_in_the_error(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "init", "acme", "--webhook-env", "ACME_HOOK")[0] == 0
    with pytest.raises(ConfigError, match="portal 'acme' has no credentials: set ACME_HOOK to its"):
        resolve_portal(load_config(), "acme")
    code, _, err = run(capsys, "call", "crm.type.list", "--portal", "acme")
    assert code == 2 and "set ACME_HOOK" in err
