"""Alert matching throughput with 10,000 active rules, and alert latency end to end.

    .venv/bin/python bench/alerts_bench.py                 # both parts
    .venv/bin/python bench/alerts_bench.py --no-latency    # matching only (no broker)
    .venv/bin/python bench/alerts_bench.py --up --latency-articles 100 --rate 5
                                        # latency through `newswire up` on real pages

Part 1 (pure): 10,000 rules drawn from the corpus vocabulary (words, AND/OR, phrases,
negations, prefixes, keyword fields, filters), indexed by ``RuleIndex``; articles/s of
``RuleIndex.match`` over synthetic articles with real texts (``../shared/data/conflict-dev``),
compared with checking every rule one by one on a sample.

Part 2 (real servers): an embedded noida broker, the standalone alert worker (the same
agents the processor installs), the 10,000 rules on the rules topic plus one rule with a
webhook to a loopback receiver; articles are produced to the articles topic as the tagger
would, each a new story; latency = webhook received - article ingested.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from indexer.synthetic import (  # noqa: E402
    CONFLICTS,
    COUNTRIES,
    EVENT_TYPES,
    SOURCES,
    load_texts,
    synthetic_articles,
)
from newswire.records import Article  # noqa: E402
from processors.alerts.matcher import RuleIndex, rule_matches  # noqa: E402
from processors.alerts.rules import Rule, RuleFilters, WebhookChannel  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "conflict-dev"


def vocabulary(texts: list[str], rng: random.Random, max_df: float) -> list[str]:
    """Words people would put in a saved search: in >= 3 documents, in <= max_df of them."""
    df: Counter[str] = Counter()
    sample = rng.sample(texts, min(3000, len(texts)))
    for text in sample:
        df.update({w.lower() for w in text.split() if w.isalpha() and len(w) > 3})
    hi = max_df * len(sample)
    return sorted(w for w, n in df.items() if 3 <= n <= hi)


def make_rules(n: int, words: list[str], rng: random.Random) -> list[Rule]:
    rules = []
    for i in range(n):
        w = lambda: rng.choice(words)  # noqa: E731
        kind = rng.random()
        if kind < 0.30:
            query = f"{w()} {w()}"
        elif kind < 0.50:
            query = f"{w()} AND ({w()} OR {w()})"
        elif kind < 0.62:
            query = f'"{w()} {w()}" OR {w()}'
        elif kind < 0.72:
            query = f"{w()} -{w()}"
        elif kind < 0.80:
            query = f"title:{w()} OR text:({w()} AND {w()})"
        elif kind < 0.86:
            query = f"{w()} country:{rng.choice(COUNTRIES)}"
        elif kind < 0.90:
            query = f"{w()[:5]}*"  # prefix: no required term unless a filter gives one
        elif kind < 0.97:
            query = ""  # "any story tagged X": filters only
        else:
            query = f"({w()} OR {w()}) AND NOT ({w()} OR {w()})"
        filters: dict[str, Any] = {}
        if not query or rng.random() < 0.4:
            filters["conflicts"] = tuple(rng.sample(CONFLICTS, rng.randint(1, 2)))
        if not query or rng.random() < 0.2:
            filters["event_types"] = (rng.choice(EVENT_TYPES),)
        if not query:
            filters["countries"] = (rng.choice(COUNTRIES),)
        if rng.random() < 0.1:
            filters["sources"] = tuple(rng.sample(SOURCES, 2))
        if rng.random() < 0.1:
            filters["min_killed"] = rng.randint(1, 20)
        rules.append(Rule(id=f"bench-{i:05d}", name=f"bench {i}", query=query,
                          filters=RuleFilters(**filters)))
    return rules


def bench_matching(n_rules: int, n_articles: int, max_df: float) -> dict[str, Any]:
    rng = random.Random(5)
    texts = load_texts(SHARED)
    words = vocabulary(texts, rng, max_df)
    rules = make_rules(n_rules, words, rng)
    t0 = time.perf_counter()
    index = RuleIndex(rules)
    build_s = time.perf_counter() - t0
    articles = list(synthetic_articles(texts, n_articles, seed=99))
    candidates = matched = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for art in articles:
        matched += len(index.match(art))
    match_s = time.perf_counter() - t0
    match_cpu = time.process_time() - c0  # the figure that the shared machine's load spares
    from indexer.query import doc_terms, prepare

    for art in articles[:200]:
        candidates += len(index.candidates(doc_terms(prepare(art))))
    # brute force on a small sample, for comparison (and as a correctness check)
    sample = articles[:5]
    t0 = time.perf_counter()
    for art in sample:
        brute = {r.id for r in rules if rule_matches(r, art)}
        assert brute == {r.id for r in index.match(art)}, "index and brute force disagree"
    brute_s = time.perf_counter() - t0
    avg_chars = statistics.mean(len(a.text) for a in articles)
    return {
        "rules": len(index), "max_df": max_df, "unindexed_rules": index.unindexed,
        "index_build_s": round(build_s, 2),
        "articles": len(articles), "avg_text_chars": int(avg_chars),
        "match_articles_per_s": round(len(articles) / match_s, 1),
        "match_ms_per_article": round(1000 * match_s / len(articles), 2),
        "match_cpu_ms_per_article": round(1000 * match_cpu / len(articles), 2),
        "match_articles_per_cpu_s": round(len(articles) / match_cpu, 1),
        "avg_candidate_rules": round(candidates / min(200, len(articles)), 1),
        "avg_matched_rules": round(matched / len(articles), 2),
        "brute_force_articles_per_s": round(len(sample) / brute_s, 2),
        "speedup_vs_brute_force": round((len(articles) / match_s) / (len(sample) / brute_s), 1),
    }


# ------------------------------------------------------------------ latency on real servers


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real webhook receivers do

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.arrivals.append((time.time(), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


def bench_latency(n_rules: int, n_articles: int, rate: float,
                  max_df: float, profile: Path | None = None) -> dict[str, Any]:
    from kafka import KafkaProducer

    from newswire.broker import EmbeddedServer
    from newswire.settings import child_env, load_settings
    from newswire.topics import ensure_topics

    rng = random.Random(6)
    texts = load_texts(SHARED)
    rules = make_rules(n_rules, vocabulary(texts, rng, max_df), rng)
    receiver = Receiver()
    probe = Rule(id="latency-probe", name="latency probe", query="zanzibar",
                 channels=(WebhookChannel(url=receiver.url, secret_name="bench"),))
    tmp = Path(tempfile.mkdtemp(prefix="alerts-bench-"))
    server = EmbeddedServer(tmp / "noida")
    server.start()
    proc = None
    try:
        settings = load_settings(data_dir=tmp / "data", kafka={
            "bootstrap_servers": server.bootstrap, "topic_prefix": "bench", "partitions": 4})
        ensure_topics(settings)
        producer = KafkaProducer(**settings.kafka.client_config(), acks="all", linger_ms=5)
        for rule in [*rules, probe]:
            producer.send(settings.topic("alert-rules"), key=rule.id.encode(),
                          value=rule.to_wire())
        producer.flush()
        log = (tmp / "worker.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "processors.alerts.standalone"],
                                cwd=REPO, env={**os.environ, **child_env(settings),
                                             "NEWSWIRE_ALERTS__SECRETS__BENCH": "bench-key",
                                             # the receiver is on loopback
                                             "NEWSWIRE_FETCH__ALLOW_PRIVATE_NETWORKS": "true"},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        # warm-up: the probe rule fires once all rules before it were applied
        deadline = time.monotonic() + 180
        warm = 0
        while not receiver.arrivals:
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker never alerted; see {tmp / 'worker.log'}")
            warm += 1
            send(producer, settings, f"warm-{warm}", "Zanzibar warm-up", rng, texts)
            time.sleep(2)
        time.sleep(2)
        receiver.arrivals.clear()
        spy = None
        if profile is not None:  # collapsed stacks of the worker while it is measured
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record",
                                    "--pid", str(proc.pid), "--rate", "200", "--format", "raw",
                                    "--output", str(profile)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        cpu0 = _cpu_seconds(proc.pid)
        broker_pid = server.proc.pid if server.proc is not None else None
        broker0 = _cpu_seconds(broker_pid) if broker_pid else 0.0
        started = time.time()
        for i in range(n_articles):
            send(producer, settings, f"lat-{i}", "Zanzibar", rng, texts)
            time.sleep(max(0.0, started + (i + 1) / rate - time.time()))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(
                p["story"]["story_id"].startswith("lat-") for _, p in receiver.arrivals) \
                < n_articles:
            time.sleep(0.1)
        worker_cpu = _cpu_seconds(proc.pid) - cpu0
        broker_cpu = _cpu_seconds(broker_pid) - broker0 if broker_pid else float("nan")
        wall = time.time() - started
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        measured = [(arrived, p) for arrived, p in receiver.arrivals
                    if p["story"]["story_id"].startswith("lat-")]  # not late warm-ups
        lat = sorted(arrived - datetime.fromisoformat(p["story"]["first_seen"]).timestamp()
                     for arrived, p in measured)
        # where the time goes: ingested -> decided (two Kafka hops, match, decide) and
        # decided -> received (the webhook POST)
        decided = sorted(datetime.fromisoformat(p["sent_at"]).timestamp()
                         - datetime.fromisoformat(p["story"]["first_seen"]).timestamp()
                         for _, p in measured)
        return {
            "rules": len(rules) + 1, "max_df": max_df, "articles": n_articles,
            "rate_per_s": rate,
            "alerts_received": len(lat),
            "latency_p50_s": round(lat[len(lat) // 2], 3) if lat else None,
            "latency_p99_s": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3)
            if lat else None,
            "latency_max_s": round(lat[-1], 3) if lat else None,
            "to_decision_p50_s": round(decided[len(decided) // 2], 3) if decided else None,
            "to_decision_p99_s": round(decided[min(len(decided) - 1, int(len(decided) * .99))],
                                       3) if decided else None,
            "worker_cpu_s": round(worker_cpu, 2), "wall_s": round(wall, 1),
            "worker_cpu_share_of_one_core": round(worker_cpu / wall, 2),
            "broker_cpu_s": round(broker_cpu, 2),
        }
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.stop()


def bench_up(n_rules: int, n_articles: int, feeds: int, rate: float,
             max_df: float) -> dict[str, Any]:
    """Latency on the embedded default: `newswire up` on loopback feeds of real news pages,
    10,000 rules plus one that matches every article with a webhook; latency = webhook
    received - the article's ingest time (stamped right after tagging)."""
    from kafka import KafkaProducer

    from newswire import runtime
    from newswire.settings import load_settings
    from tests.feedworld import FeedWorld, load_pages, process_tree, start_up

    rng = random.Random(7)
    texts = load_texts(SHARED)
    rules = make_rules(n_rules, vocabulary(texts, rng, max_df), rng)
    receiver = Receiver()
    probe = Rule(id="latency-probe", name="every article", query="",
                 channels=(WebhookChannel(url=receiver.url, secret_name="bench"),))
    pages = load_pages(REPO.parent / "shared" / "data" / "extraction-dev")
    world = FeedWorld(pages, n_articles, feeds, rate=rate, held=True).start()
    tmp = Path(tempfile.mkdtemp(prefix="alerts-bench-up-"))
    log = tmp / "up.log"
    up = start_up(tmp / "data", world.feed_urls(), log,
                  env={"NEWSWIRE_ALERTS__SECRETS__BENCH": "bench-key",
                       "NEWSWIRE_FETCH__PER_HOST_CONCURRENCY": "64"})
    try:
        settings = load_settings(data_dir=tmp / "data")
        deadline = time.monotonic() + 120
        while (facts := runtime.read(settings)) is None or not facts.get("kafka"):
            if up.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"newswire up did not start; see {log}")
            time.sleep(0.5)
        kafka = runtime.with_kafka(settings)
        producer = KafkaProducer(**kafka.kafka.client_config(), acks="all", linger_ms=5)
        for rule in [*rules, probe]:  # the probe last: once it is applied, all are
            producer.send(kafka.topic("alert-rules"), key=rule.id.encode(), value=rule.to_wire())
        producer.flush()
        producer.close()
        while "alert rule updated rule=latency-probe" not in log.read_text(errors="replace"):
            if up.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the processor never applied the rules; see {log}")
            time.sleep(0.5)
        cpu0 = {p.pid: (label, sum(p.cpu_times()[:2])) for label, p in process_tree(up.pid)}
        world.release()
        started = time.monotonic()
        stories = len(pages) if n_articles >= len(pages) else n_articles  # pages repeat
        # pages that give no article never alert: stop once all were served and nothing
        # arrived for 20 s
        last, seen = time.monotonic(), 0
        while len(receiver.arrivals) < stories and time.monotonic() - started < 600:
            if up.poll() is not None:
                raise RuntimeError(f"newswire up exited; see {log}")
            if len(receiver.arrivals) != seen:
                last, seen = time.monotonic(), len(receiver.arrivals)
            elif world.revealed() >= n_articles and time.monotonic() - last > 20:
                break
            time.sleep(0.2)
        wall = last - started
        cpu: dict[str, float] = {}
        for label, p in process_tree(up.pid):
            if p.pid in cpu0:
                cpu[label] = cpu.get(label, 0.0) + sum(p.cpu_times()[:2]) - cpu0[p.pid][1]
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
        world.stop()
    lat = sorted(arrived - datetime.fromisoformat(p["story"]["first_seen"]).timestamp()
                 for arrived, p in receiver.arrivals)

    def q(f: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(len(lat) * f))], 3) if lat else None

    return {"rules": len(rules) + 1, "articles_served": n_articles, "feeds": feeds,
            "rate_per_s": rate, "alerts_received": len(lat), "wall_s": round(wall, 1),
            "alerts_per_s": round(len(lat) / wall, 2) if wall else None,
            "latency_p50_s": q(0.5), "latency_p99_s": q(0.99), "latency_max_s": q(1.0),
            "cpu_s_by_service": {k: round(v, 1) for k, v in sorted(cpu.items())},
            "log": str(log)}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc: no extra dependency)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send(producer: Any, settings: Any, key: str, title: str, rng: random.Random,
         texts: list[str]) -> None:
    art = Article(id=key, url=f"https://bench.example/{key}", title=title,
                  text=rng.choice(texts), source="bench.example", story_id=key,
                  ingested=datetime.now(UTC))
    producer.send(settings.topic("articles"), key=art.id.encode(), value=art.to_bytes())
    producer.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--articles", type=int, default=2_000)
    parser.add_argument("--latency-articles", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="articles/s in part 2")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--no-matching", action="store_true")
    parser.add_argument("--up", action="store_true",
                        help="part 3: latency through `newswire up` on real pages "
                             "(--latency-articles, --rate, --feeds)")
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--profile", type=Path,
                        help="py-spy collapsed stacks of the worker during part 2")
    parser.add_argument("--max-df", type=float, default=0.05,
                        help="rule words appear in at most this share of documents "
                             "(0.2 = broad rules, ~300 matches per article)")
    args = parser.parse_args()
    print(f"cpus={os.cpu_count()} python={sys.version.split()[0]}")
    if not args.no_matching:
        print("matching:", json.dumps(bench_matching(args.rules, args.articles, args.max_df)))
    if args.up:
        print("up:", json.dumps(bench_up(args.rules, args.latency_articles, args.feeds,
                                         args.rate, args.max_df)))
        return
    if not args.no_latency:
        print("latency:", json.dumps(bench_latency(args.rules, args.latency_articles, args.rate,
                                                   args.max_df, args.profile)))


if __name__ == "__main__":
    main()
