"""CLI commands of the ingest service: ``newswire poll`` and ``newswire feeds ...``.

``print`` (click.echo) happens here only; the service code logs.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from newswire.settings import Settings


def _settings(ctx: click.Context, *, data_dir: Path | None = None,
              allow_private_networks: bool | None = None, **updates: Any) -> Settings:
    from newswire.cli import settings_with

    settings = settings_with(ctx, data_dir=data_dir)
    if allow_private_networks:
        updates["fetch"] = settings.fetch.model_copy(update={"allow_private_networks": True})
    return settings.model_copy(update=updates) if updates else settings


_data_dir = click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
                         help="Where local state lives (also NEWSWIRE_DATA_DIR).")
_private = click.option("--allow-private-networks", is_flag=True, default=None,
                        help="Allow fetching loopback/private addresses (refused by default).")


def _hint(reason: str | None) -> str:
    # A refused loopback/private address is the first thing anyone trying it locally meets.
    if reason == "blocked_address":
        return (" (private and loopback addresses are refused by default: add "
                "--allow-private-networks, or set NEWSWIRE_FETCH__ALLOW_PRIVATE_NETWORKS=true)")
    return ""


def _iso(epoch_or_dt: float | datetime | None) -> str | None:
    if epoch_or_dt is None:
        return None
    if isinstance(epoch_or_dt, datetime):
        return epoch_or_dt.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return datetime.fromtimestamp(epoch_or_dt, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


# --- poll ---------------------------------------------------------------------------------


async def _dry_run(settings: Settings, targets: tuple[str, ...]) -> int:
    from ingest.parse import ParsedFeed, parse_feed
    from ingest.poller import fetch_feed
    from newswire.http import Fetcher

    read_any = False
    fetcher: Fetcher | None = None  # made on first URL: reading files needs no network
    try:
        for target in targets:
            path = Path(target)
            parsed: ParsedFeed | None
            if "://" not in target and not path.is_file():
                click.echo(f"error: {target}: no such file (and not an http(s) URL)", err=True)
                continue
            if "://" not in target:
                try:
                    parsed = parse_feed(path.read_bytes(), target)
                except OSError as exc:
                    click.echo(f"error: cannot read {target}: {exc}", err=True)
                    continue
            else:
                fetcher = fetcher or Fetcher(settings.fetch)
                polled = await fetch_feed(fetcher, target)
                if polled.result.reason is not None:
                    click.echo(f"error: {target}: {polled.result.reason}: {polled.result.error}"
                               + _hint(polled.result.reason), err=True)
                    continue
                parsed = polled.parsed
            assert parsed is not None
            if parsed.reason is not None:
                click.echo(f"error: {target}: {parsed.reason}"
                           + (f" ({parsed.bozo})" if parsed.bozo else ""), err=True)
                continue
            read_any = True
            for entry in parsed.entries:
                click.echo(json.dumps({
                    "id": entry.key, "url": entry.url, "title": entry.title,
                    "published": _iso(entry.published), "summary": entry.summary,
                    "feed": entry.feed,
                }, ensure_ascii=False))
            reasons: dict[str, int] = {}
            for rejection in parsed.rejected:
                reasons[rejection.reason] = reasons.get(rejection.reason, 0) + 1
            click.echo(
                f"feed={target} entries={len(parsed.entries)} rejected={len(parsed.rejected)}"
                + "".join(f" {k}={v}" for k, v in sorted(reasons.items()))
                + (f" bozo={parsed.bozo!r}" if parsed.bozo else ""),
                err=True,
            )
    finally:
        if fetcher is not None:
            await fetcher.aclose()
    return 0 if read_any else 1


@click.command(help="Run the feed poller until SIGINT/SIGTERM, publishing new entries to Kafka.\n\n"
               "With --once every feed is polled one time. With --dry-run (implies --once) the "
               "given URLs or files are fetched/read and parsed, one JSON line per entry "
               '{"id","url","title","published","summary","feed"} is printed, and nothing is '
               "published or stored. Feeds come from --feed, --feeds, NEWSWIRE_FEEDS, "
               "`newswire feeds add`, or the built-in list.")
@click.argument("targets", nargs=-1)
@click.option("--once", is_flag=True, help="Poll every feed once, then exit.")
@click.option("--dry-run", is_flag=True, help="Print entries as JSON lines; publish nothing.")
@click.option("--feed", "feeds", multiple=True, help="Feed URL to poll (repeatable).")
@click.option("--feeds", "feeds_file", type=click.Path(path_type=Path, dir_okay=False),
              help="File of feed URLs, one per line, or an OPML file.")
@click.option("--websub-callback", metavar="URL",
              help="Public base URL of the WebSub callback listener; feeds that advertise a hub "
                   "are then subscribed for push (and polled only as a safety net). "
                   "Setting: NEWSWIRE_POLL__WEBSUB_CALLBACK.")
@click.option("--websub-listen", metavar="HOST:PORT",
              help="Where the WebSub callback listener binds (default 127.0.0.1:8601). "
                   "Setting: NEWSWIRE_POLL__WEBSUB_LISTEN.")
@_data_dir
@_private
@click.pass_context
def poll(ctx: click.Context, targets: tuple[str, ...], once: bool, dry_run: bool,
         feeds: tuple[str, ...], feeds_file: Path | None, websub_callback: str | None,
         websub_listen: str | None, data_dir: Path | None,
         allow_private_networks: bool | None) -> None:
    updates: dict[str, Any] = {}
    if feeds or targets:
        updates["feeds"] = [*ctx.obj.feeds, *feeds, *targets]
    if feeds_file:
        updates["feeds_file"] = feeds_file
    settings = _settings(ctx, data_dir=data_dir, allow_private_networks=allow_private_networks,
                         **updates)
    if dry_run:
        if not targets:
            raise click.UsageError("--dry-run needs a feed URL or file path")
        sys.exit(asyncio.run(_dry_run(settings, targets)))
    from ingest.poller import run_poller

    if not settings.kafka.bootstrap_servers:
        raise click.UsageError("no Kafka named: set NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS, or run "
                               "`newswire up` which starts the embedded broker")
    websub = None
    websub_callback = websub_callback or settings.poll.websub_callback
    websub_listen = websub_listen or settings.poll.websub_listen
    if websub_callback:
        from ingest.websub import WebSubConfig

        host, _, port = websub_listen.rpartition(":")
        if not port.isdigit():
            raise click.BadParameter("expected HOST:PORT", param_hint="--websub-listen")
        websub = WebSubConfig(callback_base=websub_callback, host=host or "127.0.0.1",
                              port=int(port))
    sys.exit(run_poller(settings, once=once, websub=websub))


# --- feeds --------------------------------------------------------------------------------


def _say_when_polled(settings: Settings) -> None:
    from ingest.poller import RELOAD_EVERY
    from newswire import runtime

    if runtime.read(settings):
        click.echo(f"the running `newswire up` picks changes up within {RELOAD_EVERY:.0f} s",
                   err=True)
    else:
        click.echo("polled when `newswire up` (or `newswire poll`) runs on this data dir",
                   err=True)


def config_feed_urls(settings: Settings) -> list[str]:
    """The feeds the settings name: those of the running ``newswire up`` on this data dir
    (its --feed/--feeds are not in this command's settings), else this command's own."""
    from ingest.poller import configured_feed_urls
    from newswire import runtime

    facts = runtime.read(settings)
    if facts and isinstance(facts.get("feeds"), list):
        return [str(u) for u in facts["feeds"]]
    try:
        return configured_feed_urls(settings)
    except (OSError, ValueError):  # an unreadable feeds file: `up` says so when it starts
        return [u.strip() for u in settings.feeds if u.strip()]


@click.group(help="Manage the polled feeds (stored under the data dir).")
def feeds() -> None:
    pass


def _store(settings: Settings) -> Any:
    from ingest.state import StateStore

    return StateStore.open(settings)


async def _discover(settings: Settings, url: str) -> tuple[list[str], str | None]:
    """Feed URLs for ``url``: itself if it is a feed, else those its page announces or that
    answer at common paths. Returns (feeds, error)."""
    from ingest.discover import common_feed_urls, discover_feed_links
    from ingest.poller import fetch_feed
    from newswire.http import Fetcher

    async with Fetcher(settings.fetch) as fetcher:
        polled = await fetch_feed(fetcher, url)
        if polled.result.reason is not None:
            return [], (f"{polled.result.reason}: {polled.result.error}"
                        + _hint(polled.result.reason))
        if polled.parsed is not None and polled.parsed.ok:
            return [url], None
        candidates = discover_feed_links(polled.result.body, polled.result.final_url)
        declared = bool(candidates)
        if not declared:
            candidates = common_feed_urls(polled.result.final_url)
        found: list[str] = []
        for candidate in candidates[:10]:
            attempt = await fetch_feed(fetcher, candidate)
            if attempt.parsed is not None and attempt.parsed.ok:
                found.append(candidate)
                if not declared:
                    break  # one common path that works is enough
        return found, None if found else "no feed found on the page or at common paths"


@feeds.command("add", help="Add a feed. A site's home page URL is looked at for its feeds "
               '(<link rel="alternate">, then common paths like /feed and /rss.xml).')
@click.argument("url")
@click.option("--no-discover", is_flag=True, help="Add the URL as given, without fetching it.")
@click.option("--all", "add_all", is_flag=True, help="Add every feed the page announces.")
@_data_dir
@_private
@click.pass_context
def feeds_add(ctx: click.Context, url: str, no_discover: bool, add_all: bool,
              data_dir: Path | None, allow_private_networks: bool | None) -> None:
    from ingest.opml import url_problem

    problem = url_problem(url)
    if problem:
        click.echo(f"error: {url}: {problem}; a feed or site address looks like "
                   "https://example.org/feed", err=True)
        sys.exit(2)
    settings = _settings(ctx, data_dir=data_dir, allow_private_networks=allow_private_networks)
    if no_discover:
        found = [url]
    else:
        found, error = asyncio.run(_discover(settings, url))
        if error:
            click.echo(f"error: {url}: {error}", err=True)
            sys.exit(1)
        if not add_all:
            if len(found) > 1:
                click.echo("also announced (add with --all): " + " ".join(found[1:]), err=True)
            found = found[:1]
    with _store(settings) as store:
        for feed_url in found:
            added = store.add_feed(feed_url, "cli")
            click.echo(f"{'added' if added else 'already present'}: {feed_url}")
    _say_when_polled(settings)


@feeds.command("remove", help="Stop polling a feed and forget its state.")
@click.argument("url")
@_data_dir
@click.pass_context
def feeds_remove(ctx: click.Context, url: str, data_dir: Path | None) -> None:
    settings = _settings(ctx, data_dir=data_dir)
    with _store(settings) as store:
        known = store.feed(url)
        if known is None or not store.remove_feed(url):
            click.echo(f"error: not a known feed: {url} (see `newswire feeds list`)", err=True)
            sys.exit(1)
    click.echo(f"removed: {url}")
    if url in settings.feeds or known.origin in ("config", "default"):
        # Named by --feed/--feeds/NEWSWIRE_FEEDS (or the built-in list): the next start that
        # names it again adds it again; only the settings can drop it for good.
        click.echo(f"note: it came from {'the built-in list' if known.origin == 'default' else 'the settings (--feed, --feeds, NEWSWIRE_FEEDS)'}"
                   " and comes back when newswire starts with them again", err=True)


@feeds.command("list", help="List the feeds: URL, origin (cli, opml, config = named by "
               "--feed/--feeds/NEWSWIRE_FEEDS, default = the built-in list) and title. Stored "
               "feeds that the current settings (those of a running `newswire up`) do not poll "
               'are marked "not polled".')
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_data_dir
@click.pass_context
def feeds_list(ctx: click.Context, as_json: bool, data_dir: Path | None) -> None:
    from ingest.state import polled

    settings = _settings(ctx, data_dir=data_dir)
    with _store(settings) as store:
        stored = store.feeds()
    config = config_feed_urls(settings)
    active = {f.url for f in polled(stored, config)}
    rows = [{"url": f.url, "title": f.title, "origin": f.origin, "fetch_url": f.fetch_url,
             "polled": f.url in active} for f in stored]
    known = {f.url for f in stored}
    rows += [{"url": u, "title": None, "origin": "config", "fetch_url": u, "polled": True}
             for u in config if u not in known]
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            click.echo(f"{row['url']}\t{row['origin']}\t{row['title'] or ''}"
                       + ("" if row["polled"] else "\t(not polled)"))


@feeds.command("status", help="Per feed: last success, last error, share of 304 answers, "
               "entries per day, next poll, health.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_data_dir
@click.pass_context
def feeds_status(ctx: click.Context, as_json: bool, data_dir: Path | None) -> None:
    from ingest.state import polled

    settings = _settings(ctx, data_dir=data_dir)
    now = time.time()
    with _store(settings) as store:
        stored = store.feeds()
    active = {f.url for f in polled(stored, config_feed_urls(settings))}
    if not stored and not as_json:
        click.echo("no feeds yet (add some with `newswire feeds add URL`)")
    for f in stored:
        row = {
            "url": f.url, "fetch_url": f.fetch_url, "title": f.title, "origin": f.origin,
            "polls": f.polls, "last_success": _iso(f.last_success), "last_poll": _iso(f.last_poll),
            "last_status": f.last_status, "last_error": f.last_error,
            "last_error_reason": f.last_error_reason, "errors_in_row": f.error_count,
            "errors": f.errors, "not_modified_share": round(f.not_modified_share, 3),
            "entries_published": f.entries_published, "entries_rejected": f.entries_rejected,
            "entries_per_day": round(f.entries_per_day(now), 2),
            "interval_s": round(f.interval, 1) if f.interval else None,
            "next_poll": _iso(f.next_poll) if f.next_poll else "now",
            "unhealthy": f.unhealthy, "websub_hub": f.hub, "polled": f.url in active,
        }
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
            continue
        health = ("not polled (not in the current settings)" if f.url not in active
                  else "UNHEALTHY" if f.unhealthy else "error" if f.error_count
                  else "new" if not f.polls else "ok")
        click.echo(f"{f.url}\n  {health}  polls={f.polls}  304={row['not_modified_share']:.0%}  "
                   f"entries/day={row['entries_per_day']}  last_success={row['last_success']}  "
                   f"next_poll={row['next_poll']}")
        if f.last_error_reason:
            click.echo(f"  last_error={f.last_error_reason}: {(f.last_error or '')[:160]}")


@feeds.command("import", help="Add every feed of an OPML file (or a file of URLs, one a line, "
               "'#' comments). Lines that are not http(s) URLs are skipped and named; a file "
               "with no feed in it is an error.")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_data_dir
@click.pass_context
def feeds_import(ctx: click.Context, file: Path, data_dir: Path | None) -> None:
    from ingest.opml import FeedListError, read_feed_list, url_problem

    settings = _settings(ctx, data_dir=data_dir)
    try:
        listed = read_feed_list(file)
    except (FeedListError, OSError) as exc:
        click.echo(f"error: {file}: {exc}", err=True)
        sys.exit(1)
    bad = [(f.url, url_problem(f.url)) for f in listed if url_problem(f.url)]
    for url, problem in bad:
        click.echo(f"skipped: {url[:200]}: {problem}", err=True)
    listed = [f for f in listed if not url_problem(f.url)]
    if not listed:
        click.echo(f"error: {file}: no feed URLs in it (expected OPML, or one http(s) URL a "
                   "line)", err=True)
        sys.exit(1)
    with _store(settings) as store:
        added = store.add_feeds((feed.url for feed in listed), "opml")
    click.echo(f"imported {added} new feed(s), {len(listed) - added} already present"
               + (f", {len(bad)} skipped" if bad else ""))
    _say_when_polled(settings)


@feeds.command("export", help="Print the feeds as OPML 2.0.")
@_data_dir
@click.pass_context
def feeds_export(ctx: click.Context, data_dir: Path | None) -> None:
    from ingest.opml import ListedFeed, to_opml
    from ingest.poller import configured_feed_urls

    settings = _settings(ctx, data_dir=data_dir)
    with _store(settings) as store:
        listed = [ListedFeed(f.fetch_url, f.title) for f in store.feeds()]
    known = {f.url for f in listed}
    listed += [ListedFeed(u) for u in configured_feed_urls(settings) if u not in known]
    click.echo(to_opml(listed), nl=False)


commands: list[click.Command] = [poll, feeds]
