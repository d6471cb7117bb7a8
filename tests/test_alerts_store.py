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
            channels=(WebhookChannel(url="http://127.0.0.1:9/hook", secret="hush-1"),
                      SlackChannel(url="http://127.0.0.1:9/services/T/B/tok")),
            throttle=60))
        sudan = store.save(Rule(name="sudan", query="Sudan AND (El Fasher OR Darfur)"))

    with RuleStore(kafka_settings) as store:  # a fresh reader sees what was written
        rules = store.all_rules()
        assert [r.id for r in rules] == [iran.id, sudan.id]
        back = store.get(iran.id)
        assert back == iran  # secrets included: the topic is the store
        hook = back.channels[0]
        assert isinstance(hook, WebhookChannel) and hook.secret is not None
        assert hook.secret.get_secret_value() == "hush-1"
        assert store.get("sudan") == sudan  # by name too

        paused = store.set_paused("sudan", True)
        assert paused.paused and paused.created == sudan.created and paused.updated > sudan.updated
        assert store.get(sudan.id).paused  # type: ignore[union-attr]
        assert not store.set_paused(sudan.id, False).paused

        edited = store.update(iran.id, query="Iran AND IRGC")
        assert edited.query == "Iran AND IRGC"
        assert edited.channels[0].secret.get_secret_value() == "hush-1"  # type: ignore[union-attr]

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
