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


def test_topics_command_creates_then_reports_existing(kafka_settings):
    from click.testing import CliRunner

    from newswire.cli import main

    env = {"NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.kafka.bootstrap_servers,
           "NEWSWIRE_KAFKA__TOPIC_PREFIX": kafka_settings.kafka.topic_prefix,
           "NEWSWIRE_DATA_DIR": str(kafka_settings.data_dir)}

    def states() -> dict[str, str]:
        result = CliRunner().invoke(main, ["topics"], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return {line.split("\t")[0]: line.split("\t")[-1] for line in result.output.splitlines()}

    first = states()
    assert set(first) == {kafka_settings.topic(t.name) for t in TOPICS}
    assert set(first.values()) == {"created"}
    assert set(states().values()) == {"exists"}
