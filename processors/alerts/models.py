"""Records of the alert stage: a match on its way to the decision, the alert state, the outbox.

One alert (``Alert``) per (rule, story), whatever the number of copies. They are stored per
story: the compacted alerts topic has key = story id and value = ``StoryAlerts`` (every
rule's alert on that story), so an article that matches fifty rules costs one state write,
not fifty. Keys ``"<rule id>|<story id>"`` with a single ``Alert`` are the older layout,
still read.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from newswire.records import Article, Record, UTCDateTime, utcnow

AlertStatus = Literal["queued", "sending", "sent", "partial", "failed", "suppressed"]


def alert_key(rule_id: str, story_id: str) -> str:
    return f"{rule_id}|{story_id}"


def alert_id(rule_id: str, story_id: str) -> str:
    """Stable id of one (rule, story) alert: receivers may dedupe on it."""
    return hashlib.sha256(alert_key(rule_id, story_id).encode()).hexdigest()[:24]


class ArticleRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    url: str
    title: str | None = None
    source: str = ""
    published: UTCDateTime | None = None
    ingested: UTCDateTime


class MatchEvent(Record):
    """One article and the rules it matched: one message per article, not per rule.

    ``kind="flush"`` is a timer's request to send what a digest/throttle of ``rule_ids``
    queued; it goes through the same agent because only an agent may change a Faust table.
    ``kind="redeliver"`` is the payload of a failed delivery's dead letter: replayed to this
    topic (``newswire dlq replay alert``) it retries that one channel.
    ``kind="resend"`` is a timer's request to deliver again, to every channel, the alerts of
    ``stories`` that are still ``sending`` since ``sending_at`` (the worker that sent them
    died mid-delivery).
    """

    kind: Literal["match", "flush", "redeliver", "resend"] = "match"
    rule_ids: tuple[str, ...]
    story_id: str = ""
    article: ArticleRef | None = None
    summary: str | None = None
    conflicts: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    killed: int | None = None
    matched_at: UTCDateTime = Field(default_factory=utcnow)
    # kind="redeliver" (a dead-lettered delivery sent back by `newswire dlq replay alert`):
    # send these stories' alerts again to one channel of the rule
    stories: tuple[str, ...] = ()
    channel_index: int | None = None
    notification_kind: Literal["alert", "digest"] = "alert"
    sending_at: UTCDateTime | None = None  # kind="resend": which delivery is to be redone

    @classmethod
    def from_article(cls, rule_ids: tuple[str, ...], article: Article, *,
                     at: Any = None) -> MatchEvent:
        snippet = article.summary or (article.text[:400] if article.text else None)
        return cls(
            rule_ids=rule_ids,
            story_id=article.story_id or article.id,
            article=ArticleRef(id=article.id, url=article.url, title=article.title,
                               source=article.source, published=article.published,
                               ingested=article.ingested),
            summary=snippet,
            conflicts=tuple(c.id for c in article.conflicts),
            countries=article.countries,
            killed=article.casualties.killed if article.casualties else None,
            matched_at=at or utcnow(),
        )


class ChannelOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: str  # label, never the URL or a secret
    ok: bool
    attempts: int
    error: str | None = None


class Alert(Record):
    """State of one (rule, story) alert."""

    id: str
    rule_id: str
    story_id: str
    first: ArticleRef
    also_reported_by: tuple[ArticleRef, ...] = ()
    summary: str | None = None
    conflicts: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    killed: int | None = None
    status: AlertStatus = "queued"
    first_seen: UTCDateTime  # the story's ingest time: alerts fire on ingest, not publication
    updated: UTCDateTime = Field(default_factory=utcnow)
    sent_at: UTCDateTime | None = None
    # when its notification was first handed to the channels: alerts sent together share it,
    # and a re-delivery after a crash re-sends the same notification (same ids) with it
    sending_at: UTCDateTime | None = None
    deliveries: tuple[ChannelOutcome, ...] = ()

    @property
    def key(self) -> str:
        return alert_key(self.rule_id, self.story_id)

    @property
    def article_ids(self) -> set[str]:
        return {self.first.id, *(a.id for a in self.also_reported_by)}

    @property
    def sources(self) -> list[str]:
        seen: list[str] = []
        for ref in (self.first, *self.also_reported_by):
            if ref.source and ref.source not in seen:
                seen.append(ref.source)
        return seen


class Outbox(Record):
    """Per-rule delivery state: when it last sent, and what a digest/throttle holds back."""

    rule_id: str
    last_sent: UTCDateTime | None = None
    pending: tuple[str, ...] = ()  # story ids whose alerts are queued
    due: UTCDateTime | None = None


class StoryAlerts(Record):
    """Every rule's alert on one story: the value of the alerts topic (key = story id)."""

    story_id: str
    alerts: dict[str, Alert] = Field(default_factory=dict)  # rule id -> alert

    def with_alerts(self, alerts: list[Alert]) -> StoryAlerts:
        return self.model_copy(update={"alerts": {**self.alerts,
                                                  **{a.rule_id: a for a in alerts}}})
