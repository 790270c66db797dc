"""Errors raised by the local store."""


class StoreError(Exception):
    """A store operation got bad input or found the file in an unexpected state."""
