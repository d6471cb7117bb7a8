"""The indexer service on noida's Kafka: batch -> store -> DLQ -> commit, replay, store outages."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import httpx
import pytest
from elasticsearch import Elasticsearch
from hypothesis import given
from hypothesis import strategies as st
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from indexer.consumer import (
    BATCH_RECORDS,
    DOCS,
    HALTED,
    HALTS,
    STORE_DOWN,
    DeadLetterLimit,
    IndexerOptions,
    TransportNoise,
    commit_offsets,
    dead_letter_message,
    decode,
    latest_per_id,
    resolve_membership,
    run_indexer,
    short_reason,
)
from indexer.elastic import FAILURES, ElasticStore
from indexer.embedded import EmbeddedStore
from indexer.store import SearchRequest, open_store
from newswire.broker import EmbeddedServer, free_port
from newswire.records import Article, DeadLetter
from newswire.settings import Settings
from newswire.topics import ensure_topics
from tests.faultproxy import FaultProxy

FAST = IndexerOptions(batch_size=10, linger=0.2, backoff_initial=0.1,
                      backoff_max=0.5)


def art(i: int, **kw: object) -> Article:
    base: dict[str, object] = {
        "id": f"k{i:04d}", "url": f"https://news.example/{i}",
        "title": f"Drone strike on Odesa port {i}", "text": "Air defence units responded.",
        "source": "news.example", "countries": ("UA",),
        "published": datetime(2026, 4, 1, tzinfo=UTC),
    }
    base.update(kw)
    return Article(**base)  # type: ignore[arg-type]


def produce(settings: Settings, items: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = KafkaProducer(acks="all", **settings.kafka.client_config())
    try:
        for key, value in items:
            producer.send(settings.topic("articles"), key=key, value=value)
        producer.flush(30)
    finally:
        producer.close()


def produce_articles(settings: Settings, articles: list[Article]) -> None:
    produce(settings, [(a.key.encode(), a.to_bytes()) for a in articles])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def lag(settings: Settings) -> int:
    """Records of the articles topic not yet committed by the indexer group."""
    cfg = settings.kafka.client_config()
    consumer = KafkaConsumer(**cfg)
    admin = KafkaAdminClient(**cfg)
    try:
        topic = settings.topic("articles")
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        ends = consumer.end_offsets(tps)
        group = f"{settings.kafka.topic_prefix}-indexer"
        try:
            committed = admin.list_group_offsets({group: tps}).get(group, {})
        except Exception:  # noqa: BLE001 - a group that never committed
            committed = {}
        done = {tp: (committed[tp].offset if tp in committed and committed[tp].offset >= 0
                     else 0) for tp in tps}
        return sum(ends[tp] - done[tp] for tp in tps)
    finally:
        consumer.close()
        admin.close()


def dead_letters(settings: Settings, expected: int) -> list[tuple[DeadLetter, dict[str, str]]]:
    consumer = KafkaConsumer(settings.topic("dlq.index"), auto_offset_reset="earliest",
                             consumer_timeout_ms=5000, **settings.kafka.client_config())
    out = []
    try:
        for message in consumer:
            headers = {k: v.decode() for k, v in message.headers or []}
            out.append((DeadLetter.from_bytes(message.value), headers))
            if len(out) >= expected:
                break
    finally:
        consumer.close()
    return out


class IndexerThread:
    def __init__(self, settings: Settings, **kw: object) -> None:
        self.stop = threading.Event()
        self.result: list[int] = []
        self.thread = threading.Thread(
            target=lambda: self.result.append(run_indexer(settings, self.stop, **kw)),
            daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(20)
        assert not self.thread.is_alive(), "indexer did not stop"
        assert self.result == [0]


# ---- pure parts


def test_decode_splits_good_and_bad_records() -> None:
    from kafka.consumer.fetcher import ConsumerRecord

    def rec(offset: int, value: bytes | None) -> ConsumerRecord:
        return ConsumerRecord("t", 1, 0, offset, 0, 0, b"k", value, [], None, 1,
                              len(value or b""), -1)

    good, dead = decode([rec(0, art(1).to_bytes()), rec(1, b"{nope"), rec(2, None),
                         rec(3, b'{"id": "x"}')])
    assert [a.id for _, a in good] == ["k0001"]
    assert [(d.record.offset, d.reason) for d in dead] == [
        (1, "bad_record"), (2, "empty_value"), (3, "bad_record")]
    value, headers = dead_letter_message(dead[0])
    letter = DeadLetter.from_bytes(value)
    assert (letter.stage, letter.topic, letter.partition, letter.offset) == ("index", "t", 1, 1)
    assert dict(headers)["original_offset"] == b"1" and dict(headers)["stage"] == b"index"
    assert commit_offsets([rec(5, b""), rec(3, b"")]) == {
        TopicPartition("t", 1): (6, "", -1)}
    pairs = [(rec(0, b""), art(1)), (rec(1, b""), art(2)), (rec(2, b""), art(1, title="new"))]
    assert [(a.id, a.title) for a in latest_per_id(pairs)] == [
        ("k0002", art(2).title), ("k0001", "new")]


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 20)),
                max_size=60))
def test_commit_offsets_and_latest_per_id_properties(
        items: list[tuple[int, int, int]]) -> None:
    from kafka.consumer.fetcher import ConsumerRecord

    records = [ConsumerRecord("t", p, 0, o, 0, 0, b"k", b"", [], None, 1, 0, -1)
               for p, o, _ in items]
    committed = commit_offsets(records)
    # the next offset to read per partition: past every record of the batch, and no further
    assert {tp.partition: om.offset for tp, om in committed.items()} == {
        p: max(o for q, o, _ in items if q == p) + 1 for p, _, _ in items}
    pairs = [(r, art(i)) for r, (_, _, i) in zip(records, items, strict=True)]
    latest = latest_per_id(pairs)
    assert sorted(a.id for a in latest) == sorted({a.id for _, a in pairs})  # one per id
    last_position = {a.id: n for n, (_, a) in enumerate(pairs)}
    assert [a.id for a in latest] == sorted(last_position, key=last_position.__getitem__)


batches = st.lists(st.tuples(st.integers(1, 300), st.floats(0, 1)), min_size=1, max_size=40)


@given(batches)
def test_dead_letter_limit_never_halts_when_each_batch_is_within_the_share(
        spec: list[tuple[int, float]]) -> None:
    limit = DeadLetterLimit(max_share=0.5, window=500, min_records=50)
    for records, share in spec:
        dead = int(records * share * 0.5)  # each batch at most half dead
        assert limit.add(records, dead) is None


@given(batches)
def test_dead_letter_limit_halts_once_enough_records_are_mostly_dead(
        spec: list[tuple[int, float]]) -> None:
    limit = DeadLetterLimit(max_share=0.5, window=500, min_records=50)
    seen = 0
    for records, share in spec:
        dead = records // 2 + 1 + int((records - records // 2 - 1) * share)  # > half dead
        seen += records
        reason = limit.add(records, dead)
        assert (reason is not None) == (seen >= 50), (seen, reason)
        if reason is not None:
            assert "would be dead-lettered (limit 50%)" in reason
            break


def test_dead_letter_limit_forgets_old_batches() -> None:
    limit = DeadLetterLimit(max_share=0.5, window=100, min_records=10)
    assert limit.add(100, 40) is None
    assert limit.add(100, 0) is None  # the first batch left the window: 0 of 100
    assert limit.add(100, 60) is not None  # 60 of the last 100
    assert resolve_membership("auto", uses_elasticsearch=False) == "assign"
    assert resolve_membership("auto", uses_elasticsearch=True) == "group"
    assert resolve_membership("group", uses_elasticsearch=False) == "group"


def test_transport_retries_log_one_line_without_traceback() -> None:
    import logging

    try:
        raise ConnectionError("Connection refused\n   at somewhere deep")
    except ConnectionError as exc:
        error = exc
    record = logging.LogRecord("elastic_transport.transport", logging.WARNING, "x", 1,
                               "Retrying request after failure (attempt %d of %d)", (1, 3),
                               (type(error), error, error.__traceback__))
    assert TransportNoise().filter(record)
    assert record.exc_info is None
    assert record.getMessage() == ("Retrying request after failure (attempt 1 of 3) "
                                   "error='ConnectionError: Connection refused at somewhere deep'")
    assert not TransportNoise(lambda: True).filter(record)  # the store is known to be down
    assert short_reason(ValueError("x" * 500)) == "ValueError: " + "x" * 300
    assert short_reason(TimeoutError()) == "TimeoutError"


# ---- against noida


@pytest.mark.integration
def test_indexes_dead_letters_commits_and_replays_idempotently(kafka_settings: Settings) -> None:
    settings = kafka_settings.model_copy(update={"metrics_port": free_port()})
    ensure_topics(settings)
    articles = [art(i) for i in range(25)]
    produce_articles(settings, articles[:20])
    produce(settings, [(b"bad-1", b"this is not json"),
                       (b"k9999", art(9999, title=None, text="").to_bytes())])
    produce_articles(settings, articles[20:])
    reader = EmbeddedStore(settings.data_dir / "index")

    with IndexerThread(settings, options=FAST):
        wait_for(lambda: lag(settings) == 0, "the indexer to commit everything")
        # committed => written: every article is searchable the moment the offsets are in
        assert reader.count() == 25
        result = reader.search(SearchRequest(query="drone odesa", countries=("UA",)))
        assert result.total == 25
        assert result.facets["countries"] == [{"value": "UA", "count": 25}]
        metrics = httpx.get(f"http://127.0.0.1:{settings.metrics_port}/metrics").text
        assert 'newswire_indexer_documents_total{outcome="rejected"}' in metrics
        assert "newswire_indexer_bulk_seconds_count" in metrics

        letters = dead_letters(settings, 2)
        by_reason = {letter.reason: (letter, headers) for letter, headers in letters}
        assert set(by_reason) == {"bad_record", "rejected"}
        bad, bad_headers = by_reason["bad_record"]
        assert bad.payload == "this is not json" and bad.key == "bad-1"
        assert bad_headers["original_topic"] == settings.topic("articles")
        assert bad_headers["stage"] == "index" and bad_headers["reason"] == "bad_record"
        assert int(bad_headers["original_offset"]) == bad.offset
        assert int(bad_headers["original_partition"]) == bad.partition
        rejected, _ = by_reason["rejected"]
        assert rejected.key == "k9999" and "no title, text" in (rejected.error or "")

        # a replay (same keys, one of them updated) overwrites, never duplicates
        produce_articles(settings, articles[:10] + [art(3, title="Drone strike on Odesa, update")])
        wait_for(lambda: lag(settings) == 0, "the replay to be committed")
        assert reader.count() == 25
        assert reader.get("k0003")["title"] == "Drone strike on Odesa, update"
        assert reader.search(SearchRequest(query='"odesa update"')).total == 1


class Forwarder:
    """A loopback TCP forwarder we can take down and bring back: the store 'goes away'."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self.sockets: list[socket.socket] = []
        self.server: socket.socket | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self.server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        if self.server is not None:
            try:  # wakes the blocked accept(); a bare close() would leave it listening
                self.server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.server.close()
            self.server = None
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.sockets = []


