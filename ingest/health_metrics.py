"""Feed health in Prometheus: the figures of ``newswire feeds status``, per feed and in total.

A custom collector reads the poller's state store when ``/metrics`` is scraped (in the metrics
server's thread, through its own read-only SQLite connection: in WAL mode the read neither
waits for nor blocks the poll loop's writes). What it costs is bounded: one SELECT per scrape
at most every ``min_interval`` seconds (faster scrapes get the last answer), and at most
``max_feed_series`` feeds get series of their own (the worst first); the totals always count
every feed.

Per feed (label ``feed`` = the feed's URL as added, any user:password in it replaced by
``***``), for the feeds the poller polls:

- ``newswire_feed_last_success_timestamp_seconds`` (absent until a poll succeeded)
- ``newswire_feed_next_poll_timestamp_seconds`` (a feed never polled: due since it was added)
- ``newswire_feed_consecutive_errors``, ``newswire_feed_unhealthy`` (failing for days)
- ``newswire_feed_not_modified_ratio`` (share of polls answered 304)
- ``newswire_feed_entries_per_day``

In total: ``newswire_feeds{health="new|ok|failing|unhealthy"}`` (as ``newswire status``),
``newswire_feeds_not_polled``, ``newswire_feeds_overdue`` and
``newswire_feeds_overdue_max_seconds`` (due more than ``overdue_after`` seconds ago and not
polled yet: the poller is behind or stuck), ``newswire_feeds_last_success_timestamp_seconds``,
``newswire_feeds_without_series``, ``newswire_feed_state_readable`` and
``newswire_feed_state_read_seconds``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from ingest.state import entries_per_day, not_modified_share, open_reader, polled

log = logging.getLogger(__name__)

OVERDUE_AFTER = 120.0  # seconds past due: longer than a slow poll, shorter than a missed one
MAX_FEED_SERIES = 50_000  # feeds with series of their own (x6 gauges)
MIN_INTERVAL = 5.0  # seconds a scrape's answer is reused
HEALTH = ("new", "ok", "failing", "unhealthy")


class FeedFigures(NamedTuple):
    """The state columns the figures need (a scrape at 10,000 feeds reads these in a few
    ms; whole ``FeedState`` rows cost several times that)."""

    url: str
    origin: str
    added_at: float
    next_poll: float
    last_success: float | None
    error_count: int
    unhealthy: int
    polls: int
    not_modified: int
    entries_published: int
    first_poll: float | None


_FIGURES_SQL = f"SELECT {','.join(FeedFigures._fields)} FROM feeds ORDER BY url"


def read_figures(db: sqlite3.Connection) -> list[FeedFigures]:
    return [FeedFigures._make(row) for row in db.execute(_FIGURES_SQL)]


def health(feed: FeedFigures) -> str:
    """The feed's health as ``newswire status`` counts it."""
    if feed.unhealthy:
        return "unhealthy"
    if feed.error_count:
        return "failing"
    return "ok" if feed.polls else "new"


def due_at(feed: FeedFigures) -> float:
    """When the feed is due: a feed never scheduled (next_poll 0) is due since it was added."""
    return feed.next_poll or feed.added_at


