"""Operator views of the running pipeline over Kafka: lag per stage and dead letters."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import click
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from newswire.settings import Settings

DLQ_STAGES = ("poll", "process", "index", "alert")
RATE_WINDOW = 900.0  # seconds: "per minute" figures are averaged over the last 15 minutes
# A status look should fail in seconds, not after kafka-python's 30 s bootstrap default.
BOOTSTRAP_TIMEOUT_MS = 8000
# A replayed value is at most what the topic took in the first place (Kafka's default
# max.message.bytes, ~1 MB), which is a little more than the producer's own default limit.
MAX_REPLAY_BYTES = 1_100_000


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
        for seen, message in enumerate(consumer, 1):  # stops after consumer_timeout_ms of silence
            try:
                value = json.loads(message.value)
            except ValueError:
                value = {"payload": message.value.decode("utf-8", "replace")}
            yield StoredLetter(message.topic, message.partition, message.offset, message.key,
                               {k: v.decode("utf-8", "replace") for k, v in message.headers or []},
                               value)
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
    unreplayable: int  # letters refused; why, by reason, in ``refused``
    from_original: int = 0  # of ``sent``: cut payloads re-read from the original topic
    refused: dict[str, int] = field(default_factory=dict)


# Why a letter cannot be sent back (ReplayResult.refused keys).
NO_TOPIC = "no_original_topic"
NOT_JSON = "payload_not_json"
CUT_ORIGINAL_GONE = "payload_cut_original_unavailable"


def letter_origin(letter: StoredLetter) -> tuple[str, int, int] | None:
    """(topic, partition, offset) of the original message, when the letter names them."""
    topic = letter.headers.get("original_topic") or letter.value.get("topic")
    partition = letter.headers.get("original_partition", letter.value.get("partition"))
    offset = letter.headers.get("original_offset", letter.value.get("offset"))
    try:
        return (str(topic), int(partition), int(offset)) if topic else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def payload_cut(letter: StoredLetter) -> bool:
    """Whether the stage kept only the head of the original value."""
    if letter.headers.get("payload_truncated") == "1":
        return True
    payload = letter.value.get("payload")
    size = letter.headers.get("payload_bytes", "")
    return isinstance(payload, str) and size.isdigit() and \
        len(payload.encode("utf-8", "replace")) < int(size)


def _is_json(value: bytes | str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def replayable(letter: StoredLetter) -> tuple[str, bytes] | None:
    """(topic, value) to send back from the letter alone, or None when the letter cannot be
    replayed faithfully from what it holds.

    A stage may keep only the head of a big value; a cut one is no longer the JSON record
    it was, and sending it back would only make a new dead letter (``replay`` then re-reads
    the original instead).
    """
    stage = letter.headers.get("stage") or letter.value.get("stage")
    if stage in NOT_REPLAYABLE:  # its "original topic" is a feed URL, not a topic
        return None
    topic = letter.headers.get("original_topic") or letter.value.get("topic")
    payload = letter.value.get("payload")
    if not topic or not isinstance(payload, str) or payload_cut(letter):
        return None
    if not _is_json(payload):
        return None
    return str(topic), payload.encode()


class OriginalReader:
    """Reads single messages back by (topic, partition, offset), without a consumer group:
    the source of a dead letter whose payload was cut, while the topic still retains it."""

    def __init__(self, settings: Settings, wait_ms: int = 5000) -> None:
        self.consumer = KafkaConsumer(client_id="newswire-dlq-original",
                                      enable_auto_commit=False,
                                      bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
                                      **settings.kafka.client_config())
        self.wait_ms = wait_ms

    def get(self, topic: str, partition: int, offset: int) -> tuple[bytes | None, bytes] | None:
        """(key, value) of that message, or None when it is gone (retention) or unreadable."""
        tp = TopicPartition(topic, partition)
        try:
            if partition not in (self.consumer.partitions_for_topic(topic) or set()):
                return None
            begin = self.consumer.beginning_offsets([tp])[tp]
            end = self.consumer.end_offsets([tp])[tp]
            if not begin <= offset < end:
                return None
            self.consumer.assign([tp])
            self.consumer.seek(tp, offset)
            deadline = time.monotonic() + self.wait_ms / 1000
            while time.monotonic() < deadline:
                for message in self.consumer.poll(timeout_ms=200, max_records=1).get(tp, []):
                    if message.offset == offset and message.value is not None:
                        return message.key, message.value
                    return None  # compacted away: the next message is another one
        except KafkaError:
            return None
        return None

    def close(self) -> None:
        self.consumer.close()


def replay_target(letter: StoredLetter, originals: OriginalReader,
                  ) -> tuple[str, bytes, bool] | str:
    """(topic, value, re-read from the original) to send back, or why not."""
    direct = replayable(letter)
    if direct is not None:
        return direct[0], direct[1], False
    if not (letter.headers.get("original_topic") or letter.value.get("topic")):
        return NO_TOPIC
    if not payload_cut(letter) and not _cut_json(letter):
        return NOT_JSON  # whole, and not a record: sending it back changes nothing
    origin = letter_origin(letter)
    found = originals.get(*origin) if origin is not None else None
    if found is None:
        return CUT_ORIGINAL_GONE
    key, value = found
    if letter.key is not None and key != letter.key:
        return CUT_ORIGINAL_GONE  # the offset now holds another message
    if not _is_json(value):
        return NOT_JSON
    return origin[0], value, True


def _cut_json(letter: StoredLetter) -> bool:
    """A payload that is not JSON but may be the head of some (letters written before stages
    said they cut): re-reading the original is worth a try."""
    payload = letter.value.get("payload")
    return isinstance(payload, str) and payload.lstrip().startswith(("{", "["))


def replay(settings: Settings, stage: str, *, reason: str | None = None) -> ReplayResult:
    """Send dead letters' original values back to their original topics.

    Keys are kept, so a replay is an idempotent upsert downstream. The letters stay in the
    dead-letter topic (it is a log): a second replay sends them again, harmlessly. A letter
    whose payload was cut is sent from the original message while its topic retains it; a
    letter that can be sent from neither is refused and counted by why.
    Raises :class:`NotReplayable` for a stage whose letters hold no message (``poll``).
    """
    if stage in NOT_REPLAYABLE:
        raise NotReplayable(f"cannot replay dlq.{stage}: {NOT_REPLAYABLE[stage]}")
    producer = KafkaProducer(client_id="newswire-dlq-replay", acks="all",
                             max_request_size=MAX_REPLAY_BYTES,
                             **settings.kafka.client_config())
    originals = OriginalReader(settings)
    sent = recovered = 0
    refused: Counter[str] = Counter()
    try:
        for letter in read_dead_letters(settings, stage, limit=1_000_000):
            if reason and not str(letter.value.get("reason", "")).startswith(reason):
                continue
            target = replay_target(letter, originals)
            if isinstance(target, str):
                refused[target] += 1
                continue
            topic, value, from_original = target
            producer.send(topic, key=letter.key, value=value)
            sent += 1
            recovered += from_original
        producer.flush()
    finally:
        producer.close()
        originals.close()
    return ReplayResult(sent, sum(refused.values()), recovered, dict(refused))
