"""Operator commands: ``newswire status`` and ``newswire dlq list|show|replay``."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click
from kafka.errors import KafkaError

from newswire import ops, runtime
from newswire.settings import Settings


def _quiet_kafka() -> None:
    # These commands report Kafka failures themselves, in one line; kafka-python would add
    # a screen of reconnect warnings and close-time tracebacks. DEBUG keeps them.
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.CRITICAL)


def _settings(ctx: click.Context) -> Settings:
    _quiet_kafka()
    try:
        return runtime.with_kafka(ctx.obj)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc


def _kafka_failed(settings: Settings, exc: Exception) -> click.ClickException:
    why = str(exc) if str(exc).startswith(type(exc).__name__) else f"{type(exc).__name__}: {exc}"
    return click.ClickException(f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: {why}")


def _feed_summary(settings: Settings, now: float) -> dict[str, Any] | None:
    from ingest.cli import config_feed_urls
    from ingest.state import StateStore

    if not StateStore.path_for(settings).exists():
        return None  # never polled here; do not create state just to look at it
    config = config_feed_urls(settings)
    with StateStore.open(settings) as store:
        return store.summary(now, config, window=ops.RATE_WINDOW)


def _when(epoch: float | None, now: float) -> str:
    if not epoch:
        return "never"
    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    delta = epoch - now
    ago = abs(delta)
    span = f"{ago:.0f}s" if ago < 120 else f"{ago / 60:.0f}m" if ago < 7200 else f"{ago / 3600:.0f}h"
    return f"{stamp} ({'in ' + span if delta > 0 else span + ' ago'})"


def _echo_feeds(feeds: dict[str, Any] | None, now: float) -> None:
    if feeds is None:
        click.echo("feeds: none polled from this data dir yet")
        return
    share = feeds["not_modified_share"]
    click.echo(f"feeds: {feeds['feeds']} ({feeds['ok']} ok, {feeds['failing']} failing, "
               f"{feeds['unhealthy']} unhealthy, {feeds['new']} not polled yet"
               + (f"; {feeds['not_polled']} more stored but not in the settings"
                  if feeds["not_polled"] else "") + "); "
               f"304 share {'-' if share is None else f'{share:.0%}'}")
    click.echo(f"  last poll {_when(feeds['last_poll'], now)}; "
               f"next poll {_when(feeds['next_poll'], now)}")
    click.echo(f"  entries: {feeds['entries_published']} published, "
               f"{feeds['entries_rejected']} rejected, {feeds['new_entries']} new in the last "
               f"{feeds['window_s'] / 60:.0f} min"
               + ("  (details: newswire feeds status)" if feeds["failing"] or feeds["unhealthy"]
                  else ""))


@click.command(help="One-screen summary of the running pipeline: whether `newswire up` runs on "
               "this data dir, feed health and intake, per stage the messages produced, the "
               "consumer lag and the rate over the last 15 minutes, and dead letters per stage. "
               "Exits 1 when the pipeline's Kafka cannot be reached.")
@click.option("--json", "as_json", is_flag=True,
              help='Print one JSON object {"up","feeds","stages","dead_letters"}.')
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    _quiet_kafka()
    now = time.time()
    base: Settings = ctx.obj
    facts: dict[str, Any] = {"up": runtime.read(base), "feeds": _feed_summary(base, now)}
    if not as_json:
        up = facts["up"]
        click.echo(f"newswire up: running, pid {up['pid']}, page {up.get('web')}" if up else
                   f"newswire up: not running on {base.data_dir}")
        if up and up.get("halted"):
            click.echo(f"HALTED (too many dead letters, not restarted): {', '.join(up['halted'])}"
                       " -- see `newswire dlq list`, fix the cause, restart newswire up")
        _echo_feeds(facts["feeds"], now)
    try:
        settings = runtime.with_kafka(base)
        facts.update(ops.pipeline_status(settings, now))
    except RuntimeError as exc:
        if as_json:
            click.echo(json.dumps({**facts, "error": str(exc)}))
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KafkaError as exc:
        raise _kafka_failed(settings, exc) from exc
    if as_json:
        click.echo(json.dumps(facts))
        return
    click.echo(f"kafka: {settings.kafka.bootstrap_servers}")
    click.echo(f"{'stage':<12}{'topic':<30}{'produced':>10}{'lag':>8}{'per min':>10}")
    for stage, row in facts["stages"].items():
        rate = "-" if row["per_minute"] is None else f"{row['per_minute']:.1f}"
        click.echo(f"{stage:<12}{row['topic']:<30}{row['produced']:>10}{row['lag']:>8}{rate:>10}")
    dead = ", ".join(f"{stage}={n}" for stage, n in facts["dead_letters"].items())
    click.echo(f"dead letters: {dead}"
               + ("  (reasons: newswire dlq list)" if any(facts["dead_letters"].values()) else ""))


@click.group(help="Dead-letter topics: what each stage could not handle, and why.")
def dlq() -> None:
    pass


@dlq.command("list", help="Count dead letters per stage, and per reason among the newest "
             "--sample of each stage.")
@click.option("--sample", default=1000, show_default=True, type=click.IntRange(min=1),
              help="How many of the newest letters per stage to count reasons in.")
@click.pass_context
def dlq_list(ctx: click.Context, sample: int) -> None:
    settings = _settings(ctx)
    try:
        totals = ops.dead_letter_counts(settings)
        for stage in ops.DLQ_STAGES:
            click.echo(f"{stage}: {totals[stage]}")
            if not totals[stage]:
                continue
            counts = ops.reason_counts(ops.read_dead_letters(settings, stage, sample,
                                                             newest=True))
            if sum(counts.values()) < totals[stage]:
                click.echo(f"  reasons of the newest {sum(counts.values())}:")
            for reason, n in counts.most_common():
                click.echo(f"  {n:>6}  {reason}")
    except KafkaError as exc:
        raise _kafka_failed(settings, exc) from exc


@dlq.command("show", help="Print dead letters of one stage as JSON lines, oldest first: the "
             "letter's fields (stage, reason, error, original topic/partition/offset, key, "
             "payload), its headers, and its own place as dlq_partition/dlq_offset.")
@click.argument("stage", type=click.Choice(ops.DLQ_STAGES))
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def dlq_show(ctx: click.Context, stage: str, limit: int) -> None:
    settings = _settings(ctx)
    shown = 0
    try:
        for letter in ops.read_dead_letters(settings, stage, limit=limit):
            # The letter's own partition/offset would be overwritten by the original's.
            click.echo(json.dumps({**letter.value, "headers": letter.headers,
                                   "dlq_partition": letter.partition,
                                   "dlq_offset": letter.offset}, ensure_ascii=False))
            shown += 1
    except KafkaError as exc:
        raise _kafka_failed(settings, exc) from exc
    if not shown:
        click.echo(f"no dead letters in {settings.topic(f'dlq.{stage}')}", err=True)


@dlq.command("replay", help="Send dead letters back to their original topics (keys kept, "
             "so downstream upserts stay idempotent). The letters stay in the dead-letter "
             "topic, so a second replay sends them again; letters whose payload was cut "
             "short are skipped and counted.")
@click.argument("stage", type=click.Choice(ops.DLQ_STAGES))
@click.option("--reason", help="Only letters whose reason starts with this, e.g. fetch:.")
@click.pass_context
def dlq_replay(ctx: click.Context, stage: str, reason: str | None) -> None:
    settings = _settings(ctx)
    try:
        result = ops.replay(settings, stage, reason=reason)
    except KafkaError as exc:
        raise _kafka_failed(settings, exc) from exc
    click.echo(f"replayed {result.sent} message(s) from dlq.{stage}"
               + (f"; skipped {result.unreplayable} that cannot be replayed (payload cut "
                  "short or missing)" if result.unreplayable else ""))


commands: list[click.Command] = [status, dlq]
