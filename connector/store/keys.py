"""Local row keys: 32-hex UUIDv7 (time-ordered, so bulk inserts append to the key index)."""

from __future__ import annotations

import os
import random
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_seq = 0
_rng = random.Random(os.urandom(16))  # not for secrets; only to make keys unique across writers
os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(16)))


def new_key() -> str:
    """A fresh 32-hex local key (UUIDv7 layout: ms timestamp, 12-bit sequence, 62 random bits)."""
    return new_keys(1)[0]


def new_keys(n: int) -> list[str]:
    """`n` fresh keys in ascending order (one lock and one clock read for the lot)."""
    global _last_ms, _seq
    out: list[str] = []
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _seq = ms, -1
        getrandbits = _rng.getrandbits
        for _ in range(n):
            _seq += 1
            if _seq > 0xFFF:  # more than 4096 keys in one millisecond: borrow the next one
                _last_ms, _seq = _last_ms + 1, 0
            value = (_last_ms << 80) | (0x7 << 76) | (_seq << 64) | (0b10 << 62) | getrandbits(62)
            out.append(f"{value:032x}")
    return out
