"""Durable poller state in SQLite: the feeds and the bounded set of entries already seen.

One file, ``<data_dir>/ingest/state.sqlite3``, in WAL mode so ``newswire feeds ...`` can read and
edit it while the poller runs. Times are stored as UTC epoch seconds.

Seen entries: identity is the article key (hash of the canonical link); the GUID is kept too, so
an entry whose link changed but whose GUID (unique within its feed) did not is still recognised.
The content hash tells an updated entry from a repeated one. Rows of entries that left their
feed are pruned after ``SEEN_MAX_AGE`` (entries still in a feed are touched at most daily, even
when the feed answers 304), and the table is capped at ``SEEN_MAX_ROWS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from ingest.parse import Rejection
from newswire.records import FeedEntry
from newswire.settings import Settings

SEEN_MAX_AGE = 21 * 86_400.0
SEEN_MAX_ROWS = 2_000_000
TOUCH_EVERY = 86_400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,          -- identity: as configured or added
    fetch_url TEXT NOT NULL,       -- where it is fetched now (permanent redirects update it)
    origin TEXT NOT NULL,          -- config | cli | opml | default
    title TEXT,
    etag TEXT,
    last_modified TEXT,
    interval REAL,
    rate_interval REAL,
    hint_floor REAL,
    next_poll REAL NOT NULL DEFAULT 0,
    last_poll REAL,
    last_success REAL,
    last_status INTEGER,
    last_error TEXT,
    last_error_reason TEXT,
    first_error_at REAL,
    error_count INTEGER NOT NULL DEFAULT 0,
    polls INTEGER NOT NULL DEFAULT 0,
    not_modified INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    entries_published INTEGER NOT NULL DEFAULT 0,
    entries_rejected INTEGER NOT NULL DEFAULT 0,
    unhealthy INTEGER NOT NULL DEFAULT 0,
    added_at REAL NOT NULL,
    first_poll REAL,
    hub TEXT,
    site_url TEXT,
    websub_lease_until REAL
);
CREATE TABLE IF NOT EXISTS seen (
    key TEXT PRIMARY KEY,
    feed TEXT NOT NULL,
    guid TEXT,
    content_hash TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_last ON seen(last_seen);
CREATE INDEX IF NOT EXISTS seen_feed_guid ON seen(feed, guid);
"""


@dataclass(frozen=True)
class FeedState:
    url: str
    fetch_url: str
    origin: str
    added_at: float
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    interval: float | None = None
    rate_interval: float | None = None
    hint_floor: float | None = None  # the publisher's own floor (ttl, sy:updatePeriod, max-age)
    next_poll: float = 0.0
    last_poll: float | None = None
    last_success: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    last_error_reason: str | None = None
    first_error_at: float | None = None
    error_count: int = 0
    polls: int = 0
    not_modified: int = 0
    errors: int = 0
    entries_published: int = 0
    entries_rejected: int = 0
    unhealthy: bool = False
    first_poll: float | None = None
    hub: str | None = None
    site_url: str | None = None
    websub_lease_until: float | None = None

    @property
    def not_modified_share(self) -> float:
        return not_modified_share(self.not_modified, self.polls)

    def entries_per_day(self, now: float) -> float:
        return entries_per_day(self.entries_published, self.first_poll, now)


def not_modified_share(not_modified: int, polls: int) -> float:
    return not_modified / polls if polls else 0.0


def entries_per_day(published: int, first_poll: float | None, now: float) -> float:
    if not first_poll:
        return 0.0
    days = max((now - first_poll) / 86_400.0, 1.0)  # at least a day: no wild rates
    return published / days


_COLUMNS = tuple(f.name for f in fields(FeedState))
USER_ORIGINS = ("cli", "opml")  # added on purpose: polled whatever the settings say


