"""CPU use of an idle `newswire up`, per service (issue 9: no consumer may spin), and memory.

Starts `newswire up` on a loopback feed that never has any item, waits until every service
is up and settled, then measures each process's CPU over a window with psutil
(user + system seconds / wall seconds, so 100% = one core), then each service's
proportional set size (shared pages, e.g. a forked pool's, split between the sharers).

    .venv/bin/python bench/idle_cpu.py                # 20 s window after 25 s of settling
    .venv/bin/python bench/idle_cpu.py --window 60 --settle 40
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--settle", type=float, default=25.0, help="seconds before measuring")
    ap.add_argument("--window", type=float, default=20.0, help="seconds measured")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from tests.feedworld import FeedWorld, process_tree, start_up

    tmp = Path(tempfile.mkdtemp(prefix="newswire-idle-"))
    with FeedWorld([b"<html></html>"], articles=0, feeds=1) as world:
        up = start_up(tmp / "data", world.feed_urls(), tmp / "up.log",
                      env={"NEWSWIRE_LOG_LEVEL": "WARNING"})
        try:
            time.sleep(args.settle)
            if up.poll() is not None:
                sys.exit(f"newswire up exited with {up.returncode}; see {tmp / 'up.log'}")
            tree = process_tree(up.pid)
            before = {}
            for label, proc in tree:
                try:
                    t = proc.cpu_times()
                    before[proc.pid] = (label, proc, t.user + t.system)
                except psutil.Error:
                    pass
            t0 = time.monotonic()
            time.sleep(args.window)
            wall = time.monotonic() - t0
            usage: dict[str, float] = {}
            pss: dict[str, float] = {}  # proportional set size: shared pages split fairly
            for label, proc, cpu0 in before.values():
                try:
                    t = proc.cpu_times()
                    pss[label] = pss.get(label, 0.0) + proc.memory_full_info().pss / 2**20
                except psutil.Error:
                    continue
                usage[label] = usage.get(label, 0.0) + (t.user + t.system - cpu0) / wall * 100
        finally:
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
    print(json.dumps({"window_s": round(wall, 1), "cpu_percent_of_one_core":
                      {k: round(v, 1) for k, v in sorted(usage.items())},
                      "total_percent": round(sum(usage.values()), 1),
                      "pss_mb": {k: round(v, 1) for k, v in sorted(pss.items())},
                      "log": str(tmp / "up.log")},
                     indent=2))


if __name__ == "__main__":
    main()
