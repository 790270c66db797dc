"""b24sync."""
