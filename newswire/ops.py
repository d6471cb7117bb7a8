"""Operator views of the running pipeline over Kafka: lag per stage and dead letters."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from newswire.settings import Settings

DLQ_STAGES = ("poll", "process", "index", "alert")


def stage_groups(settings: Settings) -> dict[str, tuple[str, str]]:
    """Stage name -> (consumer group, topic it consumes)."""
    prefix = settings.kafka.topic_prefix
    return {
        "processor": (f"{prefix}-processor", settings.topic("entries")),
        "indexer": (f"{prefix}-indexer", settings.topic("articles")),
    }


def _end_offsets(consumer: KafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    return consumer.end_offsets(tps) if tps else {}


def _begin_offsets(consumer: KafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    return consumer.beginning_offsets(tps) if tps else {}


def pipeline_status(settings: Settings) -> dict[str, Any]:
    """Messages per topic, consumer lag per stage and dead letters per stage."""
    cfg = settings.kafka.client_config()
    admin = KafkaAdminClient(client_id="newswire-status", **cfg)
    consumer = KafkaConsumer(client_id="newswire-status", **cfg)
    try:
        stages: dict[str, Any] = {}
        for stage, (group, topic) in stage_groups(settings).items():
            ends = _end_offsets(consumer, topic)
            try:
                committed = admin.list_group_offsets({group: list(ends)}).get(group, {})
            except KafkaError:  # a group that never committed has no offsets yet
                committed = {}
            lag = sum(max(0, end - (committed[tp].offset if tp in committed and
                                    committed[tp].offset >= 0 else 0))
                      for tp, end in ends.items())
            stages[stage] = {"group": group, "topic": topic, "produced": sum(ends.values()),
                             "lag": lag}
        dead = {}
        for stage in DLQ_STAGES:
            topic = settings.topic(f"dlq.{stage}")
            begins, ends = _begin_offsets(consumer, topic), _end_offsets(consumer, topic)
            dead[stage] = sum(ends.values()) - sum(begins.get(tp, 0) for tp in ends)
        return {"stages": stages, "dead_letters": dead}
    finally:
        consumer.close()
        admin.close()


@dataclass(frozen=True)
class StoredLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: dict[str, str]
    value: dict[str, Any]


def read_dead_letters(settings: Settings, stage: str, limit: int = 1000) -> Iterator[StoredLetter]:
    """Dead letters of one stage, oldest first, without joining any consumer group."""
    topic = settings.topic(f"dlq.{stage}")
    consumer = KafkaConsumer(client_id="newswire-dlq", enable_auto_commit=False,
                             consumer_timeout_ms=2000, **settings.kafka.client_config())
    try:
        ends = _end_offsets(consumer, topic)
        if not any(ends.values()):
            return
        consumer.assign(list(ends))
        consumer.seek_to_beginning()
        seen = 0
        for message in consumer:  # stops by itself after consumer_timeout_ms of silence
            try:
                value = json.loads(message.value)
            except ValueError:
                value = {"payload": message.value.decode("utf-8", "replace")}
            yield StoredLetter(message.topic, message.partition, message.offset, message.key,
                               {k: v.decode("utf-8", "replace") for k, v in message.headers or []},
                               value)
            seen += 1
            if seen >= limit or all(consumer.position(tp) >= end for tp, end in ends.items()):
                return
    finally:
        consumer.close()


def reason_counts(letters: Iterator[StoredLetter]) -> Counter[str]:
    return Counter(letter.value.get("reason", letter.headers.get("reason", "?")) for letter in letters)


def replay(settings: Settings, stage: str, *, reason: str | None = None) -> int:
    """Send dead letters' original payloads back to their original topics; return how many.

    Keys are kept, so a replay is an idempotent upsert downstream.
    """
    producer = KafkaProducer(client_id="newswire-dlq-replay", acks="all",
                             **settings.kafka.client_config())
    sent = 0
    try:
        for letter in read_dead_letters(settings, stage, limit=1_000_000):
            if reason and not str(letter.value.get("reason", "")).startswith(reason):
                continue
            topic = letter.headers.get("original_topic") or letter.value.get("topic")
            payload = letter.value.get("payload")
            if not topic or payload is None:
                continue
            producer.send(topic, key=letter.key, value=payload.encode())
            sent += 1
        producer.flush()
    finally:
        producer.close()
    return sent
