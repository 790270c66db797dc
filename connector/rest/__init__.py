"""The transport to one Bitrix24 portal: auth, limits, retries, batch, paging, typed errors."""

from .auth import Auth, OAuthAuth, OAuthTokens, WebhookAuth
from .client import Client, ClientStats
from .encoding import EncodedParams, command, json_params, php_query
from .errors import (
    AccessDenied,
    AuthError,
    B24Error,
    InvalidArgument,
    NotFound,
    OperationTimeLimit,
    OutcomeUnknown,
    PortalUnreachable,
    QueryLimit,
    TokenExpired,
    TransportError,
)
from .limits import LeakyBucket, MethodLedger
from .models import ApiResponse, BatchResult
from .paging import default_rows_key
from .retry import RetryPolicy, is_read

__all__ = [
    "AccessDenied", "ApiResponse", "Auth", "AuthError", "B24Error", "BatchResult", "Client", "ClientStats",
    "InvalidArgument", "LeakyBucket", "MethodLedger", "NotFound", "OAuthAuth", "OAuthTokens",
    "OperationTimeLimit", "OutcomeUnknown", "PortalUnreachable", "QueryLimit", "RetryPolicy", "TokenExpired",
    "TransportError",
    "EncodedParams", "WebhookAuth", "command", "default_rows_key", "is_read", "json_params", "php_query",
]
