"""End-to-end benchmark of `newswire up` on the embedded default (issue 9).

A loopback FeedWorld (tests/feedworld.py) serves N feeds whose items link to real news pages
from ../shared/data/extraction-dev/ (re-served under many URLs, with configurable latency).
The real pipeline runs as `newswire up` in a fresh data dir; the feeds stay empty until the
processor's consumer group is assigned, so start-up is not counted as latency. An alert rule
matching every article posts to a loopback webhook. Reported: articles/s end to end,
per-stage throughput, latency from an entry first being served in a feed to being searchable
(p50/p95/p99), alert latency (served in a feed -> webhook received; one alert per story, and
pages repeat, so only each story's first copy alerts), CPU seconds per article (all
processes, and per service), peak RSS per process, and, in the same run, plain trafilatura's
single-core extraction rate on the same pages (before and after the run; the faster counts),
with the headline ratio
pipeline articles/s / (trafilatura articles/s x cores).
Also plain trafilatura in one process per core at once (``ratio_to_all_cores``): what the
cores really give together, the ceiling the pipeline's extraction shares (on this shared VM two
busy vCPUs gave between 1.6x and 2.05x one, depending on the hour).

    .venv/bin/python bench/pipeline_bench.py --articles 400 --feeds 20          # throughput
    .venv/bin/python bench/pipeline_bench.py --articles 200 --feeds 20 --rate 5 # latency at a steady rate
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "extraction-dev"
sys.path.insert(0, str(ROOT))

from tests.feedworld import FeedWorld, load_pages, process_tree, start_up  # noqa: E402


# A child process's start: the same pages as the pipeline serves, decoded as a str each.
_LOAD_PAGES = (
    "import sys, time, trafilatura\n"
    "from pathlib import Path\n"
    f"sys.path.insert(0, {str(ROOT)!r})\n"
    "from tests.feedworld import load_pages\n"
    "pages=[p.decode('utf-8','replace') for p in load_pages(Path(sys.argv[1]))]\n"
)


def trafilatura_rate() -> float:
    """Plain trafilatura.extract, one core, in a child process so nothing else shares it."""
    code = (
        _LOAD_PAGES
        + "t=time.process_time()\n"
        + "for p in pages: trafilatura.extract(p)\n"
        + "print(len(pages)/(time.process_time()-t))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(DATA)],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def trafilatura_parallel_rate(workers: int) -> float:
    """Plain trafilatura.extract in ``workers`` processes at once, pages per wall second: what
    this machine's cores really give together (two busy vCPUs are not always twice one)."""
    start_at = time.time() + 4.0  # every child has loaded its pages by then
    code = (
        _LOAD_PAGES
        + "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        + "for p in pages: trafilatura.extract(p)\n"
        + "print(len(pages), time.time())\n"
    )
    children = [subprocess.Popen([sys.executable, "-c", code, str(DATA), str(start_at)],
                                 stdout=subprocess.PIPE, text=True) for _ in range(workers)]
    outs = [child.communicate()[0].split() for child in children]
    pages = sum(int(out[0]) for out in outs)
    return pages / (max(float(out[1]) for out in outs) - start_at)


class Webhook:
    """Loopback receiver of alert webhooks: (monotonic arrival, payload)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.arrivals.append((time.monotonic(), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


# Topics that ops.pipeline_status counts, by the stage that writes them.
OUTPUT_OF = {"entries": "poll (entries)", "articles": "process (articles)"}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def latency_summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": round(pct(values, .5), 3), "p95": round(pct(values, .95), 3),
            "p99": round(pct(values, .99), 3), "max": round(max(values, default=float("nan")), 3)}


def schedstat(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one), over all of the process's
    threads, from Linux /proc schedstat; (0, 0) where it cannot be read."""
    run = wait = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0, 0.0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                fields = f.read().split()
            run, wait = run + int(fields[0]), wait + int(fields[1])
        except (OSError, ValueError, IndexError):
            pass
    return run / 1e9, wait / 1e9


