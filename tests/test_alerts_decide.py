"""One alert per (rule, story): copies update it, replays change nothing, digests queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.alerts.decide import after_delivery, on_flush, on_match, on_resend, stuck
from processors.alerts.models import Alert, ArticleRef, ChannelOutcome, MatchEvent, Outbox
from processors.alerts.rules import FileChannel, Rule

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_rule(**kw: object) -> Rule:
    kw.setdefault("channels", (FileChannel(path="/dev/null"),))
    return Rule(name="r", query="iran", created=T0 - timedelta(days=1), **kw)  # type: ignore[arg-type]


def match(rule: Rule, article_id: str, story: str, source: str,
          ingested: datetime = T0) -> MatchEvent:
    return MatchEvent(rule_ids=(rule.id,), story_id=story, article=ArticleRef(
        id=article_id, url=f"https://{source}/{article_id}", title="t", source=source,
        ingested=ingested))


class World:
    """Applies outcomes the way the agent does: tables as dicts, deliveries counted."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.alerts: dict[str, Alert] = {}
        self.outbox: Outbox | None = None
        self.sent: list[tuple[str, ...]] = []

    def feed(self, m: MatchEvent, now: datetime) -> str:
        out = on_match(self.rule, m, self.alerts.get(m.story_id), self.outbox, now)
        self._apply(out)
        return out.reason

    def flush(self, now: datetime) -> str:
        if self.outbox is None:
            return "idle"
        out = on_flush(self.rule, self.outbox, self.alerts, now)
        self._apply(out)
        return out.reason

    def _apply(self, out) -> None:  # type: ignore[no-untyped-def]
        for a in out.alerts:
            self.alerts[a.story_id] = a
        if out.outbox is not None:
            self.outbox = out.outbox
        if out.send is not None:
            self.sent.append(tuple(a.story_id for a in out.send.alerts))
            for a in after_delivery(out.send.alerts, (ChannelOutcome(channel="x", ok=True,
                                                                     attempts=1),), T0):
                self.alerts[a.story_id] = a


def test_second_outlet_updates_the_alert_instead_of_firing_again() -> None:
    w = World(make_rule())
    assert w.feed(match(w.rule, "a1", "s1", "bbc.co.uk"), T0) == "new"
    assert w.feed(match(w.rule, "a2", "s1", "reuters.com"), T0 + timedelta(minutes=5)) \
        == "also_reported"
    assert w.sent == [("s1",)]
    alert = w.alerts["s1"]
    assert alert.sources == ["bbc.co.uk", "reuters.com"]
    assert alert.status == "sent" and alert.first.id == "a1"


def test_replay_of_the_same_article_changes_nothing() -> None:
    w = World(make_rule())
    w.feed(match(w.rule, "a1", "s1", "bbc.co.uk"), T0)
    before = w.alerts["s1"]
    assert w.feed(match(w.rule, "a1", "s1", "bbc.co.uk"), T0 + timedelta(hours=1)) == "replay"
    assert w.alerts["s1"] == before and len(w.sent) == 1


def test_articles_ingested_before_the_rule_never_alert_but_old_publications_do() -> None:
    rule = make_rule()
    w = World(rule)
    old = match(rule, "a0", "s0", "x.org", ingested=rule.created - timedelta(seconds=1))
    assert w.feed(old, T0) == "before_rule" and w.sent == []
    # published long ago, first seen now: fires (alerts follow ingest time)
    m = match(rule, "a1", "s1", "x.org")
    m = m.model_copy(update={"article": m.article.model_copy(  # type: ignore[union-attr]
        update={"published": T0 - timedelta(days=3)})})
    assert w.feed(m, T0) == "new"


