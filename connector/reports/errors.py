"""Errors raised by exports, reports and status (all are bad input or a bad store file)."""


class ReportError(ValueError):
    """A bad request for an export or report: unknown process, column, format or filter."""
