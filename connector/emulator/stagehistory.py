"""Emulator: stagehistory (being written)."""