def test_throttle_queues_then_flush_sends_together() -> None:
    w = World(make_rule(throttle=600))
    assert w.feed(match(w.rule, "a1", "s1", "x"), T0) == "new"
    assert w.feed(match(w.rule, "a2", "s2", "x"), T0 + timedelta(seconds=10)) == "queued"
    assert w.feed(match(w.rule, "a3", "s3", "x"), T0 + timedelta(seconds=20)) == "queued"
    assert w.flush(T0 + timedelta(seconds=300)) == "idle"  # not due yet
    assert w.flush(T0 + timedelta(seconds=601)) == "flushed"
    assert w.sent == [("s1",), ("s2", "s3")]
    assert all(a.status == "sent" for a in w.alerts.values())
    assert w.flush(T0 + timedelta(seconds=1200)) == "idle"


def test_hourly_digest_waits_for_the_end_of_the_hour() -> None:
    w = World(make_rule(digest="hourly"))
    assert w.feed(match(w.rule, "a1", "s1", "x"), T0 + timedelta(minutes=5)) == "queued"
    assert w.feed(match(w.rule, "a2", "s2", "x"), T0 + timedelta(minutes=50)) == "queued"
    assert w.flush(T0 + timedelta(minutes=59)) == "idle"
    assert w.flush(T0 + timedelta(minutes=60)) == "flushed"
    assert w.sent == [("s1", "s2")]


def test_flush_of_a_deleted_rule_drops_what_was_queued() -> None:
    w = World(make_rule(digest="daily"))
    w.feed(match(w.rule, "a1", "s1", "x"), T0)
    assert w.outbox is not None
    out = on_flush(None, w.outbox, w.alerts, T0 + timedelta(days=2))
    assert out.send is None and out.outbox is not None and out.outbox.pending == ()
    assert [a.status for a in out.alerts] == ["suppressed"]


def test_a_rule_without_channels_records_its_alerts_without_sending() -> None:
    w = World(make_rule(channels=()))
    assert w.feed(match(w.rule, "a1", "s1", "x"), T0) == "new"
    assert w.sent == [] and w.alerts["s1"].status == "sent" and w.outbox is None


def test_partial_and_failed_deliveries_are_recorded() -> None:
    w = World(make_rule())
    w.feed(match(w.rule, "a1", "s1", "x"), T0)
    ok = ChannelOutcome(channel="a", ok=True, attempts=1)
    bad = ChannelOutcome(channel="b", ok=False, attempts=5, error="http_500")
    alert = w.alerts["s1"]
    assert after_delivery((alert,), (ok, bad), T0)[0].status == "partial"
    assert after_delivery((alert,), (bad,), T0)[0].status == "failed"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["s1", "s2", "s3"]),
                          st.sampled_from(["bbc", "ap", "dw"]),
                          st.integers(0, 3)), max_size=30),
       st.sampled_from([0.0, 60.0]))
def test_each_story_is_sent_at_most_once_whatever_arrives(
        events: list[tuple[str, str, int]], throttle: float) -> None:
    w = World(make_rule(throttle=throttle))
    now = T0
    for story, source, copy in events:
        now += timedelta(seconds=7)
        w.feed(match(w.rule, f"{story}-{source}-{copy}", story, source), now)
        w.flush(now)
    w.flush(now + timedelta(hours=1))
    sent = [s for batch in w.sent for s in batch]
    assert sorted(sent) == sorted({s for s, _, _ in events})  # every story exactly once
    for story, alert in w.alerts.items():
        ids = [alert.first.id, *(r.id for r in alert.also_reported_by)]
        assert len(ids) == len(set(ids))  # a replayed copy is never added twice
        assert ids[0].startswith(story)


@given(window=st.integers(min_value=1, max_value=86_400 * 2),
       offsets=st.lists(st.floats(min_value=0, max_value=10 * 86_400, allow_nan=False),
                        min_size=1, max_size=6))
