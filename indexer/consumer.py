"""The indexer service: Kafka ``articles`` topic -> search store, at least once, idempotently.

Loop: poll -> batch (``batch_size`` records or ``linger`` seconds) -> decode -> ``store.upsert``
-> dead-letter what could not be decoded or was refused -> flush the dead letters -> commit
the offsets. One batch is written (in a worker thread) while the next is fetched and
decoded. Nothing is committed before the store (and the DLQ) has the batch, so a crash
replays it and the replay overwrites by id.

While the store is unreachable (:class:`indexer.store.StoreUnavailable`) the consumer pauses
its partitions, keeps its group membership with empty polls, and retries with capped
exponential backoff; nothing is skipped. One log line per retry says why; the full traceback
is logged once per outage. A single document that the store answers with a server error on
every attempt is not an outage: the store gives up on it after a capped number of attempts
(``indexer.elastic``) and it is dead-lettered with reason ``store_5xx`` while the rest of the
batch is written and committed, so one document cannot stall the indexer.

Dead letters keep the whole original value (up to :data:`MAX_LETTER_BYTES`), so
``newswire dlq replay index`` can send back even a long article.

Partitions (``IndexerOptions.membership``): ``assign`` takes every partition of the topic
itself (``consumer.assign``) and commits its offsets to the group; ``group`` subscribes and
lets the group coordinator balance partitions over several indexers. ``auto`` (the default)
is ``assign`` for the embedded store, whose index admits exactly one writer process (so there
is nothing to balance, and a restarted indexer never waits for a dead member of its group to
be evicted), and ``group`` for Elasticsearch, where indexers may be scaled out.

A bad deploy upstream must not dead-letter everything: when more than
``dead_letter_max_share`` of the last ``dead_letter_window`` records (and at least
``dead_letter_min_records``) would be dead-lettered, the indexer halts before sending the
dead letters or committing that batch (exit code :data:`HALTED`), so the records stay in
the topic for the fixed stage to take.

A stop request (the ``stop`` event, set by the
SIGTERM/SIGINT handlers of ``newswire index``) lets the current batch finish and commit,
then returns within a few seconds; if the store is down at that moment the batch is left
uncommitted and will be consumed again on the next start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Histogram, start_http_server
from pydantic import ValidationError

from indexer.store import Rejection, SearchStore, StoreUnavailable, open_store
from newswire.deadletters import HALTED, MAX_LETTER_BYTES, DeadLetterLimit, letter_message
from newswire.records import Article, DeadLetter
from newswire.settings import Settings
from newswire.topics import ensure_topics

log = logging.getLogger(__name__)

DOCS = Counter("newswire_indexer_documents_total", "Documents handled by the indexer",
               ["outcome"])  # indexed | rejected | store_5xx | undecodable
BATCH_RECORDS = Histogram("newswire_indexer_batch_records", "Records per written batch",
                          buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000))
BULK_SECONDS = Histogram("newswire_indexer_bulk_seconds", "Time of one store.upsert batch",
                         buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
STORE_DOWN = Counter("newswire_indexer_store_unavailable_total",
                     "Upsert attempts that found the store unreachable")
HALTS = Counter("newswire_indexer_halts_total",
                "Stops because too many records would have been dead-lettered")

IDLE_WAIT = 0.1  # seconds to wait after a poll that returned nothing
FETCH_WAIT_MS = 100  # a poll right after one that returned records waits this long for more
# Only a poll this full counts as "flowing": a trickle of single records would otherwise
# make every next poll block, and a blocking poll spins on noida (0.03-0.05 CPU-s/article).
FLOWING_RECORDS = 100

Membership = Literal["auto", "assign", "group"]


@dataclass(frozen=True)
class IndexerOptions:
    batch_size: int = 2000  # one store commit per batch: tantivy commits cost ~0.2-0.5 s
    # seconds a partial batch waits for more records: poll-to-searchable latency under a
    # trickle of articles (a full batch goes at once, whatever this is)
    linger: float = 0.3
    backoff_initial: float = 0.5
    # Capped low: after an outage the held batch goes in within this long of the store's return.
    backoff_max: float = 5.0
    membership: Membership = "auto"
    partition_check: float = 30.0  # seconds; assign mode looks for added partitions this often
    dead_letter_max_share: float = 0.5
    dead_letter_window: int = 1000
    dead_letter_min_records: int = 100

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> IndexerOptions:
        """Membership and the dead-letter limit as configured (NEWSWIRE_INDEX__*,
        NEWSWIRE_DEAD_LETTERS__*), so `newswire up`, compose and k8s can set them."""
        limit = settings.dead_letters
        values: dict[str, object] = {
            "membership": settings.index.membership, "dead_letter_max_share": limit.max_share,
            "dead_letter_window": limit.window, "dead_letter_min_records": limit.min_records}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def resolve_membership(membership: Membership, uses_elasticsearch: bool) -> Literal[
        "assign", "group"]:
    """``auto``: ``assign`` for the embedded store (one writer process by construction),
    ``group`` for Elasticsearch (indexers may be scaled out)."""
    if membership == "auto":
        return "group" if uses_elasticsearch else "assign"
    return membership


def short_reason(exc: BaseException, limit: int = 300) -> str:
    """One line for the log: the exception's type and the start of its message."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}" if text else type(exc).__name__


