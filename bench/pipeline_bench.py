"""End-to-end benchmark of `newswire up` on the embedded default (issue 9).

A loopback server serves N feeds whose items link to real news pages from
../shared/data/extraction-dev/ (re-served under many URLs, with configurable latency).
The real pipeline runs as `newswire up` in a fresh data dir. Reported: articles/s end to end,
per-stage throughput, latency from an entry first being served in a feed to being searchable
(p50/p95/p99), CPU seconds per article, peak RSS per process, and, in the same run, plain
trafilatura's single-core extraction rate on the same pages, with the headline ratio
pipeline articles/s / (trafilatura articles/s x cores).

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/pipeline_bench.py --articles 400 --feeds 20
    .venv/bin/python bench/pipeline_bench.py --articles 300 --rate 5   # latency at a steady rate
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email.utils import format_datetime
from datetime import UTC, datetime
from pathlib import Path

import psutil
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "extraction-dev"


def page_paths() -> list[Path]:
    paths = sorted((DATA / "fundus-evaluation" / "html").glob("*.html.gz"))
    paths += sorted((DATA / "readability-pages").glob("*/source.html.gz"))
    if not paths:
        sys.exit(f"no pages found under {DATA}")
    return paths


def trafilatura_rate(paths: list[Path]) -> float:
    """Plain trafilatura.extract, one core, in a child process so nothing else shares it."""
    code = (
        "import gzip, sys, time, trafilatura\n"
        "pages=[gzip.decompress(open(p,'rb').read()).decode('utf-8','replace') for p in sys.argv[1:]]\n"
        "t=time.process_time()\n"
        "for p in pages: trafilatura.extract(p)\n"
        "print(len(pages)/(time.process_time()-t))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *map(str, paths)],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


class FeedWorld:
    def __init__(self, pages: list[bytes], articles: int, feeds: int, rate: float, latency: float):
        self.pages, self.n, self.feeds, self.latency = pages, articles, feeds, latency
        start = time.monotonic() + 1.0
        self.reveal = [start + (i / rate if rate > 0 else 0.0) for i in range(articles)]
        self.first_served: dict[int, float] = {}
        self.base = ""

    def items(self, feed: int) -> list[int]:
        now = time.monotonic()
        return [i for i in range(feed, self.n, self.feeds) if self.reveal[i] <= now]

    async def feed(self, request: web.Request) -> web.Response:
        feed = int(request.match_info["f"])
        items = self.items(feed)
        etag = f'"{feed}-{len(items)}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        now = time.monotonic()
        for i in items:
            self.first_served.setdefault(i, now)
        when = format_datetime(datetime.now(UTC), usegmt=True)
        body = "".join(
            f"<item><title>Story {i}</title><link>{self.base}/a/{i}?utm_source=rss</link>"
            f"<guid>story-{i}</guid><pubDate>{when}</pubDate><description>Story {i}</description></item>"
            for i in items)
        xml = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {feed}</title>'
               f"<link>{self.base}/</link><description>bench</description>{body}</channel></rss>")
        return web.Response(body=xml.encode(), content_type="application/rss+xml",
                            headers={"ETag": etag})

    async def article(self, request: web.Request) -> web.Response:
        if self.latency:
            await asyncio.sleep(self.latency)
        i = int(request.match_info["i"])
        return web.Response(body=self.pages[i % len(self.pages)], content_type="text/html")

    async def robots(self, _: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nAllow: /\n")


def serve(world: FeedWorld) -> int:
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.add_routes([web.get("/feed/{f}.xml", world.feed), web.get("/a/{i}", world.article),
                    web.get("/robots.txt", world.robots)])
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return port


def service_name(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return "?"
    if any("noida" in c for c in cmd):
        return "broker"
    for name in ("serve", "index", "process", "poll", "up"):
        if name in cmd:
            return name
    return "process-pool" if "multiprocessing" in " ".join(cmd) else "other"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=400)
    ap.add_argument("--feeds", type=int, default=20)
    ap.add_argument("--rate", type=float, default=0.0, help="items revealed per second (0 = all now)")
    ap.add_argument("--latency", type=float, default=0.05, help="article page latency, seconds")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from indexer.store import open_store
    from newswire import ops, runtime
    from newswire.keys import url_key
    from newswire.settings import load_settings

    paths = page_paths()
    pages = [gzip.decompress(p.read_bytes()) for p in paths]
    traf = trafilatura_rate(paths)
    world = FeedWorld(pages, args.articles, args.feeds, args.rate, args.latency)
    port = serve(world)
    world.base = f"http://127.0.0.1:{port}"
    keys = {url_key(f"{world.base}/a/{i}"): i for i in range(args.articles)}

    tmp = Path(tempfile.mkdtemp(prefix="newswire-bench-"))
    feeds_file = tmp / "feeds.txt"
    feeds_file.write_text("".join(f"{world.base}/feed/{f}.xml\n" for f in range(args.feeds)))
    env = {**os.environ, "NEWSWIRE_POLL__MIN_INTERVAL": "1", "NEWSWIRE_POLL__DEFAULT_INTERVAL": "1",
           "NEWSWIRE_FETCH__PER_HOST_MIN_GAP": "0", "NEWSWIRE_FETCH__PER_HOST_CONCURRENCY": "64",
           "NEWSWIRE_LOG_LEVEL": "WARNING"}
    log = (tmp / "up.log").open("wb")
    up = subprocess.Popen([sys.executable, "-m", "newswire", "--data-dir", str(tmp / "data"), "up",
                           "--feeds", str(feeds_file), "--allow-private-networks", "--port", "0"],
                          env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    settings = load_settings(data_dir=tmp / "data")
    searchable: dict[int, float] = {}
    peak_rss: dict[str, int] = {}
    cpu: dict[int, float] = {}
    started = time.monotonic()
    store = None
    stage_samples: list[tuple[float, dict]] = []
    last_sample = 0.0
    try:
        while len(searchable) < args.articles and time.monotonic() - started < args.timeout:
            if up.poll() is not None:
                sys.exit(f"newswire up exited with {up.returncode}; see {tmp / 'up.log'}")
            try:
                procs = [psutil.Process(up.pid), *psutil.Process(up.pid).children(recursive=True)]
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    name = service_name(p)
                    peak_rss[name] = max(peak_rss.get(name, 0), p.memory_info().rss)
                    t = p.cpu_times()
                    cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    pass
            if store is None and (tmp / "data" / "index").exists():
                store = open_store(settings)
            if store is not None:
                store.refresh()
                now = time.monotonic()
                for key, i in keys.items():
                    if i not in searchable and store.get(key) is not None:
                        searchable[i] = now
            if time.monotonic() - last_sample > 2:
                last_sample = time.monotonic()
                try:
                    status = ops.pipeline_status(runtime.with_kafka(settings))
                    stage_samples.append((last_sample, {k: v["produced"] for k, v in status["stages"].items()}))
                except Exception:  # noqa: BLE001 - broker not up yet
                    pass
            time.sleep(0.2)
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)

    done = len(searchable)
    # Steady-state rate: between the 10th and the 90th percentile article becoming
    # searchable, so start-up (broker, tagger compile) and the tail do not dilute it.
    times = sorted(searchable.values())
    lo, hi = times[int(0.1 * (done - 1))] if done else 0, times[int(0.9 * (done - 1))] if done else 0
    steady = (int(0.9 * (done - 1)) - int(0.1 * (done - 1))) / (hi - lo) if hi > lo else float("nan")
    first = min(world.first_served.values(), default=started)
    last = max(searchable.values(), default=first)
    rate = done / (last - first) if last > first else float("nan")
    latencies = [searchable[i] - world.first_served[i] for i in searchable if i in world.first_served]
    cores = os.cpu_count() or 1
    per_stage: dict[str, float] = {}
    for (t0, a), (t1, b) in zip(stage_samples, stage_samples[1:]):
        for stage in b:  # best 2-s window of messages produced into each stage's input
            per_stage[stage] = max(per_stage.get(stage, 0.0), (b[stage] - a.get(stage, 0)) / (t1 - t0))
    report = {
        "articles": args.articles, "searchable": done, "feeds": args.feeds,
        "reveal_rate": args.rate, "page_latency_s": args.latency,
        "pipeline_articles_per_s": round(steady, 2),
        "pipeline_articles_per_s_incl_startup": round(rate, 2),
        "trafilatura_single_core_articles_per_s": round(traf, 2),
        "cores": cores,
        "ratio": round(steady / (traf * cores), 3),
        "latency_s": {"p50": round(pct(latencies, .5), 3), "p95": round(pct(latencies, .95), 3),
                      "p99": round(pct(latencies, .99), 3)},
        "stage_input_msgs_per_s_peak": {k: round(v, 1) for k, v in per_stage.items()},
        "cpu_s_per_article": round(sum(cpu.values()) / max(done, 1), 4),
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in sorted(peak_rss.items())},
        "data_dir": str(tmp),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