def wait_until_ready(settings: Any, up: subprocess.Popen[bytes], log: Path,
                     timeout: float = 180) -> Any:
    """Kafka settings of the running `up` once the processor's group has the entries topic
    assigned (the worker is past start-up: pool forked, tagger compiled, tables recovered)."""
    from kafka import KafkaAdminClient

    from newswire import runtime

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if up.poll() is not None:
            sys.exit(f"newswire up exited with {up.returncode}; see {log}")
        try:
            kafka = runtime.with_kafka(settings)
            admin = KafkaAdminClient(**kafka.kafka.client_config())
            try:
                group = admin.describe_groups([f"{kafka.kafka.topic_prefix}-processor"])
            finally:
                admin.close()
            for described in group.values():
                for member in described.get("members", []):
                    topics = {a["topic"] for a in
                              member.get("member_assignment", {}).get("assigned_partitions", [])}
                    if kafka.topic("entries") in topics:
                        return kafka
        except Exception:  # noqa: BLE001 - broker or group not there yet
            pass
        time.sleep(0.5)
    sys.exit(f"the processor never joined its group; see {log}")


def add_alert_rule(kafka: Any, url: str) -> None:
    from kafka import KafkaProducer

    from processors.alerts.rules import Rule, WebhookChannel

    # Matches every article, and is a word query, so the text is analysed as any deployment
    # with word rules pays for (a facet-only rule set skips that analysis).
    rule = Rule(id="bench-all", name="every article", query="NOT xqzvj",
                channels=(WebhookChannel(url=url, secret_name="bench"),))
    producer = KafkaProducer(**kafka.kafka.client_config(), acks="all")
    producer.send(kafka.topic("alert-rules"), key=rule.id.encode(), value=rule.to_wire())
    producer.flush()
    producer.close()


