"""Indexer throughput (issue 6): `newswire index` draining already-enriched articles.

    .venv/bin/python bench/index_bench.py [--articles 20000] [--partitions 4] [--profile]

1. Starts a noida-db broker (Kafka only) in a temporary directory and produces ``--articles``
   synthetic-but-realistic enriched articles (real texts from ../shared/data/conflict-dev,
   see ``indexer.synthetic``) to the articles topic. Setup, not measured.
2. Starts the real service, ``newswire index`` (embedded tantivy store), as a child process
   and samples the group's lag every 0.1 s until it is 0: everything written and committed.
3. Prints articles/s over the whole run (from the process start, so imports and joining
   count) and over the drain (from the first commit to the last), and the CPU seconds of
   the indexer process (all its threads: tantivy indexes in its own), i.e. articles per
   CPU-second, the figure that stays meaningful when other processes share the cores.
   Then the CPU share of the idle indexer over ``--idle`` seconds (polling must not spin).

``--profile`` samples the indexer with py-spy meanwhile and prints where its threads spent
their time (self and inclusive, top frames). Goal: >= 2,000 articles/s.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402

from indexer.synthetic import load_texts, synthetic_articles  # noqa: E402
from newswire.broker import EmbeddedServer  # noqa: E402
from newswire.settings import Settings, child_env, load_settings  # noqa: E402
from newswire.topics import ensure_topics  # noqa: E402

CONFLICT_DEV = ROOT.parent / "shared" / "data" / "conflict-dev"
NEWSWIRE = str(Path(sys.executable).with_name("newswire"))
PY_SPY = str(Path(sys.executable).with_name("py-spy"))


class Lag:
    """Records of the articles topic not yet committed by the indexer group."""

    def __init__(self, settings: Settings) -> None:
        cfg = settings.kafka.client_config()
        self.admin = KafkaAdminClient(**cfg)
        self.consumer = KafkaConsumer(**cfg)
        self.group = f"{settings.kafka.topic_prefix}-indexer"
        topic = settings.topic("articles")
        self.tps = [TopicPartition(topic, p)
                    for p in sorted(self.consumer.partitions_for_topic(topic))]
        self.ends = self.consumer.end_offsets(self.tps)

    def __call__(self) -> int:
        try:
            done = self.admin.list_group_offsets({self.group: self.tps}).get(self.group, {})
        except Exception:  # noqa: BLE001 - no commit yet
            done = {}
        return sum(self.ends[tp] - (done[tp].offset if tp in done and done[tp].offset >= 0
                                    else 0) for tp in self.tps)

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()


def produce(settings: Settings, n: int) -> float:
    producer = KafkaProducer(acks=1, linger_ms=20, batch_size=256_000,
                             **settings.kafka.client_config())
    texts = load_texts(CONFLICT_DEV)
    started = time.perf_counter()
    size = 0
    for article in synthetic_articles(texts, n, seed=2):
        value = article.to_bytes()
        size += len(value)
        producer.send(settings.topic("articles"), key=article.key.encode(), value=value)
    producer.flush()
    producer.close()
    print(f"setup: produced {n} articles ({size / n / 1024:.1f} KB each) in "
          f"{time.perf_counter() - started:.1f}s (not measured)")
    return size


def summarize_profile(raw: Path, top: int = 18) -> None:
    """py-spy's raw format: one ``frame;frame;...;leaf count`` line per distinct stack."""
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    per_thread: collections.defaultdict[str, collections.Counter[str]] = \
        collections.defaultdict(collections.Counter)
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0]] += n
        self_time[frames[-1]] += n
        per_thread[frames[0]][frames[-1]] += n
        for frame in set(frames[1:]):
            inclusive[frame] += n
    print(f"profile: {total} samples of threads on a CPU (py-spy, 200/s)")
    for name, n in threads.most_common(6):
        print(f"  thread {name[:70]:70} {100 * n / total:5.1f}%")
    print("  self time:")
    for name, n in self_time.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {name[:110]}")
    print("  inclusive:")
    for name, n in inclusive.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {name[:110]}")
    for thread, _ in threads.most_common(3):
        print(f"  self time in {thread[:60]}:")
        for name, n in per_thread[thread].most_common(8):
            print(f"    {100 * n / total:5.1f}%  {name[:110]}")


def run(args: argparse.Namespace, tmp: Path) -> None:
    server = EmbeddedServer(tmp / "noida", with_elasticsearch=False)
    server.start()
    proc: subprocess.Popen[bytes] | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        settings = load_settings(data_dir=tmp / "data",
                                 kafka={"bootstrap_servers": server.bootstrap,
                                        "topic_prefix": "bench",
                                        "partitions": args.partitions})
        ensure_topics(settings)
        produce(settings, args.articles)
        lag = Lag(settings)
        env = {**os.environ, **child_env(settings), "NEWSWIRE_LOG_LEVEL": "WARNING"}
        started = time.perf_counter()
        proc = subprocess.Popen([NEWSWIRE, "index"], env=env, stdout=subprocess.DEVNULL,
                                stderr=(tmp / "index.log").open("wb"))
        if args.profile:
            spy = subprocess.Popen([PY_SPY, "record", "--pid", str(proc.pid), "--threads",
                                    "--rate", "200", "--format", "raw", "--output",
                                    str(tmp / "profile.txt")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first_commit: tuple[float, int] | None = None
        cpu_at_first = 0.0
        watched = psutil.Process(proc.pid)
        left = args.articles
        while left:
            if proc.poll() is not None:
                sys.exit(f"indexer exited {proc.returncode}:\n"
                         + (tmp / "index.log").read_text()[-3000:])
            left = lag()
            if first_commit is None and left < args.articles:
                first_commit = (time.perf_counter(), left)
                cpu_at_first = sum(watched.cpu_times()[:2])
            time.sleep(0.1)
        done = time.perf_counter()
        indexer = psutil.Process(proc.pid)
        times = indexer.cpu_times()
        cpu = times.user + times.system
        lag.close()
        time.sleep(1.0)  # settle: the last commit, the fetches after it
        before = sum(indexer.cpu_times()[:2])
        time.sleep(args.idle)
        idle_share = (sum(indexer.cpu_times()[:2]) - before) / args.idle
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        assert first_commit is not None
        wall = done - started
        drain = done - first_commit[0]
        drained = first_commit[1]
        print(f"newswire index, {args.articles} articles, {args.partitions} partitions:")
        print(f"  whole run (process start -> all committed): {wall:.1f}s, "
              f"{args.articles / wall:,.0f} articles/s wall")
        print(f"  drain (first commit -> last, {drained} articles): {drain:.1f}s, "
              f"{drained / drain:,.0f} articles/s wall, "
              f"{drained / (cpu - cpu_at_first):,.0f} articles per CPU-second")
        print(f"  indexer CPU {cpu:.1f}s: {args.articles / cpu:,.0f} articles per CPU-second "
              "(all threads; imports and start-up included)")
        print(f"  idle afterwards: {100 * idle_share:.1f}% of a core over {args.idle:.0f}s "
              "(nothing to read: what the polling costs)")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
              "(other processes share the cores: wall figures are noisy)")
        if spy is not None:
            summarize_profile(tmp / "profile.txt")
    finally:
        for p in (spy, proc):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--articles", type=int, default=20_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--idle", type=float, default=5.0,
                    help="seconds to measure the CPU of the idle indexer afterwards")
    ap.add_argument("--profile", action="store_true", help="sample the indexer with py-spy")
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = ap.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args, args.keep)
        return
    with tempfile.TemporaryDirectory(prefix="newswire-index-bench-") as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