@pytest.fixture
def forwarder(noida: EmbeddedServer) -> Iterator[Forwarder]:
    assert noida.elasticsearch_port
    fwd = Forwarder(free_port(), ("127.0.0.1", noida.elasticsearch_port))
    fwd.start()
    yield fwd
    fwd.stop()


@pytest.mark.integration
def test_store_outage_pauses_commits_and_loses_nothing(kafka_settings: Settings,
                                                       forwarder: Forwarder,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    prefix = kafka_settings.kafka.topic_prefix
    settings = kafka_settings.model_copy(update={"search": kafka_settings.search.model_copy(
        update={"elasticsearch_url": f"http://127.0.0.1:{forwarder.port}",
                "index_prefix": f"{prefix}-out"})})
    ensure_topics(settings)
    store = open_store(settings)
    with IndexerThread(settings, options=FAST):
        produce_articles(settings, [art(i) for i in range(10)])
        wait_for(lambda: lag(settings) == 0, "the first batch")

        forwarder.stop()  # Elasticsearch goes away
        downs = STORE_DOWN._value.get()
        produce_articles(settings, [art(i) for i in range(10, 30)])
        wait_for(lambda: STORE_DOWN._value.get() >= downs + 2, "failed attempts to write")
        assert lag(settings) == 20  # nothing committed while the store is down

        forwarder.start()  # and comes back: the held batch and the rest go in
        wait_for(lambda: lag(settings) == 0, "the indexer to catch up", timeout=60)

        forwarder.stop()  # down again, and this time we are asked to stop meanwhile
        downs = STORE_DOWN._value.get()
        produce_articles(settings, [art(i) for i in range(30, 35)])
        wait_for(lambda: STORE_DOWN._value.get() > downs, "a failed attempt to write")
    assert lag(settings) == 5  # stopped without committing the batch it could not write
    # One line per failed attempt; a traceback once per outage (two outages), none from the
    # Elasticsearch client's own retry lines.
    retries = [r for r in caplog.records if r.name == "indexer.consumer"
               and r.getMessage().startswith("search store unavailable retry_in=")]
    assert len(retries) >= 3 and all("reason=" in r.getMessage() and "\n" not in r.getMessage()
                                     for r in retries)
    assert sum(1 for r in retries if r.exc_info) == 2
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("elastic_transport"))
    forwarder.start()
    with IndexerThread(settings, options=FAST):
        wait_for(lambda: lag(settings) == 0, "the next run to write the held batch")
    store.refresh()
    assert store.count() == 35
    assert dead_letters(settings, 1) == []  # an outage is not a dead letter


