"""Benchmark: start-up time of the connector (the serial time before a command's first request).

Each case runs in a fresh interpreter, RUNS times (default 10); the best and the median of the wall
time and of the CPU time (user + system of the child) are printed, with the number of modules the
import leaves in `sys.modules` (all, and the connector's own). Cases:

- `python -c pass`: the interpreter alone (the floor under every other figure);
- the sync path: `import connector.rest, connector.store, connector.sync, connector.templates`;
- `import connector.cli.main` (what the `b24sync` script imports before parsing its arguments);
- `from connector.reports import export` (the export path);
- `b24sync --help` and `b24sync sync --help` (the console script next to this interpreter, else
  `python -m connector`).

Every run imports the `connector` of this checkout (it is put first on PYTHONPATH), so two checkouts
can be compared with one installed environment.

Byte-code is compiled first (`compileall`), as pip does on install: with PYTHONDONTWRITEBYTECODE set
the figures would otherwise include compiling every module. The machine is shared: read the load
average printed with the figures. Usage: `python bench/bench_startup.py [RUNS]`. The last line printed
is one JSON object.
"""

from __future__ import annotations

import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
RUNS = int(ARGS[0]) if ARGS else 10
ROOT = Path(__file__).resolve().parents[1]

SYNC_PATH = "import connector.rest, connector.store, connector.sync, connector.templates"
IMPORTS = {
    "python -c pass": "pass",
    "sync path import": SYNC_PATH,
    "import connector.cli.main": "import connector.cli.main",
    "export import": "from connector.reports import export",
}
COUNT_MODULES = (
    "; import sys; print(len(sys.modules), sum(1 for m in sys.modules if m.split('.')[0] == 'connector'))"
)


def cli() -> list[str]:
    """The `b24sync` console script installed beside this interpreter, else `python -m connector`."""
    script = Path(sys.executable).with_name("b24sync")
    if script.exists():
        return [str(script)]
    found = shutil.which("b24sync")
    return [found] if found else [sys.executable, "-m", "connector"]


def cases() -> dict[str, list[str]]:
    """Every case as the command line that runs it."""
    commands = {name: [sys.executable, "-c", code] for name, code in IMPORTS.items()}
    commands["b24sync --help"] = [*cli(), "--help"]
    commands["b24sync sync --help"] = [*cli(), "sync", "--help"]
    return commands


def child_env() -> dict[str, str]:
    """The environment of every run: this checkout's `connector` first on the path, whatever is installed."""
    path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def run_once(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `command` in a fresh process (its output discarded)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def modules_loaded(code: str) -> tuple[int, int]:
    """How many modules `code` leaves in sys.modules: all of them, and the connector's own."""
    out = subprocess.run([sys.executable, "-c", code + COUNT_MODULES], cwd=ROOT, env=child_env(),
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def measure(command: list[str]) -> dict[str, float]:
    """Best and median wall and CPU milliseconds over RUNS runs (one warm-up run first, not counted)."""
    run_once(command)
    walls, cpus = zip(*(run_once(command) for _ in range(RUNS)), strict=True)
    figures: dict[str, float] = {}
    for what, seconds in (("wall", walls), ("cpu", cpus)):
        figures[f"{what}_best_ms"] = round(min(seconds) * 1000, 1)
        figures[f"{what}_median_ms"] = round(statistics.median(seconds) * 1000, 1)
    return figures


def main() -> None:
    compileall.compile_dir(ROOT / "connector", quiet=1)
    results: dict[str, dict[str, float]] = {}
    print(f"start-up, {RUNS} fresh runs each; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    header = ("wall best", "median", "CPU best", "median", "modules", "own")
    print(f"{'case':28} " + " ".join(f"{h:>{w}}" for h, w in zip(header, (10, 8, 9, 8, 8, 5), strict=True)))
    for name, command in cases().items():
        figures = measure(command)
        if name in IMPORTS:
            total, own = modules_loaded(IMPORTS[name])
            figures |= {"modules": total, "connector_modules": own}
        results[name] = figures
        counts = f"{figures.get('modules', ''):>8} {figures.get('connector_modules', ''):>5}"
        print(f"{name:28} {figures['wall_best_ms']:>8.0f}ms {figures['wall_median_ms']:>6.0f}ms "
              f"{figures['cpu_best_ms']:>7.0f}ms {figures['cpu_median_ms']:>6.0f}ms {counts}")
    load = os.getloadavg()[0]
    print(f"load average after: {load:.1f}")
    print(json.dumps({"runs": RUNS, "load_average": round(load, 1), "cases": results}))


if __name__ == "__main__":
    main()
