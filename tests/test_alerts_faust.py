"""The alert agents in a real Faust worker on noida: one signed POST per (rule, story)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from newswire.ops import replay
from newswire.records import Article, ConflictTag, DeadLetter
from newswire.settings import Settings, child_env
from newswire.topics import ensure_topics
from processors.alerts.models import Alert
from processors.alerts.rules import Rule, RuleFilters, WebhookChannel
from processors.alerts.store import RuleStore, _read_topic
from tests.test_alerts_channels import Receiver

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
SECRET = "acceptance-secret-42"
DEFAULT_SECRET = "acceptance-default-7"  # signs webhooks that name no secret


def wait_for(check: Callable[[], object], what: str, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


class Worker:
    """The standalone alert worker (same agents as the processor) as a child process."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings, self.log = settings, log
        self.extra_env: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **child_env(self.settings), "NEWSWIRE_LOG_LEVEL": "DEBUG",
               "NEWSWIRE_ALERTS__SECRETS__HOOK": SECRET,
               "NEWSWIRE_ALERTS__SECRETS__DEFAULT": DEFAULT_SECRET,
               # an alert 'sending' this long after a crash is sent again; short for the
               # tests (a live worker never re-sends what it is still delivering itself)
               "NEWSWIRE_ALERTS__RESEND_AFTER": "2", "NEWSWIRE_ALERTS__FLUSH_INTERVAL": "1",
               **self.extra_env}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "processors.alerts.standalone", "--fast-retries"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def read_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, check: Callable[[], object], what: str) -> object:
        try:
            return wait_for(check, what)
        except AssertionError as exc:  # say what the worker was doing
            raise AssertionError(f"{exc}\n--- worker log tail:\n{self.read_text()[-4000:]}") \
                from None

    def wait_rule(self, rule_id: str, times: int = 1) -> None:
        needle = f"alert rule updated rule={rule_id}"
        self.wait(lambda: self.read_text().count(needle) >= times,
                  f"the worker to apply rule {rule_id} ({times})")


@pytest.fixture
def worker(kafka_settings: Settings, tmp_path: Path) -> Iterator[Worker]:
    ensure_topics(kafka_settings)
    w = Worker(kafka_settings, tmp_path / "worker.log")
    w.start()
    try:
        yield w
    finally:
        w.stop()


def send_articles(settings: Settings, *articles: Article) -> None:
    producer = KafkaProducer(**settings.kafka.client_config(), acks="all")
    try:
        for a in articles:  # one partition: the worker sees them in this order
            producer.send(settings.topic("articles"), key=a.id.encode(), value=a.to_bytes(),
                          partition=0)
        producer.flush(10)
    finally:
        producer.close()