TRANSPORT_LOGGERS = ("elastic_transport.transport", "elastic_transport.node_pool")


class TransportNoise(logging.Filter):
    """The Elasticsearch client logs each of its retries with a full traceback, and every
    node timeout: ~8 lines and 4 tracebacks per failed upsert. In the indexer, the line
    stays without its traceback (the indexer logs one itself, once per outage), and while the
    store is known to be down (``down()``) the client's lines are dropped: the indexer's own
    line per retry says the same."""

    def __init__(self, down: Callable[[], bool] = lambda: False) -> None:
        super().__init__()
        self.down = down

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR and self.down():
            return False
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()} error={short_reason(record.exc_info[1])!r}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


@dataclass(frozen=True)
class Dead:
    record: ConsumerRecord
    reason: str
    error: str | None = None


def decode(records: Iterable[ConsumerRecord]) -> tuple[list[tuple[ConsumerRecord, Article]],
                                                       list[Dead]]:
    """Split records into articles and undecodable ones (pure)."""
    good: list[tuple[ConsumerRecord, Article]] = []
    dead: list[Dead] = []
    for record in records:
        if not record.value:
            dead.append(Dead(record, "empty_value"))
            continue
        try:
            good.append((record, Article.from_bytes(record.value)))
        except (ValidationError, ValueError, UnicodeDecodeError) as exc:
            dead.append(Dead(record, "bad_record", str(exc)[:1000]))
    return good, dead


def latest_per_id(pairs: list[tuple[ConsumerRecord, Article]]) -> list[Article]:
    """One article per id, the last one in the batch (a batch may hold a replay)."""
    latest: dict[str, Article] = {}
    for _record, article in pairs:
        latest.pop(article.id, None)
        latest[article.id] = article
    return list(latest.values())


def dead_letter_message(dead: Dead) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The DLQ value and headers of a dead record (pure)."""
    record = dead.record
    key = record.key.decode("utf-8", "replace") if isinstance(record.key, bytes) else record.key
    letter = DeadLetter(stage="index", reason=dead.reason, error=dead.error, topic=record.topic,
                        partition=record.partition, offset=record.offset, key=key)
    return letter_message(letter, record.value or b"")


def commit_offsets(records: Iterable[ConsumerRecord]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The next offset to read per partition (pure)."""
    top: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        top[tp] = max(top.get(tp, -1), r.offset)
    return {tp: OffsetAndMetadata(offset + 1, "", -1) for tp, offset in top.items()}


@dataclass
class InFlight:
    """A decoded batch and, once started, the future of its store write."""

    records: list[ConsumerRecord]
    pairs: list[tuple[ConsumerRecord, Article]]
    dead: list[Dead]
    articles: list[Article]
    future: Future[list[Rejection]] | None = None


