"""CLI commands of the indexer service: ``newswire index`` and ``newswire search``.

``ctx.obj`` is the :class:`newswire.settings.Settings` built once by ``newswire.cli.main``.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click

from newswire.settings import Settings


def _settings(ctx: click.Context, data_dir: Path | None) -> Settings:
    from newswire.cli import settings_with  # late: newswire.cli imports this module

    return settings_with(ctx, data_dir=data_dir)


def parse_date(value: str, *, end: bool = False) -> datetime:
    """``YYYY-MM-DD`` or an ISO-8601 datetime (naive = UTC). ``end``: a bare date means the
    whole day, so the exclusive bound is the next midnight."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(), tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not a date: {value!r} (use YYYY-MM-DD or ISO-8601)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@click.command("index", help="Run the indexer: consume enriched articles from Kafka and write "
               "them to the search store (embedded tantivy index under the data dir, or "
               "Elasticsearch when NEWSWIRE_SEARCH__ELASTICSEARCH_URL is set). Offsets are "
               "committed only after the store has the batch; refused documents go to the "
               "dlq.index topic, but when more than half of the last 1,000 records would be "
               "dead-lettered it halts instead (exit code 3, nothing of that batch committed; "
               "NEWSWIRE_DEAD_LETTERS__*). "
               "Stops cleanly on SIGINT/SIGTERM.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where local state lives (default ./newswire-data, NEWSWIRE_DATA_DIR).")
@click.option("--membership", type=click.Choice(["auto", "assign", "group"]),
              help="Default: NEWSWIRE_INDEX__MEMBERSHIP, else auto. assign: read every partition itself (one indexer; the embedded store's "
              "default, its index has one writer); group: share partitions with other "
              "indexers through the consumer group (the Elasticsearch default).")
@click.pass_context
def index_cmd(ctx: click.Context, data_dir: Path | None, membership: str | None) -> None:
    from indexer.consumer import HALTED, IndexerOptions, run_indexer
    from indexer.store import StoreError
    from newswire import runtime

    try:
        settings = runtime.with_kafka(_settings(ctx, data_dir))
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    options = IndexerOptions.from_settings(settings, membership=membership)
    try:
        code = run_indexer(settings, stop, options=options)
    except StoreError as exc:  # e.g. another indexer holds the embedded index
        raise click.ClickException(f"search store: {exc}") from None
    if code == HALTED:
        click.echo("indexer halted: too many dead letters (see the log); nothing of the "
                   "failing batch was committed", err=True)
    sys.exit(code)


def _table(result: dict[str, Any]) -> str:
    lines = [f"{result['total']} results"]
    for hit in result["hits"]:
        day = (hit.get("published") or "")[:10]
        tags = ",".join(hit.get("conflicts") or []) or "-"
        countries = ",".join(hit.get("countries") or []) or "-"
        more = f"  (+{hit['more_outlets']} more outlets)" if hit.get("more_outlets") else ""
        lines.append(f"{day:10}  {hit.get('source') or '':28.28}  {tags:24.24}  {countries:10.10}"
                     f"  {(hit.get('title') or '(no title)')[:90]}{more}")
        lines.append(f"{'':12}{hit.get('url')}")
    for name, values in result.get("facets", {}).items():
        if values:
            shown = ", ".join(f"{v['value']} ({v['count']})" for v in values[:8])
            lines.append(f"{name}: {shown}")
    if result.get("next_cursor"):
        lines.append(f"next page: --cursor {result['next_cursor']}")
    return "\n".join(lines)


@click.command("search", help="Search the articles. QUERY: words (all must match), \"phrases\", "
               "AND/OR/NOT, +/-, (groups), field:value (title, text, source, feed, language, "
               "conflict, event_type, actors, country, story_id), prefix*, and * for "
               "everything. Prints a table, or with --json one object "
               "{total, hits:[{id,url,title,published,source,conflicts,event_types,countries,"
               "...}], facets, histogram}. Several words are joined into one query; quote '*' "
               "(or give no query) to match everything.")
@click.argument("query", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where local state lives (default ./newswire-data, NEWSWIRE_DATA_DIR).")
@click.option("--conflict", "conflicts", multiple=True, help="Conflict id (repeatable, ORed).")
@click.option("--country", "countries", multiple=True, help="ISO country code (repeatable).")
@click.option("--event-type", "event_types", multiple=True, help="Event type id (repeatable).")
@click.option("--source", "sources", multiple=True, help="Source host (repeatable).")
@click.option("--language", "languages", multiple=True, help="Language code (repeatable).")
@click.option("--since", help="Published on/after (YYYY-MM-DD or ISO-8601, UTC).")
@click.option("--until", help="Published before (ISO) or on (YYYY-MM-DD, whole day).")
@click.option("--sort", type=click.Choice(["relevance", "date"]), default="relevance",
              show_default=True)
@click.option("--size", type=click.IntRange(0, 500), default=20, show_default=True)
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--cursor", help="next_cursor of the previous page: deep paging (replaces --page).")
@click.option("--collapse", is_flag=True, help="One hit per story, with its other outlets.")
@click.pass_context
def search_cmd(ctx: click.Context, query: tuple[str, ...], as_json: bool, data_dir: Path | None,
               conflicts: tuple[str, ...], countries: tuple[str, ...],
               event_types: tuple[str, ...], sources: tuple[str, ...],
               languages: tuple[str, ...], since: str | None, until: str | None, sort: str,
               size: int, page: int, cursor: str | None, collapse: bool) -> None:
    from indexer.query import QuerySyntaxError
    from indexer.store import BadCursor, SearchRequest, StoreError, open_store

    settings = _settings(ctx, data_dir)
    if not settings.search.uses_elasticsearch and not (settings.data_dir / "index").exists():
        raise click.ClickException(
            f"no search index in {settings.data_dir} (run `newswire up` there first, or name "
            "the data dir with --data-dir)")
    try:
        req = SearchRequest(
            query=" ".join(query) or "*", conflicts=conflicts, event_types=event_types, countries=countries,
            sources=sources, languages=languages,
            since=parse_date(since) if since else None,
            until=parse_date(until, end=True) if until else None,
            sort=sort,  # type: ignore[arg-type]
            size=size, page=page, cursor=cursor, collapse_stories=collapse)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    store = open_store(settings)
    try:
        result = store.search(req).to_json()
    except QuerySyntaxError as exc:
        raise click.UsageError(f"bad query: {exc}") from None
    except BadCursor as exc:
        raise click.UsageError(f"--cursor: {exc}") from None
    except StoreError as exc:
        raise click.ClickException(f"search store unavailable: {exc}") from None
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        click.echo(_table(result))


commands: list[click.Command] = [index_cmd, search_cmd]
