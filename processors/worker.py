"""The Faust processor: feed entries in, enriched articles out.

The agent only decodes, calls and sends: fetching is async I/O (``newswire.http``),
cleaning + tagging run in a process pool (``processors.enrich``), and every outcome is
either an ``Article`` on the articles topic or a dead letter with its reason. Faust acks
an event whose agent raised and never retries it, so nothing here lets an error escape.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import faust
from prometheus_client import Counter, Gauge, Histogram, start_http_server
from pydantic import ValidationError

from newswire import runtime
from newswire.http import Fetcher, FetchResult
from newswire.deadletters import HALTED, DeadLetterLimit, letter_message
from newswire.records import Article, DeadLetter, FeedEntry, utcnow
from newswire.settings import Settings
from newswire.topics import ensure_topics
from processors.clean import build_article
from processors import fetch_idle
from processors.faust_auth import faust_credentials
from processors.enrich import (
    Enriched,
    archive_and_enrich,
    enrich,
    from_feed,
    init_worker,
    pool_child_init,
)
from processors.fingerprint import StoryIndex
from processors.inorder import InOrderAcks
from processors.pagestore import PageStore

log = logging.getLogger(__name__)

PROCESSED = Counter("newswire_processor_entries_total", "Feed entries handled", ["outcome"])
FETCH_ERRORS = Counter("newswire_fetch_errors_total", "Article fetch failures", ["reason"])
EXTRACT_FAILURES = Counter(
    "newswire_extraction_failures_total", "Pages that gave no usable text", ["host", "reason"]
)
ARTICLES_BY_CONFLICT = Counter(
    "newswire_articles_by_conflict_total", "Articles published, by first conflict", ["conflict"]
)
STAGE_SECONDS = Histogram("newswire_processor_stage_seconds", "Time per stage", ["stage"])
ARTICLE_FLAGS = Counter("newswire_article_flags_total",
                        "Articles published with a quality flag (paywall, cookie wall, live "
                        "blog, partial, summary fallback, markup cuts...)", ["flag"])
POOL_CRASHES = Counter("newswire_processor_pool_crashes_total",
                       "Extraction processes that died: 'pool' = the pool was replaced, "
                       "'page' = a page that killed its own process too, given up", ["what"])
ARCHIVE_FAILURES = Counter("newswire_page_archive_failures_total",
                           "Pages enriched but not archived (disk full, read-only...)")
STUCK = Counter("newswire_processor_stuck_total",
                "Entries still in flight after process.stuck_after seconds (each counted once)")
OLDEST = Gauge("newswire_processor_oldest_in_flight_seconds",
               "Age of the oldest entry in flight in this worker")
HALTS = Counter("newswire_processor_halts_total",
                "Stops because too many recent entries would be dead-lettered")

# The publisher refuses to let us read the page (any 4xx but 404/410/429; robots.txt): the
# feed's summary is published instead, flagged partial. A page that is gone (404/410) or
# hostile (too large, a blocked address) is dead-lettered.
READ_REFUSED = frozenset({"http_4xx", "robots_disallowed"})
# Worth another try later; anything else about a page is final.
TRANSIENT = frozenset({"timeout", "connect_error", "dns_error", "http_5xx", "http_429"})
FETCH_ATTEMPTS = 3
# Longest wait for a host's Retry-After hold before the entry is dead-lettered (replayable):
# a fetch slot held for an hour would stall its partition's commits behind it.
MAX_HOLD_WAIT = 30.0


# A small but complete story page: enough text that extraction, language detection and
# tagging all run, so every lazily loaded model is loaded by warm_up().
WARM_URL = "http://warm-up.invalid/story"
WARM_PAGE = (
    b"<html lang='en'><head><title>Warm-up story</title></head><body><article>"
    b"<h1>Shelling near the river town</h1>"
    + b"<p>Shelling near the river town continued overnight, officials said on Tuesday, "
      b"and aid groups asked both sides to open a corridor for civilians.</p>" * 12
    + b"</article></body></html>"
)


def awaiting(task: asyncio.Task[Any]) -> list[str]:
    """Where a task waits: its chain of awaits, outermost first ("file:line function").
    ``Task.get_stack`` gives one frame for a suspended coroutine; this follows ``cr_await``."""
    out: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None and len(out) < 30:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) \
            or getattr(coro, "ag_frame", None)
        if frame is not None:
            out.append(f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno} "
                       f"{frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) \
            or getattr(coro, "ag_await", None)
    return out


def warm_up() -> Enriched:
    """Enrich one built-in page in this process. Run before the pool forks: trafilatura's
    and the language detector's first use costs ~0.7 s of CPU (imports, models), and the
    pool processes then inherit all of it instead of each paying it on a real page."""
    entry = FeedEntry(key="0" * 16, url=WARM_URL, link=WARM_URL, title="Warm-up story",
                      summary="Warm-up story", feed=WARM_URL, source="warm-up.invalid")
    return enrich(WARM_PAGE, WARM_URL, "text/html", entry.to_bytes())


class Processor:
    """Per-entry work with the I/O at the edges. One instance per worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.halted: str | None = None  # why the worker stopped itself (dead-letter limit)
        workers = settings.process.workers or os.cpu_count() or 1
        if settings.log_level.upper() != "DEBUG":
            # trafilatura warns about every odd link or attribute in a page's markup
            # (hundreds of lines per hour, formatted in the pool); the pool inherits this.
            logging.getLogger("trafilatura").setLevel(logging.ERROR)
        # Compile the tagger once, here, before the pool forks: its processes inherit it
        # instead of each spending seconds of CPU on the same compile.
        init_worker(str(settings.taxonomy_file) if settings.taxonomy_file else None)
        warm_up()
        # Everything loaded so far (trafilatura, language model, compiled taxonomy) lives as
        # long as the process: freeze it out of the collector, so neither this loop nor the
        # forked pool re-traverses it on every full collection (and the children don't
        # copy the inherited pages by writing GC headers).
        gc.collect()
        gc.freeze()
        self.workers = workers
        self.pool = self._new_pool(workers)
        for _ in range(workers):  # start every pool process now: they compile the tagger
            self.pool.submit(int)
        self.pool_restarts = 0
        self._solo_slots: asyncio.Semaphore | None = None
        self._solos: set[ProcessPoolExecutor] = set()  # one-page pools after a crash
        state = settings.data_dir / "processors"
        state.mkdir(parents=True, exist_ok=True)
        # Pages are archived by the pool processes (archive_and_enrich); the schema is made
        # here, once, before any of them writes.
        self.archive = state / "pages.sqlite"
        PageStore(self.archive).close()
        self.stories = StoryIndex(state / "stories.sqlite")
        self._fetcher: Fetcher | None = None

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        taxonomy = self.settings.taxonomy_file
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=pool_child_init,
            initargs=(str(taxonomy) if taxonomy else None, os.getpid()),
        )

    async def enrich(self, key: str, url: str, content_type: str | None, body: bytes,
                     raw_entry: bytes, redirects: tuple[str, ...] = ()) -> Enriched:
        """Clean, tag and fingerprint in the pool. An extraction process that dies (the OS
        killed it for memory, a C extension crashed on a page) breaks the whole pool and
        every page in flight with it: the pool is replaced, and each of those pages is
        tried once more in a process of its own, so only a page that kills that one too is
        given up (reason ``crashed``), and the others go on."""
        loop = asyncio.get_running_loop()
        pool = self.pool
        args = (str(self.archive), key, url, utcnow(), content_type, body, raw_entry, redirects)
        try:
            return await loop.run_in_executor(pool, archive_and_enrich, *args)
        except BrokenProcessPool:
            self._replace_pool(pool)
        if self._solo_slots is None:
            self._solo_slots = asyncio.Semaphore(self.workers)
        async with self._solo_slots:
            solo = self._new_pool(1)
            self._solos.add(solo)
            try:
                return await loop.run_in_executor(solo, archive_and_enrich, *args)
            except BrokenProcessPool:
                POOL_CRASHES.labels("page").inc()
                return Enriched(None, None, None, "crashed",
                                "the extraction process died on this page, twice (killed by "
                                "the OS for memory, or a crash in a C extension)")
            finally:
                self._solos.discard(solo)
                solo.shutdown(wait=False, cancel_futures=True)

    def _replace_pool(self, broken: ProcessPoolExecutor) -> None:
        if self.pool is not broken:  # another page in flight replaced it already
            return
        self.pool_restarts += 1
        POOL_CRASHES.labels("pool").inc()
        log.error("extraction process died; replacing the pool restarts=%d", self.pool_restarts)
        broken.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool(self.workers)

    @property
    def fetcher(self) -> Fetcher:
        # Created lazily: the HTTP client must belong to the running event loop.
        if self._fetcher is None:
            self._fetcher = Fetcher(self.settings.fetch, data_dir=self.settings.data_dir)
        return self._fetcher

    async def fetch(self, entry: FeedEntry) -> FetchResult:
        result = await self.fetcher.get(entry.url, respect_robots=self.settings.fetch.obey_robots)
        delay = 1.0
        for _ in range(FETCH_ATTEMPTS - 1):
            if result.reason not in TRANSIENT:
                break
            wait = result.retry_after or delay
            if wait > MAX_HOLD_WAIT:
                break
            await asyncio.sleep(wait)
            delay *= 2
            result = await self.fetcher.get(entry.url, respect_robots=self.settings.fetch.obey_robots)
        return result

    async def handle(self, entry: FeedEntry, raw_entry: bytes) -> tuple[Any, DeadLetter | None]:
        """Return ``(article, None)`` or ``(None, dead_letter)``; never raises for bad input."""
        with STAGE_SECONDS.labels("fetch").time():
            fetched = await self.fetch(entry)
        if fetched.reason is not None:
            FETCH_ERRORS.labels(fetched.reason).inc()
            if fetched.reason not in READ_REFUSED:
                return None, DeadLetter(stage="process", reason=f"fetch:{fetched.reason}",
                                        error=fetched.error, key=entry.key)
            # The publisher will not let us read the page (401/403/451..., robots.txt): the
            # story still exists, so the feed's summary stands in, flagged partial.
            done = from_feed(entry, f"fetch:{fetched.reason}", fetched.error or "")
        else:
            content_type = fetched.headers.get("content-type")
            with STAGE_SECONDS.labels("enrich").time():
                done = await self.enrich(entry.key, fetched.final_url, content_type,
                                         fetched.body, raw_entry, fetched.redirects)
            if done.archive_error:
                ARCHIVE_FAILURES.inc()
        if done.clean is None or done.tags is None:
            EXTRACT_FAILURES.labels(entry.source, done.reason or "unknown").inc()
            return None, DeadLetter(stage="process", reason=f"clean:{done.reason}",
                                    error=done.detail, key=entry.key)
        ingested = utcnow()
        fingerprint = f"{done.fingerprint:016x}" if done.fingerprint is not None else None
        story_id = (
            self.stories.assign(entry.key, done.fingerprint, when=ingested)
            if done.fingerprint is not None else entry.key
        )
        article = build_article(entry, done.clean, done.tags, story_id=story_id,
                                fingerprint=fingerprint, ingested=ingested,
                                fetched_url=fetched.final_url, redirects=fetched.redirects)
        if fetched.redirects:
            log.info("redirected key=%s url=%s trail=%s", entry.key, entry.url,
                     " -> ".join(fetched.redirects))
        first = article.conflicts[0].id if article.conflicts else "none"
        ARTICLES_BY_CONFLICT.labels(first).inc()
        return article, None

    async def aclose(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()
        self.stop_pool()

    def stop_pool(self) -> None:
        """Stop the extraction processes now, even mid-page: an unfinished entry's offset was
        not committed, so it is processed again after the restart."""
        for pool in (self.pool, *self._solos):
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()


def build_app(settings: Settings, processor: Processor) -> faust.App:
    kafka = settings.kafka
    assert kafka.bootstrap_servers, "Kafka bootstrap servers must be known before the worker starts"
    fetch_idle.install()  # an idle worker must not spin on a broker that ignores fetch waits
    app = faust.App(
        f"{kafka.topic_prefix}-processor",
        broker=";".join(f"kafka://{host}" for host in kafka.bootstrap_servers.split(",")),
        broker_credentials=faust_credentials(kafka),
        store="memory://",  # tables are rebuilt from their compacted changelog topics
        datadir=str(settings.data_dir / "faust"),
        web_enabled=False,
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        producer_acks=-1,
        blocking_timeout=10.0,
        broker_commit_interval=1.0,
        consumer_group_instance_id=runtime.instance_id(settings, "processor"),
    )
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    entries = app.topic(settings.topic("entries"), **raw)
    articles = app.topic(settings.topic("articles"), **raw)
    dead = app.topic(settings.topic("dlq.process"), **raw)

    async def dead_letter(event: faust.EventT, letter: DeadLetter) -> None:
        PROCESSED.labels("dead_letter").inc()
        message = event.message
        letter = letter.model_copy(update={
            "topic": message.topic, "partition": message.partition, "offset": message.offset})
        log.warning("dead letter stage=process key=%s reason=%s error=%s",
                    letter.key, letter.reason, letter.error)
        value, headers = letter_message(letter, message.value or b"")
        await dead.send(key=message.key, value=value, headers=headers)

    async def outcome(event: faust.EventT) -> tuple[Article | None, DeadLetter | None]:
        raw_value = event.value or b""
        try:
            entry = FeedEntry.from_bytes(raw_value)
        except ValidationError as exc:
            return None, DeadLetter(stage="process", reason="bad_record", error=str(exc)[:500])
        try:
            return await processor.handle(entry, raw_value)
        except Exception as exc:  # a bug: never lose the message, say loudly what it was
            log.exception("processor bug key=%s url=%s", entry.key, entry.url)
            return None, DeadLetter(
                stage="process", reason="exception", key=entry.key,
                error="".join(traceback.format_exception_only(exc)).strip())

    limit = DeadLetterLimit.from_settings(settings.dead_letters)

    async def handle_event(event: faust.EventT) -> bool:
        """Send the event's article or dead letter; False when it must stay unacked."""
        article, letter = await outcome(event)
        if processor.halted:
            return False
        # Fetch failures are the web's doing (a publisher down or rate-limiting us), not a
        # bad deploy: they are dead-lettered but never halt the stage.
        ours = letter is not None and not letter.reason.startswith("fetch:")
        halt = limit.add(1, 1 if ours else 0)
        if halt is not None:
            # A bad deploy, not bad input: stop before this dead letter, commit nothing of it.
            processor.halted = halt
            HALTS.inc()
            log.error("processor halted: too many dead letters stage=process %s last_reason=%s "
                      "last_error=%r", halt, letter.reason if letter else "-",
                      (letter.error or "")[:300] if letter else "")
            signal.raise_signal(signal.SIGTERM)  # Faust's own graceful stop
            return False
        if letter is not None:
            await dead_letter(event, letter)
            return True
        assert article is not None
        await articles.send(key=article.id.encode(), value=article.to_bytes())
        PROCESSED.labels("article").inc()
        for flag in article.flags:
            ARTICLE_FLAGS.labels(flag.split(":", 1)[0]).inc()  # bounded label values
        log.info("article key=%s url=%s conflicts=%s partial=%s", article.id, article.url,
                 ",".join(c.id for c in article.conflicts[:3]), article.partial)
        return True

    acks: InOrderAcks[faust.EventT] = InOrderAcks()

    @app.on_partitions_revoked.connect
    async def _revoked(app: faust.App, revoked: set, **_: Any) -> None:  # noqa: ARG001
        for tp in revoked:  # the new owner reads their unacked entries again
            acks.forget(tp)

    @app.agent(entries)
    async def process_entries(stream: faust.StreamT) -> None:
        # One reader hands entries to up to fetch_concurrency tasks. Acks are manual and in
        # offset order per partition (InOrderAcks): an entry is acked only once its article
        # or dead letter was handed to the producer (flushed before any commit) AND every
        # earlier entry of its partition was too. Work cancelled by a shutdown is never
        # acked, so it is read again after the restart.
        slots = asyncio.Semaphore(settings.process.fetch_concurrency)
        since: dict[asyncio.Task[None], float] = {}  # the tasks in flight, and when they began

        async def watch() -> None:
            # Every hop of an entry has its own timeout, so one in flight much longer than
            # that waits where it should not (and holds back its partition's commits): say
            # where, once, instead of leaving a silent lag to guess about.
            limit = settings.process.stuck_after
            reported: set[asyncio.Task[None]] = set()
            while True:
                await asyncio.sleep(min(15.0, limit / 4))
                now = time.monotonic()
                OLDEST.set(now - min(since.values(), default=now))
                reported &= since.keys()
                for task, started in list(since.items()):
                    if now - started > limit and task not in reported:
                        reported.add(task)
                        STUCK.inc()
                        log.warning("entry in flight for %.0fs, waiting at: %s",
                                    now - started, " <- ".join(reversed(awaiting(task))))

        watcher = asyncio.create_task(watch())

        async def run(event: faust.EventT) -> None:
            message = event.message
            try:
                done = await handle_event(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the producer failed: the entry is not done
                log.exception("processor send failed key=%s; restarting", message.key)
                await app.crash(exc)
                return
            finally:
                slots.release()
            if done:
                for ready in acks.done(message.tp, message.offset):
                    ready.ack()

        try:
            async for event in stream.noack().events():
                await slots.acquire()
                acks.track(event.message.tp, event.message.offset, event)
                task = asyncio.create_task(run(event))
                since[task] = time.monotonic()
                task.add_done_callback(since.pop)
        finally:
            watcher.cancel()
            for task in list(since):
                task.cancel()

    try:  # alerts are matched in the same worker, in-stream
        from processors.alerts.agent import install as install_alerts
    except ImportError:
        log.warning("alerts package not available; running without alert matching")
    else:
        install_alerts(app, settings)
    return app


def run_worker(settings: Settings) -> int:
    """Run the processor worker until SIGTERM/SIGINT (Faust installs the handlers)."""
    processor = Processor(settings)  # first: it forks the pool before any thread starts
    ensure_topics(settings)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    app = build_app(settings, processor)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True,
                          redirect_stdouts=False, override_logging=False)
    worker.spinner = None  # a log file is no terminal: no spinner escapes in it

    @app.on_before_shutdown.connect
    async def _close(app: faust.App, **_: Any) -> None:  # noqa: ARG001
        await processor.aclose()

    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return HALTED if processor.halted else int(exc.code or 0)
    finally:
        processor.stop_pool()
    return HALTED if processor.halted else 0
