"""Load benchmark: one `b24sync run` daemon drives sync jobs for N portals at once (issue 14).

Each portal is an emulator served on its own loopback port with the standard plan's limits (leaky
bucket of 50 requests draining 2 a second, per-method operating time) on the real clock; the limits
are NOT time-scaled: a sync needs only a handful of requests per portal (2,500 rows a request), so
real-time limits cost little wall time. The emulators live in this process (threads); the daemon is
a separate process (`b24sync -c CONFIG run --jobs DIR`), one sync job per portal, interval
`--interval` seconds, the car template of mappings/. Setup (not timed): `apply` per portal, then
`--items` items seeded straight into each emulator.

Rounds: round 0 is the first full pull; each later round makes `--edits` title edits on the portal
(two in-process batches) and as many in each local store (plain SQL, like a user), plus 5 local
inserts, then waits until every portal has a finished sync run that started after the edits and
store == portal ({id: title}, same row count). Figures per N: round wall times (edits done -> all
converged; includes waiting for the job's next trigger), daemon peak RSS (VmHWM), 503s counted by
the emulators (must be 0), the highest bucket level each emulator saw (sampled every 20 ms; within
its own bucket = never above 50), load average before and after.

`--kill` adds a run per N where the daemon gets `kill -9` at a random moment of a round with local
inserts pending, is restarted, and must converge with no duplicates (every local insert exactly once
on the portal, ids unique in the store, row counts equal).

    python bench/bench_load.py --portals 1,5,20 --items 5000 --kill

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.api import Portal  # noqa: E402
from connector.emulator import Emulator, EmulatorServer, serve  # noqa: E402
from connector.rest.encoding import command  # noqa: E402

TEMPLATE = ROOT / "mappings" / "car_service.toml"
PROCESS = "car"
LOCAL_INSERTS = 5


@dataclass
class Site:
    """One portal: its emulator, server, entity type and local store."""

    name: str
    emu: Emulator
    server: EmulatorServer
    etid: int
    db: Path
    max_level: float = 0.0
    inserted: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return int(self.emu.limiter.rejected["QUERY_LIMIT_EXCEEDED"])


class Fleet:
    """N emulators with their stores, a config and a jobs folder for the daemon."""

    def __init__(self, n: int, items: int, folder: Path, interval: float) -> None:
        self.folder = folder
        self.sites: list[Site] = []
        jobs = folder / "jobs"
        jobs.mkdir(parents=True)
        config = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("B24SYNC_")}
        for i in range(n):
            name = f"p{i:02d}"
            emu = Emulator(limits="standard")
            server = serve(emu, "127.0.0.1", 0)
            db = folder / f"{name}.db"
            with Portal.from_webhook(server.webhook_url, store=db) as portal:
                portal.apply([str(TEMPLATE)])
            etid = _etid(db)
            emu.seed_items(etid, items, {"TITLE": lambda k: f"item {k}"})
            self.sites.append(Site(name, emu, server, etid, db))
            config.append(f'[portals.{name}]\nstore = "{db}"\n')
            self.env[f"B24SYNC_PORTAL_{name.upper()}_WEBHOOK"] = server.webhook_url
            (jobs / f"sync_{name}.toml").write_text(
                f'kind = "sync"\nportal = "{name}"\ninterval = {interval}\ntemplates = ["{TEMPLATE}"]\n'
            )
        self.config = folder / "b24sync.toml"
        self.config.write_text("\n".join(config))
        self.jobs = jobs
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            for site in self.sites:
                level = site.emu.limiter.bucket_level(site.emu.clock.now())
                site.max_level = max(site.max_level, level)

    def wait_drained(self) -> None:
        """Setup used the buckets; the measured run starts with every bucket empty."""
        while any(s.emu.limiter.bucket_level(s.emu.clock.now()) > 0 for s in self.sites):
            time.sleep(0.2)
        for site in self.sites:
            site.max_level = 0.0
            site.emu.limiter.rejected["QUERY_LIMIT_EXCEEDED"] = 0

    def close(self) -> None:
        self._stop.set()
        for site in self.sites:
            site.server.stop()

    # -- edits on both sides -------------------------------------------------------------------
    def edit(self, rng: random.Random, count: int, round_no: int) -> None:
        for site in self.sites:
            # items created by earlier local inserts keep their titles: the duplicate check looks for them
            ids = sorted(i for i, title in portal_titles(site).items() if title not in site.inserted)
            picked = rng.sample(ids, min(len(ids), 2 * count))
            remote, local = picked[:count], picked[count:]
            for start in range(0, len(remote), 50):
                cmd = {
                    f"u{n}": command(
                        "crm.item.update",
                        {
                            "entityTypeId": site.etid,
                            "id": item_id,
                            "fields": {"title": f"remote r{round_no} {item_id}"},
                        },
                    )
                    for n, item_id in enumerate(remote[start : start + 50])
                }
                answer = site.emu.call("batch", {"halt": 0, "cmd": cmd})
                assert not answer["result"]["result_error"], answer["result"]["result_error"]
            titles = [f"{site.name} new r{round_no} #{k}" for k in range(LOCAL_INSERTS)]
            with sqlite3.connect(site.db, timeout=30) as conn:
                conn.executemany(
                    f'UPDATE "{PROCESS}" SET title = ? WHERE id = ?',
                    [(f"local r{round_no} {i}", i) for i in local],
                )
                conn.executemany(f'INSERT INTO "{PROCESS}" (title) VALUES (?)', [(t,) for t in titles])
            site.inserted += titles

    # -- convergence ---------------------------------------------------------------------------
    def lagging(self, marks: dict[str, int]) -> list[str]:
        """Portals without a finished run started after `marks`, or whose store differs from the portal."""
        out = []
        for site in self.sites:
            if last_finished_run(site.db) <= marks.get(site.name, 0) or store_titles(site) != portal_titles(
                site
            ):
                out.append(site.name)
        return out

    def duplicates(self) -> list[str]:
        problems = []
        for site in self.sites:
            titles = list(portal_titles(site).values())
            for title in site.inserted:
                if titles.count(title) != 1:
                    problems.append(f"{site.name}: {title!r} is on the portal {titles.count(title)} times")
            with ro(site.db) as conn:
                rows, ids = conn.execute(
                    f'SELECT COUNT(*), COUNT(DISTINCT id) FROM "{PROCESS}" WHERE deleted = 0'
                ).fetchone()
            if rows != ids or rows != len(titles):
                problems.append(
                    f"{site.name}: store rows {rows}, distinct ids {ids}, portal items {len(titles)}"
                )
        return problems


def _etid(db: Path) -> int:
    with ro(db) as conn:
        (extra,) = conn.execute(
            "SELECT extra FROM _idmap WHERE kind = 'type' AND code = ?", (PROCESS,)
        ).fetchone()
    return int(json.loads(extra)["entityTypeId"])


def ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)


def portal_titles(site: Site) -> dict[int, str]:
    return {int(r["ID"]): str(r["TITLE"]) for r in site.emu.items(site.etid)}


def store_titles(site: Site) -> dict[int | str, str]:
    """{id: title} of the live store rows; a row not yet on the portal counts under its key."""
    with ro(site.db) as conn:
        rows = conn.execute(f'SELECT id, key, title FROM "{PROCESS}" WHERE deleted = 0').fetchall()
    return {int(i) if i is not None else f"unpushed {k}": str(t) for i, k, t in rows}


def last_finished_run(db: Path) -> int:
    with ro(db) as conn:
        row = conn.execute(
            "SELECT MAX(id) FROM _runs WHERE kind = 'sync' AND finished_at IS NOT NULL"
        ).fetchone()
    return int(row[0] or 0)


def last_run(db: Path) -> int:
    with ro(db) as conn:
        return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM _runs").fetchone()[0])


def run_seconds(db: Path, after: int) -> list[float]:
    with ro(db) as conn:
        rows = conn.execute(
            "SELECT figures FROM _runs WHERE kind = 'sync' AND id > ? AND finished_at IS NOT NULL", (after,)
        ).fetchall()
    return [float(json.loads(f or "{}").get("seconds", 0.0)) for (f,) in rows]


class Daemon:
    """`b24sync -c CONFIG run --jobs DIR` in its own process group."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.log = open(fleet.folder / "daemon.log", "ab")  # noqa: SIM115 - closed in stop()
        exe = Path(sys.executable).with_name("b24sync")
        self.proc = subprocess.Popen(
            [str(exe), "-c", str(fleet.config), "run", "--jobs", str(fleet.jobs)],
            env=fleet.env,
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            cwd=fleet.folder,
        )
        self.peak_mb = 0.0

    def sample_peak(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
        except OSError:
            pass
        return self.peak_mb

    def kill9(self) -> None:
        self.sample_peak()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    def stop(self) -> None:
        self.sample_peak()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.log.close()


def wait_converged(
    fleet: Fleet, daemon: Daemon, marks: dict[str, int], timeout: float
) -> tuple[float, list[str]]:
    started = time.monotonic()
    lagging = fleet.lagging(marks)
    while lagging and time.monotonic() - started < timeout:
        daemon.sample_peak()
        time.sleep(0.5)
        lagging = fleet.lagging(marks)
    return round(time.monotonic() - started, 2), lagging


def marks_now(fleet: Fleet) -> dict[str, int]:
    return {s.name: last_run(s.db) for s in fleet.sites}


def scale_run(n: int, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    """Round 0 (the first full pull) and `--rounds` rounds of edits on both sides, one daemon."""
    with tempfile.TemporaryDirectory(prefix=f"b24load{n}-") as tmp:
        setup = time.monotonic()
        fleet = Fleet(n, args.items, Path(tmp), args.interval)
        fleet.wait_drained()
        setup_s = round(time.monotonic() - setup, 1)
        load_before = os.getloadavg()
        try:
            marks = marks_now(fleet)
            daemon = Daemon(fleet)
            rounds = []
            wall, lagging = wait_converged(fleet, daemon, marks, args.timeout)
            rounds.append(
                {
                    "round": 0,
                    "wall_s": wall,
                    "not_converged": lagging,
                    "job_s_max": max(max(run_seconds(s.db, marks[s.name]), default=0) for s in fleet.sites),
                }
            )
            for round_no in range(1, args.rounds + 1):
                marks = marks_now(fleet)
                fleet.edit(rng, args.edits, round_no)
                wall, lagging = wait_converged(fleet, daemon, marks, args.timeout)
                rounds.append(
                    {
                        "round": round_no,
                        "wall_s": wall,
                        "not_converged": lagging,
                        "job_s_max": max(
                            max(run_seconds(s.db, marks[s.name]), default=0) for s in fleet.sites
                        ),
                    }
                )
            daemon.stop()
            duplicates = fleet.duplicates()
        finally:
            fleet.close()
        return {
            "portals": n,
            "items_per_portal": args.items,
            "edits_per_side": args.edits,
            "setup_s": setup_s,
            "rounds": rounds,
            "daemon_peak_mb": round(daemon.peak_mb, 1),
            "http_503": sum(s.rejected for s in fleet.sites),
            "max_bucket_level": round(max(s.max_level for s in fleet.sites), 2),
            "converged": all(not r["not_converged"] for r in rounds),
            "duplicates": duplicates,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        }


def kill_run(n: int, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    """Converge; then `--kills` times: edit both sides, wait for a sync run to be under way, `kill -9`
    the daemon a random 0-`--kill-within` s into it, restart. Finally: converged, no duplicates."""
    with tempfile.TemporaryDirectory(prefix=f"b24kill{n}-") as tmp:
        fleet = Fleet(n, args.items, Path(tmp), args.interval)
        fleet.wait_drained()
        kills: list[dict[str, Any]] = []
        try:
            daemon = Daemon(fleet)
            first, lagging0 = wait_converged(fleet, daemon, marks_now(fleet), args.timeout)
            marks = marks_now(fleet)
            for cycle in range(1, args.kills + 1):
                fleet.edit(rng, args.edits, cycle)
                edited = time.monotonic()
                while not open_runs(fleet, marks) and time.monotonic() - edited < args.interval + 30:
                    time.sleep(0.02)
                delay = rng.uniform(0.0, args.kill_within)
                time.sleep(delay)
                cut = open_runs(fleet, marks)
                daemon.kill9()
                kills.append({"after_edits_s": round(time.monotonic() - edited, 2), "runs_cut": len(cut)})
                daemon = Daemon(fleet)
            wall, lagging = wait_converged(fleet, daemon, marks, args.timeout)
            daemon.stop()
            duplicates = fleet.duplicates()
        finally:
            fleet.close()
        return {
            "portals": n,
            "items_per_portal": args.items,
            "kills": kills,
            "first_converged": not lagging0,
            "first_wall_s": first,
            "converged_after_restart": not lagging,
            "wall_after_last_restart_s": wall,
            "not_converged": lagging,
            "duplicates": duplicates,
            "local_inserts_checked": sum(len(s.inserted) for s in fleet.sites),
            "http_503": sum(s.rejected for s in fleet.sites),
        }


def open_runs(fleet: Fleet, marks: dict[str, int]) -> list[str]:
    """Portals with a sync run started after `marks` and not finished (the daemon is inside it)."""
    return [s.name for s in fleet.sites if last_run(s.db) > max(marks[s.name], last_finished_run(s.db))]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portals", default="1,5,20", help="comma-separated portal counts")
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument(
        "--edits", type=int, default=100, help="title edits per portal on each side per round"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between a job's runs")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--kill", action="store_true", help="also run the kill -9 and restart check")
    parser.add_argument("--kills", type=int, default=3, help="kill -9 cycles in the --kill run")
    parser.add_argument("--kill-within", type=float, default=0.5, help="seconds into a run the kill may land")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    counts = [int(x) for x in args.portals.split(",")]
    out: dict[str, Any] = {"cpus": os.cpu_count(), "limits": "standard, real time (not scaled)", "scale": []}
    for n in counts:
        result = scale_run(n, args, rng)
        print(json.dumps(result, ensure_ascii=False), flush=True)
        out["scale"].append(result)
    if args.kill:
        out["kill"] = [kill_run(n, args, rng) for n in counts[-1:]]
        print(json.dumps(out["kill"], ensure_ascii=False), flush=True)
    base = out["scale"][0]["rounds"][0]["wall_s"] or 1.0
    out["growth_first_pull"] = {r["portals"]: round(r["rounds"][0]["wall_s"] / base, 2) for r in out["scale"]}
    out["ok"] = all(
        r["converged"] and not r["duplicates"] and r["http_503"] == 0 and r["max_bucket_level"] <= 50
        for r in out["scale"]
    ) and all(k["converged_after_restart"] and not k["duplicates"] for k in out.get("kill", []))
    print(json.dumps(out, ensure_ascii=False))
    return out


if __name__ == "__main__":
    main()