class Indexer:
    def __init__(self, settings: Settings, store: SearchStore, stop: threading.Event,
                 options: IndexerOptions) -> None:
        self.settings = settings
        self.store = store
        self.stop = stop
        self.options = options
        self.topic = settings.topic("articles")
        self.dlq_topic = settings.topic("dlq.index")
        self.membership = resolve_membership(options.membership,
                                             settings.search.uses_elasticsearch)
        self.limit = DeadLetterLimit(options.dead_letter_max_share, options.dead_letter_window,
                                     options.dead_letter_min_records)
        self.halted: str | None = None
        self.outage = False  # the store is down: the traceback was logged already
        cfg = settings.kafka.client_config()
        self.consumer = KafkaConsumer(
            group_id=f"{settings.kafka.topic_prefix}-indexer",
            client_id="newswire-indexer", enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=options.batch_size,
            metadata_max_age_ms=int(options.partition_check * 1000), **cfg)
        if self.membership == "group":
            self.consumer.subscribe([self.topic])
        self.partitions_checked = 0.0
        self.producer = KafkaProducer(client_id="newswire-indexer-dlq", acks="all",
                                      linger_ms=20, **cfg)
        self.indexed = 0
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="indexer-write")

    def assign_partitions(self) -> None:
        """Assign mode: take every partition of the topic, again when partitions are added
        (positions and pauses of partitions already held are kept). The committed offsets of
        the group are where reading starts."""
        if self.membership != "assign":
            return
        now = time.monotonic()
        if self.consumer.assignment() and \
                now - self.partitions_checked < self.options.partition_check:
            return
        self.partitions_checked = now
        found = self.consumer.partitions_for_topic(self.topic) or set()
        wanted = {TopicPartition(self.topic, p) for p in found}
        if wanted and wanted != self.consumer.assignment():
            self.consumer.assign(sorted(wanted))
            log.info("partitions assigned topic=%s partitions=%d", self.topic, len(wanted))

    def close(self) -> None:
        for closer in (self.consumer.close, self.producer.close):
            try:
                closer()
            except KafkaError as exc:
                log.warning("kafka client close failed error=%s", exc)

    def run(self) -> None:
        """Poll and write, one batch in flight: while the store writes batch N (tantivy and
        Elasticsearch release the GIL), batch N+1 is fetched and decoded. Offsets are
        committed in order, each only after its own batch is written."""
        batch: list[ConsumerRecord] = []
        deadline = 0.0
        pending: InFlight | None = None
        flowing = False  # the last poll returned records
        try:
            while not self.stop.is_set():
                self.assign_partitions()
                room = self.options.batch_size - len(batch)
                # Idle: a non-blocking poll and a short sleep when nothing came (a broker that
                # answers empty fetches at once, as noida does, makes a blocking poll spin a
                # whole core). Flowing: a blocking poll, which returns as soon as the fetch in
                # flight lands (sleeping instead cost a third of the throughput).
                joined = bool(self.consumer.assignment())  # joining needs blocking polls
                timeout = FETCH_WAIT_MS if flowing else 0 if joined else 200
                polled = self.consumer.poll(timeout_ms=timeout, max_records=room)
                got = 0
                for records in polled.values():
                    batch.extend(records)
                    got += len(records)
                flowing = got >= FLOWING_RECORDS
                if joined and not flowing and not timeout:
                    self.stop.wait(IDLE_WAIT)
                if batch and not deadline:
                    deadline = time.monotonic() + self.options.linger
                if batch and (len(batch) >= self.options.batch_size
                              or time.monotonic() >= deadline):
                    prepared = self.prepare(batch)  # overlaps the write of `pending`
                    if pending is not None and not self.finish(pending):
                        return
                    pending = self.start(prepared)
                    batch, deadline = [], 0.0
                elif pending is not None and (pending.future is None or pending.future.done()):
                    done, pending = pending, None  # commit promptly when input is quiet
                    if not self.finish(done):
                        return
            # stop requested: finish what we hold
            if pending is not None and not self.finish(pending):
                return
            if batch:
                self.finish(self.start(self.prepare(batch)))
        finally:
            self.pool.shutdown(wait=True)

    def prepare(self, batch: list[ConsumerRecord]) -> InFlight:
        pairs, dead = decode(batch)
        return InFlight(batch, pairs, dead, latest_per_id(pairs))

    def start(self, item: InFlight) -> InFlight:
        if item.articles:
            item.future = self.pool.submit(self._timed_upsert, item.articles)
        return item

    def _timed_upsert(self, articles: list[Article]) -> list[Rejection]:
        started = time.perf_counter()
        rejections = self.store.upsert(articles)
        BULK_SECONDS.observe(time.perf_counter() - started)
        return rejections

    def flush(self, batch: list[ConsumerRecord]) -> bool:
        """Write one batch synchronously, dead-letter, commit (see :meth:`finish`)."""
        return self.finish(self.prepare(batch))

    def finish(self, item: InFlight) -> bool:
        """Wait for the batch's write (retrying while the store is down), dead-letter the bad
        records, then commit. False: stopped before the batch could be written."""
        rejections: list[Rejection] | None = []
        if item.future is not None:
            try:
                rejections = item.future.result()
            except StoreUnavailable as exc:
                self._store_down(exc, retry_in=0.0)
                rejections = self._upsert(item.articles)
        elif item.articles:
            rejections = self._upsert(item.articles)
        if rejections is None:
            return False
        if self.outage:
            log.info("search store available again; resuming")
            self.outage = False
        pairs, dead, articles, batch = item.pairs, list(item.dead), item.articles, item.records
        if rejections:
            by_id: dict[str, ConsumerRecord] = {a.id: r for r, a in pairs}
            for rej in rejections:
                record = by_id.get(rej.id)
                if record is not None:
                    dead.append(Dead(record, rej.kind, rej.reason))
        halt = self.limit.add(len(batch), len(dead))
        if halt is not None:
            # Written to the store already (idempotent), but neither dead-lettered nor
            # committed: after the fix upstream the records are read again.
            reasons = sorted({d.reason for d in dead})
            log.error("indexer halted: too many dead letters stage=index %s reasons=%s "
                      "first_error=%r", halt, ",".join(reasons),
                      (dead[0].error or "")[:200] if dead else "")
            HALTS.inc()
            self.halted = halt
            self.stop.set()
            return False
        sent = []
        for d in dead:
            log.warning("dead letter stage=index topic=%s partition=%s offset=%s reason=%s "
                        "error=%s", d.record.topic, d.record.partition, d.record.offset,
                        d.reason, (d.error or "")[:200])
            value, headers = dead_letter_message(d)
            sent.append(self.producer.send(self.dlq_topic, key=d.record.key, value=value,
                                           headers=headers))
        if sent:
            self.producer.flush(timeout=30)
            for future in sent:
                future.get(timeout=0)  # a dead letter that did not land: crash, commit nothing
        try:
            self.consumer.commit(commit_offsets(batch))
        except CommitFailedError as exc:
            # The group rebalanced away from us; the batch is re-read and re-upserted (idempotent).
            log.warning("offset commit failed, batch will be replayed error=%s", exc)
        undecodable = len(item.dead)
        DOCS.labels("indexed").inc(len(articles) - len(rejections))
        for rej in rejections:
            DOCS.labels(rej.kind).inc()
        DOCS.labels("undecodable").inc(undecodable)
        BATCH_RECORDS.observe(len(batch))
        self.indexed += len(articles) - len(rejections)
        log.info("batch indexed records=%d documents=%d dead=%d", len(batch),
                 len(articles) - len(rejections), len(dead))
        return True

    def _upsert(self, articles: list[Article]) -> list[Rejection] | None:
        delay = self.options.backoff_initial
        paused = False
        try:
            while True:
                try:
                    return self._timed_upsert(articles)
                except StoreUnavailable as exc:
                    self._store_down(exc, retry_in=delay)
                    if not paused:
                        self.consumer.pause(*self.consumer.assignment())
                        paused = True
                    if self._idle(delay):
                        log.info("stop requested while the store is down; batch not committed")
                        return None
                    delay = min(delay * 2, self.options.backoff_max)
        finally:
            if paused:
                self.consumer.resume(*self.consumer.paused())

    def _store_down(self, exc: StoreUnavailable, retry_in: float) -> None:
        """One line per failed attempt; the traceback only on the first of an outage."""
        STORE_DOWN.inc()
        first = not self.outage
        self.outage = True
        log.warning("search store unavailable retry_in=%.1fs reason=%r", retry_in,
                    short_reason(exc.__cause__ or exc), exc_info=exc if first else None)

    def _idle(self, seconds: float) -> bool:
        """Wait, polling (paused) to stay in the group. True when a stop was requested."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.stop.wait(min(0.5, max(0.0, end - time.monotonic()))):
                return True
            polled = self.consumer.poll(timeout_ms=0)  # partitions paused: returns nothing
            for tp, records in polled.items():  # ...but never skip a record if it did
                self.consumer.seek(tp, records[0].offset)
        return self.stop.is_set()


def run_indexer(settings: Settings, stop: threading.Event | None = None, *,
                store: SearchStore | None = None,
                options: IndexerOptions | None = None) -> int:
    """Run until ``stop`` is set; return a process exit code. Signal handlers are the
    caller's business (``newswire index`` installs them)."""
    stop = stop or threading.Event()
    options = options or IndexerOptions()
    ensure_topics(settings)
    metrics = start_http_server(settings.metrics_port) if settings.metrics_port else None
    try:
        return _run(settings, stop, store, options)
    finally:
        if metrics is not None:
            metrics[0].shutdown()
            metrics[0].server_close()


def _run(settings: Settings, stop: threading.Event, store: SearchStore | None,
         options: IndexerOptions) -> int:
    own_store = store is None
    store = store or open_store(settings, writer=True)
    delay = options.backoff_initial
    while True:
        try:
            store.ensure()
            break
        except StoreUnavailable as exc:
            log.warning("search store unavailable at start, retrying in %.1fs error=%s",
                        delay, exc)
            if stop.wait(delay):
                return 0
            delay = min(delay * 2, options.backoff_max)
    indexer = Indexer(settings, store, stop, options)
    noise = TransportNoise(lambda: indexer.outage)
    for name in TRANSPORT_LOGGERS:
        logging.getLogger(name).addFilter(noise)
    log.info("indexer started topic=%s group=%s-indexer membership=%s store=%s", indexer.topic,
             settings.kafka.topic_prefix, indexer.membership, type(store).__name__)
    try:
        indexer.run()
    finally:
        for name in TRANSPORT_LOGGERS:
            logging.getLogger(name).removeFilter(noise)
        indexer.close()
        if own_store:
            store.close()
        log.info("indexer stopped documents=%d", indexer.indexed)
    return HALTED if indexer.halted else 0
