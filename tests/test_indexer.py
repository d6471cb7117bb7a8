"""The indexer service on noida's Kafka: batch -> store -> DLQ -> commit, replay, store outages."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from indexer.consumer import (
    STORE_DOWN,
    IndexerOptions,
    commit_offsets,
    dead_letter_message,
    decode,
    latest_per_id,
    run_indexer,
)
from indexer.embedded import EmbeddedStore
from indexer.store import SearchRequest, open_store
from newswire.broker import EmbeddedServer, free_port
from newswire.records import Article, DeadLetter
from newswire.settings import Settings
from newswire.topics import ensure_topics

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

    def __enter__(self) -> IndexerThread:
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
                                                       forwarder: Forwarder) -> None:
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
