"""A loopback "outside world" of many feeds for fault tests and the soak script.

``FeedWorld`` serves ``feeds`` RSS feeds; item ``i`` (0 <= i < ``articles``) appears in feed
``i % feeds`` once revealed (all at once, or ``rate`` per second for a steady load, after a
first ``burst`` of items revealed together) and links to ``/a/{i}?utm_source=rss``, which
serves real news page ``i % len(pages)``. Each feed shows at most its ``window`` newest
items, like a real feed.

Hostile pages live under ``/h/...`` and can be served from a second loopback address
(``hostile_host``, e.g. 127.0.0.2) so that a stalling server is a *different host* from the
normal pages, as on the internet (the fetcher's politeness is per host by design):

- ``/h/slow``     headers, then one byte per second forever (slow-loris)
- ``/h/badlen``   Content-Length 100000, 10 bytes, then the connection closes
- ``/h/loop/{n}`` a redirect to ``/h/loop/{n+1}``, forever
- ``/h/big``      a 50 MB HTML body
- ``/h/bomb``     a gzip bomb: ~200 KB on the wire, 200 MB decompressed

The server runs aiohttp on its own event loop in a daemon thread; use as a context manager.

``AlertReceiver`` is the other side: a loopback webhook that records every alert POSTed to it.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
from aiohttp import web

from newswire.keys import url_key

HOSTILE_PATHS = ("/h/slow", "/h/badlen", "/h/loop/0", "/h/big", "/h/bomb")
BIG_BYTES = 50 * 2**20
BOMB_BYTES = 200 * 2**20


def load_pages(root: Path) -> list[bytes]:
    """Real news pages (gzip files) under ``root``: fundus-evaluation and readability-pages."""
    paths = sorted((root / "fundus-evaluation" / "html").glob("*.html.gz"))
    paths += sorted((root / "readability-pages").glob("*/source.html.gz"))
    if not paths:
        raise FileNotFoundError(f"no pages under {root}")
    return [gzip.decompress(p.read_bytes()) for p in paths]


@lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    chunk = b"\0" * 2**20
    out = [compressor.compress(chunk) for _ in range(BOMB_BYTES // len(chunk))]
    out.append(compressor.flush())
    return b"".join(out)


class FeedWorld:
    def __init__(self, pages: Sequence[bytes], articles: int, feeds: int, *, rate: float = 0.0,
                 latency: float = 0.0, window: int | None = None,
                 hostile: Sequence[str] = (), hostile_host: str = "127.0.0.1",
                 host: str = "127.0.0.1", held: bool = False, burst: int = 0) -> None:
        """``hostile``: paths from HOSTILE_PATHS added as extra items to feed 0.
        ``held``: feeds stay empty until ``release()`` (e.g. until a pipeline is warm).
        ``burst``: with a ``rate``, this many items appear at once before the steady rate
        (a backlog in flight while new items keep coming)."""
        self.pages, self.n, self.feeds = list(pages), articles, feeds
        self.rate, self.latency, self.window, self.burst = rate, latency, window, burst
        self.hostile, self.host, self.hostile_host = list(hostile), host, hostile_host
        self.hits: Counter[str] = Counter()
        self.polls_when_complete: Counter[int] = Counter()  # per feed, once all is revealed
        self.first_served: dict[int, float] = {}
        self.base = self.hostile_base = ""
        self._start = time.monotonic()
        self._held = held
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._closing = False

    # -- what the world holds ------------------------------------------------------------

    def revealed(self) -> int:
        """How many articles are visible in feeds right now."""
        if self._held:
            return 0
        if self.rate <= 0:
            return self.n
        return min(self.n, self.burst + int((time.monotonic() - self._start) * self.rate) + 1)

    def release(self) -> None:
        """Start revealing items now (a held world's clock starts here)."""
        self._start = time.monotonic()
        self._held = False

    def url(self, i: int) -> str:
        return f"{self.base}/a/{i}"

    def key(self, i: int) -> str:
        return url_key(self.url(i))

    def keys(self, upto: int | None = None) -> dict[str, int]:
        """Expected article id -> item number, for items ``0..upto-1`` (default all)."""
        return {self.key(i): i for i in range(self.n if upto is None else upto)}

    def fully_polled(self, times: int = 2) -> bool:
        """Every item is revealed and every feed was fetched ``times`` times since."""
        return all(self.polls_when_complete[f] >= times for f in range(self.feeds))

    def hostile_url(self, path: str) -> str:
        return f"{self.hostile_base}{path}"

    def feed_urls(self) -> list[str]:
        return [f"{self.base}/feed/{f}.xml" for f in range(self.feeds)]

    # -- handlers ------------------------------------------------------------------------

    def _items(self, feed: int) -> list[int]:
        upto = self.revealed()
        items = list(range(feed, upto, self.feeds))
        return items[-self.window:] if self.window else items

    async def feed(self, request: web.Request) -> web.Response:
        feed = int(request.match_info["f"])
        self.hits["/feed"] += 1
        if self.revealed() >= self.n:
            self.polls_when_complete[feed] += 1
        items = self._items(feed)
        extra = self.hostile if feed == 0 else []
        etag = f'"{feed}-{items[-1] if items else -1}-{len(items)}-{len(extra)}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        now = time.monotonic()
        for i in items:
            self.first_served.setdefault(i, now)
        when = format_datetime(datetime.now(UTC), usegmt=True)
        body = "".join(
            f"<item><title>Story {i}</title><link>{self.base}/a/{i}?utm_source=rss</link>"
            f"<guid>story-{i}</guid><pubDate>{when}</pubDate>"
            f"<description>Story {i} summary</description></item>" for i in items)
        body += "".join(
            f"<item><title>Hostile {p}</title><link>{self.hostile_url(p)}</link>"
            f"<guid>hostile-{p}</guid><pubDate>{when}</pubDate>"
            f"<description>Hostile page {p}</description></item>" for p in extra)
        xml = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {feed}</title>'
               f"<link>{self.base}/</link><description>loopback</description>{body}"
               "</channel></rss>")
        return web.Response(body=xml.encode(), content_type="application/rss+xml",
                            headers={"ETag": etag})

    async def article(self, request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        self.hits["/a"] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        return web.Response(body=self.pages[i % len(self.pages)], content_type="text/html")

    async def robots(self, _: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nAllow: /\n")

    async def slow(self, request: web.Request) -> web.StreamResponse:
        self.hits["/h/slow"] += 1
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        try:
            await resp.write(b"<html><body><p>")
            while not self._closing:
                await asyncio.sleep(1.0)
                await resp.write(b"x")
        except (ConnectionError, asyncio.CancelledError):
            pass
        return resp

    async def badlen(self, request: web.Request) -> web.StreamResponse:
        self.hits["/h/badlen"] += 1
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        resp.content_length = 100_000
        await resp.prepare(request)
        await resp.write(b"<html>lie")
        if request.transport is not None:
            request.transport.close()  # far fewer bytes than promised
        return resp

    async def loop(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        self.hits["/h/loop"] += 1
        raise web.HTTPFound(f"/h/loop/{n + 1}")

    async def big(self, request: web.Request) -> web.StreamResponse:
        self.hits["/h/big"] += 1
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        await resp.prepare(request)  # chunked: no declared length to refuse early
        chunk = b"<p>" + b"filler text " * 10_000 + b"</p>\n"
        sent = 0
        try:
            while sent < BIG_BYTES:
                await resp.write(chunk)
                sent += len(chunk)
            await resp.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass
        return resp

    async def bomb(self, request: web.Request) -> web.Response:
        self.hits["/h/bomb"] += 1
        return web.Response(body=gzip_bomb(), headers={"Content-Type": "text/html",
                                                       "Content-Encoding": "gzip"})

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> FeedWorld:
        if self.hostile:
            gzip_bomb()  # build it before serving, not inside a request
        self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.add_routes([
            web.get("/feed/{f}.xml", self.feed), web.get("/a/{i}", self.article),
            web.get("/robots.txt", self.robots), web.get("/h/slow", self.slow),
            web.get("/h/badlen", self.badlen), web.get("/h/loop/{n}", self.loop),
            web.get("/h/big", self.big), web.get("/h/bomb", self.bomb),
        ])
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://{self.host}:{port}"
        self.hostile_base = self.base
        if self.hostile_host != self.host:
            other = web.TCPSite(self._runner, self.hostile_host, 0)
            self._loop.run_until_complete(other.start())
            hport = other._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.hostile_base = f"http://{self.hostile_host}:{hport}"
        if not self._held:
            self._start = time.monotonic()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing = True
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FeedWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AlertReceiver:
    """Loopback webhook receiver: every alert POSTed to ``url`` (decoded JSON), in order.

    Answers 204 to everything, so a repeated POST is the sender's doing, never a retry
    this side provoked. With ``secret``, POSTs whose ``X-Newswire-Signature`` is not
    ``sha256=<hex HMAC-SHA256 of the body>`` are counted in ``bad_signatures``.
    Use as a context manager.
    """

    def __init__(self, host: str = "127.0.0.1", secret: str | None = None) -> None:
        self.posts: list[dict[str, Any]] = []
        self.undecodable = 0
        self.bad_signatures = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = None
                signed = secret is None or hmac.compare_digest(
                    self.headers.get("X-Newswire-Signature") or "",
                    "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest())
                with outer._lock:
                    outer.bad_signatures += not signed
                    if isinstance(payload, dict):
                        outer.posts.append(payload)
                    else:
                        outer.undecodable += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_port}/hook"
        self._thread: threading.Thread | None = None

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.posts)

    def alerts(self) -> Counter[tuple[str, str]]:
        """How many times each (rule id, story id) was POSTed (single alerts and digests)."""
        seen: Counter[tuple[str, str]] = Counter()
        for post in self.received():
            rule = (post.get("rule") or {}).get("id", "")
            stories = [post["story"]] if "story" in post else post.get("stories") or []
            for story in stories:
                seen[(rule, story.get("story_id", ""))] += 1
        return seen

    def start(self) -> AlertReceiver:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(5)
        self.server.server_close()

    def __enter__(self) -> AlertReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- driving `newswire up` from outside -------------------------------------------------------

ROLES = ("poll", "process", "index", "serve")


def start_up(data_dir: Path, feeds: Sequence[str], log: Path,
             env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``newswire up`` on ``feeds`` (loopback allowed, web on a free port)."""
    import os

    from newswire.broker import free_port

    data_dir.mkdir(parents=True, exist_ok=True)
    feeds_file = data_dir.parent / f"{data_dir.name}-feeds.txt"
    feeds_file.write_text("".join(f"{f}\n" for f in feeds))
    args = [sys.executable, "-m", "newswire", "--data-dir", str(data_dir), "up",
            "--feeds", str(feeds_file), "--allow-private-networks", "--port", str(free_port())]
    full_env = {**os.environ, **FAST_ENV, **(env or {})}
    return subprocess.Popen(args, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=full_env, start_new_session=True)


def run_cli(data_dir: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``newswire --data-dir DATA_DIR ARGS...`` as a user would type it beside a running
    ``up`` (it finds the embedded broker through the data dir); output captured, not checked.
    Loopback targets (a test's webhook) are allowed, as ``start_up`` allows them."""
    import os

    full_env = {**os.environ, "NEWSWIRE_FETCH__ALLOW_PRIVATE_NETWORKS": "true", **(env or {})}
    return subprocess.run([sys.executable, "-m", "newswire", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=timeout, env=full_env,
                          stdin=subprocess.DEVNULL)


# Poll often and fetch without politeness gaps: loopback hosts, not real publishers.
FAST_ENV = {
    "NEWSWIRE_POLL__MIN_INTERVAL": "1", "NEWSWIRE_POLL__DEFAULT_INTERVAL": "2",
    "NEWSWIRE_FETCH__PER_HOST_MIN_GAP": "0", "NEWSWIRE_FETCH__PER_HOST_CONCURRENCY": "16",
}


def role(proc: psutil.Process) -> str | None:
    """``poll|process|index|serve|broker`` for a direct child of ``up``, else None."""
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return None
    if cmd and "noida" in Path(cmd[0]).name:
        return "broker"
    if "newswire" in cmd:
        rest = cmd[cmd.index("newswire") + 1:]
        for name in ROLES:
            if name in rest:
                return name
    return None


def components(up_pid: int) -> dict[str, psutil.Process]:
    """The live services of an ``up`` process by role (its direct children only: a
    processor's extraction pool is forked and shares the worker's command line)."""
    out: dict[str, psutil.Process] = {}
    try:
        children = psutil.Process(up_pid).children()
    except psutil.Error:
        return out
    for child in children:
        name = role(child)
        if name is not None and child.status() != psutil.STATUS_ZOMBIE:
            out[name] = child
    return out


def process_tree(up_pid: int) -> list[tuple[str, psutil.Process]]:
    """(label, process) for ``up`` and everything under it; pool workers are ``process-pool``."""
    try:
        top = psutil.Process(up_pid)
        tree = [("up", top)]
        for child in top.children():
            name = role(child) or "other"
            tree.append((name, child))
            tree += [(f"{name}-pool", g) for g in child.children(recursive=True)]
        return tree
    except psutil.Error:
        return []
