"""The CPU-heavy part of processing one page: clean, tag, fingerprint.

Runs in a worker process of a ``ProcessPoolExecutor`` so the Faust event loop never
blocks on trafilatura. ``enrich`` is pure: bytes and records in, records out.
``archive_and_enrich`` first keeps the page in the archive, in the pool process that has the
body anyway (compressing and writing it there costs the event loop nothing).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from newswire.records import CleanArticle, FeedEntry, Tags
from processors.pagestore import PageStore


@dataclass(frozen=True)
class Enriched:
    clean: CleanArticle | None
    tags: Tags | None
    fingerprint: int | None
    reason: str | None = None  # set when the page could not be used at all
    detail: str | None = None
    archive_error: str | None = None  # the page could not be archived (it was enriched)


_ready = False  # inherited as True by processes forked after the parent compiled
_archive: PageStore | None = None  # this process's connection to the page archive
log = logging.getLogger(__name__)


def init_worker(taxonomy_file: str | None) -> None:
    """Load and compile the taxonomy once per process tree: in the parent before it forks
    the pool, and as the pool's initializer (a no-op in forked processes that inherited it)."""
    global _ready
    if _ready:
        return
    from processors import tag as tagging

    tagging.configure(Path(taxonomy_file) if taxonomy_file else None)
    _ready = True


def pool_child_init(taxonomy_file: str | None, parent: int) -> None:
    """Initializer of an extraction process: die with the worker that owns it.

    A pool orphaned by kill -9 of its worker would otherwise live on, holding hundreds of
    MB; the worker stops it on a normal shutdown. Ctrl-C is the worker's business."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the worker died before prctl took effect
        os._exit(1)
    init_worker(taxonomy_file)


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


def from_feed(entry: FeedEntry, reason: str, detail: str) -> Enriched:
    """The page could not be read (the publisher refused us): the feed's title and summary
    stand in, flagged partial, or why not. Pure; cheap (a summary is short), so it runs on
    the caller's side of the pool."""
    from processors.clean import Rejected, feed_fallback
    from processors.fingerprint import simhash
    from processors.tag import tag

    cleaned = feed_fallback(entry.url, entry.title, entry.summary, entry.published, reason,
                            detail)
    if isinstance(cleaned, Rejected):
        return Enriched(None, None, None, cleaned.reason, cleaned.detail)
    tags = tag(cleaned.title or entry.title, cleaned.text)
    return Enriched(cleaned, tags, simhash(cleaned.text) if cleaned.text else None)


def archive_and_enrich(archive: str, key: str, fetched_url: str, fetched_at: datetime,
                       content_type: str | None, body: bytes, entry_json: bytes,
                       redirects: tuple[str, ...]) -> Enriched:
    """Keep the page in the archive (for ``newswire reprocess``), then :func:`enrich` it. An
    archive that cannot be written (disk full...) costs the archive copy, never the article."""
    global _archive
    problem = None
    try:
        if _archive is None or str(_archive.path) != archive:
            _archive = PageStore(Path(archive))
        _archive.put(key, fetched_url, fetched_at, content_type, body, entry_json.decode(),
                     redirects)
    except (sqlite3.Error, OSError) as exc:
        problem = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("page not archived key=%s error=%s", key, problem)
    done = enrich(body, fetched_url, content_type, entry_json)
    return done if problem is None else Enriched(
        done.clean, done.tags, done.fingerprint, done.reason, done.detail, problem)
