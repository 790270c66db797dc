"""Errors raised by exports, reports and status (all are bad input or a bad store file)."""


from connector.errors import InputError


class ReportError(InputError, ValueError):
    """A bad request for an export or report: unknown process, column, format or filter."""
