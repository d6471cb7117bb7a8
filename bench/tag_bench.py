"""Tagging speed on full-length articles, one core.

    .venv/bin/python bench/tag_bench.py [--seconds 10]

Articles: every full text in ../shared/data/conflict-dev (BBC, IndiaPoliceEvents, InsightCrime,
MUC-4 dev splits) plus the seed story. Prints the compile time, articles/s and MB/s of text
on one core, and per-article latency percentiles.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

from processors.tag import Tagger  # noqa: E402

csv.field_size_limit(1 << 30)


def articles() -> list[str]:
    texts = [(DATA / "seed" / "000_7e306b04c98bd332.txt").read_text(encoding="utf-8")]
    dev = DATA / "conflict-dev"
    for name in ("BBC_News", "IndiaPoliceEvents_docs", "insightCrime"):
        with open(dev / name / "dev.tsv", encoding="utf-8", errors="replace") as fh:
            texts += [r[0] for r in csv.reader(fh, delimiter="\t") if r]
    muc = json.loads((dev / "muc4" / "dev.json").read_text(encoding="utf-8"))
    texts += [v["doc"] for v in muc.values()]
    return texts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    texts = articles()
    chars = sum(len(t) for t in texts)
    t0 = time.perf_counter()
    tagger = Tagger()
    compile_s = time.perf_counter() - t0
    for t in texts[:50]:  # warm up
        tagger.tag(None, t)
    lat: list[float] = []
    done = n_chars = 0
    cpu0 = time.process_time()
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        for t in texts:
            a = time.perf_counter()
            tagger.tag(None, t)
            lat.append(time.perf_counter() - a)
            done += 1
            n_chars += len(t)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    lat.sort()
    print(f"articles in corpus: {len(texts)}, mean length {chars / len(texts):,.0f} chars")
    print(f"compile (taxonomy + gazetteer + automaton): {compile_s:.2f} s")
    print(f"tagged {done} articles in {wall:.1f} s on one core: {done / wall:,.0f} articles/s, "
          f"{n_chars / wall / 1e6:.2f} MB/s (wall clock)")
    print(f"CPU time {cpu:.1f} s: {done / cpu:,.0f} articles/s per core of CPU actually used "
          f"(the wall figure is lower when other processes share the core)")
    print(f"latency p50 {statistics.median(lat) * 1e3:.2f} ms, p95 {lat[int(0.95 * len(lat))] * 1e3:.2f} ms,"
          f" p99 {lat[int(0.99 * len(lat))] * 1e3:.2f} ms, max {lat[-1] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