@pytest.mark.integration
def test_stop_while_store_down_leaves_the_batch_for_next_time(kafka_settings: Settings,
                                                              tmp_path: Path) -> None:
    settings = kafka_settings.model_copy(update={"search": kafka_settings.search.model_copy(
        update={"elasticsearch_url": f"http://127.0.0.1:{free_port()}"})})
    ensure_topics(settings)
    produce_articles(settings, [art(i) for i in range(5)])
    indexer = IndexerThread(settings, options=FAST)
    with indexer:
        time.sleep(0.5)  # let it try (and fail) to reach the store; not a timing assertion
    assert lag(settings) == 5
    # the same topic, now with the embedded store: everything arrives
    with IndexerThread(kafka_settings, options=FAST):
        wait_for(lambda: lag(kafka_settings) == 0, "the second run")
    assert EmbeddedStore(kafka_settings.data_dir / "index").count() == 5


@pytest.mark.integration
def test_halts_instead_of_dead_lettering_everything(kafka_settings: Settings) -> None:
    """A bad deploy upstream: mostly garbage. The indexer stops (exit code HALTED) before it
    dead-letters or commits the batch that crossed the limit; what it did not dead-letter
    stays in the topic, and a run with the limit lifted takes it."""
    ensure_topics(kafka_settings)
    produce_articles(kafka_settings, [art(i) for i in range(20)])
    with IndexerThread(kafka_settings, options=FAST):
        wait_for(lambda: lag(kafka_settings) == 0, "the good articles")
    produce(kafka_settings, [(f"bad-{i}".encode(), b"{not an article") for i in range(150)])
    strict = IndexerOptions(batch_size=50, linger=0.2, dead_letter_max_share=0.5,
                            dead_letter_window=100, dead_letter_min_records=60)
    stop = threading.Event()
    halts = HALTS._value.get()
    assert run_indexer(kafka_settings, stop, options=strict) == HALTED
    assert stop.is_set() and HALTS._value.get() == halts + 1
    held = lag(kafka_settings)
    letters = dead_letters(kafka_settings, 150)
    assert held > 0 and len(letters) < 150
    assert len(letters) + held == 150  # every bad record is either a dead letter or still held
    assert EmbeddedStore(kafka_settings.data_dir / "index").count() == 20

    lifted = IndexerOptions(batch_size=50, linger=0.2, dead_letter_max_share=1.0)
    with IndexerThread(kafka_settings, options=lifted):
        wait_for(lambda: lag(kafka_settings) == 0, "the held records to be dead-lettered")
    assert len(dead_letters(kafka_settings, 150)) == 150


