"""Emulator: faults (being written)."""
