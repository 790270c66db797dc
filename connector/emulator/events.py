"""Emulator: events (being written)."""
