"""Errors a handler raises; the HTTP layer turns them into the Bitrix24 error envelope."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A REST error: `{"error": code, "error_description": description}` with an HTTP status."""

    def __init__(self, code: Any, description: str, status: int = 400, **extra: Any) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON error body exactly as the server sends it (no `time`)."""
        return {"error": self.code, "error_description": self.description, **self.extra}
