"""`newswire status` and `newswire dlq` against the real broker."""

import json

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, KafkaProducer

from newswire.cli import main
from newswire.records import DeadLetter
from newswire.topics import ensure_topics

pytestmark = pytest.mark.integration


def cli(settings, *args):
    env = {"NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
           "NEWSWIRE_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix}
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_dead_letters_listed_shown_and_replayed(kafka_settings):
    ensure_topics(kafka_settings)
    producer = KafkaProducer(**kafka_settings.kafka.client_config())
    entries = kafka_settings.topic("entries")
    for i, reason in enumerate(["fetch:http_404", "fetch:http_404", "clean:binary_content"]):
        letter = DeadLetter(stage="process", reason=reason, key=f"k{i}", topic=entries,
                            payload=json.dumps({"n": i}))
        producer.send(kafka_settings.topic("dlq.process"), key=f"k{i}".encode(),
                      value=letter.to_bytes(),
                      headers=[("original_topic", entries.encode()), ("reason", reason.encode())])
    producer.flush()
    producer.close()

    listed = cli(kafka_settings, "dlq", "list")
    assert "process: 3" in listed
    assert "2  fetch:http_404" in listed and "1  clean:binary_content" in listed

    shown = [json.loads(line) for line in cli(kafka_settings, "dlq", "show", "process").splitlines()]
    assert [s["reason"] for s in shown] == ["fetch:http_404", "fetch:http_404", "clean:binary_content"]
    assert shown[0]["headers"]["original_topic"] == entries

    assert "replayed 2 message(s)" in cli(kafka_settings, "dlq", "replay", "process",
                                          "--reason", "fetch:")
    consumer = KafkaConsumer(entries, auto_offset_reset="earliest", consumer_timeout_ms=3000,
                             **kafka_settings.kafka.client_config())
    replayed = [(m.key, json.loads(m.value)) for m in consumer]
    consumer.close()
    assert sorted(replayed) == [(b"k0", {"n": 0}), (b"k1", {"n": 1})]

    status = json.loads(cli(kafka_settings, "status", "--json"))
    assert status["dead_letters"]["process"] == 3
    assert status["stages"]["processor"]["produced"] == 2
    assert status["stages"]["processor"]["lag"] == 2  # nobody consumed them yet
