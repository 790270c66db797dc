"""Local exports and reports over the SQLite store (reads only; never writes the store)."""

from connector.reports.errors import ReportError
from connector.reports.export import ExportResult, export
from connector.reports.report import KINDS, REPORT_FORMATS, ReportResult, report
from connector.reports.status import StatusReport, status
from connector.reports.writers import DIALECTS, FORMATS

__all__ = [
    "DIALECTS", "FORMATS", "KINDS", "REPORT_FORMATS", "ExportResult", "ReportError", "ReportResult",
    "StatusReport", "export", "report", "status",
]
