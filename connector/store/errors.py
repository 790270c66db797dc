"""Errors raised by the local store."""


from connector.errors import B24SyncError


class StoreError(B24SyncError):
    """A store operation got bad input or found the file in an unexpected state."""
