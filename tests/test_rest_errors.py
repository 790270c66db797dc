"""Typed errors built from the portal's error bodies, including every documented error fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from support import DOCS_FIXTURES
from test_rest_support import BASE, CODE

from connector.rest import Client, RetryPolicy
from connector.rest.errors import (
    AccessDenied,
    AuthError,
    B24Error,
    InvalidArgument,
    NotFound,
    OperationTimeLimit,
    QueryLimit,
    TokenExpired,
    error_from_body,
)

FIXTURES = DOCS_FIXTURES  # the official docs' JSON examples, vendored under tests/fixtures/
ERROR_FILES = sorted(p for p in FIXTURES.glob("*.error.json")
                     if "error" in json.loads(p.read_text()))

EXPECTED = {"NOT_FOUND": NotFound, "ACCESS_DENIED": AccessDenied, "INVALID_ARG_VALUE": InvalidArgument,
            "BX_EMPTY_REQUIRED": InvalidArgument}


def test_the_doc_error_fixtures_are_there() -> None:
    assert len(ERROR_FILES) > 20  # vendored: an empty list would silently test nothing


@pytest.mark.parametrize("path", ERROR_FILES, ids=lambda p: p.name)
def test_every_doc_error_fixture_becomes_a_typed_error_through_the_client(path: Path) -> None:
    body = json.loads(path.read_text())
    method = path.name.removesuffix(".error.json")
    client = Client.from_webhook(BASE, retry=RetryPolicy(max_attempts=1))
    with responses.RequestsMock() as rsps:
        rsps.post(BASE + method, json=body, status=400)
        with pytest.raises(B24Error) as caught:
            client.call(method, {"id": 1})
    error = caught.value
    assert error.code == ("0" if body["error"] == 0 else str(body["error"]))
    assert error.description == body["error_description"]
    assert error.status == 400 and error.method == method
    assert type(error) is EXPECTED.get(error.code, B24Error)
    assert method in str(error) and CODE not in str(error)


@pytest.mark.parametrize(("body", "cls", "code"), [
    ({"error": "NOT_FOUND", "error_description": "Element not found"}, NotFound, "NOT_FOUND"),
    ({"error": 0, "error_description": "SPA not found"}, B24Error, "0"),
    ({"error": "", "error_description": "The field STATUS_ID is required."}, B24Error, ""),
    ({"error": "100", "error_description": "Could not find value for parameter {fields}"}, InvalidArgument,
     "100"),
    ({"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}, QueryLimit,
     "QUERY_LIMIT_EXCEEDED"),
    ({"error": "OPERATION_TIME_LIMIT", "error_description": "blocked"}, OperationTimeLimit,
     "OPERATION_TIME_LIMIT"),
    ({"error": "expired_token", "error_description": "expired"}, TokenExpired, "expired_token"),
    ({"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}, AuthError, "NO_AUTH_FOUND"),
    ({"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"}, AuthError,
     "INVALID_CREDENTIALS"),
    ({"error": "invalid_token", "error_description": "bad"}, AuthError, "invalid_token"),
    ({"error": "Status is not found.", "error_description": "Directory item not found."}, B24Error,
     "Status is not found."),
    ({"error": "SOMETHING_NEW"}, B24Error, "SOMETHING_NEW"),
])
def test_error_mapping(body: dict, cls: type, code: str) -> None:
    error = error_from_body(body, 400, "crm.x")
    assert type(error) is cls
    assert error.code == code


def test_token_expired_is_an_auth_error_and_str_names_method_status_code() -> None:
    error = error_from_body({"error": "expired_token", "error_description": "expired"}, 401, "crm.item.get")
    assert isinstance(error, AuthError)
    assert str(error) == "crm.item.get failed (HTTP 401): expired_token: expired"
    assert "TokenExpired(code='expired_token'" in repr(error)


def test_empty_code_is_shown_explicitly() -> None:
    assert '""' in str(error_from_body({"error": "", "error_description": "x"}, 400, "m"))
