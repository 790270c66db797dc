"""Side by side: b24sync against fast-bitrix24 and b24pysdk, reading the same items from one emulator.

One run, for N = 10,000 and 100,000 items of the shipped `car` process:
- seeds a portal state file once per N (in this process), then for every case starts a fresh
  `b24sync emulator serve --state <copy> --limits standard` over loopback (each case gets the
  standard plan's request bucket and its own 10-minute operating-time budget);
- runs each reader in its own Python process (its own GIL, its own peak RSS), through a counting
  proxy on 127.0.0.1 that forwards every request unchanged and keeps the bytes to count afterwards;
- cases: b24sync raw read (`Client.iter_list`), b24sync first full sync into SQLite, fast-bitrix24
  `get_all`, b24pysdk `call_list_fast` and `as_list_fast`; every peer with its documented defaults
  (b24pysdk builds `https://` URLs: the bench points its URL builder at the loopback `http://`);
- reports HTTP requests, COUNT calls (list calls without start=-1: server-behaviour.md §1, the server
  counts), 503s, 429s and requests the portal dropped, batch commands refused (by error code), wall
  time, the reader's CPU seconds and peak RSS (`VmHWM`), the portal process's CPU seconds, and the
  emulator's simulated server seconds (the sum of `time.duration` of direct calls and of
  `result_time` entries of batches);
- at the largest N, the same first sync once more against a server that replays the recorded answers
  of a first sync byte for byte and at once ("portal replayed"): the client's own speed, with a
  portal that costs nothing (on these 2 cores the emulator's CPU competes with the client's);
- then an incremental b24sync sync of k = 100 portal edits at the largest N, beside what a stateless
  peer must do instead (a full re-read, measured above), and a COUNT probe (one page with and one
  without COUNT) for the decision in docs/PERFORMANCE.md.
Each case runs `--repeat` times (default 2) and the fastest run is reported (all wall times are kept
in the JSON): on a shared machine the load average moves under the runs, and the fastest run is the
one least disturbed. Prints a table, then one JSON line; the load average is recorded beside every
figure.

    pip install -e '.[bench]'
    python bench/compare.py [--sizes 10000,100000] [--repeat 2] [--case-timeout 600] [--limits standard]
"""

from __future__ import annotations

import argparse
import compileall
import http.client
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "mappings" / "car_service.toml"
CASES = ("b24sync read", "b24sync sync", "fast-bitrix24 get_all", "b24pysdk call_list_fast",
         "b24pysdk as_list_fast")
K_EDITS = 100


# ---- the counting proxy --------------------------------------------------------------------


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no access log."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return


