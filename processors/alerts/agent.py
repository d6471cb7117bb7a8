"""Alert agents on the processor's Faust app: rules in, articles matched, alerts delivered.

Flow (every arrow a Kafka topic, every state a changelog-backed table):

- rules topic (compacted, key = rule id) -> ``alert-rules`` agent -> ``rules`` GlobalTable
  and the in-memory ``RuleIndex`` (rebuilt from the table after recovery and re-synced by a
  timer, so every worker sees every rule without a restart);
- articles topic -> ``alert-match`` agent: ``RuleIndex.match`` (pure), one ``MatchEvent`` per
  matching article (with the ids of the rules it matched) to the ``alert-matches`` topic,
  which has ONE partition, so all alert state lives in one place (the alerts table);
- ``alert-matches`` -> ``alert-decide`` agent: ``decide.on_match``/``on_flush`` (pure) against
  the alert state table (key = story id, value = every rule's alert on it; changelog = the
  compacted alerts topic) and the per-rule outbox table, every rule of a match in one
  synchronous pass and one state write; then delivery
  through ``channels.Deliverer`` in bounded background tasks (a slow channel never delays
  the next article's alerts); a channel that still fails after its retries goes to the
  alert dead-letter topic, the other channels are unaffected.

Delivery guarantee: at-least-once, made effectively once. The alert state says ``sending``
(durably, in the changelog) before any channel is tried, and ``sent``/``partial``/``failed``
after. A worker that dies mid-delivery leaves ``sending`` behind: once the alerts table has
recovered, and then on every flush tick, alerts still ``sending`` longer than
``resend_after`` (default: twice the longest a delivery can take with all its retries) and
not being delivered by this worker are sent again to every channel of the rule (a
``resend`` event through the decide agent, the only writer of the table). The notification
is the same one (same alert id, same ``sending_at``), and webhook and Slack requests carry
``X-Newswire-Delivery: <rule>:<story>:<channel index>``, so a receiver that got it before
the crash drops the copy. A match whose state never reached the changelog is decided again
from its uncommitted offset: that too can only duplicate, never lose.

Secrets (webhook keys, Slack URLs) are looked up by name in ``AlertSettings`` at delivery;
rules, topics and logs carry only the names. A webhook is never sent unsigned. Webhook and
Slack URLs get the fetcher's address guard unless ``fetch.allow_private_networks``.

Faust acks an event whose agent raised and never retries it, so each agent catches
everything per event, dead-letters it with the reason, and moves on.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import faust
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from indexer.query import QuerySyntaxError
from newswire.records import Article, DeadLetter, utcnow
from newswire.settings import Settings
from processors.alerts.channels import Deliverer, RetryPolicy, SmtpSettings
from processors.alerts.decide import (
    Notification,
    Outcome,
    after_delivery,
    on_flush,
    on_match,
    on_resend,
    stuck,
)
from processors.alerts.matcher import RuleIndex, check_rule
from processors.alerts.models import Alert, MatchEvent, Outbox, StoryAlerts, alert_key
from processors.alerts.rules import Rule
from processors.alerts.settings import AlertSettings

log = logging.getLogger(__name__)

MATCHED = Counter("newswire_alert_matches_total", "Article x rule matches")
DECISIONS = Counter("newswire_alert_decisions_total", "What a match led to", ["outcome"])
DELIVERIES = Counter("newswire_alert_deliveries_total", "Channel deliveries", ["channel", "ok"])
DEAD = Counter("newswire_alert_dead_letters_total", "Alert dead letters", ["reason"])
LATENCY = Histogram("newswire_alert_latency_seconds", "Article ingested -> alert delivered",
                    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600))
MATCH_SECONDS = Histogram("newswire_alert_match_seconds", "RuleIndex.match per article",
                          buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5))

RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes}  # tables: raw bytes
RAW_TOPIC: dict[str, Any] = {**RAW, "key_serializer": "raw", "value_serializer": "raw"}


@dataclass
class AlertService:
    """What ``install`` registers; returned so tests and benchmarks can look inside."""

    settings: Settings
    deliverer: Deliverer
    alert_settings: AlertSettings = field(default_factory=AlertSettings)
    index: RuleIndex = field(default_factory=RuleIndex)
    rules: dict[str, Rule] = field(default_factory=dict)  # all, paused ones too
    raw_rules: dict[str, bytes] = field(default_factory=dict)
    synced: bool = False
    # deliveries in flight at once (background tasks); the decide agent waits beyond that
    limit: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(64))
    tables: dict[str, Any] = field(default_factory=dict)
    topics: dict[str, Any] = field(default_factory=dict)
    queued: set[str] = field(default_factory=set)  # rules with alerts held in their outbox
    inflight: set[asyncio.Task[None]] = field(default_factory=set)  # background deliveries
    # (rule id, story id) of alerts this worker is delivering now: never re-sent meanwhile
    delivering: set[tuple[str, str]] = field(default_factory=set)
    sending: set[str] = field(default_factory=set)  # stories with an alert still 'sending'
    recovered: bool = False  # the alerts table is complete: stuck alerts may be looked for
    resend_after: float = 120.0  # seconds 'sending' before an alert counts as cut off

    # ------------------------------------------------------------ rules

    def apply_rule(self, rule_id: str, raw: bytes | None) -> str | None:
        """Bring the in-memory rules in line with one table entry; returns a problem or None."""
        if raw is None:
            self.rules.pop(rule_id, None)
            self.raw_rules.pop(rule_id, None)
            self.index.remove(rule_id)
            return None
        if self.raw_rules.get(rule_id) == raw:
            return None
        try:
            rule = Rule.from_bytes(raw)
            self.index.add(rule)
        except ValidationError as exc:
            return f"bad_rule: {str(exc).splitlines()[0]}"
        except QuerySyntaxError as exc:
            return f"bad_query: {exc}"
        self.rules[rule_id] = rule
        self.raw_rules[rule_id] = raw
        return None

    def sync_rules(self) -> None:
        """Re-read the rules table (after recovery, and on a timer for other workers' changes)."""
        table = self.tables["rules"]
        self.synced = True
        current = {k.decode(): v for k, v in list(table.items())}
        for rule_id in set(self.rules) - set(current):
            self.apply_rule(rule_id, None)
        for rule_id, raw in current.items():
            problem = self.apply_rule(rule_id, raw)
            if problem:
                log.warning("alert rule unusable rule=%s reason=%s", rule_id, problem)


def install(app: faust.App, settings: Settings, *, alert_settings: AlertSettings | None = None,
            smtp: SmtpSettings | None = None, policy: RetryPolicy | None = None,
            flush_interval: float | None = None,
            sync_interval: float | None = None) -> AlertService:
    """Register the alert tables, agents and timers on ``app`` (call once, before start).

    ``alert_settings`` (secrets, digest windows, timer intervals) and ``smtp`` are read from
    the environment here when not given: the processor worker calls ``install(app, settings)``.
    """
    # the lead may nest AlertSettings in Settings (``settings.alerts``); until then, env
    conf = alert_settings or getattr(settings, "alerts", None) or AlertSettings()
    flush_interval = flush_interval or conf.flush_interval
    sync_interval = sync_interval or conf.sync_interval
    smtp = smtp or SmtpSettings()
    policy = policy or RetryPolicy()
    deliverer = Deliverer(smtp, policy, settings=conf,
                          allow_private_networks=settings.fetch.allow_private_networks)
    service = AlertService(settings, deliverer, alert_settings=conf,
                           resend_after=conf.resend_after or 2 * policy.total_seconds(
                               smtp.timeout))

    rules_topic = app.topic(settings.topic("alert-rules"), **RAW_TOPIC)
    articles_topic = app.topic(settings.topic("articles"), **RAW_TOPIC)
    matches_topic = app.topic(settings.topic("alert-matches"), partitions=1, internal=True,
                              retention=timedelta(days=7), **RAW_TOPIC)
    alerts_changelog = app.topic(settings.topic("alerts"), partitions=1, internal=True,
                                 compacting=True, deleting=False, **RAW_TOPIC)
    dead_topic = app.topic(settings.topic("dlq.alert"), **RAW_TOPIC)
    service.topics.update(rules=rules_topic, articles=articles_topic, matches=matches_topic,
                          dead=dead_topic)

    async def rebuild_index() -> None:
        service.sync_rules()
        log.info("alert rules loaded rules=%d active=%d unindexed=%d",
                 len(service.rules), len(service.index), service.index.unindexed)

    rules_table = app.GlobalTable("alert-rules", partitions=1, recovery_buffer_size=1,
                                  on_recover=rebuild_index, **RAW)
    async def find_stuck() -> None:
        try:
            service.sending = {k.decode() for k, v in list(alerts_table.items())
                               if b'"sending"' in v}  # a cheap pre-filter; checked when read
            service.recovered = True
            log.info("alert state recovered stories_sending=%d", len(service.sending))
            await resend_stuck()
        except Exception:  # must not stop the recovery of the other tables
            log.exception("alert stuck-delivery scan failed")

    alerts_table = app.Table("alert-state", partitions=1, changelog_topic=alerts_changelog,
                             on_recover=find_stuck, **RAW)
    outbox_table = app.Table("alert-outbox", partitions=1, **RAW)
    service.tables.update(rules=rules_table, alerts=alerts_table, outbox=outbox_table)

    async def resend_stuck() -> None:
        """Ask the decide agent to re-deliver alerts cut off mid-delivery (module docstring)."""
        if not service.recovered:
            return
        for (rule_id, since), stories in _stuck_groups(service).items():
            log.warning("alert re-delivery rule=%s stories=%d sending_since=%s", rule_id,
                        len(stories), since.isoformat())
            resend = MatchEvent(kind="resend", rule_ids=(rule_id,), story_id=stories[0],
                                stories=stories, sending_at=since)
            await matches_topic.send(key=stories[0].encode(), value=resend.to_bytes())

    async def dead_letter(event: faust.EventT | None, reason: str, error: str | None,
                          key: str | None = None, payload: str | None = None) -> None:
        DEAD.labels(reason.split(":", 1)[0]).inc()
        message = event.message if event is not None else None
        letter = DeadLetter(
            stage="alert", reason=reason, error=(error or "")[:2000] or None, key=key,
            topic=message.topic if message else None,
            partition=message.partition if message else None,
            offset=message.offset if message else None,
            # the whole original value: a cut one could not be replayed (`dlq replay alert`)
            payload=payload if payload is not None else (
                (message.value or b"").decode("utf-8", "replace") if message else None),
        )
        log.warning("dead letter stage=alert key=%s reason=%s error=%s", key, reason, error)
        headers = [("stage", b"alert"), ("reason", reason.encode()),
                   ("exception", (error or "")[:500].encode())]
        if message is not None:
            headers += [("original_topic", message.topic.encode()),
                        ("original_partition", str(message.partition).encode()),
                        ("original_offset", str(message.offset).encode())]
        try:
            await dead_topic.send(key=(key or "").encode() or None, value=letter.to_bytes(),
                                  headers=headers)
        except Exception:  # the DLQ itself failing must not kill the agent
            log.exception("dead letter could not be sent key=%s reason=%s", key, reason)

    @app.agent(rules_topic, name="alert-rules")
    async def rule_changes(stream: faust.StreamT) -> None:
        async for event in stream.events():
            key, value = event.key, event.value
            try:
                if not key:
                    await dead_letter(event, "bad_rule", "rule message without key")
                    continue
                rule_id = key.decode("utf-8", "replace")
                if value is not None:
                    problem = _rule_problem(rule_id, value)
                    if problem:
                        await dead_letter(event, "bad_rule", problem, key=rule_id)
                        continue
                    rules_table[key] = value
                elif key in rules_table:
                    del rules_table[key]
                service.apply_rule(rule_id, value)
                log.info("alert rule %s rule=%s active=%d", "updated" if value else "deleted",
                         rule_id, len(service.index))
            except Exception as exc:
                log.exception("alert rule agent bug")
                await dead_letter(event, "exception", _short(exc))

    @app.agent(articles_topic, name="alert-match")
    async def match_articles(stream: faust.StreamT) -> None:
        async for event in stream.events():
            try:
                article = Article.from_bytes(event.value or b"")
            except ValidationError as exc:
                await dead_letter(event, "bad_article", str(exc).splitlines()[0])
                continue
            try:
                if not service.synced:
                    service.sync_rules()
                with MATCH_SECONDS.time():
                    matched = service.index.match(article)
                if matched:
                    log.info("article matched article=%s story=%s rules=%d", article.id,
                             article.story_id, len(matched))
                    MATCHED.inc(len(matched))
                    match = MatchEvent.from_article(tuple(r.id for r in matched), article)
                    key = (article.story_id or article.id).encode()
                    await matches_topic.send(key=key, value=match.to_bytes())
            except Exception as exc:
                log.exception("alert match bug article=%s", article.id)
                await dead_letter(event, "exception", _short(exc), key=article.id)

    @app.agent(matches_topic, name="alert-decide")
    async def decide_alerts(stream: faust.StreamT) -> None:
        async for event in stream.events():
            try:
                match = MatchEvent.from_bytes(event.value or b"")
            except ValidationError as exc:
                await dead_letter(event, "bad_match", str(exc).splitlines()[0])
                continue
            if match.kind == "redeliver":
                try:
                    rule = service.rules.get(match.rule_ids[0]) if match.rule_ids else None
                    await _redeliver(service, rule, match, dead_letter, event)
                except Exception as exc:
                    log.exception("alert redelivery bug rules=%s", match.rule_ids)
                    await dead_letter(event, "exception", _short(exc), key=match.story_id)
                continue
            if match.kind == "resend":
                try:
                    sends, letters = _decide_resend(service, match), []
                except Exception as exc:
                    log.exception("alert re-delivery bug rules=%s", match.rule_ids)
                    sends, letters = [], [dead_letter(event, "exception", _short(exc),
                                                      key=match.story_id)]
            else:
                sends, letters = _decide_all(service, match, dead_letter, event)
            if letters:
                await asyncio.gather(*letters)
            # Deliveries run in the background, so a slow or failing channel (retries with
            # backoff take seconds) never holds up the decisions of the next articles; at
            # most ``limit`` at once, then the agent waits. The task inherits this event's
            # context, which is how it may still write the alert state to the table.
            for rule, note in sends:
                service.delivering.update((a.rule_id, a.story_id) for a in note.alerts)
                await service.limit.acquire()
                task = asyncio.create_task(
                    _deliver_safely(service, rule, note, dead_letter, event))
                service.inflight.add(task)
                task.add_done_callback(service.inflight.discard)

    @app.timer(interval=flush_interval, name="alert-flush")
    async def flush_due() -> None:
        try:
            await resend_stuck()
        except Exception:  # the flush below must still run
            log.exception("alert re-delivery check failed")
        now = utcnow()
        for key, raw in list(outbox_table.items()):
            try:
                box = Outbox.from_bytes(raw)
            except ValidationError:
                continue
            if box.pending:  # (also after a restart) this rule's matches must queue behind
                service.queued.add(box.rule_id)
            if box.pending and (box.due is None or box.due <= now):
                flush = MatchEvent(kind="flush", rule_ids=(box.rule_id,))
                await matches_topic.send(key=key, value=flush.to_bytes())

    @app.timer(interval=sync_interval, name="alert-rules-sync")
    async def resync_rules() -> None:
        service.sync_rules()

    @app.on_before_shutdown.connect
    async def _close(app: faust.App, **_: Any) -> None:  # noqa: ARG001
        if service.inflight:  # let deliveries under way finish (bounded: shutdown has ~7 s)
            log.info("alert deliveries in flight at shutdown count=%d", len(service.inflight))
            await asyncio.wait(set(service.inflight), timeout=5.0)
        await service.deliverer.aclose()

    service.topics["agents"] = (rule_changes, match_articles, decide_alerts)
    return service


def _rule_problem(rule_id: str, value: bytes) -> str | None:
    try:
        rule = Rule.from_bytes(value)
    except ValidationError as exc:
        return str(exc).splitlines()[0]
    if rule.id != rule_id:
        return f"rule id {rule.id!r} differs from its key"
    return check_rule(rule)


def _short(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:500]


def _decide_all(service: AlertService, match: MatchEvent, dead_letter: Any,
                event: faust.EventT) -> tuple[list[tuple[Rule, Notification]], list[Any]]:
    """Decide every rule of one match in one pass (table reads/writes, pure decisions).

    Returns what to deliver, and the dead letters of rules whose decision failed (a bug in
    one rule's decision must not stop the others). No await in here: the decisions of
    ~50 rules per article cost microseconds each, a task per rule cost more than the work;
    and their alert states are written together, one message per story.
    """
    sends: list[tuple[Rule, Notification]] = []
    letters: list[Any] = []
    states = _StateBatch(service)
    for rule_id in match.rule_ids:
        try:
            sent = _decide(service, rule_id, match, states)
        except Exception as exc:
            log.exception("alert decision bug rule=%s story=%s", rule_id, match.story_id)
            letters.append(dead_letter(event, "exception", _short(exc),
                                       key=alert_key(rule_id, match.story_id)))
            continue
        if sent is not None:
            sends.append(sent)
    try:
        states.write()
    except Exception as exc:  # nothing was delivered yet: say so, loudly, and go on
        log.exception("alert state write bug story=%s", match.story_id)
        letters.append(dead_letter(event, "exception", _short(exc), key=match.story_id))
        sends = []
    return sends, letters


def _stuck_groups(service: AlertService) -> dict[tuple[str, Any], tuple[str, ...]]:
    """(rule id, sending_at) -> stories of alerts cut off mid-delivery; not those in flight."""
    table = service.tables["alerts"]
    alerts: list[Alert] = []
    for story_id in list(service.sending):
        rec = _read_story(table, story_id)
        found = [a for a in rec.alerts.values() if a.status == "sending"]
        if not found:
            service.sending.discard(story_id)
        alerts += [a for a in found if (a.rule_id, a.story_id) not in service.delivering]
    return stuck(alerts, utcnow(), service.resend_after)


def _decide_resend(service: AlertService,
                   match: MatchEvent) -> list[tuple[Rule, Notification]]:
    if not service.synced:
        service.sync_rules()
    rule_id = match.rule_ids[0] if match.rule_ids else ""
    states = _StateBatch(service)
    current = [a for story in match.stories if (a := states.get(rule_id, story)) is not None
               and (a.rule_id, a.story_id) not in service.delivering]
    assert match.sending_at is not None, "a resend names the delivery to redo"
    outcome = on_resend(service.rules.get(rule_id), current, match.sending_at, utcnow())
    DECISIONS.labels(outcome.reason).inc()
    states.put(outcome.alerts)
    states.write()
    if outcome.send is None:
        return []
    return [(outcome.send.rule, outcome.send)]


class _StateBatch:
    """Alert states read and changed during one event, written once per story."""

    def __init__(self, service: AlertService) -> None:
        self.service = service
        self.table = service.tables["alerts"]
        self.records: dict[str, StoryAlerts] = {}
        self.changed: dict[str, list[Alert]] = {}

    def record(self, story_id: str) -> StoryAlerts:
        rec = self.records.get(story_id)
        if rec is None:
            rec = self.records[story_id] = _read_story(self.table, story_id)
        return rec

    def get(self, rule_id: str, story_id: str) -> Alert | None:
        for alert in reversed(self.changed.get(story_id, ())):  # this event's own changes
            if alert.rule_id == rule_id:
                return alert
        return self.record(story_id).alerts.get(rule_id)

    def put(self, alerts: tuple[Alert, ...]) -> None:
        for alert in alerts:
            self.changed.setdefault(alert.story_id, []).append(alert)

    def write(self) -> None:
        for story_id, alerts in self.changed.items():
            rec = self.record(story_id).with_alerts(alerts)
            self.table[story_id.encode()] = rec.to_bytes()
            if any(a.status == "sending" for a in rec.alerts.values()):
                self.service.sending.add(story_id)
            else:
                self.service.sending.discard(story_id)
        self.changed.clear()


def _read_story(table: Any, story_id: str) -> StoryAlerts:
    raw = table.get(story_id.encode())
    return StoryAlerts.from_bytes(raw) if raw else StoryAlerts(story_id=story_id)


async def _deliver_safely(service: AlertService, rule: Rule, note: Notification,
                          dead_letter: Any, event: faust.EventT) -> None:
    """A background delivery; the caller acquired ``service.limit`` for it."""
    try:
        await _deliver(service, rule, note, dead_letter, event)
    except Exception as exc:
        log.exception("alert delivery bug rule=%s alert=%s", rule.id, note.id)
        await dead_letter(event, "exception", _short(exc), key=note.id)
    finally:
        service.limit.release()
        service.delivering.difference_update((a.rule_id, a.story_id) for a in note.alerts)


def _decide(service: AlertService, rule_id: str, match: MatchEvent,
            states: _StateBatch) -> tuple[Rule, Notification] | None:
    outbox_table = service.tables["outbox"]
    rule = service.rules.get(rule_id)
    now = utcnow()
    if match.kind == "flush":
        raw_box = outbox_table.get(rule_id.encode())
        if raw_box is None:
            return None
        outbox = Outbox.from_bytes(raw_box)
        held = {story: alert for story in outbox.pending
                if (alert := states.get(rule_id, story)) is not None}
        outcome = on_flush(rule, outbox, held, now)
    else:
        if rule is None:  # deleted since the match: nothing to do
            DECISIONS.labels("no_rule").inc()
            return None
        existing = states.get(rule_id, match.story_id)
        outbox = None
        if existing is None and (rule.throttle or rule.digest or rule_id in service.queued):
            # only throttled/digest rules (or one that was, with alerts still queued) have
            # an outbox: a plain rule skips the lookup
            raw_box = outbox_table.get(rule_id.encode())
            outbox = Outbox.from_bytes(raw_box) if raw_box else None
        outcome = on_match(rule, match, existing, outbox, now,
                           service.alert_settings.digest_windows)
    DECISIONS.labels(outcome.reason).inc()
    log.debug("alert decision rule=%s story=%s outcome=%s", rule_id, match.story_id,
              outcome.reason)
    states.put(outcome.alerts)
    _store_outbox(service, outcome)
    if outcome.send is None or rule is None:
        return None
    return rule, outcome.send


def _store_outbox(service: AlertService, outcome: Outcome) -> None:
    box = outcome.outbox
    if box is not None:
        service.tables["outbox"][box.rule_id.encode()] = box.to_bytes()
        if box.pending:
            service.queued.add(box.rule_id)
        else:
            service.queued.discard(box.rule_id)


async def _redeliver(service: AlertService, rule: Rule | None, match: MatchEvent,
                     dead_letter: Any, event: faust.EventT) -> None:
    index = match.channel_index
    if rule is None or index is None or not 0 <= index < len(rule.channels):
        DECISIONS.labels("redeliver_dropped").inc()
        log.warning("redelivery dropped rule=%s channel_index=%s: rule or channel gone",
                    match.rule_ids, index)
        return
    table = service.tables["alerts"]
    alerts = [alert for story in match.stories
              if (alert := _read_story(table, story).alerts.get(rule.id)) is not None]
    if not alerts:
        DECISIONS.labels("redeliver_dropped").inc()
        return
    DECISIONS.labels("redeliver").inc()
    # the original send time keeps a digest's id (and so its delivery id) what it was
    note = Notification(match.notification_kind, rule, tuple(alerts),
                        alerts[0].sending_at or utcnow())
    await _deliver(service, rule, note, dead_letter, event, only=index)


async def _deliver(service: AlertService, rule: Rule, note: Notification, dead_letter: Any,
                   event: faust.EventT, only: int | None = None) -> None:
    targets = list(enumerate(rule.channels)) if only is None else [(only, rule.channels[only])]
    results = await service.deliverer.deliver_all(tuple(c for _, c in targets), note,
                                                  tuple(i for i, _ in targets))
    outcomes = list(results)
    base = note.alerts[0].deliveries
    if only is not None and len(base) == len(rule.channels):  # keep the other channels' results
        outcomes = [*base[:only], results[0], *base[only + 1:]]
    now = utcnow()
    # the state as it is now (a copy of the story may have been folded in meanwhile); no
    # await between this read and the write, so nothing else changes it in between
    states = _StateBatch(service)
    current = tuple(states.get(a.rule_id, a.story_id) or a for a in note.alerts)
    done = after_delivery(current, tuple(outcomes), now)
    states.put(done)
    states.write()
    if any(r.ok for r in results) and only is None:
        for alert in done:
            LATENCY.observe(max(0.0, (now - alert.first_seen).total_seconds()))
    for (index, channel), result in zip(targets, results, strict=True):
        DELIVERIES.labels(channel.type, str(result.ok).lower()).inc()
        if result.ok:
            continue
        # The payload names the rule by id and the channel by index: no URL, no secret.
        # Replayed to the matches topic (`newswire dlq replay alert`), it retries this channel.
        retry = MatchEvent(kind="redeliver", rule_ids=(rule.id,),
                           story_id=note.alerts[0].story_id,
                           stories=tuple(a.story_id for a in note.alerts),
                           channel_index=index, notification_kind=note.kind)
        await dead_letter(event, f"delivery_failed:{channel.type}", result.error, key=note.id,
                          payload=retry.to_bytes().decode())
    log.info("alert %s rule=%s alert=%s stories=%d channels_ok=%d/%d", note.kind, rule.id,
             note.id, len(note.alerts), sum(r.ok for r in results), len(results))
