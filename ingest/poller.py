"""The feed poller service: due feeds -> conditional GET -> parse -> Kafka -> state.

One asyncio loop drives up to ``PollSettings.max_concurrency`` polls at once through the shared
safe :class:`~newswire.http.Fetcher`; feed parsing runs in a small thread pool so one huge feed
does not stall the loop. Entries are published with kafka-python (key = article key) and marked
seen only after the broker confirmed them; a failed delivery keeps the old validators so the
entries come again on the next poll. Every bad outcome is logged, counted in the state DB and
in Prometheus, and the service keeps going. Entries a feed names that cannot become records
(no link, a non-http or bad link) are dead-lettered to ``dlq.poll``, once each (the seen set
remembers them). A feed whose host is on hold (429/503 Retry-After, to any process of the
node) is put off until the hold ends, without counting a poll or an error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import heapq
import json
import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaProducer

from ingest import metrics
from ingest.discover import discover_feed_links
from ingest.opml import read_feed_list
from ingest.outcome import after_poll, outcome_reason
from ingest.parse import ParsedFeed, Rejection, parse_feed
from ingest.state import USER_ORIGINS, FeedState, StateStore, polled, rejection_key
from ingest.websub import (
    PUSH_SAFETY_POLL,
    WebSubConfig,
    WebSubReceiver,
    feed_id,
    load_root_secret,
    subscription_form,
)
from newswire.http import FEED_ACCEPT, Fetcher, FetchResult
from newswire.records import DeadLetter, FeedEntry
from newswire.settings import Settings
from newswire.topics import ensure_topics

log = logging.getLogger(__name__)

DEFAULT_FEEDS = Path(__file__).with_name("default_feeds.txt")
RELOAD_EVERY = 30.0  # pick up `newswire feeds add/remove` while running
PRUNE_EVERY = 3600.0
START_RATE = 100.0  # overdue feeds at start are spread to about this many starts a second
DELIVERY_TIMEOUT = 30.0
HOLD_JITTER = 60.0  # feeds of a host on hold restart within this many seconds after it


def default_feed_urls() -> list[str]:
    return [f.url for f in read_feed_list(DEFAULT_FEEDS)]


def configured_feed_urls(settings: Settings) -> list[str]:
    """Feeds named by settings: ``feeds`` then ``feeds_file`` (URL lines or OPML)."""
    urls = [u.strip() for u in settings.feeds if u.strip()]
    if settings.feeds_file:
        urls += [f.url for f in read_feed_list(settings.feeds_file)]
    return list(dict.fromkeys(urls))


@dataclass(frozen=True)
class Polled:
    """One poll, start to end (the dry-run CLI prints it; the service records it)."""

    result: FetchResult
    parsed: ParsedFeed | None


async def fetch_feed(fetcher: Fetcher, feed_url: str, *, fetch_url: str | None = None,
                     etag: str | None = None, last_modified: str | None = None,
                     now: datetime | None = None,
                     parse_pool: concurrent.futures.Executor | None = None) -> Polled:
    """Conditional GET of a feed and, when a body came, its parse (off the event loop)."""
    result = await fetcher.get(fetch_url or feed_url, etag=etag, last_modified=last_modified,
                               accept=FEED_ACCEPT)
    if result.reason is not None or result.status == 304:
        return Polled(result, None)
    loop = asyncio.get_running_loop()
    parsed = await loop.run_in_executor(
        parse_pool,
        lambda: parse_feed(result.body, result.final_url, headers=result.headers, now=now,
                           feed_url=feed_url),
    )
    return Polled(result, parsed)


REJECTION_TEXT = {
    "no_link": "the entry names no link",
    "non_http_link": "the entry's link is not http(s)",
    "bad_link": "the entry's link cannot be parsed as a URL",
}


def rejection_letter(feed_url: str, key: str, rejection: Rejection) -> DeadLetter:
    """The dead letter of a feed entry that could not become a record (pure)."""
    payload = json.dumps({"feed": feed_url, "index": rejection.index, "title": rejection.title,
                          "link": rejection.link, "guid": rejection.guid}, ensure_ascii=False)
    error = REJECTION_TEXT.get(rejection.reason, rejection.reason)
    if rejection.link:
        error += f": {rejection.link[:300]}"
    return DeadLetter(stage="poll", reason=rejection.reason, error=error, topic=feed_url,
                      key=key, payload=payload[:20_000])


def letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The headers every stage puts on its dead letters (``newswire dlq`` reads them). A poll
    letter has no original message: its original topic is the feed it came from."""
    return [
        ("original_topic", (letter.topic or "feed").encode()),
        ("stage", letter.stage.encode()),
        ("reason", letter.reason.encode()),
        ("exception", (letter.error or "")[:500].encode()),
    ]


