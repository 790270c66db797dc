"""Config loading, portal resolution and secret handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.config import (
    Config,
    ConfigError,
    env_name,
    load_config,
    portal_key,
    redact,
    resolve_portal,
    save_tokens,
)

SECRET = "s3cr3tc0de12345"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "b24sync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads() -> None:
    config = load_config(Path(__file__).parent.parent / "config.example.toml")
    assert set(config.portals) == {"acme", "client2", "demo"}
    assert config.portals["client2"].plan == "enterprise"


def test_webhook_comes_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(write(tmp_path, '[portals.acme]\nplan = "standard"\n'))
    monkeypatch.setenv(env_name("acme", "WEBHOOK"), f"https://Acme.bitrix24.ru/rest/1/{SECRET}")
    ref = resolve_portal(config, "acme")
    assert ref.url == f"https://Acme.bitrix24.ru/rest/1/{SECRET}/"
    assert ref.key == "acme.bitrix24.ru"
    assert ref.store == Path("data/acme.db")
    assert SECRET not in repr(ref) and SECRET not in str(ref)


def test_missing_credentials_name_the_variable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[portals.acme]\n"))
    with pytest.raises(ConfigError, match="B24SYNC_PORTAL_ACME_WEBHOOK"):
        resolve_portal(config, "acme")


def test_unknown_portal_lists_known_ones(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[portals.one]\nwebhook = "http://127.0.0.1:1/rest/1/x/"\n'))
    with pytest.raises(ConfigError, match="configured portals: one"):
        resolve_portal(config, "two")


def test_webhook_url_given_directly() -> None:
    ref = resolve_portal(load_config(None), "http://127.0.0.1:8765/rest/1/abc")
    assert ref.key == "127.0.0.1:8765"
    assert ref.url.endswith("/rest/1/abc/")


def test_bad_webhook_url_is_refused_without_echoing_secret() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_portal(load_config(None), f"https://host/api/{SECRET}")
    assert SECRET not in str(err.value)


def test_unknown_key_and_bad_plan_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="portals.acme.plan"):
        load_config(write(tmp_path, '[portals.acme]\nplan = "gold"\n'))
    with pytest.raises(ConfigError, match="colour"):
        load_config(write(tmp_path, '[defaults]\ncolour = "red"\n'))


def test_invalid_toml_names_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[portals\n"))


def test_oauth_portal_needs_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = '[portals.app]\nendpoint = "https://x.bitrix24.ru/rest/"\nclient_id = "local.1"\n'
    config = load_config(write(tmp_path, text))
    with pytest.raises(ConfigError, match="ACCESS_TOKEN"):
        resolve_portal(config, "app")
    monkeypatch.setenv(env_name("app", "ACCESS_TOKEN"), "a" * 32)
    monkeypatch.setenv(env_name("app", "REFRESH_TOKEN"), "r" * 32)
    monkeypatch.setenv(env_name("app", "CLIENT_SECRET"), SECRET)
    ref = resolve_portal(config, "app")
    assert ref.oauth is not None and ref.oauth["client_secret"] == SECRET
    assert SECRET not in repr(ref)


def test_tokens_are_saved_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "t" / "tokens.json"
    save_tokens(str(path), {"access_token": "a", "refresh_token": "r", "client_secret": SECRET})
    assert path.stat().st_mode & 0o777 == 0o600
    assert SECRET not in path.read_text()


def test_portal_key_and_redact() -> None:
    assert portal_key(f"https://A.Bitrix24.ru/rest/7/{SECRET}/") == "a.bitrix24.ru"
    assert SECRET not in redact(f"https://a.bitrix24.ru/rest/7/{SECRET}/crm.item.list")
    with pytest.raises(ConfigError):
        portal_key("not a url")


def test_oauth_token_file_wins_over_environment_and_settings_reach_the_client(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.rest import OAuthAuth, OAuthTokens

    token_file = tmp_path / "app.tokens.json"
    text = (f'[portals.app]\nendpoint = "http://10.0.0.5/rest/"\nclient_id = "local.1"\nallow_http = true\n'
            f'token_url = "http://10.0.0.5/oauth/token/"\ntoken_file = "{token_file}"\n')
    config = load_config(write(tmp_path, text))
    monkeypatch.setenv(env_name("app", "ACCESS_TOKEN"), "env-access-1")
    monkeypatch.setenv(env_name("app", "REFRESH_TOKEN"), "env-refresh-1")
    monkeypatch.setenv(env_name("app", "CLIENT_SECRET"), SECRET)
    ref = resolve_portal(config, "app")
    assert ref.oauth is not None and ref.oauth["refresh_token"] == "env-refresh-1"
    save_tokens(str(token_file), OAuthTokens(access_token="file-access-2", refresh_token="file-refresh-2",
                                             expires_in=3600, member_id="m1"))
    assert json.loads(token_file.read_text()) == {"access_token": "file-access-2",
                                                  "refresh_token": "file-refresh-2",
                                                  "expires_in": 3600, "member_id": "m1"}
    settings = dict(resolve_portal(config, "app").oauth or {})
    assert (settings["access_token"], settings["refresh_token"]) == ("file-access-2", "file-refresh-2")
    settings.pop("token_file")
    auth = OAuthAuth(**settings)  # plain http to a LAN host passes only because allow_http = true
    assert auth.token_url == "http://10.0.0.5/oauth/token/" and auth.allow_http


def test_broken_token_file_is_a_config_error_naming_the_file(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "t.json"
    token_file.write_text("{not json", encoding="utf-8")
    text = (f'[portals.app]\nendpoint = "https://x.bitrix24.ru/rest/"\nclient_id = "local.1"\n'
            f'token_file = "{token_file}"\n')
    monkeypatch.setenv(env_name("app", "CLIENT_SECRET"), SECRET)
    with pytest.raises(ConfigError, match=r"token_file .*t\.json is not readable JSON"):
        resolve_portal(load_config(write(tmp_path, text)), "app")


def test_save_tokens_refuses_a_half_pair_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    with pytest.raises(ValueError, match="access_token and refresh_token"):
        save_tokens(str(path), {"access_token": "only-one"})
    assert not path.exists()
    save_tokens(str(path), {"access_token": "a1", "refresh_token": "r1"})
    save_tokens(str(path), {"access_token": "a2", "refresh_token": "r2"})
    assert json.loads(path.read_text()) == {"access_token": "a2", "refresh_token": "r2"}
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.json"]


def test_plain_http_to_a_remote_host_is_a_config_error_unless_allowed(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    remote = f"http://portal.example.com/rest/1/{SECRET}/"
    with pytest.raises(ConfigError, match="plain http to a non-loopback host") as caught:
        resolve_portal(Config(), remote)
    assert SECRET not in str(caught.value)
    assert resolve_portal(Config(), f"http://127.0.0.1:8765/rest/1/{SECRET}/").url.startswith("http://")
    config = load_config(write(tmp_path, "[portals.lan]\nallow_http = true\n[portals.strict]\n"))
    monkeypatch.setenv(env_name("lan", "WEBHOOK"), remote)
    monkeypatch.setenv(env_name("strict", "WEBHOOK"), remote)
    assert resolve_portal(config, "lan").allow_http
    with pytest.raises(ConfigError, match="portal 'strict': webhook"):
        resolve_portal(config, "strict")
