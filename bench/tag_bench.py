"""Tagging speed on full-length articles, one core.

    .venv/bin/python bench/tag_bench.py [--seconds 10] [--pages]

Articles: every full text in ../shared/data/conflict-dev (BBC, IndiaPoliceEvents, InsightCrime,
MUC-4 dev splits) plus the seed story; with ``--pages``, instead, the title and text our
cleaning stage takes out of the 210 real news pages of ../shared/data/extraction-dev (what the
pipeline tags: longer, with typographic quotes and dashes, several languages). Prints the compile time, articles/s and MB/s of text
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


def page_articles() -> list[tuple[str | None, str]]:
    """(title, text) as the cleaning stage gives them for the extraction-dev pages (setup)."""
    from processors.clean import Rejected, clean
    from tests.feedworld import load_pages

    out = []
    for i, body in enumerate(load_pages(DATA / "extraction-dev")):
        done = clean(body, f"https://example.com/a/{i}", content_type="text/html")
        if not isinstance(done, Rejected):
            out.append((done.title, done.text))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pages", action="store_true",
                    help="tag the cleaned extraction-dev pages instead of the dev corpora")
    args = ap.parse_args()
    docs = page_articles() if args.pages else [(None, t) for t in articles()]
    texts = [t for _title, t in docs]
    chars = sum(len(t) for t in texts)
    t0 = time.perf_counter()
    tagger = Tagger()
    compile_s = time.perf_counter() - t0
    for title, t in docs[:50]:  # warm up
        tagger.tag(title, t)
    lat: list[float] = []
    done = n_chars = 0
    cpu0 = time.process_time()
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        for title, t in docs:
            a = time.perf_counter()
            tagger.tag(title, t)
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
