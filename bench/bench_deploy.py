"""Benchmark: HTTP requests and time to apply hr_candidates.toml to an empty emulator, then re-apply.

Targets from issue 4: apply ≤ 8 HTTP requests, re-apply ≤ 3 (reads only). Last line: one JSON object.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.deploy import apply  # noqa: E402
from connector.emulator import Emulator, serve  # noqa: E402
from connector.rest import Client  # noqa: E402
from connector.store import Store  # noqa: E402
from connector.templates import load_template  # noqa: E402


def main() -> dict[str, object]:
    template = load_template(ROOT / "mappings" / "hr_candidates.toml")
    emu = Emulator()
    server = serve(emu)
    try:
        client = Client.from_webhook(server.webhook_url, allow_http=True)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(Path(tmp) / "bench.db")
            t0 = time.perf_counter()
            first = apply(client, [template], store)
            t1 = time.perf_counter()
            second = apply(client, [template], store)
            t2 = time.perf_counter()
    finally:
        server.stop()
    figures = {
        "apply_requests": first.requests,
        "apply_write_calls": first.write_calls,
        "apply_seconds": round(t1 - t0, 3),
        "reapply_requests": second.requests,
        "reapply_write_calls": second.write_calls,
        "reapply_seconds": round(t2 - t1, 3),
        "apply_ok": first.requests <= 8 and first.converged,
        "reapply_ok": second.requests <= 3 and second.write_calls == 0,
    }
    print(
        f"apply hr_candidates on an empty portal: {first.requests} HTTP requests "
        f"({first.write_calls} write calls) in {figures['apply_seconds']} s (target ≤ 8 requests)"
    )
    print(
        f"re-apply: {second.requests} HTTP requests, {second.write_calls} writes in "
        f"{figures['reapply_seconds']} s (target ≤ 3, reads only)"
    )
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
