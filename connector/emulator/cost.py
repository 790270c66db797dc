"""Emulator: cost (being written)."""
