"""The Kafka topics, declared in one place and created idempotently at start."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from newswire.settings import Settings

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


@dataclass(frozen=True)
class TopicSpec:
    name: str  # without prefix
    partitions: int | None  # None = settings.kafka.partitions
    config: dict[str, str] = field(default_factory=dict)
    doc: str = ""


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("entries", None, {"retention.ms": str(7 * DAY_MS)},
              "feed entries from the poller, key = article key"),
    TopicSpec("articles", None, {"retention.ms": str(7 * DAY_MS)},
              "enriched articles (clean text + tags), key = article key"),
    TopicSpec("alert-rules", 1, {"cleanup.policy": "compact"},
              "saved searches that alert, key = rule id; tombstone deletes"),
    TopicSpec("alerts", 1, {"cleanup.policy": "compact"},
              "alerts sent, key = rule id + story id"),
    TopicSpec("dlq.poll", 1, {"retention.ms": str(30 * DAY_MS)}, "dead letters of the poller"),
    TopicSpec("dlq.process", 1, {"retention.ms": str(30 * DAY_MS)},
              "dead letters of fetch/clean/tag"),
    TopicSpec("dlq.index", 1, {"retention.ms": str(30 * DAY_MS)}, "documents the store rejected"),
    TopicSpec("dlq.alert", 1, {"retention.ms": str(30 * DAY_MS)}, "alerts that could not be delivered"),
)


def ensure_topics(settings: Settings) -> list[str]:
    """Create every declared topic that does not exist yet; return the names created."""
    admin = KafkaAdminClient(client_id="newswire-admin", **settings.kafka.client_config())
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(
                settings.topic(spec.name),
                spec.partitions or settings.kafka.partitions,
                settings.kafka.replication_factor,
                topic_configs=spec.config,
            )
            for spec in TOPICS
            if settings.topic(spec.name) not in existing
        ]
        created = []
        for topic in wanted:  # one at a time: an "already exists" race must not hide the others
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("topics created names=%s", ",".join(created))
        return created
    finally:
        admin.close()
