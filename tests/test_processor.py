"""The Faust processor worker as a real process on the real broker.

Entries in, enriched articles out; a 404, a binary body and a garbage record each become a
dead letter with its reason, and the good entry still comes through.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from newswire.keys import canonical_url, url_key
from newswire.records import Article, FeedEntry
from newswire.settings import Settings, child_env
from newswire.topics import ensure_topics
from tests.world import World

pytestmark = pytest.mark.integration


def entry(world: World, path: str, title: str) -> FeedEntry:
    link = f"{world.base}{path}"
    return FeedEntry(key=url_key(link), url=canonical_url(link), link=link, title=title,
                     summary=title, feed=f"{world.base}/feed.xml", source="127.0.0.1")


def drain(settings: Settings, topic: str, want: int, timeout: float = 90) -> list:
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=1000,
                             **settings.kafka.client_config())
    got: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < want and time.monotonic() < deadline:
            got.extend(consumer)
    finally:
        consumer.close()
    return got


def test_worker_enriches_good_entries_and_dead_letters_bad_ones(kafka_settings, seed_story,
                                                                 tmp_path: Path) -> None:
    ensure_topics(kafka_settings)
    with World(seed_story) as world:
        good = entry(world, "/world/us-strikes-syria?utm_source=x", "US strikes in Syria")
        gone = entry(world, "/world/gone", "gone")
        pdf = entry(world, "/files/report.pdf", "pdf")
        producer = KafkaProducer(**kafka_settings.kafka.client_config())
        for e in (good, gone, pdf):
            producer.send(kafka_settings.topic("entries"), key=e.key.encode(), value=e.to_bytes())
        producer.send(kafka_settings.topic("entries"), key=b"junk", value=b"\x00not json")
        producer.flush()
        producer.close()

        log = tmp_path / "worker.log"
        env = {**os.environ, **child_env(kafka_settings), "NEWSWIRE_PROCESS__WORKERS": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "newswire", "process"], env=env,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            articles = drain(kafka_settings, kafka_settings.topic("articles"), 2)
            letters = drain(kafka_settings, kafka_settings.topic("dlq.process"), 2)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail("worker did not stop within 10 s of SIGTERM:\n" + log.read_text()[-3000:])

    by_key = {m.key: Article.from_bytes(m.value) for m in articles}
    assert set(by_key) == {good.key.encode(), pdf.key.encode()}, log.read_text()[-4000:]
    # a PDF is not a story page: the feed's summary stands in, flagged, not dropped
    fallback = by_key[pdf.key.encode()]
    assert fallback.partial and "summary_fallback" in fallback.flags and fallback.text == "pdf"
    article = by_key[good.key.encode()]
    assert article.id == good.key and not article.partial
    assert article.url == f"{world.base}/world/us-strikes-syria"
    assert "21 American troops" in article.text and "Most read story" not in article.text
    assert article.conflicts and article.conflicts[0].id == "us-iran-proxy"
    assert {"US", "SY", "IQ", "IR"} <= set(article.countries)
    assert article.story_id and article.fingerprint and article.language == "en"

    reasons = sorted(json.loads(m.value)["reason"] for m in letters)
    assert reasons == ["bad_record", "fetch:http_404"]
    headers = dict(letters[0].headers)
    assert headers["stage"] == b"process" and headers["original_topic"] == \
        kafka_settings.topic("entries").encode()