@pytest.mark.integration
def test_assigned_indexer_takes_up_added_partitions(kafka_settings: Settings) -> None:
    from kafka.admin import NewPartitions

    ensure_topics(kafka_settings)  # 2 partitions
    quick = IndexerOptions(batch_size=10, linger=0.2, partition_check=0.5)
    with IndexerThread(kafka_settings, options=quick):
        produce_articles(kafka_settings, [art(i) for i in range(6)])
        wait_for(lambda: lag(kafka_settings) == 0, "the first articles")
        admin = KafkaAdminClient(**kafka_settings.kafka.client_config())
        try:
            admin.create_partitions({kafka_settings.topic("articles"): NewPartitions(3)})
        finally:
            admin.close()
        producer = KafkaProducer(acks="all", **kafka_settings.kafka.client_config())
        try:
            for a in (art(i) for i in range(6, 12)):
                producer.send(kafka_settings.topic("articles"), key=a.key.encode(),
                              value=a.to_bytes(), partition=2)
            producer.flush(30)
        finally:
            producer.close()
        wait_for(lambda: lag(kafka_settings) == 0, "the articles on the new partition")
    assert EmbeddedStore(kafka_settings.data_dir / "index").count() == 12


# ---- Elasticsearch answering 429/5xx, through a real fault-injecting proxy (tests/faultproxy.py)