class Publisher:
    """kafka-python producer; ``publish`` returns only once the broker confirmed every record."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic("entries")
        self.dead_topic = settings.topic("dlq.poll")
        self._producer = KafkaProducer(
            client_id="newswire-poller", acks="all", linger_ms=20, retries=5,
            request_timeout_ms=int(DELIVERY_TIMEOUT * 1000), max_block_ms=int(DELIVERY_TIMEOUT * 1000),
            **settings.kafka.client_config(),
        )

    def publish_sync(self, entries: Iterable[FeedEntry],
                     letters: Iterable[DeadLetter] = ()) -> None:
        futures = [self._producer.send(self.topic, key=e.key.encode(), value=e.to_bytes())
                   for e in entries]
        futures += [self._producer.send(self.dead_topic, key=(d.key or "").encode() or None,
                                        value=d.to_bytes(), headers=letter_headers(d))
                    for d in letters]
        self._producer.flush(timeout=DELIVERY_TIMEOUT)
        for future in futures:
            future.get(timeout=DELIVERY_TIMEOUT)  # raises if the broker did not take it

    def close(self, timeout: float = 3.0) -> None:
        self._producer.close(timeout=timeout)


class Poller:
    def __init__(self, settings: Settings, store: StateStore, fetcher: Fetcher,
                 publisher: Publisher, *, rng: random.Random | None = None,
                 websub: WebSubConfig | None = None) -> None:
        self.settings = settings
        self.websub = None if websub is None else WebSubReceiver(
            websub, load_root_secret(settings.data_dir), on_content=self._pushed,
            on_verified=self._verified, max_bytes=settings.fetch.max_bytes)
        self.store = store
        self.fetcher = fetcher
        self.publisher = publisher
        self.rng = rng or random.Random()
        self.config_urls = configured_feed_urls(settings)
        self.feeds: dict[str, FeedState] = {}
        self.queue: list[tuple[float, str]] = []
        self.in_flight: dict[str, asyncio.Task[None]] = {}
        self.once = False
        self.body_digests: dict[str, bytes] = {}  # last delivered body per feed (16 bytes each)
        self.parse_pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="feedparse")
        self.publish_pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="publish")

    # -- the feed set ----------------------------------------------------------------------

    def register_feeds(self) -> None:
        now = time.time()
        for url in self.config_urls:
            self.store.add_feed(url, "config", now)
        if not self.config_urls and not self.store.feeds(USER_ORIGINS):
            for url in default_feed_urls():
                self.store.add_feed(url, "default", now)
            log.info("no feeds configured: polling the built-in list")

    def wanted(self) -> list[FeedState]:
        return polled(self.store.feeds(), self.config_urls)

    def reload(self, *, spread: bool = False) -> None:
        now = time.time()
        wanted = {f.url: f for f in self.wanted()}
        for url in list(self.feeds):
            if url not in wanted:
                del self.feeds[url]
                self.body_digests.pop(url, None)
                log.info("feed removed url=%s", url)
        if spread and self.websub is not None:
            # Push subscriptions live in the callback listener, which has just started empty:
            # poll subscribed feeds now so they are subscribed again.
            wanted = {u: replace(f, next_poll=min(f.next_poll, now)) if f.websub_lease_until else f
                      for u, f in wanted.items()}
        if spread:
            # At start, the feeds named for this run are polled at once (the operator just
            # asked for them); a conditional GET keeps that cheap, and the spread below
            # keeps a long list from arriving as one burst.
            config = set(self.config_urls)
            wanted = {u: replace(f, next_poll=min(f.next_poll, now)) if u in config else f
                      for u, f in wanted.items()}
        overdue = [f for u, f in wanted.items() if u not in self.feeds and f.next_poll <= now]
        window = len(overdue) / START_RATE if spread else 0.0
        for url, feed in wanted.items():
            if url in self.feeds:
                continue
            if feed.next_poll <= now and window > 0:
                feed = replace(feed, next_poll=now + self.rng.random() * window)
            self.feeds[url] = feed
            heapq.heappush(self.queue, (feed.next_poll, url))

    # -- one poll --------------------------------------------------------------------------

    async def deliver(self, feed_url: str, parsed: ParsedFeed, now: float) -> int:
        """Publish the new and updated entries of a parsed feed, and a dead letter for each
        entry it names that cannot become a record and was not dead-lettered before; mark
        both seen once the broker confirmed. Returns how many entries were published; raises
        when delivery failed (then nothing is marked, and all comes again next poll)."""
        for rejection in parsed.rejected:
            metrics.ENTRIES_REJECTED.labels(rejection.reason).inc()
        novel = self.store.novel(parsed.entries, now)
        fresh_rejections = self.store.unseen_rejections(feed_url, parsed.rejected)
        self.store.touch([e.key for e in parsed.entries]
                         + [rejection_key(feed_url, r) for r in parsed.rejected], now)
        if not novel and not fresh_rejections:
            return 0
        records = [n.entry.model_copy(update={"update": True}) if n.update else n.entry
                   for n in novel]
        letters = [rejection_letter(feed_url, key, r) for key, r in fresh_rejections]
        try:
            await asyncio.get_running_loop().run_in_executor(
                self.publish_pool, self.publisher.publish_sync, records, letters)
        except Exception as exc:
            log.warning("publish failed feed=%s entries=%d dead_letters=%d error=%r", feed_url,
                        len(records), len(letters), exc)
            raise
        if letters:
            self.store.mark_rejections_seen(feed_url, [k for k, _ in fresh_rejections],
                                            time.time())
            for letter in letters:
                metrics.DEAD_LETTERS.labels(letter.reason).inc()
            log.info("entries dead-lettered feed=%s count=%d reasons=%s", feed_url, len(letters),
                     ",".join(sorted({d.reason for d in letters})))
        self.store.mark_seen(records, time.time())
        updates = sum(1 for r in records if r.update)
        metrics.ENTRIES_PUBLISHED.labels("new").inc(len(records) - updates)
        metrics.ENTRIES_PUBLISHED.labels("update").inc(updates)
        return len(records)

    async def poll(self, feed: FeedState) -> FeedState:
        started = time.time()
        result = await self.fetcher.get(feed.fetch_url, etag=feed.etag,
                                        last_modified=feed.last_modified, accept=FEED_ACCEPT)
        if result.on_hold:
            return self._put_off(feed, result)
        parsed: ParsedFeed | None = None
        digest = None
        if result.reason is None and result.status != 304:
            digest = hashlib.blake2b(result.body, digest_size=16).digest()
            if self.body_digests.get(feed.url) == digest:
                # The very bytes we already handled (a server without validators): no parse.
                result = replace(result, status=304)
            else:
                parsed = await asyncio.get_running_loop().run_in_executor(
                    self.parse_pool,
                    lambda: parse_feed(result.body, result.final_url, headers=result.headers,
                                       now=datetime.fromtimestamp(started, UTC),
                                       feed_url=feed.url))
        published = 0
        if parsed is not None and parsed.ok:
            try:
                published = await self.deliver(feed.url, parsed, started)
            except Exception as exc:  # broker down or slow: keep validators, retry later
                result = replace(result, reason="publish_failed", error=repr(exc)[:300])
            else:
                if digest is not None:
                    self.body_digests[feed.url] = digest
        elif result.status == 304 and result.reason is None:
            self.store.touch_feed(feed.url, started)
        now = time.time()
        new = after_poll(feed, result, parsed, now=now, poll=self.settings.poll,
                         rand=self.rng.random())
        new = replace(new, entries_published=new.entries_published + published)
        if self.websub is not None:
            sub = self.websub.subscriptions.get(feed_id(feed.url))
            if sub is not None and sub.lease_until:  # verified while this poll ran
                new = replace(new, websub_lease_until=sub.lease_until)
            if parsed is not None and parsed.ok and result.reason is None and parsed.hub:
                await self._subscribe(new, parsed.hub, parsed.self_url or new.fetch_url, now)
            if new.websub_lease_until and new.websub_lease_until > now and new.interval:
                # Pushed to us: poll only as a safety net.
                slow = max(new.interval, min(PUSH_SAFETY_POLL, self.settings.poll.max_interval))
                new = replace(new, next_poll=now + slow)
        self.store.save_feed(new)
        self._count(feed, new, result, parsed, published)
        return new

    def _put_off(self, feed: FeedState, result: FetchResult) -> FeedState:
        """The feed's host is on hold (it told us or another process 429/503 Retry-After):
        nothing was sent, so this is no poll and no error of the feed; it is due again just
        after the hold, spread so the host's feeds do not all return at the same second."""
        wait = (result.retry_after or 0.0) + self.rng.random() * HOLD_JITTER
        new = replace(feed, next_poll=time.time() + wait)
        self.store.save_feed(new)
        metrics.HOST_HOLDS.inc()
        log.info("feed put off, host on hold url=%s next_in=%.0fs", feed.url, wait)
        return new

    # -- WebSub ----------------------------------------------------------------------------

    async def _subscribe(self, feed: FeedState, hub: str, topic: str, now: float) -> None:
        websub = self.websub
        assert websub is not None
        if not websub.needs_subscription(feed.url, now):
            return
        websub.expect(feed.url, topic, hub)
        form = subscription_form(topic, websub.callback_for(feed.url),
                                 websub.secret_for(feed.url), websub.config.lease_seconds)
        answer = await self.fetcher.post_form(hub, form)
        if answer.status in (202, 204) or (answer.status == 200 and answer.reason is None):
            log.info("websub subscription requested feed=%s hub=%s", feed.url, hub)
            metrics.WEBSUB.labels("requested").inc()
        else:
            websub.subscriptions.pop(feed_id(feed.url), None)
            metrics.WEBSUB.labels("refused").inc()
            log.warning("websub subscription refused feed=%s hub=%s reason=%s error=%s",
                        feed.url, hub, answer.reason, answer.error)

    def _verified(self, feed_url: str, lease_until: float) -> None:
        feed = self.feeds.get(feed_url) or self.store.feed(feed_url)
        if feed is None:
            return
        feed = replace(feed, websub_lease_until=lease_until)
        if feed.url in self.feeds and feed.url not in self.in_flight:
            slow = min(PUSH_SAFETY_POLL, self.settings.poll.max_interval)
            feed = replace(feed, next_poll=max(feed.next_poll, time.time() + slow))
            heapq.heappush(self.queue, (feed.next_poll, feed.url))
            self.feeds[feed.url] = feed
        self.store.save_feed(feed)
        metrics.WEBSUB.labels("verified").inc()

    async def _pushed(self, feed_url: str, body: bytes, headers: dict[str, str]) -> None:
        feed = self.feeds.get(feed_url)
        if feed is None:
            return
        now = time.time()
        parsed = await asyncio.get_running_loop().run_in_executor(
            self.parse_pool,
            lambda: parse_feed(body, feed.fetch_url, headers=headers,
                               now=datetime.fromtimestamp(now, UTC), feed_url=feed.url))
        if not parsed.ok:
            log.warning("websub push is not a feed feed=%s reason=%s", feed_url, parsed.reason)
            return
        published = await self.deliver(feed.url, parsed, now)  # raises: the hub retries
        metrics.WEBSUB.labels("pushed").inc()
        current = self.store.feed(feed.url)
        if current is not None:
            self.store.save_feed(replace(current, entries_published=current.entries_published
                                         + published))
        log.info("websub push feed=%s entries=%d published=%d", feed_url, len(parsed.entries),
                 published)

    def _count(self, old: FeedState, new: FeedState, result: FetchResult,
               parsed: ParsedFeed | None, published: int) -> None:
        reason = outcome_reason(result, parsed)
        if reason is not None:
            metrics.FEED_POLLS.labels("error").inc()
            metrics.POLL_ERRORS.labels(reason).inc()
            extra = ""
            if reason == "html_not_feed":
                found = discover_feed_links(result.body, result.final_url)[:3]
                extra = f" discovered={','.join(found) or '-'}"
            log.warning("feed poll failed url=%s reason=%s errors_in_row=%d next_in=%.0fs "
                        "error=%s%s", old.url, reason, new.error_count, new.interval or 0,
                        (new.last_error or "")[:200], extra)
            if new.unhealthy and not old.unhealthy:
                log.warning("feed unhealthy url=%s failing_since=%s (polled daily, not dropped)",
                            old.url, new.first_error_at)
        elif result.status == 304:
            metrics.FEED_POLLS.labels("not_modified").inc()
            metrics.NOT_MODIFIED.inc()
            log.debug("feed not modified url=%s next_in=%.0fs", old.url, new.interval or 0)
        else:
            metrics.FEED_POLLS.labels("ok").inc()
            log.info("feed polled url=%s entries=%d published=%d rejected=%d next_in=%.0fs",
                     old.url, len(parsed.entries) if parsed else 0, published,
                     len(parsed.rejected) if parsed else 0, new.interval or 0)
        if new.fetch_url != old.fetch_url:
            log.info("feed moved permanently url=%s to=%s", old.url, new.fetch_url)

    async def _poll_task(self, url: str) -> None:
        feed = self.feeds.get(url)
        if feed is None:
            return
        try:
            new = await self.poll(feed)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: loud in the log, but one feed must not stop the others
            log.exception("feed poll crashed url=%s", url)
            new = replace(feed, next_poll=time.time() + self.settings.poll.default_interval)
        finally:
            self.in_flight.pop(url, None)
        if url in self.feeds:
            self.feeds[url] = new
            if not self.once:
                heapq.heappush(self.queue, (new.next_poll, url))

    # -- the loop --------------------------------------------------------------------------

    def _start_due(self) -> None:
        now = time.time()
        limit = self.settings.poll.max_concurrency
        while self.queue and self.queue[0][0] <= now and len(self.in_flight) < limit:
            due, url = heapq.heappop(self.queue)
            feed = self.feeds.get(url)
            if feed is None or feed.next_poll != due or url in self.in_flight:
                continue  # removed, rescheduled, or already running: a stale queue item
            self.in_flight[url] = asyncio.create_task(self._poll_task(url), name=f"poll {url}")

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        self.once = once
        if self.websub is not None and not once:
            await self.websub.start()
        self.register_feeds()
        self.reload(spread=not once)
        log.info("poller started feeds=%d concurrency=%d", len(self.feeds),
                 self.settings.poll.max_concurrency)
        last_reload = last_prune = time.monotonic()
        self.store.prune_seen(time.time())
        if once:  # every wanted feed, now, once
            for url, feed in self.feeds.items():
                self.feeds[url] = replace(feed, next_poll=0.0)
            self.queue = [(0.0, url) for url in self.feeds]
        try:
            while not stop.is_set():
                self._start_due()
                if once and not self.queue and not self.in_flight:
                    break
                wait = 1.0
                if self.queue:
                    wait = min(wait, max(0.0, self.queue[0][0] - time.time()))
                if once:
                    tasks = set(self.in_flight.values())
                    if tasks:
                        await asyncio.wait(tasks, timeout=wait or 0.05,
                                           return_when=asyncio.FIRST_COMPLETED)
                        continue
                try:
                    await asyncio.wait_for(stop.wait(), timeout=max(wait, 0.01))
                except TimeoutError:
                    pass
                if not once and time.monotonic() - last_reload > RELOAD_EVERY:
                    self.reload()
                    last_reload = time.monotonic()
                if time.monotonic() - last_prune > PRUNE_EVERY:
                    removed = self.store.prune_seen(time.time())
                    log.info("seen entries pruned removed=%d", removed)
                    last_prune = time.monotonic()
        finally:
            await self._cancel_in_flight()
            if self.websub is not None:
                await self.websub.stop()

    async def _cancel_in_flight(self) -> None:
        tasks = list(self.in_flight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=3.0)

    def close(self) -> None:
        self.parse_pool.shutdown(wait=False, cancel_futures=True)
        self.publish_pool.shutdown(wait=False, cancel_futures=True)


