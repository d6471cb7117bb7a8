"""Text extraction quality and speed on fundus-evaluation (80 real news pages, hand-made truth).

Compares ``processors.clean.clean`` with plain ``trafilatura.extract`` (default and fast) and
trafilatura's fast mode with metadata (``bare_extraction``, the speed bar of issue 4), all
fed the same raw bytes. Quality: precision/recall/F1 of bags of lower-cased word tokens and
of 4-word shingles, averaged over pages (mean P, mean R, F1 of those means; the per-page
mean F1 is printed too). Speed: pages per CPU-second of this process (one core) over
``--rounds`` rounds, the systems interleaved page by page so that machine noise hits them
alike.

With ``--readability`` it also scores the same systems against the text of Mozilla
Readability's expected output on readability-pages (130 pages, many not news, tables kept):
a check that the tuning is not fitted to fundus.

With ``--pool N`` it also cleans the pages (3 passes) in a process pool of 1 and of N
workers, as the Faust worker does, and prints wall-clock pages/s of each: how the cleaning
stage scales with cores (on a machine shared with other work, expect noise).

With ``--tables`` it adds "ours + tables": the same stage with trafilatura's
``include_tables`` on and tables no longer deleted up front (the choice the stage makes
without tables is measured, not assumed).

With ``--hostile`` it times ``clean`` (CPU seconds, one call each) on the pathological pages
of tests/test_hostile.py (100k attributes on a tag, a million <br>, 100k nested tags...).

Run: .venv/bin/python bench/extraction_bench.py [--rounds 3] [--readability] [--pool 2]
     [--tables] [--hostile]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "extraction-dev" / "fundus-evaluation"
_TOKEN = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def shingles(words: list[str], n: int = 4) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def prf(pred: list, ref: list) -> tuple[float, float]:  # type: ignore[type-arg]
    p, r = Counter(pred), Counter(ref)
    overlap = sum((p & r).values())
    return (overlap / len(pred) if pred else 0.0), (overlap / len(ref) if ref else 0.0)


def score(outputs: dict[str, str], truth: dict[str, str]) -> dict[str, tuple[float, ...]]:
    result = {}
    for name, unit in (("token", tokens), ("shingle4", lambda t: shingles(tokens(t)))):
        ps, rs, fs = [], [], []
        for key, ref_text in truth.items():
            p, r = prf(unit(outputs.get(key) or ""), unit(ref_text))
            ps.append(p)
            rs.append(r)
            fs.append(2 * p * r / (p + r) if p + r else 0.0)
        mp, mr = sum(ps) / len(ps), sum(rs) / len(rs)
        result[name] = (mp, mr, 2 * mp * mr / (mp + mr), sum(fs) / len(fs))
    return result


def systems(tables: bool = False) -> dict[str, Callable[[bytes, str], str]]:
    import trafilatura

    from processors import clean as stage
    from processors.clean import CleanArticle, clean

    def ours(raw: bytes, url: str) -> str:
        result = clean(raw, url, content_type="text/html")
        return result.text if isinstance(result, CleanArticle) else ""

    def ours_tables(raw: bytes, url: str) -> str:
        # The stage's two table switches flipped for this call only (bench, one thread).
        unwanted, extractor = stage._UNWANTED, stage._run_extractor
        stage._UNWANTED = tuple(t for t in unwanted if t not in ("table", "td", "th", "tr"))
        stage._run_extractor = lambda tree, url, fast=True, tables=False: extractor(
            tree, url, fast=fast, tables=True)
        try:
            return ours(raw, url)
        finally:
            stage._UNWANTED, stage._run_extractor = unwanted, extractor

    def fast_meta(raw: bytes, url: str) -> str:
        doc = trafilatura.bare_extraction(raw, url=url, fast=True, with_metadata=True)
        return (doc.text or "") if doc is not None else ""

    return {
        "newswire clean (ours)": ours,
        **({"ours + tables": ours_tables} if tables else {}),
        "trafilatura.extract default": lambda raw, url: trafilatura.extract(raw, url=url) or "",
        "trafilatura.extract fast": lambda raw, url: trafilatura.extract(raw, url=url,
                                                                         fast=True) or "",
        "trafilatura fast+metadata": fast_meta,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--readability", action="store_true",
                        help="also score against readability-pages' expected text")
    parser.add_argument("--tables", action="store_true",
                        help="also run the stage with tables included")
    parser.add_argument("--hostile", action="store_true",
                        help="also time the pathological pages of tests/test_hostile.py")
    parser.add_argument("--pool", type=int, default=0,
                        help="also measure a process pool of this many workers")
    args = parser.parse_args()
    truth_json = json.loads((DATA / "ground_truth.json").read_text())
    truth = {k: "\n".join(v["body"]) for k, v in truth_json.items()}
    pages = {k: gzip.decompress((DATA / "html" / k).read_bytes()) for k in truth}
    urls = {k: v["url"] for k, v in truth_json.items()}
    runs = systems(args.tables)
    for fn in runs.values():  # warm-up: imports, the language model
        fn(pages[next(iter(pages))], urls[next(iter(pages))])
    outputs: dict[str, dict[str, str]] = {}
    # Page by page, every system in turn: load from other work on the machine then falls on
    # all systems alike (a whole pass per system let one system's pass hit a busy minute).
    cpu = dict.fromkeys(runs, 0.0)
    for _ in range(args.rounds):
        for key in truth:
            for name, fn in runs.items():
                start = time.process_time()
                outputs.setdefault(name, {})[key] = fn(pages[key], urls[key])
                cpu[name] += time.process_time() - start
    speed = {name: args.rounds * len(truth) / cpu[name] for name in runs}
    print(f"fundus-evaluation: {len(truth)} pages x {args.rounds} rounds interleaved page by "
          "page; pages per CPU-second, one core\n")
    header = (f"{'system':30} {'tokP':>6} {'tokR':>6} {'tokF1':>6} {'pageF1':>6}   "
              f"{'sh4P':>6} {'sh4R':>6} {'sh4F1':>6} {'pageF1':>6}   {'pages/s':>7}")
    print(header)
    print("-" * len(header))
    for name in runs:
        s = score(outputs[name], truth)
        tok, sh = s["token"], s["shingle4"]
        print(f"{name:30} {tok[0]:6.4f} {tok[1]:6.4f} {tok[2]:6.4f} {tok[3]:6.4f}   "
              f"{sh[0]:6.4f} {sh[1]:6.4f} {sh[2]:6.4f} {sh[3]:6.4f}   {speed[name]:7.1f}")
    if args.readability:
        readability(runs)
    if args.pool:
        pool_scaling(pages, urls, args.pool)
    if args.hostile:
        hostile()


def hostile() -> None:
    from processors.clean import Rejected, clean
    from tests.test_hostile import PAGE_CASES

    print("\nhostile pages (tests/test_hostile.py): CPU seconds of one clean() call\n")
    for name, case in PAGE_CASES.items():
        start = time.process_time()
        result = clean(case.body, "https://news.example/a", content_type=case.content_type)
        elapsed = time.process_time() - start
        outcome = (f"rejected {result.reason}" if isinstance(result, Rejected)
                   else "article " + ",".join(result.flags))
        print(f"{name:34} {len(case.body):>10,} bytes {elapsed:7.3f} s  {outcome}")


def _clean_one(raw: bytes, url: str) -> int:
    from processors.clean import CleanArticle, clean

    result = clean(raw, url, content_type="text/html")
    return len(result.text) if isinstance(result, CleanArticle) else 0


def pool_scaling(pages: dict[str, bytes], urls: dict[str, str], workers: int) -> None:
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(pages[k], urls[k]) for k in pages] * 3
    print(f"\nprocess pool, {len(jobs)} pages, wall clock")
    for size in sorted({1, workers}):
        with ProcessPoolExecutor(max_workers=size) as pool:
            list(pool.map(_clean_one, *zip(*jobs[:size * 2], strict=True)))  # warm-up
            start = time.perf_counter()
            list(pool.map(_clean_one, *zip(*jobs, strict=True), chunksize=4))
            elapsed = time.perf_counter() - start
        print(f"{size} worker(s): {len(jobs) / elapsed:7.1f} pages/s")


def readability(runs: dict[str, Callable[[bytes, str], str]]) -> None:
    import lxml.html

    root = DATA.parent / "readability-pages"
    truth, pages = {}, {}
    for folder in sorted(p for p in root.iterdir() if (p / "expected.html.gz").exists()):
        expected = gzip.decompress((folder / "expected.html.gz").read_bytes())
        truth[folder.name] = lxml.html.fromstring(expected).text_content()
        pages[folder.name] = gzip.decompress((folder / "source.html.gz").read_bytes())
    print(f"\nreadability-pages: {len(truth)} pages, truth = Readability's expected text\n")
    print(f"{'system':30} {'tokP':>6} {'tokR':>6} {'tokF1':>6} {'pageF1':>6}   "
          f"{'sh4P':>6} {'sh4R':>6} {'sh4F1':>6} {'pageF1':>6}")
    for name, fn in runs.items():
        out = {k: fn(pages[k], "http://fakehost/test/page.html") for k in truth}
        s = score(out, truth)
        tok, sh = s["token"], s["shingle4"]
        print(f"{name:30} {tok[0]:6.4f} {tok[1]:6.4f} {tok[2]:6.4f} {tok[3]:6.4f}   "
              f"{sh[0]:6.4f} {sh[1]:6.4f} {sh[2]:6.4f} {sh[3]:6.4f}")


if __name__ == "__main__":
    main()
