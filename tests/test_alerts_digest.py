"""Digest rules on a real Faust worker: the summary goes out through real channels when the
digest window closes, each story once, nothing before the window's end.

The window is the operator setting ``NEWSWIRE_ALERTS__HOURLY_WINDOW`` (seconds of an
"hourly" digest), shortened here so that the test waits seconds, not an hour.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from newswire.settings import Settings
from newswire.topics import ensure_topics
from processors.alerts.rules import FileChannel, Rule, WebhookChannel
from processors.alerts.store import RuleStore
from tests.test_alerts_channels import Receiver
from tests.test_alerts_faust import SECRET, Worker, send_articles, story

pytestmark = pytest.mark.integration

WINDOW = 4  # seconds of the shortened "hourly" window


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


@pytest.fixture
def digest_worker(kafka_settings: Settings, tmp_path: Path) -> Iterator[Worker]:
    ensure_topics(kafka_settings)
    w = Worker(kafka_settings, tmp_path / "worker.log")
    w.extra_env = {"NEWSWIRE_ALERTS__HOURLY_WINDOW": str(WINDOW),
                   "NEWSWIRE_ALERTS__FLUSH_INTERVAL": "0.5"}
    w.start()
    try:
        yield w
    finally:
        w.stop()


def window_end(first_seen: str) -> float:
    return math.ceil(datetime.fromisoformat(first_seen).timestamp() / WINDOW) * WINDOW


def test_digest_is_delivered_when_its_window_closes(
        kafka_settings: Settings, receiver: Receiver, digest_worker: Worker,
        tmp_path: Path) -> None:
    out = tmp_path / "digests.jsonl"
    with RuleStore(kafka_settings) as store:
        rule = store.save(Rule(
            name="ceasefire digest", query="ceasefire", digest="hourly",
            channels=(WebhookChannel(url=receiver.url + "/digest", secret_name="hook"),
                      FileChannel(path=str(out)))))
    digest_worker.wait_rule(rule.id)

    send_articles(kafka_settings, story("c1", "A ceasefire was agreed in the north."),
                  story("c2", "The ceasefire held overnight."),
                  story("c1", "A ceasefire was agreed in the north.", source="apnews.com"),
                  story("x1", "Markets rose on Tuesday."),
                  story("c3", "Ceasefire talks resume in Doha."))

    def stories(bodies: list[dict]) -> list[str]:
        return [s["story_id"] for b in bodies for s in b["stories"]]

    def webhook_bodies() -> list[dict]:
        return [json.loads(b) for _, b in receiver.hits("/digest")]

    digest_worker.wait(lambda: len(stories(webhook_bodies())) >= 3, "the digest on the webhook")
    digest_worker.wait(lambda: out.exists() and len(stories(
        [json.loads(x) for x in out.read_text().splitlines()])) >= 3, "the digest in the file")
    bodies = webhook_bodies()
    assert {b["type"] for b in bodies} == {"digest"}  # never one message per story
    assert sorted(stories(bodies)) == ["c1", "c2", "c3"]  # each once; the copy folded in
    assert len(bodies) <= 2  # one window, or two if the stories straddled a boundary
    for body in bodies:  # nothing left before its window closed
        sent = datetime.fromisoformat(body["sent_at"]).timestamp()
        assert all(sent >= window_end(s["first_seen"]) for s in body["stories"]), body
    filed = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(stories(filed)) == ["c1", "c2", "c3"]
    for headers, _ in receiver.hits("/digest"):  # signed with the named secret
        assert headers["X-Newswire-Signature"].startswith("sha256=")
    assert SECRET not in digest_worker.read_text()

    # the next window starts empty: a new story is summarised on its own
    send_articles(kafka_settings, story("c4", "A new ceasefire line was drawn."))
    digest_worker.wait(lambda: "c4" in stories(webhook_bodies()), "the next digest")
    assert stories(webhook_bodies()[len(bodies):]) == ["c4"]
