"""`newswire reprocess` of a stored page whose story already alerted sends nothing again:
reprocess keeps the article's id, story id and ingest time, so the alert worker sees a replay."""

from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner

from newswire.cli import main
from newswire.keys import url_key
from newswire.records import FeedEntry, utcnow
from newswire.settings import Settings
from processors.alerts.rules import Rule, RuleFilters, WebhookChannel
from processors.alerts.store import RuleStore
from processors.pagestore import PageStore
from processors.reprocess import pages_path
from tests import test_alerts_faust
from tests.conftest import shared_path
from tests.test_alerts_channels import Receiver
from tests.test_alerts_faust import Worker, send_articles, story

pytestmark = pytest.mark.integration
receiver, worker = test_alerts_faust.receiver, test_alerts_faust.worker  # the same fixtures


def reprocess(settings: Settings) -> None:
    env = {"NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
           "NEWSWIRE_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix}
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "reprocess"],
                                env=env, catch_exceptions=False)
    assert result.exit_code == 0 and "1 articles published" in result.output, result.output


def test_reprocess_of_an_alerted_story_sends_nothing_again(
        kafka_settings: Settings, receiver: Receiver, worker: Worker) -> None:
    root = shared_path("extraction-dev", "fundus-evaluation")
    url = json.loads((root / "ground_truth.json").read_text())["APNews_0.html.gz"]["url"]
    host = url.split("/")[2]
    with RuleStore(kafka_settings) as store:
        rule = store.save(Rule(name="ap", query="", filters=RuleFilters(sources=(host,)),
                               channels=(WebhookChannel(url=receiver.url + "/hook"),)))
        sentinel = store.save(Rule(name="sentinel", query="zanzibar",
                                   channels=(WebhookChannel(url=receiver.url + "/sentinel"),)))
    worker.wait_rule(rule.id)
    worker.wait_rule(sentinel.id)

    # the page as the processor archived it when it came in (after the rule was created)
    entry = FeedEntry(key=url_key(url), url=url, link=url, title="AP story",
                      feed="https://example.com/rss", source=host, published=utcnow())
    pages = PageStore(pages_path(kafka_settings))
    pages.put(entry.key, url, utcnow(), "text/html",
              gzip.decompress((root / "html" / "APNews_0.html.gz").read_bytes()),
              entry.model_dump_json())
    pages.close()

    reprocess(kafka_settings)  # first publication: the story alerts
    worker.wait(lambda: receiver.hits("/hook"), "the story's alert")
    reprocess(kafka_settings)  # after an upgrade: the same article again
    send_articles(kafka_settings, story("zanzibar-1", "Zanzibar"))
    worker.wait(lambda: receiver.hits("/sentinel"), "the sentinel (all before it decided)")
    assert len(receiver.hits("/hook")) == 1
    with RuleStore(kafka_settings) as store:
        [alert] = store.alerts(rule.id)
    assert alert.status == "sent" and alert.also_reported_by == ()  # a replay, not a copy
    assert "outcome=replay" in worker.read_text()
