import pytest
from kafka import KafkaAdminClient

from newswire.topics import TOPICS, ensure_topics

pytestmark = pytest.mark.integration


def test_topics_created_idempotently(kafka_settings):
    created = ensure_topics(kafka_settings)
    assert sorted(created) == sorted(kafka_settings.topic(t.name) for t in TOPICS)
    assert ensure_topics(kafka_settings) == []  # second start creates nothing
    admin = KafkaAdminClient(**kafka_settings.kafka.client_config())
    try:
        meta = {t["name"]: t for t in admin.describe_topics([kafka_settings.topic("entries")])}
        assert len(meta[kafka_settings.topic("entries")]["partitions"]) == 2
    finally:
        admin.close()
