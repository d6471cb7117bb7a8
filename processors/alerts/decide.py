"""What to do with a match: fire, fold into an existing alert, queue, or skip. Pure.

One alert per (rule, story): a later copy of the story from another outlet only adds an
"also reported by" entry; the same article seen again (replay, reprocess) changes nothing.
A rule never fires for articles ingested before it was created, so replaying the articles
topic after a rule is added does not alert on old stories. Digest rules and throttled
rules queue their alerts in the rule's outbox; a flush sends them together once due.

Delivery is at-least-once, made effectively once: an alert is stored as ``sending`` (with
``sending_at``) before its channels are tried, and ``sent``/``partial``/``failed`` after.
One still ``sending`` well past the channels' whole retry time was cut off by a crash; the
worker sends that same notification again (``stuck`` -> ``on_resend``) to every channel,
with the same ids and delivery ids (``Notification.delivery_id``), so a receiver that got
it before the crash can drop the copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from processors.alerts.models import Alert, MatchEvent, Outbox, alert_id
from processors.alerts.rules import DIGEST_SECONDS, Rule


@dataclass(frozen=True)
class Notification:
    """What the channels deliver: one story, or a digest of several."""

    kind: Literal["alert", "digest"]
    rule: Rule
    alerts: tuple[Alert, ...]
    sent_at: datetime

    @property
    def id(self) -> str:
        if self.kind == "alert":
            return self.alerts[0].id
        return f"digest-{self.rule.id}-{int(self.sent_at.timestamp())}"

    def delivery_id(self, channel_index: int) -> str:
        """``<rule>:<story>:<channel>`` (``<rule>:digest-...:<channel>`` for a digest): the
        same for every attempt, re-delivery after a crash or dead-letter replay of this
        notification to that channel of the rule, so a receiver can drop a duplicate."""
        subject = self.alerts[0].story_id if self.kind == "alert" else self.id
        return f"{self.rule.id}:{subject}:{channel_index}"

    def payload(self) -> dict[str, Any]:
        rule = {"id": self.rule.id, "name": self.rule.name, "query": self.rule.query}
        base: dict[str, Any] = {
            "type": self.kind, "schema_version": 1, "id": self.id, "rule": rule,
            "sent_at": self.sent_at.isoformat(),
        }
        stories = [story_payload(a) for a in self.alerts]
        if self.kind == "alert":
            base["story"] = stories[0]
        else:
            base["stories"] = stories
        return base


def story_payload(alert: Alert) -> dict[str, Any]:
    first = alert.first
    return {
        "alert_id": alert.id,
        "story_id": alert.story_id,
        "title": first.title,
        "url": first.url,
        "source": first.source,
        "published": first.published.isoformat() if first.published else None,
        "first_seen": alert.first_seen.isoformat(),
        "summary": alert.summary,
        "conflicts": list(alert.conflicts),
        "countries": list(alert.countries),
        "killed": alert.killed,
        "also_reported_by": [{"source": r.source, "url": r.url, "title": r.title}
                             for r in alert.also_reported_by],
    }


@dataclass(frozen=True)
class Outcome:
    reason: str  # new | queued | also_reported | replay | before_rule | paused | flushed | idle
    alerts: tuple[Alert, ...] = ()  # alert states to store
    outbox: Outbox | None = None  # outbox to store (None = unchanged)
    send: Notification | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def on_match(rule: Rule, event: MatchEvent, existing: Alert | None, outbox: Outbox | None,
             now: datetime, windows: Mapping[str, int] = DIGEST_SECONDS) -> Outcome:
    """``windows``: seconds of each digest period ('hourly', 'daily'), from the settings."""
    assert event.article is not None, "a match event carries its article"
    article = event.article
    if existing is not None:
        if article.id in existing.article_ids:
            return Outcome("replay")
        updated = existing.model_copy(update={
            "also_reported_by": (*existing.also_reported_by, article), "updated": now})
        return Outcome("also_reported", alerts=(updated,))
    if rule.paused:
        return Outcome("paused")
    if article.ingested < rule.created:
        return Outcome("before_rule")
    alert = Alert(
        id=alert_id(rule.id, event.story_id), rule_id=rule.id, story_id=event.story_id,
        first=article, summary=event.summary, conflicts=event.conflicts,
        countries=event.countries, killed=event.killed, status="queued",
        first_seen=article.ingested, updated=now,
    )
    box = outbox or Outbox(rule_id=rule.id)
    due = _due(rule, box, now, windows)
    if due is not None:
        queued = box.model_copy(update={
            "pending": (*box.pending, event.story_id), "due": box.due or due})
        return Outcome("queued", alerts=(alert,), outbox=queued)
    if not rule.channels:  # nothing to deliver: recorded as sent, one state write, and
        # without the summary (only a notification needs it; it is half the state's bytes)
        return Outcome("new", alerts=(alert.model_copy(update={"status": "sent",
                                                               "sent_at": now,
                                                               "summary": None}),))
    sending = alert.model_copy(update={"status": "sending", "sending_at": now})
    # the outbox only matters to throttled rules: do not write it for the others
    sent_box = box.model_copy(update={"last_sent": now}) if rule.throttle else None
    return Outcome("new", alerts=(sending,), outbox=sent_box,
                   send=Notification("alert", rule, (sending,), now))


def _due(rule: Rule, box: Outbox, now: datetime,
         windows: Mapping[str, int] = DIGEST_SECONDS) -> datetime | None:
    """When a queued alert of this rule may go out; ``None`` = send now."""
    if rule.digest:
        period = windows[rule.digest]
        start = int(now.timestamp()) // period * period
        return datetime.fromtimestamp(start + period, UTC)
    if rule.throttle and box.last_sent is not None:
        ready = box.last_sent + timedelta(seconds=rule.throttle)
        if now < ready:
            return ready
    if box.pending:  # keep order: nothing overtakes what is already waiting
        return box.due or now
    return None


def on_flush(rule: Rule | None, outbox: Outbox, alerts: Mapping[str, Alert],
             now: datetime) -> Outcome:
    """Send what the outbox holds once due. ``alerts`` maps story id -> state."""
    if not outbox.pending:
        return Outcome("idle")
    if rule is None:  # rule deleted: nothing to send to
        dropped = tuple(a.model_copy(update={"status": "suppressed", "updated": now})
                        for s in outbox.pending if (a := alerts.get(s)) is not None)
        return Outcome("dropped", alerts=dropped,
                       outbox=outbox.model_copy(update={"pending": (), "due": None}))
    if rule.paused or (outbox.due is not None and now < outbox.due):
        return Outcome("idle")
    queued = [a for s in outbox.pending if (a := alerts.get(s)) is not None
              and a.status == "queued"]
    box = outbox.model_copy(update={"pending": (), "due": None, "last_sent": now})
    if not queued:
        return Outcome("idle", outbox=box)
    sending = tuple(a.model_copy(update={"status": "sending", "updated": now, "sending_at": now})
                    for a in queued)
    kind: Literal["alert", "digest"] = "alert" if len(sending) == 1 and not rule.digest \
        else "digest"
    return Outcome("flushed", alerts=sending, outbox=box,
                   send=Notification(kind, rule, sending, now))


def sending_since(alert: Alert) -> datetime:
    """When the alert's notification went out (``updated`` for states written before
    ``sending_at`` existed)."""
    return alert.sending_at or alert.updated


def stuck(alerts: Iterable[Alert], now: datetime,
          older_than: float) -> dict[tuple[str, datetime], tuple[str, ...]]:
    """Alerts still ``sending`` more than ``older_than`` seconds after they went out, grouped
    as they were sent: (rule id, sending_at) -> story ids."""
    groups: dict[tuple[str, datetime], tuple[str, ...]] = {}
    limit = now - timedelta(seconds=older_than)
    for alert in alerts:
        since = sending_since(alert)
        if alert.status == "sending" and since < limit:
            key = (alert.rule_id, since)
            groups[key] = (*groups.get(key, ()), alert.story_id)
    return groups


def on_resend(rule: Rule | None, alerts: Iterable[Alert], sending_at: datetime,
              now: datetime) -> Outcome:
    """Send again a notification cut off by a crash (see ``stuck``), to every channel.

    ``alerts`` are the current states of its stories; only those still ``sending`` since
    ``sending_at`` count (another resend may have finished them meanwhile).
    """
    still = tuple(a for a in alerts if a.status == "sending" and sending_since(a) == sending_at)
    if not still:
        return Outcome("resend_done")
    if rule is None:  # rule deleted: nothing to send to; stop looking at them
        return Outcome("dropped", alerts=tuple(
            a.model_copy(update={"status": "suppressed", "updated": now}) for a in still))
    kind: Literal["alert", "digest"] = "alert" if len(still) == 1 and not rule.digest \
        else "digest"
    return Outcome("resend", send=Notification(kind, rule, still, sending_at))


def after_delivery(alerts: tuple[Alert, ...], outcomes: tuple[Any, ...],
                   now: datetime) -> tuple[Alert, ...]:
    """Record how the channels did; ``outcomes`` are ``ChannelOutcome``s."""
    if all(o.ok for o in outcomes):  # no channel at all counts as sent (recorded only)
        status = "sent"
    elif any(o.ok for o in outcomes):
        status = "partial"
    else:
        status = "failed"
    return tuple(a.model_copy(update={"status": status, "sent_at": now, "updated": now,
                                      "deliveries": tuple(outcomes)}) for a in alerts)