class LoopbackServer:
    """A threading HTTP server on 127.0.0.1 (a free port), served on a daemon thread."""

    def _start(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client that hung up: not our figure
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, webhook_path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{webhook_path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class CountingProxy(LoopbackServer):
    """Forwards HTTP to the emulator unchanged; keeps each request and answer to count afterwards."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.exchanges: list[tuple[str, str, bytes, int, bytes]] = []
        self.dropped: list[str] = []  # requests the portal answered with no response at all
        self.lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                self.forward("GET")

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                self.forward("POST")

            def forward(self, verb: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ctype = self.headers.get("Content-Type", "")
                try:
                    status, headers, answer = proxy.send(verb, self.path, body, ctype)
                except (OSError, http.client.HTTPException) as exc:  # the portal dropped the connection
                    with proxy.lock:
                        proxy.dropped.append(type(exc).__name__)
                    self.close_connection = True
                    return
                self.send_response(status)
                for name, value in headers:
                    if name.lower() in ("content-type", "retry-after"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                with proxy.lock:
                    proxy.exchanges.append((self.path, ctype, body, status, answer))

        self.local = threading.local()
        self._start(Handler)

    def send(self, verb: str, path: str, body: bytes, ctype: str) -> tuple[int, list[tuple[str, str]], bytes]:
        """One exchange with the portal. A connection it resets is opened again (up to 5 tries): the
        emulator's server keeps socketserver's accept backlog of 5, which a portal's front end does not
        have, so a peer opening 50 connections at once would otherwise see resets no portal gives."""
        headers = {"Content-Type": ctype} if ctype else {}
        for attempt in range(5):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
            try:
                conn.request(verb, path, body=body, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.getheaders(), resp.read()
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def figures(self) -> dict[str, Any]:
        """HTTP requests, COUNT calls, 503s, 429s and simulated server seconds of what went through."""
        out = {"http_requests": len(self.dropped), "count_calls": 0, "http_503": 0, "http_429": 0,
               "dropped": len(self.dropped), "dropped_by": dict(Counter(self.dropped)), "batch_errors": {},
               "scan_ends": 0,
               "server_seconds": 0.0}
        for path, ctype, body, status, answer in self.exchanges:
            out["http_requests"] += 1
            out["http_503"] += status == 503
            out["http_429"] += status == 429
            method = path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json").lower()
            params = decode_params(body, ctype)
            if method == "batch":
                failed, ends = batch_failures(params, answer)
                out["scan_ends"] += ends
                for code in failed:
                    out["batch_errors"][code] = out["batch_errors"].get(code, 0) + 1
                for command in batch_commands(params):
                    name, _, query = command.partition("?")
                    out["count_calls"] += counts(name, {k: v[-1] for k, v in parse_qs(query).items()})
            else:
                out["count_calls"] += counts(method, params)
            out["server_seconds"] += simulated_seconds(method, answer)
        out["server_seconds"] = round(out["server_seconds"], 1)
        return out


def decode_params(body: bytes, ctype: str) -> dict[str, Any]:
    if not body:
        return {}
    if "json" in ctype:
        try:
            data = json.loads(body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def batch_commands(params: dict[str, Any]) -> Iterator[str]:
    cmd = params.get("cmd")
    if isinstance(cmd, dict):
        yield from (str(v) for v in cmd.values())
    elif isinstance(cmd, list):
        yield from (str(v) for v in cmd)
    else:  # form-encoded: cmd[label]=...
        yield from (str(v) for k, v in params.items() if k.startswith("cmd["))


def counts(method: str, params: dict[str, Any]) -> int:
    """1 when the server runs COUNT for this call: a list method without start=-1 (server-behaviour §1)."""
    if not method.lower().endswith(".list"):
        return 0
    try:
        return 0 if int(str(params.get("start", 0))) == -1 else 1
    except ValueError:
        return 1


def batch_failures(params: dict[str, Any], answer: bytes) -> tuple[list[str], int]:
    """Error codes of a batch's failed commands (`result_error`, e.g. OPERATION_TIME_LIMIT), and how
    many of them were the end of a keyset scan rather than a failure.

    A chained keyset scan sends page k+1 in the same batch as page k, filtered on page k's 50th id.
    When page k comes back short (under 50 rows: the last page), that reference points at nothing,
    the portal refuses page k+1 with INVALID_ARG_VALUE and `halt` ends the batch: the scan ends
    there by design, so such a refusal is counted as a scan end, not as a failed command.
    """
    try:
        inner = json.loads(answer).get("result")
    except (ValueError, AttributeError):
        return [], 0
    if not isinstance(inner, dict):
        return [], 0
    errors = inner.get("result_error")
    results = inner.get("result")
    labels = _command_labels(params)
    failed: list[str] = []
    ends = 0
    items = errors.items() if isinstance(errors, dict) else enumerate(errors or [])
    for label, error in items:
        if not isinstance(error, dict):
            continue
        code = str(error.get("error"))
        before = labels[labels.index(str(label)) - 1] if str(label) in labels[1:] else None
        if code == "INVALID_ARG_VALUE" and before is not None and _short_page(results, before):
            ends += 1
        else:
            failed.append(code)
    return failed, ends


def _command_labels(params: dict[str, Any]) -> list[str]:
    """A batch's command labels in the order sent (`cmd` as an object, a list, or `cmd[label]` form)."""
    cmd = params.get("cmd")
    if isinstance(cmd, dict):
        return [str(k) for k in cmd]
    if isinstance(cmd, list):
        return [str(i) for i in range(len(cmd))]
    return [k[4:-1] for k in params if k.startswith("cmd[") and k.endswith("]")]


def _short_page(results: Any, label: str) -> bool:
    """Whether command `label` answered a list page of fewer than 50 rows (the scan's last page)."""
    answer = results.get(label) if isinstance(results, dict) else None
    rows = answer.get("items") if isinstance(answer, dict) else answer
    return isinstance(rows, list) and len(rows) < 50


def simulated_seconds(method: str, answer: bytes) -> float:
    try:
        data = json.loads(answer)
    except ValueError:
        return 0.0
    if not isinstance(data, dict):
        return 0.0
    if method == "batch":
        inner = data.get("result") if isinstance(data.get("result"), dict) else {}
        times = inner.get("result_time") or {}
        values = times.values() if isinstance(times, dict) else times
        return sum(float(t.get("duration") or 0) for t in values if isinstance(t, dict))
    timing = data.get("time")
    return float(timing.get("duration") or 0) if isinstance(timing, dict) else 0.0


# ---- the portal -----------------------------------------------------------------------------


def seed_state(path: Path, n: int) -> dict[str, Any]:
    """A portal state file holding the car process and n items; returns etid and the pull's select."""
    import responses

    sys.path.insert(0, str(ROOT / "tests"))
    from test_sync_support import setup_processes

    from connector.emulator import Emulator
    from connector.rest import Client
    from connector.sync import maps as mapmod
    from connector.templates import load_templates

    templates = load_templates([str(TEMPLATE)])
    # a virtual clock (2026-01-01) while seeding: the items are old when the served portal (real clock)
    # is synced, so an incremental sync's overlap window holds only the items edited later
    emu = Emulator(limits="off", clock="virtual", state_file=str(path))
    etid = setup_processes(emu, templates)["car"]
    types = emu.call("crm.type.list", {})["result"]["types"]
    type_id = next(t["id"] for t in types if t["entityTypeId"] == etid)
    uf = f"UF_CRM_{type_id}_MODEL"
    emu.seed_items(etid, n, fields={"TITLE": lambda i: f"car {i}", uf: lambda i: f"model {i}"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        pmap = mapmod.discover(Client.from_webhook(emu.register(rsps)), templates)["car"]
    emu.close()
    return {"etid": etid, "select": pmap.select(), "uf": uf}


class Portal:
    """`b24sync emulator serve` on a copy of a state file, standard-plan limits, a loopback port."""

    limits = "standard"

    def __init__(self, state: Path, workdir: Path) -> None:
        copy = workdir / f"portal-{time.monotonic_ns()}.db"
        shutil.copyfile(state, copy)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "emulator", "serve", "--state", str(copy), "--limits",
             self.limits, "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        )
        line = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"emulator serve did not print its webhook URL (got {line!r})")
        self.url = line
        parts = urlsplit(line)
        self.origin, self.path = f"http://{parts.netloc}", parts.path

    def cpu_seconds(self) -> float:
        """CPU seconds the portal process has used so far (user + system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ReplayedPortal(LoopbackServer):
    """Answers every request with the bytes a real run got for the same request (path and body), at
    once: the client's own cost with a portal that costs nothing. A request never seen gets a 500."""

    def __init__(self, exchanges: list[tuple[str, str, bytes, int, bytes]]) -> None:
        answers = {(path, body): (status, ctype, answer) for path, ctype, body, status, answer in exchanges}
        self.unmatched = 0
        replay = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                found = answers.get((self.path, body))
                if found is None:
                    replay.unmatched += 1
                    found = (500, "application/json", b'{"error":"NOT_RECORDED"}')
                status, _, answer = found
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._start(Handler)


def run_child(case: str, url: str, info: dict[str, Any], store: Path, timeout: float) -> dict[str, Any]:
    """Run one case in a child process (its own GIL and peak RSS); its JSON figures or an error."""
    args = [sys.executable, __file__, "--case", case, "--url", url, "--etid", str(info["etid"]),
            "--select", json.dumps(info["select"]), "--store", str(store)]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {timeout:g} s"}
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": failure(done.stderr)}


def measure_replayed(exchanges: list[Any], portal_path: str, info: dict[str, Any], store: Path,
                     timeout: float) -> dict[str, Any]:
    """A first sync against the recorded answers of a first sync: the client alone."""
    for leftover in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        leftover.unlink(missing_ok=True)
    replay = ReplayedPortal(exchanges)
    try:
        result = run_child("b24sync sync", replay.url(portal_path), info, store, timeout)
        if replay.unmatched:
            result = {"error": f"{replay.unmatched} request(s) not in the recording"}
        return {"case": "b24sync sync, portal replayed", **result, "http_requests": len(exchanges),
                "count_calls": "-", "http_503": 0, "http_429": 0, "dropped": 0, "portal_cpu_seconds": "-",
                "server_seconds": "-", "load_average_1m": round(os.getloadavg()[0], 2)}
    finally:
        replay.stop()


# ---- one case in its own process ------------------------------------------------------------


def run_case(case: str, url: str, etid: int, select: list[str], store: str) -> dict[str, Any]:
    """Read (or sync) every item; runs in the child process."""
    params = {"entityTypeId": etid, "select": select, "useOriginalUfNames": "Y"}
    started = time.perf_counter()
    if case == "b24sync read":
        from connector.rest import Client

        rows = sum(1 for _ in Client.from_webhook(url, allow_http=True).iter_list("crm.item.list", params))
    elif case in ("b24sync sync", "b24sync incremental"):
        from connector.rest import Client
        from connector.store import Store
        from connector.sync import sync
        from connector.templates import load_templates

        db = Store.open(store)
        templates = load_templates([str(TEMPLATE)]) if case == "b24sync sync" else None
        report = sync(Client.from_webhook(url, allow_http=True), db, templates, portal_key="compare")
        db.close()
        rows = report.pulled
    elif case == "fast-bitrix24 get_all":
        from fast_bitrix24 import Bitrix

        rows = len(Bitrix(url).get_all("crm.item.list", params))
    elif case.startswith("b24pysdk"):
        rows = b24pysdk_read(case, url, etid, select)
    else:
        raise ValueError(f"unknown case {case!r}; known: {', '.join(CASES)}, b24sync incremental")
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime  # the whole child process, imports included
    return {"rows": rows, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak RSS: `VmHWM` (getrusage's ru_maxrss survives execve on Linux, so a child would
    report its parent's peak, here the 100,000-item seeding)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def b24pysdk_read(case: str, url: str, etid: int, select: list[str]) -> int:
    import importlib

    import b24pysdk

    caller = importlib.import_module("b24pysdk.api.callers.call_method")
    caller._MethodCaller._base_url = property(lambda self: f"http://{self._domain}/rest")  # loopback only
    parts = urlsplit(url)
    user, code = parts.path.strip("/").split("/")[1:3]
    token = b24pysdk.BitrixWebhook(domain=parts.netloc, webhook_token=f"{user}/{code}")
    if case == "b24pysdk call_list_fast":
        answer = token.call_list_fast("crm.item.list", {"entityTypeId": etid, "select": select,
                                                        "useOriginalUfNames": "Y"})
        return sum(1 for _ in answer["result"])
    request = b24pysdk.Client(token).crm.item.list(etid, select=select, use_original_uf_names=True)
    return sum(1 for _ in request.as_list_fast().result)


def measure(case: str, state: Path, info: dict[str, Any], workdir: Path, store: Path, timeout: float,
            before: Any = None, keep: list[Any] | None = None) -> dict[str, Any]:
    """Start a portal and a proxy, run one case in a child process, and count what went through
    (the exchanges themselves are appended to `keep` when given)."""
    portal = Portal(state, workdir)
    try:
        if before is not None:
            before(portal)
        proxy = CountingProxy(portal.origin)
        portal_cpu = portal.cpu_seconds()  # after loading the state file
        try:
            result = run_child(case, proxy.url(portal.path), info, store, timeout)
            load = round(os.getloadavg()[0], 2)
            portal_cpu = round(portal.cpu_seconds() - portal_cpu, 2)
            if keep is not None:
                keep.extend(proxy.exchanges)
            return {"case": case, **result, **proxy.figures(), "portal_cpu_seconds": portal_cpu,
                    "load_average_1m": load}
        finally:
            proxy.stop()
    finally:
        portal.stop()


def failure(stderr: str) -> str:
    """The exceptions of a failed case, cause first: `ServerError <- RuntimeError: ...`."""
    found = [line.strip() for line in stderr.splitlines()
             if re.match(r"^[A-Za-z_.]*(Error|Exception|Exhausted)\b", line.strip())]
    return " <- ".join(dict.fromkeys(found))[:300] or "no output"


def edit_items(info: dict[str, Any], k: int) -> Any:
    """A `before` hook: k items change on the portal (sent straight to it, not through the proxy)."""

    def edit(portal: Portal) -> None:
        from connector.rest import Client

        client = Client.from_webhook(portal.url, allow_http=True)
        commands = [(f"u{i}", ("crm.item.update", {"entityTypeId": info["etid"], "id": i,
                                                   "fields": {info["uf"]: f"edited {i}"},
                                                   "useOriginalUfNames": "Y"})) for i in range(1, k + 1)]
        result = client.batch_all(commands)
        if result.errors:
            raise RuntimeError(f"editing items failed: {next(iter(result.errors.values()))}")

    return edit


def count_probe(state: Path, info: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Simulated server seconds of one page with COUNT (start=0) and one without (start=-1)."""
    from connector.rest import Client

    portal = Portal(state, workdir)
    try:
        client = Client.from_webhook(portal.url, allow_http=True)
        out = {}
        for label, start in (("with_count", 0), ("without_count", -1)):
            params = {"entityTypeId": info["etid"], "select": info["select"], "order": {"id": "ASC"},
                      "filter": {">id": 0}, "start": start}
            answer = client.call("crm.item.list", params)
            out[label] = float(answer.time.get("duration") or 0)
        return out
    finally:
        portal.stop()


# ---- the report -----------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| case | N | rows | HTTP requests | COUNT calls | 503s / 429s / dropped | wall s | items/s "
            "| client CPU s | portal CPU s | peak RSS MB | simulated server s | load avg |")
    lines = [head, "|" + "---|" * 13]
    notes: list[str] = []
    for r in rows:
        rate = round(r["rows"] / r["seconds"]) if r.get("seconds") and r.get("rows") else "-"
        wall = r.get("seconds", "failed")
        refused = f"{r['http_503']} / {r['http_429']} / {r['dropped']}"
        lines.append(f"| {r['case']} | {r['n']:,} | {r.get('rows', '-')} | {r['http_requests']} | "
                     f"{r['count_calls']} | {refused} | {wall} | {rate} | {r.get('cpu_seconds', '-')} | "
                     f"{r['portal_cpu_seconds']} | {r.get('peak_rss_mb', '-')} | {r['server_seconds']} | "
                     f"{r['load_average_1m']} |")
        if r.get("batch_errors"):
            notes.append(f"{r['case']} at N={r['n']:,}: failed batch commands {r['batch_errors']}")
        if r.get("scan_ends"):
            notes.append(f"{r['case']} at N={r['n']:,}: {r['scan_ends']} chained page(s) after the last, "
                         "short page refused with INVALID_ARG_VALUE (the scan's end by design, no failure)")
        if r.get("error"):
            notes.append(f"{r['case']} at N={r['n']:,}: {r['error']}")
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--case-timeout", type=float, default=600.0)
    parser.add_argument("--only", default="", help="comma-separated cases to run (default: all)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per case; the fastest is reported")
    parser.add_argument("--limits", default="standard", help="emulator limits (see `emulator serve --help`)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--etid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--select", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # the child process of one case
        sys.path.insert(0, str(ROOT))
        print(json.dumps(run_case(args.case, args.url, args.etid, json.loads(args.select), args.store)))
        return
    # byte-compile b24sync as pip does for the peers' installs (an editable install compiles on first
    # import, which this machine's PYTHONDONTWRITEBYTECODE=1 would otherwise repeat in every child)
    compileall.compile_dir(str(ROOT / "connector"), quiet=1)
    cases = [c.strip() for c in args.only.split(",") if c.strip()] or list(CASES)
    Portal.limits = args.limits
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for n in sizes:
            state = workdir / f"seed-{n}.db"
            info = seed_state(state, n)
            store = workdir / f"store-{n}.db"
            runs: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
            recorded: list[Any] = []  # the exchanges of the last first sync, for the replayed case
            for _ in range(max(1, args.repeat)):  # rounds over all cases: load changes hit every case alike
                for case in cases:
                    keep = None
                    if case == "b24sync sync":  # each sync run is a first sync
                        for leftover in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
                            leftover.unlink(missing_ok=True)
                        recorded, keep = [], []
                    limit = args.case_timeout
                    runs[case].append(measure(case, state, info, workdir, store, limit, keep=keep))
                    recorded = keep if keep is not None else recorded
                    print(json.dumps({"n": n, **runs[case][-1]}), flush=True)
            for case in cases:
                done = [r for r in runs[case] if "seconds" in r]
                best = min(done, key=lambda r: r["seconds"]) if done else runs[case][-1]
                rows.append({"n": n, **best, "walls": [r.get("seconds") for r in runs[case]]})
            if n == max(sizes) and recorded:
                webhook = recorded[0][0].rsplit("/", 1)[0] + "/"
                replayed = [measure_replayed(recorded, webhook, info, store, args.case_timeout)
                            for _ in range(max(1, args.repeat))]
                for r in replayed:
                    print(json.dumps({"n": n, **r}), flush=True)
                done = [r for r in replayed if "seconds" in r]
                best = min(done, key=lambda r: r["seconds"]) if done else replayed[-1]
                rows.append({"n": n, **best, "walls": [r.get("seconds") for r in replayed]})
            if n == max(sizes) and "b24sync sync" in cases:
                edit, limit = edit_items(info, K_EDITS), args.case_timeout
                row = measure("b24sync incremental", state, info, workdir, store, limit, before=edit)
                row = {"n": n, **row}
                row["case"] = f"b24sync incremental (k={K_EDITS} edited)"
                rows.append(row)
                print(json.dumps(row), flush=True)
                extra["count_probe"] = {"n": n, **count_probe(state, info, workdir)}
    print()
    print(table(rows))
    if "count_probe" in extra:
        p = extra["count_probe"]
        print(f"\nCOUNT probe at N={p['n']:,}: one page with COUNT {p['with_count']:.3f} s simulated server "
              f"time, without {p['without_count']:.3f} s")
    load = os.getloadavg()[0]
    print(f"load average at end: {load:.2f}", flush=True)
    print(json.dumps({"bench": "compare", "load_average_end": round(load, 2), "rows": rows, **extra}))


if __name__ == "__main__":
    main()
