"""Re-run cleaning and tagging over archived pages (after an extractor or taxonomy upgrade)
and publish the new ``Article`` records; the indexer upserts them by key.

The pure part (``reprocess_page``) turns one stored page into an ``Article`` or a reason;
``reprocess`` is the I/O edge: page store in, Kafka out, story index kept in step.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from newswire.records import Article, FeedEntry, Tags
from newswire.settings import Settings
from processors.clean import Rejected, build_article, clean
from processors.fingerprint import StoryIndex, simhash
from processors.pagestore import PageStore, StoredPage

log = logging.getLogger(__name__)

Tagger = Callable[[str | None, str], Tags]


def state_dir(settings: Settings) -> Path:
    """Where the processors keep their files (the worker uses the same place)."""
    return settings.data_dir / "processors"


def pages_path(settings: Settings) -> Path:
    return state_dir(settings) / "pages.sqlite"


def stories_path(settings: Settings) -> Path:
    return state_dir(settings) / "stories.sqlite"


def default_tagger() -> Tagger:
    """``processors.tag.tag`` when the tagging module is there, else no tags (logged)."""
    try:
        from processors.tag import tag
    except ImportError as exc:
        log.warning("tagging unavailable, articles get no tags reason=%s", exc)
        return lambda _title, _text: Tags()
    return tag  # type: ignore[no-any-return]


@dataclass
class Outcome:
    article: Article | None
    fingerprint: int | None = None
    reason: str | None = None
    detail: str | None = None


def reprocess_page(page: StoredPage, tagger: Tagger) -> Outcome:
    """One stored page -> a fresh Article (without story id) or why not. Pure."""
    try:
        entry = FeedEntry.model_validate_json(page.feed_entry_json)
    except ValueError as exc:
        return Outcome(None, reason="bad_feed_entry", detail=str(exc)[:200])
    cleaned = clean(page.body, page.url, content_type=page.content_type,
                    feed_title=entry.title, feed_summary=entry.summary,
                    feed_published=entry.published)
    if isinstance(cleaned, Rejected):
        return Outcome(None, reason=cleaned.reason, detail=cleaned.detail)
    tags = tagger(cleaned.title or entry.title, cleaned.text)
    fingerprint = simhash(cleaned.text) if cleaned.text else None
    article = build_article(entry, cleaned, tags, story_id=None,
                            fingerprint=f"{fingerprint:016x}" if fingerprint is not None else None,
                            ingested=page.fetched_at,  # when it first came in, not now
                            fetched_url=page.url, redirects=page.redirects)
    return Outcome(article, fingerprint)


@dataclass
class Stats:
    seen: int = 0
    published: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


def reprocess(
    pages: PageStore,
    stories: StoryIndex,
    send: Callable[[Article], Any],
    *,
    since: datetime | None = None,
    source: str | None = None,
    tagger: Tagger | None = None,
    progress: bool = True,
) -> Stats:
    """Re-extract every stored page matching the filters and ``send`` each new Article."""
    from tqdm import tqdm

    tagger = tagger or default_tagger()
    total = pages.count(since, source)
    stats = Stats()
    items: Iterable[StoredPage] = pages.iter(since, source)
    bar = tqdm(items, total=total, unit="page", disable=not progress, desc="reprocess")
    for page in bar:
        stats.seen += 1
        outcome = reprocess_page(page, tagger)
        if outcome.article is None:
            stats.rejected[outcome.reason or "unknown"] += 1
            log.info("reprocess skipped key=%s url=%s reason=%s detail=%s",
                     page.key, page.url, outcome.reason, outcome.detail)
            continue
        article = outcome.article
        if outcome.fingerprint is not None:
            # Known articles keep their story id (assign is idempotent by article id).
            story_id = stories.assign(article.id, outcome.fingerprint, when=article.ingested)
            article = article.model_copy(update={"story_id": story_id})
        else:
            article = article.model_copy(update={"story_id": article.id})
        send(article)
        stats.published += 1
    bar.close()
    return stats


def run_reprocess(settings: Settings, *, since: datetime | None, source: str | None,
                  progress: bool = True) -> Stats:
    """Open the page store, story index and a Kafka producer; publish to the articles topic."""
    from kafka import KafkaProducer

    topic = settings.topic("articles")
    pages = PageStore(pages_path(settings))
    stories = StoryIndex(stories_path(settings))
    producer = KafkaProducer(client_id="newswire-reprocess", acks="all", linger_ms=20,
                             **settings.kafka.client_config())
    futures: list[Any] = []
    try:
        stats = reprocess(
            pages, stories,
            lambda article: futures.append(producer.send(topic, key=article.key.encode(),
                                                         value=article.to_bytes())),
            since=since, source=source, progress=progress,
        )
        producer.flush(timeout=60)
        failed = [f for f in futures if not f.succeeded()]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(futures)} articles were not delivered "
                               f"to {topic}: {failed[0].exception!r}")
    finally:
        producer.close(timeout=10)
        stories.close()
        pages.close()
    log.info("reprocess done seen=%d published=%d rejected=%s topic=%s",
             stats.seen, stats.published, dict(stats.rejected), topic)
    return stats
