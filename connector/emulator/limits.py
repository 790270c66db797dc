"""Emulator: limits (being written)."""
