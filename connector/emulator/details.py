"""Emulator: details (being written)."""
