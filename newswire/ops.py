"""Operator views of the running pipeline over Kafka: lag per stage and dead letters."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from newswire.settings import Settings

DLQ_STAGES = ("poll", "process", "index", "alert")
RATE_WINDOW = 900.0  # seconds: "per minute" figures are averaged over the last 15 minutes
# A status look should fail in seconds, not after kafka-python's 30 s bootstrap default.
BOOTSTRAP_TIMEOUT_MS = 8000


def stage_groups(settings: Settings) -> dict[str, tuple[str, str]]:
    """Stage name -> (consumer group, topic it consumes)."""
    prefix = settings.kafka.topic_prefix
    return {
        "processor": (f"{prefix}-processor", settings.topic("entries")),
        "indexer": (f"{prefix}-indexer", settings.topic("articles")),
        # The alert agents run on the processor's Faust app, so they share its group.
        "alerts": (f"{prefix}-processor", settings.topic("articles")),
    }


def _end_offsets(consumer: KafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    return consumer.end_offsets(tps) if tps else {}


def _begin_offsets(consumer: KafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    return consumer.beginning_offsets(tps) if tps else {}


def _recent(consumer: KafkaConsumer, ends: dict[TopicPartition, int], since: float) -> int | None:
    """Messages appended to these partitions since ``since`` (epoch s), by their timestamps;
    None when the broker cannot say."""
    if not ends:
        return 0
    try:
        found = consumer.offsets_for_times({tp: int(since * 1000) for tp in ends})
    except (KafkaError, ValueError):
        return None
    # No message at or after the time: nothing recent in that partition.
    return sum(end - (found[tp].offset if found.get(tp) is not None else end)
               for tp, end in ends.items())


def pipeline_status(settings: Settings, now: float | None = None) -> dict[str, Any]:
    """Messages per topic, consumer lag and recent rate per stage, dead letters per stage."""
    now = time.time() if now is None else now
    cfg = settings.kafka.client_config()
    admin = KafkaAdminClient(client_id="newswire-status", bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
                             **cfg)
    # No group: this consumer only asks for offsets (and would warn about auto-commit).
    consumer = KafkaConsumer(client_id="newswire-status", enable_auto_commit=False,
                             bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS, **cfg)
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
            recent = _recent(consumer, ends, now - RATE_WINDOW)
            stages[stage] = {"group": group, "topic": topic, "produced": sum(ends.values()),
                             "lag": lag, "committed": bool(committed),
                             "per_minute": None if recent is None
                             else round(recent / (RATE_WINDOW / 60), 2)}
        return {"stages": stages, "dead_letters": _dead_counts(consumer, settings)}
    finally:
        consumer.close()
        admin.close()


def _dead_counts(consumer: KafkaConsumer, settings: Settings) -> dict[str, int]:
    dead = {}
    for stage in DLQ_STAGES:
        topic = settings.topic(f"dlq.{stage}")
        begins, ends = _begin_offsets(consumer, topic), _end_offsets(consumer, topic)
        dead[stage] = sum(ends.values()) - sum(begins.get(tp, 0) for tp in ends)
    return dead


def dead_letter_counts(settings: Settings) -> dict[str, int]:
    """Dead letters kept per stage (all of them, not a sample)."""
    consumer = KafkaConsumer(client_id="newswire-dlq", enable_auto_commit=False,
                             bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
                             **settings.kafka.client_config())
    try:
        return _dead_counts(consumer, settings)
    finally:
        consumer.close()


@dataclass(frozen=True)
class StoredLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: dict[str, str]
    value: dict[str, Any]


def read_dead_letters(settings: Settings, stage: str, limit: int = 1000, *,
                      newest: bool = False) -> Iterator[StoredLetter]:
    """Dead letters of one stage, oldest first, without joining any consumer group.

    ``newest``: start ``limit`` letters before the end of each partition instead of at the
    beginning (the recent ones, for a summary of a long dead-letter topic).
    """
    topic = settings.topic(f"dlq.{stage}")
    consumer = KafkaConsumer(client_id="newswire-dlq", enable_auto_commit=False,
                             consumer_timeout_ms=2000, bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
                             **settings.kafka.client_config())
    try:
        ends = _end_offsets(consumer, topic)
        begins = _begin_offsets(consumer, topic)
        if all(end <= begins.get(tp, 0) for tp, end in ends.items()):
            return  # empty, or every letter past retention: nothing would ever arrive
        consumer.assign(list(ends))
        for tp, end in ends.items():
            start = begins.get(tp, 0)
            consumer.seek(tp, max(start, end - limit) if newest else start)
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


# Stages whose dead letters hold no message to send back, and why.
NOT_REPLAYABLE = {
    "poll": "poll dead letters are feed entries that never became records (no link, a "
            "non-http or bad link): there is nothing to send back. Fix the feed, or read them "
            "with `newswire dlq show poll`.",
}


class NotReplayable(click.ClickException):
    """A replay that makes no sense (a click error, so the CLI says why and exits 1)."""


@dataclass(frozen=True)
class ReplayResult:
    sent: int
    unreplayable: int  # no original topic, or a payload that was cut or is not JSON


def replayable(letter: StoredLetter) -> tuple[str, bytes] | None:
    """(topic, value) to send back, or None when the letter cannot be replayed faithfully.

    Stages keep at most a few kB of the original value; a cut one is no longer the JSON
    record it was, and sending it back would only make a new dead letter.
    """
    stage = letter.headers.get("stage") or letter.value.get("stage")
    if stage in NOT_REPLAYABLE:  # its "original topic" is a feed URL, not a topic
        return None
    topic = letter.headers.get("original_topic") or letter.value.get("topic")
    payload = letter.value.get("payload")
    if not topic or not isinstance(payload, str):
        return None
    try:
        json.loads(payload)
    except ValueError:
        return None
    return str(topic), payload.encode()


def replay(settings: Settings, stage: str, *, reason: str | None = None) -> ReplayResult:
    """Send dead letters' original payloads back to their original topics.

    Keys are kept, so a replay is an idempotent upsert downstream. The letters stay in the
    dead-letter topic (it is a log): a second replay sends them again, harmlessly.
    Raises :class:`NotReplayable` for a stage whose letters hold no message (``poll``).
    """
    if stage in NOT_REPLAYABLE:
        raise NotReplayable(f"cannot replay dlq.{stage}: {NOT_REPLAYABLE[stage]}")
    producer = KafkaProducer(client_id="newswire-dlq-replay", acks="all",
                             **settings.kafka.client_config())
    sent = skipped = 0
    try:
        for letter in read_dead_letters(settings, stage, limit=1_000_000):
            if reason and not str(letter.value.get("reason", "")).startswith(reason):
                continue
            target = replayable(letter)
            if target is None:
                skipped += 1
                continue
            producer.send(target[0], key=letter.key, value=target[1])
            sent += 1
        producer.flush()
    finally:
        producer.close()
    return ReplayResult(sent, skipped)
