"""The rules store (I/O edge): the compacted rules topic, written and read with kafka-python.

Writing = producing the rule (key = rule id) or a tombstone (delete) with ``acks=all`` and
waiting for the broker; reading = consuming the topic from the beginning to its end offsets
and keeping the last value per key. The workers pick changes up from the same topic.
The alerts topic (alert states, key = story id) is read the same way for ``alerts``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pydantic import ValidationError

from newswire.records import utcnow
from newswire.settings import Settings
from newswire.topics import ensure_topics
from processors.alerts.channels import refused_destination
from processors.alerts.matcher import check_rule
from processors.alerts.models import Alert, StoryAlerts
from processors.alerts.rules import Rule, WebhookChannel

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 15.0


class RuleError(ValueError):
    """A rule the user gave cannot be saved (bad query, unknown id); the message says why."""


class RuleStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rules_topic = settings.topic("alert-rules")
        self.alerts_topic = settings.topic("alerts")
        self._producer: KafkaProducer | None = None
        self._topics_checked = False

    # ------------------------------------------------------------ writing

    def _produce(self, key: str, value: bytes | None) -> None:
        if not self._topics_checked:
            ensure_topics(self.settings)
            self._topics_checked = True
        if self._producer is None:
            self._producer = KafkaProducer(
                client_id="newswire-alerts-store", acks="all", retries=5, linger_ms=0,
                **self.settings.kafka.client_config())
        future = self._producer.send(self.rules_topic, key=key.encode(), value=value)
        future.get(timeout=READ_TIMEOUT_S)  # durable before we say "saved"

    def save(self, rule: Rule, *, check_destinations: bool = True) -> Rule:
        """Create or replace a rule (validated first). Returns what was stored.

        ``check_destinations``: refuse webhook URLs on loopback/private/link-local/metadata
        addresses unless ``fetch.allow_private_networks`` (the workers check again at
        delivery); off when a change leaves the channels as they were (pause, resume).
        """
        problem = check_rule(rule)
        if problem:
            raise RuleError(problem)
        if check_destinations:
            self.check_destinations(rule)
        inline = rule.inline_secrets()
        if inline:  # the topic is readable by every consumer: it holds names, not secrets
            raise RuleError(
                f"channel {', '.join(inline)} carries a secret value; put it in the settings "
                "(NEWSWIRE_ALERTS__SECRETS__<NAME>) and give its name (webhook secret_name, "
                "slack url_secret)")
        self._produce(rule.id, rule.to_wire())
        log.info("alert rule saved rule=%s name=%r paused=%s", rule.id, rule.name, rule.paused)
        return rule

    def check_destinations(self, rule: Rule) -> None:
        allow = self.settings.fetch.allow_private_networks
        for channel in rule.channels:
            if isinstance(channel, WebhookChannel):
                why = refused_destination(channel.url, allow)
                if why:
                    raise RuleError(
                        f"webhook {channel.label}: {why}; alerts are not sent to private "
                        "networks unless NEWSWIRE_FETCH__ALLOW_PRIVATE_NETWORKS=true")

    def update(self, id_or_name: str, **changes: Any) -> Rule:
        """Apply changes to a stored rule, keeping ``id`` and ``created``."""
        rule = self.get(id_or_name)
        if rule is None:
            raise RuleError(f"no alert rule {id_or_name!r}")
        data = rule.model_dump(context={"reveal_secrets": True})
        data.update(changes)
        data.update(id=rule.id, created=rule.created, updated=utcnow())
        try:
            new = Rule.model_validate(data)
        except ValidationError as exc:
            raise RuleError(str(exc)) from None
        return self.save(new, check_destinations="channels" in changes)

    def set_paused(self, id_or_name: str, paused: bool) -> Rule:
        return self.update(id_or_name, paused=paused)

    def delete(self, id_or_name: str) -> Rule:
        rule = self.get(id_or_name)
        if rule is None:
            raise RuleError(f"no alert rule {id_or_name!r}")
        self._produce(rule.id, None)  # tombstone: compaction removes the rule
        log.info("alert rule deleted rule=%s", rule.id)
        return rule

    # ------------------------------------------------------------ reading

    def load(self) -> dict[str, Rule]:
        """Every live rule by id (last value per key; tombstones delete)."""
        rules: dict[str, Rule] = {}
        for key, value in _read_topic(self.settings, self.rules_topic):
            if key is None:
                continue
            rid = key.decode(errors="replace")
            if value is None:
                rules.pop(rid, None)
                continue
            try:
                rules[rid] = Rule.from_bytes(value)
            except ValidationError as exc:
                log.warning("unreadable alert rule skipped key=%s error=%s", rid,
                            str(exc).splitlines()[0])
        return rules

    def all_rules(self) -> list[Rule]:
        return sorted(self.load().values(), key=lambda r: (r.created, r.id))

    def get(self, id_or_name: str) -> Rule | None:
        rules = self.load()
        if id_or_name in rules:
            return rules[id_or_name]
        named = [r for r in rules.values() if r.name == id_or_name]
        if len(named) > 1:
            raise RuleError(f"several rules are named {id_or_name!r}; use the id")
        return named[0] if named else None

    def alerts(self, rule_id: str | None = None, limit: int = 100) -> list[Alert]:
        """Alert states (newest first), optionally of one rule."""
        by_story: dict[bytes, StoryAlerts | None] = {}  # key = story id (current layout)
        legacy: dict[bytes, Alert | None] = {}  # key = "rule|story" (older layout)
        for key, value in _read_topic(self.settings, self.alerts_topic):
            if key is None:
                continue
            try:
                if b"|" in key:
                    legacy[key] = Alert.from_bytes(value) if value is not None else None
                else:
                    by_story[key] = StoryAlerts.from_bytes(value) if value is not None else None
            except ValidationError:
                continue
        latest: dict[tuple[str, str], Alert] = {
            (a.rule_id, a.story_id): a for a in legacy.values() if a is not None}
        for rec in by_story.values():  # the current layout wins over an older entry
            if rec is not None:
                latest.update({(a.rule_id, a.story_id): a for a in rec.alerts.values()})
        chosen = [a for a in latest.values() if rule_id is None or a.rule_id == rule_id]
        return sorted(chosen, key=lambda a: a.first_seen, reverse=True)[:limit]

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None

    def __enter__(self) -> RuleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_topic(settings: Settings, topic: str) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(key, value) of every message from the beginning to the end offsets at call time."""
    consumer = KafkaConsumer(
        client_id="newswire-alerts-reader", group_id=None, enable_auto_commit=False,
        consumer_timeout_ms=int(READ_TIMEOUT_S * 1000), **settings.kafka.client_config())
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        remaining = {tp for tp in tps if end[tp] > consumer.position(tp)}
        deadline = utcnow().timestamp() + READ_TIMEOUT_S
        while remaining:
            if utcnow().timestamp() > deadline:
                raise TimeoutError(f"reading {topic} did not reach its end in {READ_TIMEOUT_S}s")
            batch = consumer.poll(timeout_ms=500)
            for tp, messages in batch.items():
                for msg in messages:
                    if msg.offset < end[tp]:
                        yield msg.key, msg.value
            remaining = {tp for tp in remaining if consumer.position(tp) < end[tp]}
    finally:
        consumer.close()
