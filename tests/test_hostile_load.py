"""Load, small (issue 14): the `bench/bench_load.py` machinery at 3 portals and a few items.

One `b24sync run` daemon syncs 3 emulators with standard-plan limits; both sides are edited, the
daemon gets `kill -9` while a sync run is under way and is restarted; every portal converges, no
local insert is created twice, no request got a 503. The figures at 1, 5 and 20 portals of 5,000
items come from the bench itself (docs/RELIABILITY.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "bench_load.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_load"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (Path(sys.executable).with_name("b24sync").exists() or shutil.which("b24sync")),
                    reason="the b24sync console script is not installed (pip install -e .)")
def test_three_portals_converge_through_a_kill_9_with_no_duplicates_and_no_503():
    load = bench()
    args = argparse.Namespace(items=60, edits=20, interval=0.5, timeout=60.0, kills=1, kill_within=0.0)
    result = load.kill_run(3, args, random.Random(7))
    assert result["first_converged"] and result["converged_after_restart"], result
    assert result["kills"][0]["runs_cut"] >= 1  # the kill landed inside a sync run
    assert result["duplicates"] == [] and result["local_inserts_checked"] == 3 * load.LOCAL_INSERTS
    assert result["http_503"] == 0
