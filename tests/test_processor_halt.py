"""The process stage halts on a flood of bad entries instead of dead-lettering them all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from newswire.settings import Settings, child_env
from newswire.topics import ensure_topics

NEWSWIRE = str(Path(sys.executable).with_name("newswire"))


def _count(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(**settings.kafka.client_config())
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def _committed(settings: Settings) -> int:
    topic = settings.topic("entries")
    admin = KafkaAdminClient(**settings.kafka.client_config())
    consumer = KafkaConsumer(**settings.kafka.client_config())
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        group = f"{settings.kafka.topic_prefix}-processor"
        try:
            offsets = admin.list_consumer_group_offsets(group, partitions=tps)
        except Exception:  # noqa: BLE001 - a group that never committed
            return 0
        return sum(max(o.offset, 0) for o in offsets.values())
    finally:
        consumer.close()
        admin.close()


@pytest.mark.integration
def test_process_halts_with_exit_code_3_and_commits_nothing_past_the_flood(
        kafka_settings: Settings) -> None:
    ensure_topics(kafka_settings)
    n = 300
    producer = KafkaProducer(acks="all", **kafka_settings.kafka.client_config())
    for i in range(n):
        producer.send(kafka_settings.topic("entries"), key=f"bad-{i}".encode(),
                      value=b"\x00not a feed entry")
    producer.flush(30)
    producer.close()
    env = {**os.environ, **child_env(kafka_settings), "NEWSWIRE_LOG_LEVEL": "INFO",
           "NEWSWIRE_PROCESS__WORKERS": "1",
           "NEWSWIRE_DEAD_LETTERS__WINDOW": "100", "NEWSWIRE_DEAD_LETTERS__MIN_RECORDS": "50"}
    proc = subprocess.run([NEWSWIRE, "process"], env=env, capture_output=True, timeout=180)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 3, err[-3000:]
    assert "processor halted: too many dead letters stage=process" in err
    assert "last_reason=bad_record" in err
    # A few dead letters went out before the limit was crossed; the flood did not.
    dead = _count(kafka_settings, kafka_settings.topic("dlq.process"))
    assert 0 < dead <= 60
    # Nothing past the halt was committed: the rest waits in the topic for a fixed stage.
    assert _committed(kafka_settings) <= dead