def test_one_signed_post_per_story_and_failing_channel_dead_lettered(
        kafka_settings: Settings, receiver: Receiver, worker: Worker, seed_story: str) -> None:
    receiver.status["/down"] = 500
    with RuleStore(kafka_settings) as store:
        iran = store.save(Rule(
            name="iran proxies", query="Iran AND (militia OR IRGC)",
            filters=RuleFilters(conflicts=("us-iran-proxy",)),
            channels=(WebhookChannel(url=receiver.url + "/hook", secret_name="hook"),
                      WebhookChannel(url=receiver.url + "/down", secret_name="hook"))))
        sentinel = store.save(Rule(name="sentinel", query="zanzibar",
                                   channels=(WebhookChannel(url=receiver.url + "/sentinel"),)))
    for rule in (iran, sentinel):
        worker.wait_rule(rule.id)

    tag = (ConflictTag(id="us-iran-proxy", name="US-Iran proxy conflict", score=0.9),)
    first = Article(id="art-bbc", url="https://bbc.co.uk/news/1", title="US strikes militias",
                    text=seed_story, source="bbc.co.uk", story_id="story-1", conflicts=tag)
    second = first.model_copy(update={"id": "art-ap", "url": "https://apnews.com/1",
                                      "source": "apnews.com"})
    other = Article(id="art-other", url="https://bbc.co.uk/news/2", title="Sudan talks",
                    text="Talks on Darfur resumed in Jeddah.", source="bbc.co.uk",
                    story_id="story-2", conflicts=tag)
    last = Article(id="art-last", url="https://dw.com/3", title="Zanzibar", text="Zanzibar",
                   source="dw.com", story_id="story-3")
    send_articles(kafka_settings, first, second, first, other, last)

    wait_for(lambda: receiver.hits("/sentinel"), "the sentinel alert")  # all before it done
    hits = receiver.hits("/hook")
    assert len(hits) == 1  # one alert for the story, none for the copy, the replay, the other
    headers, body = hits[0]
    assert headers["X-Newswire-Signature"] == "sha256=" + hmac.new(
        SECRET.encode(), body, hashlib.sha256).hexdigest()
    payload = json.loads(body)
    assert payload["rule"]["id"] == iran.id
    assert payload["story"]["story_id"] == "story-1" and payload["story"]["source"] == "bbc.co.uk"
    # deliveries run in the background: the failing channel is still retrying (fast policy:
    # 3 attempts), then gives up (the dead letter below is written after the last attempt)
    worker.wait(lambda: len(receiver.hits("/down")) >= 3, "the failing channel's retries")

    def state() -> Alert | None:
        with RuleStore(kafka_settings) as store:
            alerts = store.alerts(iran.id)
        return alerts[0] if alerts and alerts[0].also_reported_by else None

    alert = wait_for(state, "the alert state with the second outlet")
    assert isinstance(alert, Alert)
    assert alert.sources == ["bbc.co.uk", "apnews.com"] and alert.status == "partial"

    def dead() -> list[DeadLetter]:
        return [DeadLetter.from_bytes(v) for _, v in
                _read_topic(kafka_settings, kafka_settings.topic("dlq.alert")) if v]

    letters = wait_for(dead, "the dead letter of the failing channel")
    assert isinstance(letters, list)
    [letter] = letters
    assert len(receiver.hits("/down")) == 3  # given up after the third attempt
    assert letter.stage == "alert" and letter.reason == "delivery_failed:webhook"
    assert letter.error == "http_500"
    assert json.loads(letter.payload or "{}")["channel_index"] == 1
    assert SECRET not in (letter.payload or "") and SECRET not in worker.read_text()
    # the rules topic (readable by any consumer) and the alert state hold names only
    for topic in ("alert-rules", "alerts", "alert-matches"):
        raw = b"".join((k or b"") + (v or b"") for k, v in
                       _read_topic(kafka_settings, kafka_settings.topic(topic)))
        assert raw and SECRET.encode() not in raw, topic

    # the receiver is back: `newswire dlq replay alert` re-drives just that channel
    receiver.status["/down"] = 200
    assert replay(kafka_settings, "alert", reason="delivery_failed").sent == 1
    worker.wait(lambda: len(receiver.hits("/down")) == 4, "the redelivery")
    redelivered = json.loads(receiver.hits("/down")[-1][1])
    assert redelivered["story"]["story_id"] == "story-1"
    assert len(receiver.hits("/hook")) == 1  # the channel that worked is not sent again
    worker.wait(lambda: (a := state()) is not None and a.status == "sent", "status sent")


def story(key: str, text: str, source: str = "bbc.co.uk") -> Article:
    return Article(id=f"{key}-{source}", url=f"https://{source}/{key}", title=key, text=text,
                   source=source, story_id=key)