@settings(max_examples=150, deadline=None)
def test_a_configured_digest_window_sends_nothing_early_and_everything_once(
        window: int, offsets: list[float]) -> None:
    """Whatever the window (operator setting), a digest is due at the end of the window the
    first queued story fell in, never before, and each story goes out once."""
    rule = make_rule(digest="hourly")
    alerts: dict[str, Alert] = {}
    box: Outbox | None = None
    sent: list[str] = []
    for i, offset in enumerate(sorted(offsets)):
        now = T0 + timedelta(seconds=offset)
        if box is not None and box.due is not None and now >= box.due:  # the timer's flush
            flushed = on_flush(rule, box, alerts, box.due)
            assert flushed.send is not None and flushed.send.kind == "digest"
            sent += [a.story_id for a in flushed.send.alerts]
            box = flushed.outbox
        out = on_match(rule, match(rule, f"a{i}", f"s{i}", "x", ingested=now), None, box, now,
                       {"hourly": window, "daily": 86_400})
        assert out.reason == "queued" and out.send is None and out.outbox is not None
        box = out.outbox
        alerts.update({a.story_id: a for a in out.alerts})
        assert box.due is not None and now < box.due <= now + timedelta(seconds=window)
        assert box.due.timestamp() % window == 0  # windows are aligned, not sliding
        assert on_flush(rule, box, alerts, now).send is None  # not before the window ends
    assert box is not None and box.due is not None
    final = on_flush(rule, box, alerts, box.due)
    assert final.send is not None
    sent += [a.story_id for a in final.send.alerts]
    assert sorted(sent) == sorted(f"s{i}" for i in range(len(offsets)))


def test_an_alert_cut_off_mid_delivery_is_resent_as_the_same_notification() -> None:
    rule = make_rule(throttle=60)
    world = World(rule)
    world.feed(match(rule, "a1", "s1", "bbc.co.uk"), T0)  # sent at once
    world.feed(match(rule, "a2", "s2", "bbc.co.uk"), T0 + timedelta(seconds=1))  # queued
    world.feed(match(rule, "a3", "s3", "bbc.co.uk"), T0 + timedelta(seconds=2))  # queued
    # the flush hands s2+s3 to the channels as one digest... and the worker dies
    flushed = on_flush(rule, world.outbox, world.alerts, T0 + timedelta(seconds=61))  # type: ignore[arg-type]
    assert flushed.send is not None
    states = [world.alerts["s1"], *flushed.alerts]
    late = T0 + timedelta(seconds=61)
    assert stuck(states, late + timedelta(seconds=10), older_than=30) == {}  # maybe in flight
    groups = stuck(states, late + timedelta(seconds=31), older_than=30)
    assert groups == {(rule.id, late): ("s2", "s3")}  # s1 was sent: not stuck
    again = on_resend(rule, flushed.alerts, late, late + timedelta(seconds=31))
    assert again.send is not None and again.alerts == ()
    assert again.send.kind == "digest" and again.send.id == flushed.send.id
    assert [again.send.delivery_id(i) for i in (0, 1)] == \
        [flushed.send.delivery_id(i) for i in (0, 1)]
    # once delivered (by this resend or another), a later resend request does nothing
    done = after_delivery(flushed.alerts, (ChannelOutcome(channel="x", ok=True, attempts=1),),
                          late + timedelta(seconds=32))
    assert on_resend(rule, done, late, late + timedelta(seconds=40)).reason == "resend_done"
    assert stuck(done, late + timedelta(days=1), older_than=30) == {}
    # the rule was deleted meanwhile: nothing to send to, and no longer stuck
    gone = on_resend(None, flushed.alerts, late, late + timedelta(seconds=40))
    assert gone.send is None and {a.status for a in gone.alerts} == {"suppressed"}


def test_a_single_alert_resend_keeps_its_alert_id_and_delivery_id() -> None:
    rule = make_rule()
    out = on_match(rule, match(rule, "a1", "s1", "bbc.co.uk"), None, None, T0)
    assert out.send is not None and out.alerts[0].sending_at == T0
    again = on_resend(rule, out.alerts, T0, T0 + timedelta(minutes=5))
    assert again.send is not None and again.send.kind == "alert"
    assert again.send.payload() == out.send.payload()
    assert again.send.delivery_id(0) == f"{rule.id}:s1:0"
