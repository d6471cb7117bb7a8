"""``newswire alerts ...``: create, list, show, pause, resume, delete and dry-run alert rules."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from indexer.query import QuerySyntaxError
from newswire import runtime
from newswire.records import Article
from newswire.settings import Settings
from processors.alerts.matcher import check_rule, rule_matches
from processors.alerts.rules import (
    Channel,
    EmailChannel,
    FileChannel,
    Rule,
    RuleFilters,
    SlackChannel,
    StdoutChannel,
    WebhookChannel,
    secret_notes,
)
from processors.alerts.settings import load_alert_settings
from processors.alerts.store import RuleError, RuleStore


def _store(ctx: click.Context | Settings) -> RuleStore:
    settings = ctx.obj if isinstance(ctx, click.Context) else ctx
    try:
        return RuleStore(runtime.with_kafka(settings))
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc


def _filter_options(fn: Any) -> Any:
    options = [
        click.option("--conflict", "conflicts", multiple=True, help="Conflict id (repeatable)."),
        click.option("--event-type", "event_types", multiple=True,
                     help="Event type id, e.g. air_drone_strike (repeatable)."),
        click.option("--country", "countries", multiple=True,
                     help="ISO country code (repeatable)."),
        click.option("--source", "sources", multiple=True, help="Source host (repeatable)."),
        click.option("--language", "languages", multiple=True,
                     help="Language code (repeatable)."),
        click.option("--min-killed", type=click.IntRange(min=0),
                     help="Only stories with at least this many killed."),
        click.option("--min-casualties", type=click.IntRange(min=0),
                     help="Only stories with at least this many killed + injured."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _filters(kw: dict[str, Any]) -> RuleFilters:
    return RuleFilters(conflicts=kw["conflicts"], event_types=kw["event_types"],
                       countries=kw["countries"], sources=kw["sources"],
                       languages=kw["languages"], min_killed=kw["min_killed"],
                       min_casualties=kw["min_casualties"])


def _describe(rule: Rule) -> str:
    f = rule.filters
    parts = [f"query={rule.query or '*'}"]
    for name in ("conflicts", "event_types", "countries", "sources", "languages"):
        if getattr(f, name):
            parts.append(f"{name}={','.join(getattr(f, name))}")
    for name in ("min_killed", "min_casualties"):
        if getattr(f, name) is not None:
            parts.append(f"{name}={getattr(f, name)}")
    channels = ",".join(c.label for c in rule.channels) or "none"
    extra = f" throttle={rule.throttle:g}s" if rule.throttle else ""
    extra += f" digest={rule.digest}" if rule.digest else ""
    state = "paused" if rule.paused else "active"
    return f"{rule.id}  {state:<6}  {rule.name}  [{' '.join(parts)}] -> {channels}{extra}"


@click.group(help="Alert rules: saved searches that notify on new matching stories.")
def alerts() -> None:
    pass


@alerts.command(help="Create a rule. QUERY uses the search syntax (empty string = everything).")
@click.argument("name")
@click.argument("query")
@_filter_options
@click.option("--webhook", "webhooks", multiple=True,
              help="Webhook URL (JSON POST signed with HMAC-SHA256, header "
                   "X-Newswire-Signature; never sent unsigned). Loopback/private addresses "
                   "need --allow-private-networks / NEWSWIRE_FETCH__ALLOW_PRIVATE_NETWORKS.")
@click.option("--secret-name", default="default", show_default=True,
              help="Name of the secret that signs the webhooks: the workers read it from "
                   "NEWSWIRE_ALERTS__SECRETS__<NAME>; without it there a webhook is not sent "
                   "(dead letter 'secret_missing:<name>').")
@click.option("--slack-secret", "slacks", multiple=True, metavar="NAME",
              help="Slack-compatible incoming webhook: name of the secret holding its URL "
                   "(NEWSWIRE_ALERTS__SECRETS__<NAME>).")
@click.option("--email", "emails", multiple=True, help="E-mail address (repeatable).")
@click.option("--file", "files", multiple=True, type=click.Path(dir_okay=False),
              help="Append alerts as JSON lines to this file.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print alerts on the worker's stdout.")
@click.option("--throttle", type=click.FloatRange(min=0), default=0.0,
              help="Minimum seconds between two alerts of this rule (extra ones are batched).")
@click.option("--digest", type=click.Choice(["hourly", "daily"]),
              help="Send one summary per hour/day instead of one message per story.")
@click.option("--allow-private-networks", is_flag=True,
              help="Accept webhook URLs on loopback/private addresses (as `newswire up "
                   "--allow-private-networks`; the workers must allow them too, or refuse "
                   "to deliver).")
@click.option("--paused", is_flag=True, help="Create it paused.")
@click.option("--json", "as_json", is_flag=True, help="Print the rule as JSON.")
@click.pass_context
def create(ctx: click.Context, name: str, query: str, webhooks: tuple[str, ...],
           secret_name: str | None, slacks: tuple[str, ...], emails: tuple[str, ...],
           files: tuple[str, ...], to_stdout: bool, throttle: float, digest: str | None,
           allow_private_networks: bool, paused: bool, as_json: bool, **filters: Any) -> None:
    channels: list[Channel] = []
    try:
        channels += [WebhookChannel(url=u, secret_name=secret_name or None) for u in webhooks]
        channels += [SlackChannel(url_secret=n) for n in slacks]
        if emails:
            channels.append(EmailChannel(to=emails))
        channels += [FileChannel(path=str(Path(p).resolve())) for p in files]
        if to_stdout:
            channels.append(StdoutChannel())
        rule = Rule(name=name, query=query, filters=_filters(filters), channels=tuple(channels),
                    throttle=throttle, digest=digest, paused=paused)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise click.ClickException(_validation_message(exc)) from None
    if not channels:
        click.echo("warning: the rule has no channel; its alerts are only recorded", err=True)
    settings = ctx.obj
    if allow_private_networks:
        settings = settings.model_copy(update={"fetch": settings.fetch.model_copy(
            update={"allow_private_networks": True})})
    with _store(settings) as store:
        try:
            store.save(rule)
        except RuleError as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(rule.public()))
    else:
        click.echo(f"created {_describe(rule)}")
    for line in secret_notes(rule, load_alert_settings()):
        click.echo(line, err=True)


@alerts.command("list", help="List the rules.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    with _store(ctx) as store:
        rules = store.all_rules()
    for rule in rules:
        click.echo(json.dumps(rule.public()) if as_json else _describe(rule))
    if not rules and not as_json:
        click.echo("no alert rules")


@alerts.command(help="Show one rule (by id or name) and its latest alerts.")
@click.argument("rule")
@click.option("--limit", default=10, show_default=True, help="How many recent alerts.")
@click.pass_context
def show(ctx: click.Context, rule: str, limit: int) -> None:
    with _store(ctx) as store:
        found = _get(store, rule)
        recent = store.alerts(found.id, limit=limit)
    click.echo(json.dumps({"rule": found.public(),
                           "alerts": [a.model_dump(mode="json") for a in recent]}, indent=2))


def _get(store: RuleStore, rule: str) -> Rule:
    try:
        found = store.get(rule)
    except RuleError as exc:
        raise click.ClickException(str(exc)) from None
    if found is None:
        raise click.ClickException(f"no alert rule {rule!r}")
    return found


def _set_paused(ctx: click.Context, rule: str, paused: bool) -> None:
    with _store(ctx) as store:
        try:
            done = store.set_paused(rule, paused)
        except RuleError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{'paused' if paused else 'resumed'} {done.id} {done.name}")


@alerts.command(help="Pause a rule (no alerts until resumed).")
@click.argument("rule")
@click.pass_context
def pause(ctx: click.Context, rule: str) -> None:
    _set_paused(ctx, rule, True)


@alerts.command(help="Resume a paused rule (stories ingested from now on).")
@click.argument("rule")
@click.pass_context
def resume(ctx: click.Context, rule: str) -> None:
    _set_paused(ctx, rule, False)


@alerts.command(help="Delete a rule.")
@click.argument("rule")
@click.pass_context
def delete(ctx: click.Context, rule: str) -> None:
    with _store(ctx) as store:
        try:
            done = store.delete(rule)
        except RuleError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"deleted {done.id} {done.name}")


class BadTestInput(click.ClickException):
    """`alerts test` keeps exit 1 for "no match": bad input is 2, as for usage errors."""

    exit_code = 2


@alerts.command(help="Dry-run: does an article (JSON file, '-' = stdin) match a rule? Give a "
                "stored rule with --rule, or --query and filters for an unsaved one. "
                "Exit status 0 = match, 1 = no match, 2 = bad input.")
@click.argument("article", type=click.File("r"))
@click.option("--rule", "rule_ref", help="Stored rule id or name.")
@click.option("--query", default=None, help="Query of an unsaved rule.")
@_filter_options
@click.pass_context
def test(ctx: click.Context, article: Any, rule_ref: str | None, query: str | None,
         **filters: Any) -> None:
    try:
        doc = Article.model_validate_json(article.read())
    except ValidationError as exc:
        raise BadTestInput(f"not an Article: {_validation_message(exc)}") from None
    if rule_ref:
        with _store(ctx) as store:
            rule = _get(store, rule_ref)
    else:
        rule = Rule(name="dry-run", query=query or "", filters=_filters(filters))
    problem = check_rule(rule)
    if problem:
        raise BadTestInput(problem)
    try:
        hit = rule_matches(rule, doc)
    except QuerySyntaxError as exc:  # pragma: no cover - check_rule caught it
        raise BadTestInput(str(exc)) from None
    click.echo(json.dumps({"match": hit, "rule": rule.id, "article": doc.id,
                           "story_id": doc.story_id}))
    sys.exit(0 if hit else 1)


@alerts.command(help="Which secrets do the rules name, and does this environment set them? "
                     "(NEWSWIRE_ALERTS__SECRETS__<NAME>; values are never shown.) Run it where "
                     "the processor runs. Exit status 1 = a required secret is missing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def secrets(ctx: click.Context, as_json: bool) -> None:
    known = load_alert_settings()
    with _store(ctx) as store:
        rules = store.all_rules()
    users: dict[str, list[str]] = {}
    for rule in rules:
        for name in rule.secret_names():
            users.setdefault(name, []).append(rule.id)
    # every named secret is required: a webhook is never sent unsigned ('default' signs
    # those that name none)
    report = {name: {"set": known.secret(name) is not None, "rules": ids,
                     "required": True} for name, ids in sorted(users.items())}
    missing = [n for n, r in report.items() if r["required"] and not r["set"]]
    if as_json:
        click.echo(json.dumps({"secrets": report, "missing": missing}))
    else:
        for name, r in report.items():
            state = "set" if r["set"] else "MISSING"
            click.echo(f"{name:<24} {state:<16} NEWSWIRE_ALERTS__SECRETS__{name.upper()}  "
                       f"rules: {', '.join(r['rules'])}")
        if not report:
            click.echo("no rule names a secret")
    sys.exit(1 if missing else 0)


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


commands: list[click.Command] = [alerts]