@pytest.fixture
def proxy(noida: EmbeddedServer) -> Iterator[FaultProxy]:
    assert noida.elasticsearch_port
    with FaultProxy("127.0.0.1", noida.elasticsearch_port) as fault_proxy:
        yield fault_proxy


def through(settings: Settings, proxy: FaultProxy, name: str) -> tuple[Settings, ElasticStore,
                                                                       ElasticStore]:
    """Settings whose store is Elasticsearch behind the proxy; the store the indexer gets
    (quick retries, so the tests are short) and one that reads noida directly."""
    prefix = f"{settings.kafka.topic_prefix}-{name}"
    routed = settings.model_copy(update={"search": settings.search.model_copy(
        update={"elasticsearch_url": proxy.url, "index_prefix": prefix})})
    client = Elasticsearch(proxy.url, max_retries=2, retry_on_status=(502, 503, 504),
                           request_timeout=30)
    writer = ElasticStore(client, prefix, max_retries=3, initial_backoff=0.05, max_backoff=0.2)
    reader = ElasticStore(Elasticsearch(f"http://127.0.0.1:{proxy.upstream[1]}"), prefix)
    return routed, writer, reader


def stored(reader: ElasticStore) -> int:
    reader.refresh()
    return reader.count()


def counter(metric: object, *labels: str) -> float:
    return metric.labels(*labels)._value.get() if labels else metric._value.get()  # type: ignore[attr-defined]


