"""Webhook and OAuth auth: URL rules, secrets hidden, refresh once then fail, never a loop."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connector.rest import AuthError, Client, OAuthAuth, OAuthTokens, RetryPolicy, TokenExpired, WebhookAuth
from connector.rest.limits import LeakyBucket

ENDPOINT = "https://portal.bitrix24.test/rest/"
TOKEN_URL = "https://oauth.bitrix.info/oauth/token/"
EXPIRED = {"error": "expired_token", "error_description": "The access token provided has expired"}


def test_webhook_url_is_parsed_and_code_hidden() -> None:
    auth = WebhookAuth("https://portal.bitrix24.com/rest/7/hiddencode123/")
    assert auth.user_id == 7 and auth.url("crm.item.get").endswith("/rest/7/hiddencode123/crm.item.get")
    assert "hiddencode123" not in repr(auth) and "hiddencode123" not in str(auth)
    assert "***" in repr(auth)


def test_webhook_without_trailing_slash_and_with_path_prefix() -> None:
    assert WebhookAuth("https://h.example/b24/rest/1/abc").base_url == "https://h.example/b24/rest/1/abc/"


@pytest.mark.parametrize("url", [
    "https://portal.bitrix24.com/rest/1/topsecret/crm.item.get",
    "https://portal.bitrix24.com/rest/x/topsecret/",
    "https://portal.bitrix24.com/api/1/topsecret/",
    "https://portal.bitrix24.com/rest/1/topsecret/?a=1",
])
def test_bad_webhook_url_explains_the_shape_without_the_code(url: str) -> None:
    with pytest.raises(ValueError, match=r"/rest/<user id>/<code>/") as caught:
        WebhookAuth(url)
    assert "topsecret" not in str(caught.value)


def test_plain_http_only_to_loopback_unless_allowed() -> None:
    for url in ("http://127.0.0.1:8765/rest/1/x1y/", "http://localhost/rest/1/x1y/", "http://[::1]:80/rest/1/x1y/"):
        assert WebhookAuth(url).base_url == url
    with pytest.raises(ValueError, match="plain http to portal.example.com.*allow_http=True"):
        WebhookAuth("http://portal.example.com/rest/1/x1y/")
    assert WebhookAuth("http://portal.example.com/rest/1/x1y/", allow_http=True)
    with pytest.raises(ValueError, match="plain http"):
        OAuthAuth("http://portal.example.com/rest/", "a", "r", "id", "sec")


def make_oauth(saved: list[OAuthTokens] | None = None) -> tuple[Client, OAuthAuth]:
    store = saved if saved is not None else []
    auth = OAuthAuth(ENDPOINT, "access-old-1", "refresh-old-1", "app.client", "client-secret-1",
                     on_tokens=store.append)
    client = Client(auth, bucket=LeakyBucket(1000, 1000), retry=RetryPolicy(max_attempts=1))
    return client, auth


def token_answer(n: int) -> dict[str, Any]:
    return {"access_token": f"access-new-{n}", "refresh_token": f"refresh-new-{n}", "expires_in": 3600,
            "client_endpoint": ENDPOINT, "member_id": "m1", "domain": "oauth.bitrix.info"}


@responses.activate
def test_expired_token_refreshes_once_retries_and_hands_tokens_to_callback() -> None:
    saved: list[OAuthTokens] = []
    client, auth = make_oauth(saved)
    responses.post(ENDPOINT + "crm.item.get", status=401, json=EXPIRED)
    responses.get(TOKEN_URL, json=token_answer(1))
    responses.post(ENDPOINT + "crm.item.get", json={"result": {"item": {"id": 1}}})
    assert client.call("crm.item.get", {"id": 1}).result == {"item": {"id": 1}}
    first, refresh, retry = (call.request for call in responses.calls)
    assert json.loads(first.body)["auth"] == "access-old-1"
    query = parse_qs(urlsplit(refresh.url).query)
    assert query["grant_type"] == ["refresh_token"] and query["refresh_token"] == ["refresh-old-1"]
    assert query["client_secret"] == ["client-secret-1"]
    assert json.loads(retry.body)["auth"] == "access-new-1"
    assert [t.refresh_token for t in saved] == ["refresh-new-1"]
    assert "access-new-1" not in repr(saved[0]) and client.stats.refreshes == 1


@responses.activate
def test_expired_again_after_refresh_fails_without_a_loop() -> None:
    client, auth = make_oauth()
    responses.post(ENDPOINT + "crm.item.get", status=401, json=EXPIRED)
    responses.get(TOKEN_URL, json=token_answer(1))
    with pytest.raises(TokenExpired):
        client.call("crm.item.get", {"id": 1})
    assert len(responses.calls) == 3 and auth.refreshes == 1


@pytest.mark.parametrize("body", [
    {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"},
    {"error": "invalid_token", "error_description": "Token expired or invalid"},
    {"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"},
])
@responses.activate
def test_other_401_fails_at_once(body: dict[str, str]) -> None:
    client, auth = make_oauth()
    responses.post(ENDPOINT + "crm.item.get", status=401, json=body)
    with pytest.raises(AuthError) as caught:
        client.call("crm.item.get", {"id": 1})
    assert not isinstance(caught.value, TokenExpired)
    assert len(responses.calls) == 1 and auth.refreshes == 0


@responses.activate
def test_refresh_rejected_is_an_auth_error_without_secrets() -> None:
    client, _ = make_oauth()
    responses.post(ENDPOINT + "crm.item.get", status=401, json=EXPIRED)
    responses.get(TOKEN_URL, status=400, json={"error": "invalid_grant",
                                               "error_description": "refresh-old-1 is not valid"})
    with pytest.raises(AuthError) as caught:
        client.call("crm.item.get", {"id": 1})
    assert caught.value.code == "invalid_grant" and caught.value.method == "oauth.token"
    for secret in ("refresh-old-1", "client-secret-1", "access-old-1"):
        assert secret not in str(caught.value)
    assert len(responses.calls) == 2


@responses.activate
def test_concurrent_expiry_refreshes_only_once() -> None:
    client, auth = make_oauth()
    gate = threading.Barrier(4)

    def answer(request: Any) -> tuple[int, dict, str]:
        token = json.loads(request.body)["auth"]
        if token == "access-old-1":
            gate.wait(timeout=5)
            return 401, {}, json.dumps(EXPIRED)
        return 200, {}, json.dumps({"result": True})

    responses.add_callback(responses.POST, ENDPOINT + "crm.item.get", callback=answer)
    responses.get(TOKEN_URL, json=token_answer(1))
    threads = [threading.Thread(target=client.call, args=("crm.item.get", {})) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert auth.refreshes == 1
    assert sum(1 for c in responses.calls if c.request.url.startswith(TOKEN_URL)) == 1


@responses.activate
def test_tokens_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    client, _ = make_oauth()
    responses.post(ENDPOINT + "crm.item.get", status=401, json=EXPIRED)
    responses.get(TOKEN_URL, json=token_answer(2))
    responses.post(ENDPOINT + "crm.item.get", json={"result": 1})
    with caplog.at_level(logging.DEBUG):
        client.call("crm.item.get", {})
    for secret in ("access-old-1", "refresh-old-1", "client-secret-1", "access-new-2", "refresh-new-2"):
        assert secret not in caplog.text
    assert "crm.item.get -> HTTP 401" in caplog.text
    assert "client-secret-1" not in repr(client) and "access" not in repr(client.auth)
