"""The CPU-heavy part of processing one page: clean, tag, fingerprint.

Runs in a worker process of a ``ProcessPoolExecutor`` so the Faust event loop never
blocks on trafilatura. Pure: bytes and records in, records out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newswire.records import CleanArticle, FeedEntry, Tags


@dataclass(frozen=True)
class Enriched:
    clean: CleanArticle | None
    tags: Tags | None
    fingerprint: int | None
    reason: str | None = None  # set when the page could not be used at all
    detail: str | None = None


def init_worker(taxonomy_file: str | None) -> None:
    """Process-pool initializer: load the operator's taxonomy once per worker process."""
    from processors import tag as tagging

    if taxonomy_file:
        tagging.configure(Path(taxonomy_file))


def enrich(body: bytes, url: str, content_type: str | None, entry_json: bytes) -> Enriched:
    from processors.clean import Rejected, clean
    from processors.fingerprint import simhash
    from processors.tag import tag

    entry = FeedEntry.from_bytes(entry_json)
    cleaned = clean(
        body,
        url,
        content_type=content_type,
        feed_title=entry.title,
        feed_summary=entry.summary,
        feed_published=entry.published,
    )
    if isinstance(cleaned, Rejected):
        return Enriched(None, None, None, cleaned.reason, cleaned.detail)
    tags = tag(cleaned.title or entry.title, cleaned.text)
    return Enriched(cleaned, tags, simhash(cleaned.text) if cleaned.text else None)
