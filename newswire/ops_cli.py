"""Operator commands: ``newswire status`` and ``newswire dlq list|show|replay``."""

from __future__ import annotations

import json

import click

from newswire import ops, runtime
from newswire.settings import Settings


def _settings(ctx: click.Context) -> Settings:
    try:
        return runtime.with_kafka(ctx.obj)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command(help="One-screen summary of the running pipeline: lag per stage, dead letters.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    settings = _settings(ctx)
    facts = ops.pipeline_status(settings)
    if as_json:
        click.echo(json.dumps(facts))
        return
    click.echo(f"kafka: {settings.kafka.bootstrap_servers}")
    click.echo(f"{'stage':<12}{'topic':<34}{'produced':>10}{'lag':>8}")
    for stage, row in facts["stages"].items():
        click.echo(f"{stage:<12}{row['topic']:<34}{row['produced']:>10}{row['lag']:>8}")
    dead = ", ".join(f"{stage}={n}" for stage, n in facts["dead_letters"].items())
    click.echo(f"dead letters: {dead}")


@click.group(help="Dead-letter topics: what each stage could not handle, and why.")
def dlq() -> None:
    pass


@dlq.command("list", help="Count dead letters per stage and reason.")
@click.pass_context
def dlq_list(ctx: click.Context) -> None:
    settings = _settings(ctx)
    for stage in ops.DLQ_STAGES:
        counts = ops.reason_counts(ops.read_dead_letters(settings, stage))
        total = sum(counts.values())
        click.echo(f"{stage}: {total}")
        for reason, n in counts.most_common():
            click.echo(f"  {n:>6}  {reason}")


@dlq.command("show", help="Print dead letters of one stage as JSON lines.")
@click.argument("stage", type=click.Choice(ops.DLQ_STAGES))
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def dlq_show(ctx: click.Context, stage: str, limit: int) -> None:
    settings = _settings(ctx)
    for letter in ops.read_dead_letters(settings, stage, limit=limit):
        click.echo(json.dumps({"partition": letter.partition, "offset": letter.offset,
                               "headers": letter.headers, **letter.value}, ensure_ascii=False))


@dlq.command("replay", help="Send dead letters back to their original topics (keys kept, "
             "so downstream upserts stay idempotent).")
@click.argument("stage", type=click.Choice(ops.DLQ_STAGES))
@click.option("--reason", help="Only letters whose reason starts with this.")
@click.pass_context
def dlq_replay(ctx: click.Context, stage: str, reason: str | None) -> None:
    sent = ops.replay(_settings(ctx), stage, reason=reason)
    click.echo(f"replayed {sent} message(s) from dlq.{stage}")


commands: list[click.Command] = [status, dlq]