@pytest.mark.integration
def test_item_level_429_is_resent_with_backoff_then_indexed(kafka_settings: Settings,
                                                             proxy: FaultProxy) -> None:
    settings, writer, reader = through(kafka_settings, proxy, "i429")
    ensure_topics(settings)
    proxy.fail_item("k0003", 429, times=2)
    proxy.fail_item("k0006", 429, times=1)
    item_429s, downs = counter(FAILURES, "item_429"), counter(STORE_DOWN)
    produce_articles(settings, [art(i) for i in range(10)])
    with IndexerThread(settings, store=writer, options=FAST):
        wait_for(lambda: lag(settings) == 0, "the batch to be committed")
        assert stored(reader) == 10  # committed => written, the 429'd ones included
    assert proxy.attempts["k0003"] == 3 and proxy.attempts["k0006"] == 2
    assert proxy.attempts["k0001"] == 1  # only the failed items are sent again
    assert counter(FAILURES, "item_429") == item_429s + 3
    assert counter(STORE_DOWN) == downs  # absorbed by the store's retries: no pause
    assert dead_letters(settings, 1) == []


@pytest.mark.integration
def test_bulk_503_pauses_the_indexer_and_loses_nothing(kafka_settings: Settings,
                                                       proxy: FaultProxy) -> None:
    settings, writer, reader = through(kafka_settings, proxy, "b503")
    ensure_topics(settings)
    with IndexerThread(settings, store=writer, options=FAST):
        produce_articles(settings, [art(i) for i in range(5)])
        wait_for(lambda: lag(settings) == 0, "the first batch")

        proxy.fail_bulk(503, times=None)  # every _bulk answered 503 until cleared
        downs = counter(STORE_DOWN)
        produce_articles(settings, [art(i) for i in range(5, 25)])
        wait_for(lambda: counter(STORE_DOWN) >= downs + 2, "failed writes")
        assert lag(settings) == 20  # nothing committed while the writes fail
        assert stored(reader) == 5
        assert proxy.faulted_bulks >= 2 * 3  # the client's own retries came first

        proxy.clear()
        wait_for(lambda: lag(settings) == 0, "the indexer to resume", timeout=60)
        assert stored(reader) == 25
        # A 429 on the whole request a few times is absorbed by the store's retries.
        proxy.fail_bulk(429, times=2)
        bulk_429s, downs = counter(FAILURES, "bulk_429"), counter(STORE_DOWN)
        produce_articles(settings, [art(i) for i in range(25, 30)])
        wait_for(lambda: lag(settings) == 0, "the batch after two 429s")
        assert stored(reader) == 30
        assert counter(FAILURES, "bulk_429") == bulk_429s + 2
        assert counter(STORE_DOWN) == downs
    assert dead_letters(settings, 1) == []  # an outage is not a dead letter


@pytest.mark.integration
def test_a_document_failing_5xx_every_time_is_dead_lettered_not_retried_forever(
        kafka_settings: Settings, proxy: FaultProxy) -> None:
    settings, writer, reader = through(kafka_settings, proxy, "poison")
    ensure_topics(settings)
    proxy.fail_item("k0004", 500)  # every time
    proxy.fail_item("k0007", 503)
    gave_up = counter(DOCS, "store_5xx")
    articles = [art(i) for i in range(10)]
    produce_articles(settings, articles)
    with IndexerThread(settings, store=writer, options=FAST):
        wait_for(lambda: lag(settings) == 0, "the batch to be committed without the two")
        assert stored(reader) == 8
        # Alone in its batch, a failing document is no outage either (the cluster is green).
        proxy.fail_item("k0010", 500)
        produce_articles(settings, [art(10), art(11)])
        wait_for(lambda: lag(settings) == 0, "the second batch")
        assert stored(reader) == 9
    attempts = writer.max_retries + 1
    assert {proxy.attempts[k] for k in ("k0004", "k0007", "k0010")} == {attempts}  # capped
    assert counter(DOCS, "store_5xx") == gave_up + 3
    letters = {letter.key: (letter, headers) for letter, headers in dead_letters(settings, 3)}
    assert set(letters) == {"k0004", "k0007", "k0010"}
    letter, headers = letters["k0007"]
    assert letter.reason == headers["reason"] == "store_5xx"
    assert f"status 503 on each of {attempts} attempts" in (letter.error or "")
    assert Article.from_bytes(letter.payload or "") == articles[7]  # replayable as it was

    proxy.clear()  # replayed once the store is well again, they go in
    produce(settings, [(k.encode(), (letter.payload or "").encode())
                       for k, (letter, _) in letters.items()])
    with IndexerThread(settings, store=writer, options=FAST):
        wait_for(lambda: lag(settings) == 0, "the replay")
    assert stored(reader) == 12


