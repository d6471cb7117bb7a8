"""The rules store round trip on the real (noida) compacted rules topic."""

from __future__ import annotations

import pytest

from newswire.settings import Settings
from processors.alerts.rules import Rule, RuleFilters, SlackChannel, WebhookChannel
from processors.alerts.store import RuleError, RuleStore

pytestmark = pytest.mark.integration


def test_rules_round_trip_through_the_topic(kafka_settings: Settings) -> None:
    with RuleStore(kafka_settings) as store:
        assert store.all_rules() == []
        iran = store.save(Rule(
            name="iran proxies", query="Iran AND (militia OR IRGC)",
            filters=RuleFilters(conflicts=("us-iran-proxy",), min_killed=1),
            channels=(WebhookChannel(url="http://127.0.0.1:9/hook", secret_name="ops"),
                      SlackChannel(url_secret="slack_desk")),
            throttle=60))
        sudan = store.save(Rule(name="sudan", query="Sudan AND (El Fasher OR Darfur)"))

    with RuleStore(kafka_settings) as store:  # a fresh reader sees what was written
        rules = store.all_rules()
        assert [r.id for r in rules] == [iran.id, sudan.id]
        back = store.get(iran.id)
        assert back == iran
        hook = back.channels[0]
        assert isinstance(hook, WebhookChannel) and hook.secret_name == "ops"
        assert store.get("sudan") == sudan  # by name too

        paused = store.set_paused("sudan", True)
        assert paused.paused and paused.created == sudan.created and paused.updated > sudan.updated
        assert store.get(sudan.id).paused  # type: ignore[union-attr]
        assert not store.set_paused(sudan.id, False).paused

        edited = store.update(iran.id, query="Iran AND IRGC")
        assert edited.query == "Iran AND IRGC"
        assert edited.channels == iran.channels

        store.delete(iran.id)
        assert [r.id for r in store.all_rules()] == [sudan.id]
        with pytest.raises(RuleError):
            store.delete(iran.id)


def test_a_rule_with_a_bad_query_is_refused_before_it_is_written(
        kafka_settings: Settings) -> None:
    with RuleStore(kafka_settings) as store:
        with pytest.raises(RuleError, match="fuzzy"):
            store.save(Rule(name="bad", query="strike~2"))
        assert store.all_rules() == []


def test_secret_values_are_refused_and_legacy_rules_still_read(kafka_settings: Settings) -> None:
    inline = Rule(name="inline", query="x", channels=(
        WebhookChannel(url="http://127.0.0.1:9/hook", secret="hush-1"),
        SlackChannel(url="http://127.0.0.1:9/services/T/B/tok")))
    with RuleStore(kafka_settings) as store:
        with pytest.raises(RuleError, match="NEWSWIRE_ALERTS__SECRETS__") as refused:
            store.save(inline)
        assert "webhook:127.0.0.1:9" in str(refused.value) and "hush-1" not in str(refused.value)
        assert store.all_rules() == []
        # a rule written before secrets moved to the settings still loads (for the workers)
        store._produce(inline.id, inline.to_wire())
        [legacy] = store.all_rules()
        hook = legacy.channels[0]
        assert isinstance(hook, WebhookChannel) and hook.secret is not None
        assert hook.secret.get_secret_value() == "hush-1"
        assert "hush-1" not in str(legacy.public())


def test_alert_history_reads_story_records_and_the_older_per_rule_layout(
        kafka_settings: Settings) -> None:
    from datetime import UTC, datetime, timedelta

    from kafka import KafkaProducer

    from newswire.topics import ensure_topics
    from processors.alerts.models import Alert, ArticleRef, StoryAlerts

    t0 = datetime(2026, 3, 1, tzinfo=UTC)

    def alert(rule: str, story: str, status: str, minutes: int) -> Alert:
        at = t0 + timedelta(minutes=minutes)
        return Alert(id=f"{rule}-{story}", rule_id=rule, story_id=story, status=status,  # type: ignore[arg-type]
                     first=ArticleRef(id=story, url=f"https://x.org/{story}", ingested=at),
                     first_seen=at)

    ensure_topics(kafka_settings)
    producer = KafkaProducer(**kafka_settings.kafka.client_config(), acks="all")
    topic = kafka_settings.topic("alerts")
    old = alert("r1", "s1", "sending", 1)  # older layout, superseded below
    producer.send(topic, key=b"r1|s1", value=old.to_bytes())
    producer.send(topic, key=b"r1|s0", value=alert("r1", "s0", "sent", 0).to_bytes())
    record = StoryAlerts(story_id="s1", alerts={"r1": alert("r1", "s1", "sent", 1),
                                                "r2": alert("r2", "s1", "queued", 1)})
    producer.send(topic, key=b"s1", value=record.to_bytes())
    producer.send(topic, key=b"s2", value=StoryAlerts(
        story_id="s2", alerts={"r1": alert("r1", "s2", "failed", 2)}).to_bytes())
    producer.flush(10)
    producer.close()

    with RuleStore(kafka_settings) as store:
        mine = store.alerts("r1")
        assert [(a.story_id, a.status) for a in mine] == [
            ("s2", "failed"), ("s1", "sent"), ("s0", "sent")]  # newest first; new layout wins
        assert [(a.rule_id, a.story_id) for a in store.alerts("r2")] == [("r2", "s1")]
        assert len(store.alerts()) == 4 and len(store.alerts("r1", limit=1)) == 1
