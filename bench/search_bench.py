"""Search and indexing speed of the default (embedded tantivy) store.

    .venv/bin/python bench/search_bench.py [--docs 100000] [--kafka 20000] [--dir DIR]
        [--cursor-pages 150]

1. Builds ``--docs`` synthetic-but-realistic enriched articles (real texts from
   ../shared/data/conflict-dev, see ``indexer.synthetic``) and writes them with
   ``store.upsert`` in batches of 2,000 (one commit each, as the indexer does):
   articles/s of the store alone.
2. Runs searches with three facets (conflicts, event_types, countries) and a daily date
   histogram, with and without filters/sorting: p50/p95 ms. Goal: p95 < 100 ms. Then walks
   ``--cursor-pages`` pages of 100 with cursors (deep paging), by date and by relevance.
3. With ``--kafka N`` (default 20000; 0 = skip): starts a noida-db broker, produces N articles
   to the articles topic, then times the whole indexer service (poll, decode, upsert, commit)
   from start until the group's lag is 0. Goal for both throughputs: >= 2,000 articles/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.embedded import EmbeddedStore  # noqa: E402
from indexer.store import SearchRequest  # noqa: E402
from indexer.synthetic import load_texts, synthetic_articles  # noqa: E402

BATCH = 2000  # the indexer's default batch (IndexerOptions.batch_size)
CONFLICT_DEV = ROOT.parent / "shared" / "data" / "conflict-dev"
FACETS = ("conflicts", "event_types", "countries")
QUERIES: list[dict] = [
    {"query": "*"},
    {"query": "police"},
    {"query": "killed police"},
    {"query": '"armed forces"'},
    {"query": "drug OR cartel"},
    {"query": "guerrilla -colombia"},
    {"query": "kidnap* OR massacr*"},
    {"query": "(police OR army) AND (killed OR injured) AND NOT country:IN"},
    {"query": "election", "sort": "date"},
    {"query": "*", "countries": ("SY", "UA")},
    {"query": "attack", "conflicts": ("israel-gaza",), "sort": "date"},
    {"query": "bomb*", "languages": ("en",)},
    {"query": "president minister government"},
    {"query": '"security forces" OR "armed men"'},
    {"query": "*", "collapse_stories": True, "sort": "date"},
    # multi-select facets: each filtered facet costs one more aggregation pass
    {"query": "police OR army", "countries": ("IN", "CO"), "conflicts": ("colombia-armed-groups",),
     "event_types": ("arrest", "kidnapping")},
    {"query": "*", "countries": ("SY",), "languages": ("en",), "sort": "date"},
]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def bench_upsert(store: EmbeddedStore, docs: int) -> tuple[float, float, float]:
    """(articles/s wall, articles per CPU-second of this process, total wall incl. generation).

    CPU seconds count every thread (tantivy indexes and merges in its own threads), so the
    second figure says what the work costs even when other processes share the cores."""
    texts = load_texts(CONFLICT_DEV)
    gen = synthetic_articles(texts, docs, seed=1)
    spent = gen_cpu = 0.0
    done = 0
    wall, cpu_start = time.perf_counter(), time.process_time()
    while done < docs:
        g = time.thread_time()  # generation runs in this thread only
        batch = [a for _, a in zip(range(BATCH), gen, strict=False)]
        gen_cpu += time.thread_time() - g
        if not batch:
            break
        t = time.perf_counter()
        rejected = store.upsert(batch)
        spent += time.perf_counter() - t
        assert not rejected, rejected[:3]
        done += len(batch)
    store.close()  # waits for the background merges: their CPU belongs to indexing too
    cpu = time.process_time() - cpu_start - gen_cpu
    return done / spent, done / max(cpu, 1e-9), time.perf_counter() - wall


cpu_ms: list[float] = []  # CPU time of each search request (all threads of this process)


def bench_search(store: EmbeddedStore, rounds: int) -> dict[str, list[float]]:
    from datetime import UTC, datetime

    since = datetime(2026, 1, 10, tzinfo=UTC)
    until = datetime(2026, 2, 20, tzinfo=UTC)
    timings: dict[str, list[float]] = {}
    cpu_ms.clear()
    for spec in QUERIES:  # warm-up
        store.search(SearchRequest(facets=FACETS, **spec))
    for r in range(rounds):
        for i, spec in enumerate(QUERIES):
            extra: dict[str, Any] = {"since": since, "until": until} if (r + i) % 3 == 0 else {}
            req = SearchRequest(facets=FACETS, histogram="day", **spec, **extra)
            t, c = time.perf_counter(), time.process_time()
            result = store.search(req)
            label = f"{i:2} {spec['query']}" + (" [date]" if spec.get("sort") == "date" else "")
            timings.setdefault(label, []).append((time.perf_counter() - t) * 1000)
            cpu_ms.append((time.process_time() - c) * 1000)
            assert result.facets.keys() == set(FACETS)
    return timings


def bench_cursor(store: EmbeddedStore, pages: int, size: int) -> dict[str, tuple[float, ...]]:
    """Deep paging with cursors: ``pages`` pages of ``size`` in a row, per sort order.

    Returns (p50 ms, p95 ms, last page ms, hits walked, CPU p50 ms, CPU p95 ms) per sort."""
    out = {}
    for sort in ("date", "relevance"):
        spec: dict[str, Any] = {"query": "police OR killed", "sort": sort, "size": size,
                                "facets": FACETS, "histogram": "day"}
        cursor, times, cpu, walked = None, [], [], 0
        for _ in range(pages):
            t, c = time.perf_counter(), time.process_time()
            result = store.search(SearchRequest(cursor=cursor, **spec))
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            walked += len(result.hits)
            cursor = result.next_cursor
            if cursor is None:
                break
        out[sort] = (statistics.median(times), pct(times, 95), times[-1], walked,
                     statistics.median(cpu), pct(cpu, 95))
    return out


def bench_kafka(n: int, tmp: Path) -> tuple[float, float]:
    from kafka import KafkaProducer

    from indexer.consumer import IndexerOptions, run_indexer
    from newswire.broker import EmbeddedServer
    from newswire.settings import load_settings
    from newswire.topics import ensure_topics
    from indexer.consumer import DOCS

    def handled() -> float:
        return sum(DOCS.labels(o)._value.get() for o in ("indexed", "rejected", "undecodable"))

    server = EmbeddedServer(tmp / "noida")
    server.start()
    try:
        settings = load_settings(data_dir=tmp / "kdata",
                                 kafka={"bootstrap_servers": server.bootstrap,
                                        "topic_prefix": "bench", "partitions": 4})
        ensure_topics(settings)
        producer = KafkaProducer(acks=1, linger_ms=20, batch_size=256_000,
                                 **settings.kafka.client_config())
        texts = load_texts(CONFLICT_DEV)
        t = time.perf_counter()
        for article in synthetic_articles(texts, n, seed=2):
            producer.send(settings.topic("articles"), key=article.key.encode(),
                          value=article.to_bytes())
        producer.flush()
        producer.close()
        print(f"  produced {n} articles in {time.perf_counter() - t:.1f}s (setup, not measured)")
        stop = threading.Event()
        before = handled()
        started, cpu_start = time.perf_counter(), time.process_time()
        thread = threading.Thread(target=run_indexer, args=(settings, stop),
                                  kwargs={"options": IndexerOptions(batch_size=BATCH,
                                                                    linger=0.5)})
        thread.start()
        # handled = committed: the indexer counts a batch only after writing it
        while handled() < before + n:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        stop.set()
        thread.join(30)
        cpu = time.process_time() - cpu_start  # this process only; the broker is another
        return n / elapsed, n / max(cpu, 1e-9)
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--kafka", type=int, default=20_000, help="articles through Kafka; 0 = skip")
    ap.add_argument("--cursor-pages", type=int, default=150,
                    help="pages of 100 walked with cursors, per sort order")
    ap.add_argument("--dir", type=Path, help="index directory (default: a temporary one)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="newswire-bench-") as tmpname:
        tmp = Path(tmpname)
        store = EmbeddedStore(args.dir or tmp / "index", writer=True)
        store.ensure()
        if store.count() < args.docs:
            rate, per_cpu, wall = bench_upsert(store, args.docs)
            print(f"store.upsert: {args.docs} articles, {rate:,.0f} articles/s wall "
                  f"(upsert time only), {per_cpu:,.0f} articles per CPU-second; "
                  f"wall incl. generating the articles {wall:.1f}s")
            store = EmbeddedStore(args.dir or tmp / "index")
        store.refresh()
        print(f"index: {store.count()} documents")
        timings = bench_search(store, args.rounds)
        allt = [t for ts in timings.values() for t in ts]
        print(f"search with facets {','.join(FACETS)} + daily histogram, "
              f"{len(allt)} requests:")
        for query, ts in timings.items():
            print(f"  {query[:60]:60} p50 {statistics.median(ts):7.1f} ms  "
                  f"p95 {pct(ts, 95):7.1f} ms")
        print(f"  ALL{'':57} p50 {statistics.median(allt):7.1f} ms  p95 {pct(allt, 95):7.1f} ms")
        print(f"  CPU time per request{'':40} p50 {statistics.median(cpu_ms):7.1f} ms  "
              f"p95 {pct(cpu_ms, 95):7.1f} ms")
        pages = bench_cursor(store, args.cursor_pages, 100)
        for sort, (p50, p95, last, walked, cpu50, cpu95) in pages.items():
            print(f"cursor paging by {sort:9}: {walked} hits in pages of 100, per page "
                  f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  last (deepest) {last:6.1f} ms; "
                  f"CPU p50 {cpu50:5.1f} ms  p95 {cpu95:5.1f} ms")
        store.close()
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
              "(other processes share the cores: figures are noisy)")
        if args.kafka:
            rate, per_cpu = bench_kafka(args.kafka, tmp)
            print(f"indexer service from Kafka (noida-db): {args.kafka} articles, "
                  f"{rate:,.0f} articles/s wall, {per_cpu:,.0f} articles per CPU-second of the "
                  "indexer process (poll + decode + upsert + commit)")


if __name__ == "__main__":
    main()
