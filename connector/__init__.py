"""b24sync: a connector for Bitrix24 smart processes (deploy, two-way sync, reports)."""

__version__ = "0.1.0"
