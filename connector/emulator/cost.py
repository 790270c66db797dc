"""Emulator cost: simulated server seconds per call, so benchmarks can show server-side cost.

Counting (`start` >= 0 makes the server run COUNT) and offset paging grow with the table;
keyset pages (`start=-1` with `>id`) do not. Calibrated on the REST docs' huge-data page
(https://apidocs.bitrix24.com/settings/performance/huge-data.html): 2.39 M rows cost about 50 s per
page with counting and about 0.1 s without. The core books the estimate to the operating ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from connector.constants import PAGE_SIZE

WRITE_SUFFIXES = (".add", ".update", ".delete", ".set", ".reset", ".bind", ".unbind", ".clear")


@dataclass(frozen=True)
class CostModel:
    """Seconds charged per call; `scale` shrinks or stretches everything (time-scaled benchmarks)."""

    per_call: float = 0.005
    per_list: float = 0.02
    per_row_returned: float = 0.0008
    per_row_counted: float = 2.0e-5
    per_row_skipped: float = 2.0e-6
    per_write: float = 0.02
    scale: float = 1.0

    def estimate(
        self,
        method: str,
        params: dict[str, Any] | None,
        table_rows: int,
        counted: bool,
        offset: int,
        *,
        rows: int | None = None,
    ) -> float:
        """Simulated seconds for one call over a table of `table_rows` rows.

        `counted`: the server ran COUNT (any `start` >= 0 on a list); `offset`: rows skipped by
        `start` paging (-1 / 0 for keyset pages); `rows`: rows returned, guessed when omitted.
        """
        name = method.lower()
        table_rows = max(0, int(table_rows))
        seconds = self.per_call
        if name.endswith(".list") or name.endswith(".getlist"):
            skipped = max(0, int(offset))
            if rows is None:
                rows = min(PAGE_SIZE, max(0, table_rows - skipped))
            seconds += self.per_list + rows * self.per_row_returned + skipped * self.per_row_skipped
            if counted:
                seconds += table_rows * self.per_row_counted
        elif name.endswith(WRITE_SUFFIXES):
            seconds += self.per_write
        return seconds * self.scale


DEFAULT_MODEL = CostModel()


def estimate(
    method: str,
    params: dict[str, Any] | None,
    table_rows: int,
    counted: bool,
    offset: int,
    *,
    rows: int | None = None,
) -> float:
    """Simulated server seconds with the default model (see `CostModel.estimate`)."""
    return DEFAULT_MODEL.estimate(method, params, table_rows, counted, offset, rows=rows)


def cost_by_method(request_log: Iterable[Any]) -> dict[str, dict[str, float]]:
    """Sum `.cost` of request-log entries per `.method`: {method: {calls, seconds}}, priciest first."""
    totals: dict[str, dict[str, float]] = {}
    for entry in request_log:
        method = getattr(entry, "method", None) or "?"
        row = totals.setdefault(method, {"calls": 0, "seconds": 0.0})
        row["calls"] += 1
        row["seconds"] += float(getattr(entry, "cost", 0.0) or 0.0)
    for row in totals.values():
        row["seconds"] = round(row["seconds"], 6)
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]["seconds"]))