class RecordingStore(EmbeddedStore):
    """The real embedded store, noting the size of every write the indexer makes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, writer=True)
        self.writes: list[int] = []

    def upsert(self, articles):  # type: ignore[no-untyped-def]
        self.writes.append(len(articles))
        return super().upsert(articles)


@pytest.mark.integration
def test_batches_are_bounded_by_size_and_a_partial_one_goes_after_the_linger(
        kafka_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    ensure_topics(kafka_settings)
    produce_articles(kafka_settings, [art(i) for i in range(45)])  # waiting before we start
    store = RecordingStore(kafka_settings.data_dir / "index")
    # A long linger: the backlog fills whole batches long before it runs out.
    options = IndexerOptions(batch_size=10, linger=2.0, backoff_initial=0.1, backoff_max=0.5)
    batches = BATCH_RECORDS._sum.get()  # type: ignore[attr-defined]
    with caplog.at_level(logging.INFO, logger="indexer.consumer"), \
            IndexerThread(kafka_settings, store=store, options=options):
        wait_for(lambda: lag(kafka_settings) == 0, "the backlog")
        assert sum(store.writes) == 45 and max(store.writes) == 10
        assert store.writes.count(10) >= 3
        # Three more, then nothing: no full batch will ever form, and no stop is asked
        # for; only the linger can send them.
        produce_articles(kafka_settings, [art(i) for i in range(45, 48)])
        wait_for(lambda: lag(kafka_settings) == 0, "the partial batch")
        assert store.writes[-1] == 3
        assert EmbeddedStore(kafka_settings.data_dir / "index").count() == 48
    logged = [r.getMessage() for r in caplog.records
              if r.getMessage().startswith("batch indexed records=")]
    assert logged[-1] == "batch indexed records=3 documents=3 dead=0"
    assert all(int(m.split()[2].split("=")[1]) <= 10 for m in logged)
    assert BATCH_RECORDS._sum.get() == batches + 48  # type: ignore[attr-defined]


def test_dead_letters_keep_the_whole_value_unless_it_would_not_fit_a_kafka_message() -> None:
    from kafka.consumer.fetcher import ConsumerRecord

    from indexer.consumer import MAX_LETTER_BYTES, Dead

    def letter_of(value: bytes) -> tuple[DeadLetter, dict[str, bytes], int]:
        record = ConsumerRecord("t", 0, 0, 7, 0, 0, b"k", value, [], None, 1, len(value), -1)
        data, headers = dead_letter_message(Dead(record, "store_5xx", "status 500"))
        return DeadLetter.from_bytes(data), dict(headers), len(data)

    long = art(1, text="Shelling continued. " * 3000).to_bytes()  # ~60 kB
    letter, headers, _ = letter_of(long)
    assert letter.payload == long.decode() and "payload_truncated" not in headers
    assert headers["payload_bytes"] == str(len(long)).encode()
    # Past a Kafka message (quotes double in JSON): the head, and the letter says so.
    huge = b'{"text": "' + b'\\"quoted\\" ' * 120_000 + b'"}'
    letter, headers, size = letter_of(huge)
    assert size <= MAX_LETTER_BYTES and headers["payload_truncated"] == b"1"
    assert huge.decode().startswith(letter.payload or "x") and len(letter.payload or "") > 1000