def _ensure_topics_with_retry(settings: Settings, stop: threading.Event) -> bool:
    delay = 0.5
    deadline = time.monotonic() + 60
    while not stop.is_set():
        try:
            ensure_topics(settings)
            return True
        except Exception as exc:  # the broker may still be starting
            if time.monotonic() > deadline:
                log.error("cannot create topics error=%r", exc)
                return False
            log.info("broker not ready, retrying in %.1fs error=%r", delay, exc)
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
    return False


def _serve_metrics(settings: Settings) -> Callable[[], None] | None:
    """Serve /metrics, feed health included; returns what stops it (None: metrics are off)."""
    if not settings.metrics_port:
        return None
    from prometheus_client import REGISTRY, start_http_server

    from ingest.health_metrics import FeedHealthCollector

    collector = FeedHealthCollector(StateStore.path_for(settings), configured_feed_urls(settings))
    REGISTRY.register(collector)
    try:
        server, _thread = start_http_server(settings.metrics_port)
    except BaseException:
        REGISTRY.unregister(collector)
        raise
    log.info("metrics served port=%d", settings.metrics_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        REGISTRY.unregister(collector)  # a later run in this process registers its own

    return stop


def run_poller(settings: Settings, stop: threading.Event | None = None, *,
               once: bool = False, websub: WebSubConfig | None = None) -> int:
    """Run the poller until ``stop`` is set or SIGTERM/SIGINT (in the main thread); 0 = clean.

    With ``once`` every wanted feed is polled one time and the function returns. With
    ``websub`` feeds that advertise a hub are subscribed for push (callback listener started).
    """
    stop = stop or threading.Event()
    restore: list[tuple[int, object]] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            restore.append((sig, signal.signal(sig, lambda *_: stop.set())))
    stop_metrics = None
    try:
        if not _ensure_topics_with_retry(settings, stop):
            return 0 if stop.is_set() else 1
        stop_metrics = _serve_metrics(settings)
        return asyncio.run(_main(settings, stop, once=once, websub=websub))
    finally:
        for sig, handler in restore:
            signal.signal(sig, handler)  # type: ignore[arg-type]
        if stop_metrics is not None:
            stop_metrics()


async def _main(settings: Settings, stop: threading.Event, *, once: bool,
                websub: WebSubConfig | None) -> int:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def watch() -> None:  # a threading.Event cannot be awaited: look at it often
        while not stop.is_set():
            await asyncio.sleep(0.2)
        stopped.set()

    watcher = asyncio.create_task(watch(), name="poller-stop")
    store = StateStore.open(settings)
    publisher = Publisher(settings)
    poller = None
    try:
        async with Fetcher(settings.fetch, max_connections=settings.poll.max_concurrency,
                           data_dir=settings.data_dir) as fetcher:
            poller = Poller(settings, store, fetcher, publisher, websub=websub)
            await poller.run(stopped, once=once)
    finally:
        if poller is not None:
            poller.close()
        watcher.cancel()
        await loop.run_in_executor(None, publisher.close)
        store.close()
        log.info("poller stopped")
    return 0