def produced_at(kafka: Any, topic: str) -> dict[str, float]:
    """Key -> broker timestamp (epoch s) of the key's first message on ``topic``."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=2000,
                             **kafka.kafka.client_config())
    first: dict[str, float] = {}
    try:
        for message in consumer:
            if message.key is not None:
                first.setdefault(message.key.decode(), message.timestamp / 1000)
    finally:
        consumer.close()
    return first


def stage_latencies(world: FeedWorld, keys: dict[str, int], searchable: dict[int, float],
                    entries: dict[str, float], articles: dict[str, float],
                    clock_offset: float) -> dict[str, dict[str, float]]:
    """Where the time from feed to searchable goes: served -> entry on Kafka (poll),
    -> article on Kafka (fetch + extract + tag), -> searchable (index)."""
    poll, process, index = [], [], []
    for key, i in keys.items():
        if i not in world.first_served or key not in entries or key not in articles:
            continue
        served = world.first_served[i] + clock_offset
        poll.append(entries[key] - served)
        process.append(articles[key] - entries[key])
        if i in searchable:
            index.append(searchable[i] + clock_offset - articles[key])
    return {"poll": latency_summary(poll), "process": latency_summary(process),
            "index": latency_summary(index)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=400)
    ap.add_argument("--feeds", type=int, default=20)
    ap.add_argument("--rate", type=float, default=0.0, help="items revealed per second (0 = all now)")
    ap.add_argument("--latency", type=float, default=0.05, help="article page latency, seconds")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--keep", action="store_true", help="keep the data dir and log")
    ap.add_argument("--log-level", default="WARNING", help="of the services, into the log")
    ap.add_argument("--dump", type=Path, help="write per-item epoch times (served, entry, "
                    "article, searchable) to this JSON file")
    args = ap.parse_args()

    from indexer.store import open_store
    from newswire import ops
    from newswire.settings import load_settings

    traf_before = trafilatura_rate()
    traf_all_before = trafilatura_parallel_rate(os.cpu_count() or 1)
    hook = Webhook()
    world = FeedWorld(load_pages(DATA), args.articles, args.feeds, rate=args.rate,
                      latency=args.latency, held=True).start()
    keys = world.keys()

    tmp = Path(tempfile.mkdtemp(prefix="newswire-bench-"))
    log = tmp / "up.log"
    env = {"NEWSWIRE_POLL__MIN_INTERVAL": "1", "NEWSWIRE_POLL__DEFAULT_INTERVAL": "1",
           "NEWSWIRE_ALERTS__SECRETS__BENCH": "bench-key",
           "NEWSWIRE_FETCH__PER_HOST_CONCURRENCY": "64", "NEWSWIRE_LOG_LEVEL": args.log_level}
    up = start_up(tmp / "data", world.feed_urls(), log, env=env)
    settings = load_settings(data_dir=tmp / "data")
    searchable: dict[int, float] = {}
    peak_rss: dict[str, int] = {}
    cpu: dict[int, tuple[str, float]] = {}
    sched: dict[int, tuple[str, float, float]] = {}
    store = None
    stage_samples: list[tuple[float, dict[str, int]]] = []
    try:
        kafka = wait_until_ready(settings, up, log)
        add_alert_rule(kafka, hook.url)
        cpu_at_release = {p.pid: sum(p.cpu_times()[:2]) for _, p in process_tree(up.pid)}
        sched_at_release = {p.pid: schedstat(p.pid) for _, p in process_tree(up.pid)}
        harness_at_release = sum(psutil.Process().cpu_times()[:2])
        world.release()
        started, last_sample = time.monotonic(), 0.0  # first stage sample at once
        last_procs, indexed = 0.0, -1

        def sample_processes() -> None:
            for label, p in process_tree(up.pid):
                try:
                    peak_rss[label] = max(peak_rss.get(label, 0), p.memory_info().rss)
                    t = p.cpu_times()
                    cpu[p.pid] = (label, t.user + t.system - cpu_at_release.get(p.pid, 0.0))
                    run0, wait0 = sched_at_release.get(p.pid, (0.0, 0.0))
                    run1, wait1 = schedstat(p.pid)
                    sched[p.pid] = (label, run1 - run0, wait1 - wait0)
                except psutil.Error:
                    pass

        while len(searchable) < args.articles and time.monotonic() - started < args.timeout:
            if up.poll() is not None:
                sys.exit(f"newswire up exited with {up.returncode}; see {log}")
            # This script shares the cores with the pipeline: its sampling stays cheap (the
            # processes every 0.5 s, the per-story look-ups only when the count moved).
            if time.monotonic() - last_procs >= 0.5:
                sample_processes()
                last_procs = time.monotonic()
            if store is None and (tmp / "data" / "index").exists():
                store = open_store(settings)
            if store is not None:
                store.refresh()
                now = time.monotonic()
                count = store.count()
                if count != indexed:
                    indexed = count
                    for key, i in keys.items():
                        if i not in searchable and store.get(key) is not None:
                            searchable[i] = now
            if time.monotonic() - last_sample > 2:
                last_sample = time.monotonic()
                try:
                    status = ops.pipeline_status(kafka)
                    stage_samples.append((last_sample, {v["topic"]: v["produced"]
                                                        for v in status["stages"].values()}))
                except Exception:  # noqa: BLE001 - a slow broker answer: skip this sample
                    pass
            time.sleep(0.1)
        sample_processes()  # the CPU of the whole run, up to the last story
        harness_cpu = sum(psutil.Process().cpu_times()[:2]) - harness_at_release
        time.sleep(1.0)  # the last alerts trail the last article by the webhook round trip
        clock_offset = time.time() - time.monotonic()  # monotonic -> epoch, for broker times
        pss_at_end: dict[str, float] = {}  # shared pages (a forked pool's) split fairly
        for label, p in process_tree(up.pid):
            try:
                pss_at_end[label] = pss_at_end.get(label, 0.0) + p.memory_full_info().pss
            except psutil.Error:
                pass
        entries = produced_at(kafka, kafka.topic("entries"))
        articles = produced_at(kafka, kafka.topic("articles"))
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
        world.stop()

    # This machine's speed drifts by tens of percent over minutes (a shared VM), so plain
    # trafilatura is measured before and after the run, and the faster of the two is the
    # yardstick: the ratio errs against the pipeline.
    traf_after = trafilatura_rate()
    traf = max(traf_before, traf_after)
    cores = os.cpu_count() or 1
    traf_all = max(traf_all_before, trafilatura_parallel_rate(cores))
    done = len(searchable)
    # Steady-state rate: between the 10th and the 90th percentile article becoming
    # searchable, so the first pages (cold caches) and the tail do not dilute it.
    times = sorted(searchable.values())
    lo_i, hi_i = int(0.1 * (done - 1)), int(0.9 * (done - 1))
    steady = (hi_i - lo_i) / (times[hi_i] - times[lo_i]) if done and times[hi_i] > times[lo_i] \
        else float("nan")
    first = min(world.first_served.values(), default=started)
    last = max(searchable.values(), default=first)
    overall = done / (last - first) if last > first else float("nan")
    latencies = [searchable[i] - world.first_served[i] for i in searchable
                 if i in world.first_served]
    alert_lat = []
    for arrived, payload in hook.arrivals:
        url = payload.get("story", {}).get("url", "")
        i = int(url.rsplit("/", 1)[-1]) if "/a/" in url else -1
        if i in world.first_served:
            alert_lat.append(arrived - world.first_served[i])
    per_stage: dict[str, float] = {}
    for (t0, a), (t1, b) in zip(stage_samples, stage_samples[1:]):
        for stage in b:  # best 2-s window of messages produced into each topic
            per_stage[stage] = max(per_stage.get(stage, 0.0), (b[stage] - a.get(stage, 0)) / (t1 - t0))
    cpu_by_service: dict[str, float] = {}
    for label, seconds in cpu.values():
        cpu_by_service[label] = cpu_by_service.get(label, 0.0) + seconds
    # Share of the run each service spent on a CPU vs runnable but waiting for one (100% =
    # one core): a service that mostly waits is starved by whatever else runs on the machine.
    wall = max(searchable.values(), default=started) - started
    run_wait: dict[str, list[float]] = {}
    for label, run, waited in sched.values():
        acc = run_wait.setdefault(label, [0.0, 0.0])
        acc[0], acc[1] = acc[0] + run, acc[1] + waited
    report = {
        "articles": args.articles, "searchable": done, "feeds": args.feeds,
        "reveal_rate": args.rate, "page_latency_s": args.latency, "cores": cores,
        "pipeline_articles_per_s": round(steady, 2),
        "pipeline_articles_per_s_first_served_to_last": round(overall, 2),
        "trafilatura_single_core_articles_per_s": round(traf, 2),
        "trafilatura_before_after": [round(traf_before, 2), round(traf_after, 2)],
        "ratio": round(steady / (traf * cores), 3),
        # plain trafilatura on every core at once (before and after, the faster counts): the
        # machine's real extraction capacity, and the pipeline's rate against it
        "trafilatura_all_cores_articles_per_s": round(traf_all, 2),
        "ratio_to_all_cores": round(steady / traf_all, 3),
        # The same ratio in CPU time (trafilatura CPU-s per page / pipeline CPU-s per article):
        # what the ratio is when the pipeline has its cores to itself and is CPU-bound; the
        # wall-clock ratio above also counts other load on the machine (see load_avg).
        "cpu_ratio": round((1 / traf) / (sum(cpu_by_service.values()) / max(done, 1)), 3)
        if done else float("nan"),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "latency_s": latency_summary(latencies),
        "alert_latency_s": latency_summary(alert_lat),
        "latency_by_stage_s": stage_latencies(world, keys, searchable, entries, articles,
                                              clock_offset),
        # Best 2-s window of each stage's output: entries from the poller, articles from
        # the processor (both read from Kafka end offsets); the indexer's is the rate above.
        "stage_output_per_s_peak": {
            OUTPUT_OF.get(topic.rsplit(".", 1)[-1], topic): round(v, 1)
            for topic, v in per_stage.items()},
        "cpu_s_per_article": round(sum(cpu_by_service.values()) / max(done, 1), 4),
        "cpu_s_per_article_by_service": {k: round(v / max(done, 1), 4)
                                         for k, v in sorted(cpu_by_service.items())},
        # This script's own CPU (loopback feed and page server, webhook, the searchable
        # checks): not the pipeline's, but it shares the machine's cores with it.
        "harness_cpu_s_per_article": round(harness_cpu / max(done, 1), 4),
        "on_cpu_vs_waiting_for_cpu_pct": {
            k: [round(100 * r / wall, 1), round(100 * w / wall, 1)]
            for k, (r, w) in sorted(run_wait.items())} if wall > 0 else {},
        "pss_mb_at_end": {k: round(v / 2**20, 1) for k, v in sorted(pss_at_end.items())},
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in sorted(peak_rss.items())},
    }
    if args.dump:
        args.dump.write_text(json.dumps([
            {"i": i, "served": world.first_served[i] + clock_offset if i in world.first_served
             else None, "entry": entries.get(key), "article": articles.get(key),
             "searchable": searchable[i] + clock_offset if i in searchable else None}
            for key, i in sorted(keys.items(), key=lambda kv: kv[1])]))
    if args.keep:
        report["log"] = str(log)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