def feed_label(url: str) -> str:
    """The URL for a label, without credentials (a label is stored and shown everywhere)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _per_feed_families() -> list[GaugeMetricFamily]:
    return [
        _gauge("newswire_feed_last_success_timestamp_seconds",
               "When the feed was last polled successfully (200 or 304)", ["feed"]),
        _gauge("newswire_feed_next_poll_timestamp_seconds",
               "When the feed is due to be polled next", ["feed"]),
        _gauge("newswire_feed_consecutive_errors", "Failed polls of the feed in a row (0 = fine)",
               ["feed"]),
        _gauge("newswire_feed_unhealthy",
               "1 when the feed has failed for days (then polled daily, never dropped)", ["feed"]),
        _gauge("newswire_feed_not_modified_ratio", "Share of the feed's polls answered 304",
               ["feed"]),
        _gauge("newswire_feed_entries_per_day",
               "Entries published from the feed per day since its first poll", ["feed"]),
    ]


def _total_families() -> list[GaugeMetricFamily]:
    return [
        _gauge("newswire_feeds", "Polled feeds by health: new (never polled), ok, failing "
               "(last polls failed), unhealthy (failing for days)", ["health"]),
        _gauge("newswire_feeds_not_polled",
               "Stored feeds the current settings do not poll (kept with their history)"),
        _gauge("newswire_feeds_overdue", "Polled feeds due for longer than the overdue "
               "threshold and not polled yet"),
        _gauge("newswire_feeds_overdue_max_seconds",
               "How long the most overdue feed has been due (0 when none is overdue)"),
        _gauge("newswire_feeds_last_success_timestamp_seconds",
               "The newest successful poll of any feed"),
        _gauge("newswire_feeds_without_series", "Polled feeds left without per-feed series "
               "(over the per-feed series limit; the best feeds are left out first)"),
    ]


def feed_health_families(feeds: list[FeedFigures], not_polled: int, now: float, *,
                         overdue_after: float = OVERDUE_AFTER,
                         max_feed_series: int = MAX_FEED_SERIES) -> list[Metric]:
    """The feed-health metric families of the polled ``feeds`` at ``now`` (pure)."""
    (last_success, next_poll, errors, unhealthy, not_modified,
     per_day) = per_feed = _per_feed_families()
    shown = feeds
    if len(feeds) > max_feed_series:  # the feeds that need looking at keep their series
        shown = sorted(feeds, key=lambda f: (not f.unhealthy, -f.error_count, due_at(f)))
        shown = shown[:max_feed_series]
    labelled: set[str] = set()
    for f in shown:
        label = feed_label(f.url)
        if label in labelled:  # two URLs that differ only in credentials: one series
            continue
        labelled.add(label)
        # One labels dict shared by the feed's samples (add_metric makes one per sample:
        # at 10,000 feeds that is 60,000 dicts a scrape).
        labels = {"feed": label}
        if f.last_success is not None:
            last_success.samples.append(Sample(last_success.name, labels, f.last_success))
        next_poll.samples.append(Sample(next_poll.name, labels, due_at(f)))
        errors.samples.append(Sample(errors.name, labels, f.error_count))
        unhealthy.samples.append(Sample(unhealthy.name, labels, 1.0 if f.unhealthy else 0.0))
        not_modified.samples.append(Sample(not_modified.name, labels,
                                           not_modified_share(f.not_modified, f.polls)))
        per_day.samples.append(Sample(per_day.name, labels,
                                      entries_per_day(f.entries_published, f.first_poll, now)))

    (by_health, not_polled_g, overdue, overdue_max, newest_success,
     without_series) = totals = _total_families()
    counts = dict.fromkeys(HEALTH, 0)
    late = [now - due_at(f) for f in feeds if now - due_at(f) > overdue_after]
    for f in feeds:
        counts[health(f)] += 1
    for name in HEALTH:
        by_health.add_metric([name], counts[name])
    not_polled_g.add_metric([], not_polled)
    overdue.add_metric([], len(late))
    overdue_max.add_metric([], max(late, default=0.0))
    successes = [f.last_success for f in feeds if f.last_success is not None]
    if successes:
        newest_success.add_metric([], max(successes))
    without_series.add_metric([], len(feeds) - len(labelled))
    families: list[Metric] = [*per_feed, *totals]
    return families


class FeedHealthCollector(Collector):
    """Reads the state store at ``path`` on scrape; ``config_urls`` as the poller's, so the
    feeds counted are those it polls."""

    def __init__(self, path: Path, config_urls: Collection[str], *,
                 overdue_after: float = OVERDUE_AFTER, max_feed_series: int = MAX_FEED_SERIES,
                 min_interval: float = MIN_INTERVAL,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.config_urls = list(config_urls)
        self.overdue_after = overdue_after
        self.max_feed_series = max_feed_series
        self.min_interval = min_interval
        self.clock = clock
        self._lock = threading.Lock()  # concurrent scrapes: one reads, the others reuse it
        self._last: tuple[float, list[Metric]] | None = None

    def describe(self) -> Iterator[Metric]:
        # The names, without reading the store (the registry calls this on register).
        yield from _per_feed_families()
        yield from _total_families()
        yield from self._status(True, 0.0)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if self._last is None or time.monotonic() - self._last[0] >= self.min_interval:
                self._last = (time.monotonic(), self._read())
            families = self._last[1]
        yield from families

    def _read(self) -> list[Metric]:
        started = time.perf_counter()
        try:
            db = open_reader(self.path)
            try:
                stored = read_figures(db)
            finally:
                db.close()
        except sqlite3.Error as exc:  # no state yet, or a broken file: say so, keep serving
            log.warning("feed health unreadable path=%s error=%r", self.path, exc)
            return self._status(False, time.perf_counter() - started)
        feeds = polled(stored, self.config_urls)
        families = feed_health_families(
            feeds, len(stored) - len(feeds), self.clock(), overdue_after=self.overdue_after,
            max_feed_series=self.max_feed_series)
        return families + self._status(True, time.perf_counter() - started)

    @staticmethod
    def _status(readable: bool, seconds: float) -> list[Metric]:
        ok = _gauge("newswire_feed_state_readable",
                    "1 when the feed health figures could be read from the poller's state")
        ok.add_metric([], 1.0 if readable else 0.0)
        took = _gauge("newswire_feed_state_read_seconds",
                      "Time the last read of the feed health figures took")
        took.add_metric([], seconds)
        return [ok, took]
