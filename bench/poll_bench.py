"""Poller at scale: 10,000 feeds on a 5-minute cadence against a loopback server.

    .venv/bin/python bench/poll_bench.py [--feeds 10000] [--cadence 300] [--measure 180]
                                         [--local-limits]

What runs:
- a feed server in its own process (aiohttp) on 20 loopback addresses 127.0.0.1-20 (20 "hosts",
  so per-host politeness is exercised); every feed has an ETag and changes about once every
  10 polls (one new item on top of 20), so most polls are answered 304;
- an embedded noida-db broker (Kafka protocol) the poller publishes to;
- ONE `newswire poll` process, with min=max=default interval = the cadence, so 10,000 feeds
  mean ~33 requests/s. Per-host limits go through the node-wide shared file
  (<data_dir>/hostlimits.sqlite, as in production) unless ``--local-limits``. Its state is pre-seeded as after a first full round (validators,
  seen entries, next polls spread over one cadence; added as with `newswire feeds add`, so
  the start does not re-poll them all at once), so the measurement is the steady state from
  the start instead of the catch-up burst of a cold start.

What it prints: the poller's CPU % of one core (utime+stime over the window, from /proc), its
peak RSS (VmHWM), requests/s answered by the server, the 304 share, entries published.
The machine may be shared: figures are noisy, run it more than once.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.state import StateStore  # noqa: E402
from newswire.broker import EmbeddedServer, free_port  # noqa: E402
from newswire.keys import canonical_url, text_hash, url_key  # noqa: E402
from newswire.records import FeedEntry  # noqa: E402

HOSTS = [f"127.0.0.{i}" for i in range(1, 21)]
ITEMS = 20
CHANGE_EVERY = 3000.0  # seconds between changes of one feed: ~1 poll in 10 gets a 200


def feed_url(n: int, port: int) -> str:
    return f"http://{HOSTS[n % len(HOSTS)]}:{port}/feed/{n}.xml"


def version(n: int, now: float, t0: float) -> int:
    phase = (n * 7919) % int(CHANGE_EVERY)
    return 1 + int((now - t0 + phase) / CHANGE_EVERY)


def item_link(n: int, v: int) -> str:
    return f"https://site{n % 500}.example.com/world/{n}/story-{v}.html"


def item_title(n: int, v: int) -> str:
    return f"Story {v} of feed {n}: officials report developments in the region"


def body(n: int, v: int) -> bytes:
    items = "".join(
        f"<item><title>{item_title(n, k)}</title><link>{item_link(n, k)}</link>"
        f"<guid>{item_link(n, k)}</guid><description>Summary of story {k}.</description>"
        f"<pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item>"
        for k in range(v, max(v - ITEMS, 0), -1)
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Feed {n}</title><link>https://site{n % 500}.example.com/</link>"
            f"{items}</channel></rss>").encode()


def serve(port: int, t0: float, stats_path: str, ready: multiprocessing.synchronize.Event) -> None:
    import asyncio

    from aiohttp import web

    counts = {"requests": 0, "not_modified": 0, "ok": 0}

    async def handle(request: web.Request) -> web.Response:
        counts["requests"] += 1
        n = int(request.match_info["n"])
        v = version(n, time.time(), t0)
        etag = f'"v{v}"'
        if request.headers.get("If-None-Match") == etag:
            counts["not_modified"] += 1
            return web.Response(status=304, headers={"ETag": etag})
        counts["ok"] += 1
        return web.Response(body=body(n, v), content_type="application/rss+xml",
                            headers={"ETag": etag})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(counts)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{n}.xml", handle)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        for host in HOSTS:
            await web.TCPSite(runner, host, port, backlog=1024).start()
        ready.set()
        while True:
            await asyncio.sleep(1)
            Path(stats_path).write_text(json.dumps(counts))

    asyncio.run(main())


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def seed_state(data_dir: Path, feeds: int, port: int, cadence: float, t0: float) -> None:
    """State as after one full round: validators, seen entries, next polls spread evenly."""
    rng = random.Random(1)
    now = time.time()
    with StateStore(data_dir / "ingest" / "state.sqlite3") as store:
        store.db.execute("BEGIN")
        for n in range(feeds):
            url = feed_url(n, port)
            v = version(n, now, t0)
            store.db.execute(
                "INSERT INTO feeds (url, fetch_url, origin, added_at, etag, interval, next_poll, "
                "polls, first_poll, last_success) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (url, url, "cli", now - cadence, f'"v{v}"', cadence,
                 now + rng.random() * cadence, 1, now - cadence, now - cadence),
            )
            entries = []
            for k in range(v, max(v - ITEMS, 0), -1):
                link = item_link(n, k)
                summary = f"Summary of story {k}."
                entries.append(FeedEntry(key=url_key(link), url=canonical_url(link), link=link,
                                         guid=link, feed=url, source="s", title=item_title(n, k),
                                         content_hash=text_hash(item_title(n, k), summary)))
            store.db.executemany(
                "INSERT OR IGNORE INTO seen (key, feed, guid, content_hash, first_seen, last_seen) "
                "VALUES (?,?,?,?,?,?)",
                [(e.key, e.feed, e.guid, e.content_hash, now, now) for e in entries])
        store.db.execute("COMMIT")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--cadence", type=float, default=300.0, help="seconds between polls of a feed")
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--measure", type=float, default=180.0, help="seconds measured")
    parser.add_argument("--local-limits", action="store_true",
                        help="per-host limits in the poller only (no shared limits file)")
    parser.add_argument("--scrape", type=float, default=0.0, metavar="SECONDS",
                        help="also scrape the poller's /metrics (feed health) this often")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="poll-bench-"))
    port = free_port()
    t0 = time.time()
    stats_path = str(work / "server-stats.json")
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, t0, stats_path, ready), daemon=True)
    server.start()
    broker = EmbeddedServer(work / "broker")
    poller: subprocess.Popen[bytes] | None = None
    try:
        if not ready.wait(30):
            raise RuntimeError("feed server did not start")
        broker.start()
        data_dir = work / "data"
        started = time.time()
        seed_state(data_dir, args.feeds, port, args.cadence, t0)
        print(f"state seeded: {args.feeds} feeds, {args.feeds * ITEMS} seen entries "
              f"in {time.time() - started:.1f}s")
        env = {
            **os.environ,
            "NEWSWIRE_DATA_DIR": str(data_dir),
            "NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
            "NEWSWIRE_POLL__MIN_INTERVAL": str(args.cadence),
            "NEWSWIRE_POLL__MAX_INTERVAL": str(args.cadence),
            "NEWSWIRE_POLL__DEFAULT_INTERVAL": str(args.cadence),
            "NEWSWIRE_FETCH__ALLOW_PRIVATE_NETWORKS": "true",
            "NEWSWIRE_FETCH__PER_HOST_MIN_GAP": "0.2",
            "NEWSWIRE_LOG_LEVEL": "WARNING",
            "NEWSWIRE_FETCH__SHARE_HOST_LIMITS": "false" if args.local_limits else "true",
        }
        metrics_port = free_port() if args.scrape else 0
        if metrics_port:
            env["NEWSWIRE_METRICS_PORT"] = str(metrics_port)
        newswire = str(Path(sys.executable).with_name("newswire"))
        poller = subprocess.Popen([newswire, "poll"], env=env, stderr=open(work / "poller.log", "wb"))
        time.sleep(args.warmup)
        if poller.poll() is not None:
            raise RuntimeError(f"poller exited: see {work / 'poller.log'}")
        cpu0, wall0 = proc_cpu(poller.pid), time.monotonic()
        stats0 = json.loads(Path(stats_path).read_text())
        scrapes: list[tuple[float, int]] = []  # (seconds, series)
        if metrics_port:
            import httpx

            end = time.monotonic() + args.measure
            while time.monotonic() < end:
                begun = time.monotonic()
                body = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
                scrapes.append((time.monotonic() - begun,
                                sum(1 for line in body.splitlines() if line.startswith("newswire_feed"))))
                time.sleep(max(0.0, min(args.scrape, end - time.monotonic())))
        else:
            time.sleep(args.measure)
        cpu1, wall1 = proc_cpu(poller.pid), time.monotonic()
        stats1 = json.loads(Path(stats_path).read_text())
        peak = proc_peak_rss_mb(poller.pid)
        requests = stats1["requests"] - stats0["requests"]
        not_modified = stats1["not_modified"] - stats0["not_modified"]
        seconds = wall1 - wall0
        cpu_share = 100 * (cpu1 - cpu0) / seconds
        poller.send_signal(signal.SIGTERM)
        stop_started = time.monotonic()
        poller.wait(timeout=30)
        stop_seconds = time.monotonic() - stop_started
        with StateStore(data_dir / "ingest" / "state.sqlite3") as store:
            published = store.db.execute("SELECT SUM(entries_published) FROM feeds").fetchone()[0]
            errors = store.db.execute("SELECT COUNT(*) FROM feeds WHERE error_count>0").fetchone()[0]
        print(f"feeds={args.feeds} cadence={args.cadence:.0f}s expected={args.feeds / args.cadence:.1f} req/s")
        print(f"measured {seconds:.0f}s after {args.warmup:.0f}s warm-up:")
        print(f"  requests/s        {requests / seconds:.1f}")
        print(f"  answered 304      {100 * not_modified / max(requests, 1):.1f}%")
        print(f"  poller CPU        {cpu_share:.1f}% of one core")
        print(f"  poller peak RSS   {peak:.0f} MB")
        print(f"  entries published {published or 0} (whole run)  feeds in error: {errors}")
        print(f"  SIGTERM -> exit   {stop_seconds:.1f}s (exit code {poller.returncode})")
        if scrapes:
            print(f"  /metrics scrapes  {len(scrapes)} every {args.scrape:g}s, {scrapes[-1][1]} feed "
                  f"series, {max(t for t, _ in scrapes):.2f}s at most")
        limits = data_dir / "hostlimits.sqlite"
        if limits.exists():
            import sqlite3

            with sqlite3.connect(limits) as db:
                hosts = db.execute("SELECT COUNT(*) FROM host").fetchone()[0]
                leases = db.execute("SELECT COUNT(*) FROM lease").fetchone()[0]
            print(f"  host limits       shared file: {hosts} hosts, {leases} leases left")
        else:
            print("  host limits       local to the poller")
        return 0
    finally:
        if poller is not None and poller.poll() is None:
            poller.kill()
            poller.wait()
        broker.stop()
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    sys.exit(main())