def test_rule_changes_apply_live_and_a_restart_never_resends(
        kafka_settings: Settings, receiver: Receiver, worker: Worker) -> None:
    with RuleStore(kafka_settings) as store:
        rule = store.save(Rule(name="ceasefire", query="ceasefire",
                               channels=(WebhookChannel(url=receiver.url + "/hook"),)))
        sentinel = store.save(Rule(name="sentinel", query="zanzibar",
                                   channels=(WebhookChannel(url=receiver.url + "/sentinel"),)))
    worker.wait_rule(rule.id)
    worker.wait_rule(sentinel.id)

    def settle(n: int) -> None:  # everything sent before the n-th sentinel is decided
        send_articles(kafka_settings, story(f"zanzibar-{n}", "Zanzibar"))
        worker.wait(lambda: len(receiver.hits("/sentinel")) >= n, f"sentinel {n}")

    send_articles(kafka_settings, story("s1", "A ceasefire was agreed."))
    settle(1)
    assert len(receiver.hits("/hook")) == 1

    with RuleStore(kafka_settings) as store:  # paused while the worker runs: no alert
        store.set_paused(rule.id, True)
    worker.wait_rule(rule.id, 2)
    send_articles(kafka_settings, story("s2", "The ceasefire held."))
    settle(2)
    assert len(receiver.hits("/hook")) == 1

    with RuleStore(kafka_settings) as store:
        store.set_paused(rule.id, False)
    worker.wait_rule(rule.id, 3)
    worker.stop()
    worker.start()  # state and rules come back from their changelog topics
    worker.wait(lambda: worker.read_text().count("alert rules loaded rules=2") >= 1,
                "the restarted worker to recover its rules")
    send_articles(kafka_settings,
                  story("s1", "A ceasefire was agreed."),  # the same article again (replay)
                  story("s1", "A ceasefire was agreed.", source="apnews.com"),  # a copy
                  story("s3", "Ceasefire talks resume."))  # a new story: alerts
    settle(3)
    bodies = [json.loads(b) for _, b in receiver.hits("/hook")]
    assert [b["story"]["story_id"] for b in bodies] == ["s1", "s3"]

    def states() -> dict[str, Alert] | None:
        with RuleStore(kafka_settings) as store:
            found = {a.story_id: a for a in store.alerts(rule.id)}
        return found if "s1" in found and found["s1"].also_reported_by else None

    found = worker.wait(states, "the copy recorded on the s1 alert")
    assert isinstance(found, dict)
    assert found["s1"].sources == ["bbc.co.uk", "apnews.com"]
    assert found["s1"].status == "sent" and "s2" not in found


def test_a_stalled_channel_does_not_hold_up_other_alerts(
        kafka_settings: Settings, receiver: Receiver, worker: Worker) -> None:
    receiver.hold["/stalled"] = threading.Event()
    with RuleStore(kafka_settings) as store:
        slow = store.save(Rule(name="slow", query="ceasefire",
                               channels=(WebhookChannel(url=receiver.url + "/stalled"),)))
        fast = store.save(Rule(name="fast", query="zanzibar",
                               channels=(WebhookChannel(url=receiver.url + "/fast"),)))
    worker.wait_rule(slow.id)
    worker.wait_rule(fast.id)
    try:
        send_articles(kafka_settings, story("s1", "A ceasefire was agreed."),
                      story("z1", "Zanzibar"))
        worker.wait(lambda: receiver.hits("/stalled"), "the stalled delivery to start")
        # the later article's alert arrives while the earlier one's webhook still hangs
        worker.wait(lambda: receiver.hits("/fast"), "the other rule's alert")
        # (waiting its turn, it would have timed out and been retried before this one)
        assert len(receiver.hits("/stalled")) == 1 and not receiver.hold["/stalled"].is_set()
    finally:
        receiver.hold["/stalled"].set()

    def sent() -> bool:
        with RuleStore(kafka_settings) as store:
            return [a.status for a in store.alerts(slow.id)] == ["sent"]

    worker.wait(sent, "the stalled alert to complete once released")
    assert len(receiver.hits("/stalled")) == 1