class _Listed(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def origin(self) -> str: ...


ListedT = TypeVar("ListedT", bound=_Listed)


def polled(feeds: Iterable[ListedT], config_urls: Collection[str]) -> list[ListedT]:
    """The stored feeds a poller configured with ``config_urls`` polls (the poller's rule).

    Feeds named by an earlier run's settings, and the built-in list once the user has feeds
    of their own, stay stored (with their history) but are not polled.
    """
    feeds = list(feeds)
    config = set(config_urls)
    use_defaults = not config and not any(f.origin in USER_ORIGINS for f in feeds)
    return [f for f in feeds if f.url in config or f.origin in USER_ORIGINS
            or (use_defaults and f.origin == "default")]


def _feed_from_row(row: Sequence[object]) -> FeedState:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["unhealthy"] = bool(values["unhealthy"])
    return FeedState(**values)  # type: ignore[arg-type]


def read_feeds(db: sqlite3.Connection, origins: Sequence[str] | None = None) -> list[FeedState]:
    """Every stored feed (of ``origins`` when given), ordered by URL."""
    query = f"SELECT {','.join(_COLUMNS)} FROM feeds"
    params: tuple[str, ...] = ()
    if origins is not None:
        query += f" WHERE origin IN ({','.join('?' * len(origins))})"
        params = tuple(origins)
    return [_feed_from_row(row) for row in db.execute(query + " ORDER BY url", params)]


def open_reader(path: Path, busy_timeout: float = 2.0) -> sqlite3.Connection:
    """A connection that only reads the state (a metrics scrape): it never creates the file
    (sqlite3.OperationalError when there is none yet) and refuses writes. In WAL mode a
    reader neither waits for nor blocks the poller's writes."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=busy_timeout,
                         isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA query_only=ON")
    return db


def rejection_key(feed: str, rejection: Rejection) -> str:
    """A stable identity for an entry that could not become a record: its GUID, else its
    link, else its title, within its feed (the position only when it has none of them).
    Prefixed so it never collides with an article key."""
    ident = rejection.guid or rejection.link or rejection.title or f"#{rejection.index}"
    digest = hashlib.blake2b(f"{feed}\n{ident}".encode(), digest_size=12).hexdigest()
    return f"rejected:{digest}"


def utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class Novelty:
    """What the seen set says about one entry."""

    entry: FeedEntry
    update: bool  # seen before with other content


class StateStore:
    """The poller's SQLite state. Not thread-safe: one store per thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), timeout=10.0, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript(_SCHEMA)

    @staticmethod
    def path_for(settings: Settings) -> Path:
        return settings.data_dir / "ingest" / "state.sqlite3"

    @classmethod
    def open(cls, settings: Settings) -> StateStore:
        return cls(cls.path_for(settings))

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # The connection is in autocommit mode (one statement, one transaction); a batch of
        # rows gets one explicit transaction instead of one per row.
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- feeds -----------------------------------------------------------------------------

    def add_feed(self, url: str, origin: str, now: float | None = None) -> bool:
        """Add a feed (due at once); False when it is already known (its origin may rise)."""
        now = time.time() if now is None else now
        cur = self.db.execute(
            "INSERT OR IGNORE INTO feeds (url, fetch_url, origin, added_at) VALUES (?, ?, ?, ?)",
            (url, url, origin, now),
        )
        if cur.rowcount == 0 and origin in ("cli", "opml"):
            # A feed the user adds explicitly outlives the config or default list it came from.
            self.db.execute("UPDATE feeds SET origin=? WHERE url=? AND origin IN ('config','default')",
                            (origin, url))
        return cur.rowcount > 0

    def add_feeds(self, urls: Iterable[str], origin: str, now: float | None = None) -> int:
        """``add_feed`` for a whole list in one transaction (10,000 feeds: well under a
        second instead of one commit each); returns how many were new."""
        now = time.time() if now is None else now
        with self._transaction():
            return sum(self.add_feed(url, origin, now) for url in urls)

    def remove_feed(self, url: str) -> bool:
        cur = self.db.execute("DELETE FROM feeds WHERE url=? OR fetch_url=?", (url, url))
        return cur.rowcount > 0

    def feed(self, url: str) -> FeedState | None:
        row = self.db.execute(
            f"SELECT {','.join(_COLUMNS)} FROM feeds WHERE url=? OR fetch_url=?", (url, url)
        ).fetchone()
        return _feed_from_row(row) if row else None

    def feeds(self, origins: Sequence[str] | None = None) -> list[FeedState]:
        return read_feeds(self.db, origins)

    def save_feed(self, feed: FeedState) -> None:
        names = [c for c in _COLUMNS if c != "url"]
        self.db.execute(
            f"UPDATE feeds SET {','.join(f'{c}=?' for c in names)} WHERE url=?",
            [getattr(feed, c) for c in names] + [feed.url],
        )

    # -- seen entries ----------------------------------------------------------------------

    def novel(self, entries: Iterable[FeedEntry], now: float) -> list[Novelty]:
        """Entries to publish: never seen (update=False) or seen with other content (True).

        Duplicates within one batch (same key) count once. A GUID shared by several entries
        of the batch is not used as an identity (some feeds repeat one GUID everywhere).
        """
        batch: dict[str, FeedEntry] = {}
        for entry in entries:
            batch.setdefault(entry.key, entry)
        guid_counts = Counter((e.feed, e.guid) for e in batch.values() if e.guid)
        out: list[Novelty] = []
        for entry in batch.values():
            row = self.db.execute("SELECT content_hash FROM seen WHERE key=?", (entry.key,)).fetchone()
            if row is None and entry.guid and guid_counts[(entry.feed, entry.guid)] == 1:
                row = self.db.execute(
                    "SELECT content_hash FROM seen WHERE feed=? AND guid=? LIMIT 1",
                    (entry.feed, entry.guid),
                ).fetchone()
                if row is not None and row[0] == entry.content_hash:
                    # Same entry under a new link: remember the new key, publish nothing.
                    self.mark_seen([entry], now)
                    continue
            if row is None:
                out.append(Novelty(entry, update=False))
            elif row[0] != entry.content_hash:
                out.append(Novelty(entry, update=True))
        return out

    def mark_seen(self, entries: Iterable[FeedEntry], now: float) -> None:
        """Remember entries (call only after the broker confirmed their delivery)."""
        rows = [(e.key, e.feed, e.guid, e.content_hash, now, now) for e in entries]
        with self._transaction():
            self.db.executemany(
                "INSERT INTO seen (key, feed, guid, content_hash, first_seen, last_seen) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET "
                "content_hash=excluded.content_hash, guid=excluded.guid, last_seen=excluded.last_seen",
                rows,
            )

    def unseen_rejections(self, feed: str, rejections: Iterable[Rejection]
                          ) -> list[tuple[str, Rejection]]:
        """(key, rejection) for the rejected entries of ``feed`` not dead-lettered before.

        Rejections live in the seen table under their own keys, so they are touched by each
        poll that still lists them and pruned like entries: one dead letter per entry, not
        one per poll.
        """
        batch = {rejection_key(feed, r): r for r in rejections}
        known = {k for k in batch
                 if self.db.execute("SELECT 1 FROM seen WHERE key=?", (k,)).fetchone()}
        return [(k, r) for k, r in batch.items() if k not in known]

    def mark_rejections_seen(self, feed: str, keys: Iterable[str], now: float) -> None:
        """Remember dead-lettered rejections (only after the broker confirmed the letters)."""
        with self._transaction():
            self.db.executemany(
                "INSERT INTO seen (key, feed, guid, content_hash, first_seen, last_seen) "
                "VALUES (?,?,NULL,'',?,?) ON CONFLICT(key) DO UPDATE SET last_seen=excluded.last_seen",
                [(k, feed, now, now) for k in keys])

    def touch(self, keys: Iterable[str], now: float) -> None:
        """Entries still present in their feed: keep them from being pruned (at most daily)."""
        with self._transaction():
            self.db.executemany("UPDATE seen SET last_seen=? WHERE key=? AND last_seen<?",
                                [(now, k, now - TOUCH_EVERY) for k in keys])

    def touch_feed(self, feed: str, now: float) -> None:
        """A 304: the feed's entries are all still there."""
        self.db.execute("UPDATE seen SET last_seen=? WHERE feed=? AND last_seen<?",
                        (now, feed, now - TOUCH_EVERY))

    def prune_seen(self, now: float, max_age: float = SEEN_MAX_AGE,
                   max_rows: int = SEEN_MAX_ROWS) -> int:
        removed = self.db.execute("DELETE FROM seen WHERE last_seen<?", (now - max_age,)).rowcount
        count = self.db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]
        if count > max_rows:
            removed += self.db.execute(
                "DELETE FROM seen WHERE key IN (SELECT key FROM seen ORDER BY last_seen LIMIT ?)",
                (count - max_rows,),
            ).rowcount
        return removed

    def seen_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    def summary(self, now: float, config_urls: Collection[str] | None = None,
                window: float = 900.0) -> dict[str, object]:
        """Feed health and intake at a glance (``newswire status``).

        Counts the feeds a poller with ``config_urls`` polls (all stored ones when None);
        ``not_polled`` counts the others. A feed is ``new`` until its first poll,
        ``failing`` while its last polls failed, ``unhealthy`` once it failed for days, else
        ``ok``. ``new_entries``: entries first seen within ``window`` seconds (updates of
        known entries are not new).
        """
        stored = self.feeds()
        feeds = stored if config_urls is None else polled(stored, config_urls)
        polls = sum(f.polls for f in feeds)
        next_polls = [f.next_poll for f in feeds if f.next_poll > 0]
        recent = self.db.execute("SELECT COUNT(*) FROM seen WHERE first_seen>=? "
                                 "AND key NOT LIKE 'rejected:%'", (now - window,)).fetchone()[0]
        return {
            "feeds": len(feeds), "not_polled": len(stored) - len(feeds),
            "new": sum(1 for f in feeds if not f.polls),
            "ok": sum(1 for f in feeds if f.polls and not f.error_count and not f.unhealthy),
            "failing": sum(1 for f in feeds if f.error_count and not f.unhealthy),
            "unhealthy": sum(1 for f in feeds if f.unhealthy),
            "last_poll": max((f.last_poll for f in feeds if f.last_poll), default=None),
            "last_success": max((f.last_success for f in feeds if f.last_success), default=None),
            "next_poll": min(next_polls, default=None),
            "not_modified_share": round(sum(f.not_modified for f in feeds) / polls, 3)
            if polls else None,
            "entries_published": sum(f.entries_published for f in feeds),
            "entries_rejected": sum(f.entries_rejected for f in feeds),
            "new_entries": int(recent), "window_s": window,
        }