def test_a_delivery_cut_off_by_kill_9_is_sent_again_after_restart(
        kafka_settings: Settings, receiver: Receiver, worker: Worker) -> None:
    # the first request to /hook hangs until the worker is gone; later ones are answered
    receiver.hold["/hook"] = threading.Event()
    with RuleStore(kafka_settings) as store:
        rule = store.save(Rule(name="ceasefire", query="ceasefire", channels=(
            WebhookChannel(url=receiver.url + "/hook", secret_name="hook"),
            # its secret is set nowhere: never sent (unsigned), dead-lettered, while the
            # other channel of the rule delivers
            WebhookChannel(url=receiver.url + "/unsigned", secret_name="absent"))))
    worker.wait_rule(rule.id)
    try:
        send_articles(kafka_settings, story("s1", "A ceasefire was agreed."))
        worker.wait(lambda: receiver.hits("/hook"), "the delivery to start")

        def state() -> Alert | None:
            with RuleStore(kafka_settings) as store:
                found = store.alerts(rule.id)
            return found[0] if found else None

        # durably 'sending' before the channel answered: this is what survives the crash
        sending = worker.wait(state, "the 'sending' state in the changelog")
        assert isinstance(sending, Alert) and sending.status == "sending"
        assert worker.proc is not None
        worker.proc.kill()  # SIGKILL mid-delivery: nothing runs on the way out
        worker.proc.wait(10)
        worker.proc = None
    finally:
        receiver.hold["/hook"].set()  # the hung handler returns to a closed connection
    assert len(receiver.hits("/hook")) == 1

    worker.start()  # same app id: recovers the alert state, finds the alert still 'sending'
    worker.wait(lambda: len(receiver.hits("/hook")) >= 2, "the re-delivery after restart")
    done = worker.wait(lambda: (a := state()) is not None and a.status != "sending" and a,
                       "the re-delivered alert's final state")
    assert isinstance(done, Alert) and done.status == "partial"  # /unsigned never sends
    hits = receiver.hits("/hook")
    assert len(hits) == 2  # once cut off, once again: not a storm of copies
    ids = [h["X-Newswire-Delivery"] for h, _ in hits]
    assert ids == [f"{rule.id}:s1:0"] * 2  # a receiver drops the copy by this id
    first, again = (json.loads(b) for _, b in hits)
    assert first["id"] == again["id"] and first["sent_at"] == again["sent_at"]
    for headers, body in hits:
        assert headers["X-Newswire-Signature"] == "sha256=" + hmac.new(
            SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert receiver.hits("/unsigned") == []

    def letters() -> list[DeadLetter]:
        return [DeadLetter.from_bytes(v) for _, v in
                _read_topic(kafka_settings, kafka_settings.topic("dlq.alert")) if v]

    found = worker.wait(lambda: [x for x in letters() if x.error == "secret_missing:absent"],
                        "the missing secret's dead letter")
    assert isinstance(found, list)
    assert {x.reason for x in found} == {"delivery_failed:webhook"}
    assert "re-delivery" in worker.read_text()


def test_an_alert_dead_letter_keeps_the_whole_long_value(
        kafka_settings: Settings, worker: Worker) -> None:
    # a long record the alert stage cannot read (no url): its letter must hold all of it,
    # so `newswire dlq replay alert` sends back the record as it was
    value = json.dumps({"id": "long-1", "title": "long", "text": "word " * 20_000}).encode()
    producer = KafkaProducer(**kafka_settings.kafka.client_config(), acks="all")
    try:
        producer.send(kafka_settings.topic("articles"), key=b"long-1", value=value, partition=0)
        producer.flush(10)
    finally:
        producer.close()

    def letters() -> list[DeadLetter]:
        return [letter for _, v in _read_topic(kafka_settings, kafka_settings.topic("dlq.alert"))
                if v and (letter := DeadLetter.from_bytes(v)).reason == "bad_article"]

    found = worker.wait(letters, "the bad article's dead letter")
    assert isinstance(found, list)
    [letter] = found
    assert len(value) > 100_000 and letter.payload == value.decode()
    assert replay(kafka_settings, "alert", reason="bad_article").sent == 1
