"""Feed health on /metrics: real polls of a loopback feed server through the session's Kafka,
then the poller's own /metrics endpoint scraped over HTTP; and the collector's bounds (overdue
feeds, the per-feed series cap, credentials, an unreadable store) on a real HTTP endpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from ingest.health_metrics import FeedHealthCollector
from ingest.poller import run_poller
from ingest.state import StateStore
from newswire.broker import free_port
from newswire.settings import Settings
from tests.test_ingest_poller import FeedServer, feed_server  # noqa: F401 (fixture)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample of http://127.0.0.1:port/metrics as (name, labels) -> value."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def per_feed(samples: Samples, name: str) -> dict[str, float]:
    return {dict(labels)["feed"]: v for (n, labels), v in samples.items() if n == name}


def total(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def wait_for_metrics(port: int, thread: threading.Thread) -> Samples:
    for _ in range(100):  # bounded: the server starts once the topics exist
        if not thread.is_alive():
            break
        try:
            return scrape(port)
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("the poller's /metrics endpoint never answered")


@pytest.mark.integration
def test_poller_metrics_show_each_feeds_health_after_real_polls(
        kafka_settings: Settings, feed_server: FeedServer) -> None:  # noqa: F811
    base = feed_server.base
    good, missing, later = f"{base}/feed.xml", f"{base}/missing.xml", f"{base}/later.xml"
    settings = kafka_settings.model_copy(update={"metrics_port": free_port(), "feeds": []})
    with StateStore.open(settings) as store:
        store.add_feeds([good, missing], "cli")
        store.add_feed(f"{base}/old-config.xml", "config")  # stored, not in these settings
    # Two real polls: the feed answers 200 then 304; the missing one fails twice. Each run
    # serves /metrics on the same port and must leave the registry as it found it.
    assert run_poller(settings, once=True) == 0
    assert run_poller(settings, once=True) == 0
    assert feed_server.not_modified == 1
    with StateStore.open(settings) as store:
        store.add_feed(later, "cli")
        # Not polled yet and not due for an hour (as after a host asked us to wait).
        new = store.feed(later)
        assert new is not None
        store.save_feed(replace(new, next_poll=time.time() + 3600))
        states = {f.url: f for f in store.feeds()}
    assert all(f.next_poll > time.time() + 60 for f in states.values()
               if f.origin == "cli")  # so the service below polls nothing while scraped

    stop = threading.Event()
    thread = threading.Thread(target=run_poller, args=(settings, stop))
    thread.start()
    try:
        samples = wait_for_metrics(settings.metrics_port, thread)
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()

    assert per_feed(samples, "newswire_feed_not_modified_ratio") == {
        good: 0.5, missing: 0.0, later: 0.0}
    assert per_feed(samples, "newswire_feed_entries_per_day") == {
        good: 2.0, missing: 0.0, later: 0.0}  # 2 entries, first poll less than a day ago
    assert per_feed(samples, "newswire_feed_consecutive_errors") == {
        good: 0.0, missing: 2.0, later: 0.0}
    assert per_feed(samples, "newswire_feed_unhealthy") == {good: 0.0, missing: 0.0, later: 0.0}
    successes = per_feed(samples, "newswire_feed_last_success_timestamp_seconds")
    assert successes == {good: pytest.approx(states[good].last_success, abs=1e-3)}
    next_polls = per_feed(samples, "newswire_feed_next_poll_timestamp_seconds")
    assert next_polls == {url: pytest.approx(states[url].next_poll, abs=1e-3)
                          for url in (good, missing, later)}
    good_success = states[good].last_success
    assert good_success is not None
    assert next_polls[good] - good_success >= settings.poll.min_interval * 0.9

    assert {h: total(samples, "newswire_feeds", health=h)
            for h in ("new", "ok", "failing", "unhealthy")} == {
        "new": 1, "ok": 1, "failing": 1, "unhealthy": 0}
    assert total(samples, "newswire_feeds_not_polled") == 1
    assert total(samples, "newswire_feeds_overdue") == 0
    assert total(samples, "newswire_feeds_overdue_max_seconds") == 0
    assert total(samples, "newswire_feeds_last_success_timestamp_seconds") == pytest.approx(
        states[good].last_success, abs=1e-3)
    assert total(samples, "newswire_feeds_without_series") == 0
    assert total(samples, "newswire_feed_state_readable") == 1
    # The poller's own counters are served beside them.
    assert any(name == "newswire_feed_polls_total" for name, _ in samples)


@pytest.fixture
def served() -> Iterator[tuple[CollectorRegistry, int]]:
    registry = CollectorRegistry()
    port = free_port()
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield registry, port
    finally:
        server.shutdown()
        server.server_close()


def test_overdue_feeds_unhealthy_feeds_and_credentials(tmp_path: Path,
                                                  served: tuple[CollectorRegistry, int]) -> None:
    registry, port = served
    path = tmp_path / "state.sqlite3"
    now = time.time()
    secret_url = "https://reader:hunter2@private.example/feed"
    odd_url = 'https://odd.example/feed?q="x"\\y'  # quotes and a backslash in a label
    with StateStore(path) as store:
        store.add_feeds(["https://a.example/late", "https://b.example/on-time",
                         "https://c.example/just-due", "https://d.example/sick", secret_url,
                         odd_url], "opml", now - 3 * 86_400)
        changed: dict[str, dict[str, Any]] = {
            "https://a.example/late": {"next_poll": now - 900, "polls": 4, "last_success": now - 1200},
            "https://b.example/on-time": {"next_poll": now + 300, "polls": 4},
            "https://c.example/just-due": {"next_poll": now - 30, "polls": 4},
            "https://d.example/sick": {"next_poll": now + 80_000, "polls": 40, "error_count": 30,
                                       "unhealthy": True, "first_error_at": now - 4 * 86_400},
            secret_url: {"next_poll": now + 300, "polls": 1},
            odd_url: {"next_poll": now + 300, "polls": 1},
        }
        for url, changes in changed.items():
            feed = store.feed(url)
            assert feed is not None
            store.save_feed(replace(feed, **changes))
    registry.register(FeedHealthCollector(path, [], min_interval=0, clock=lambda: now))
    samples = scrape(port)

    # Overdue: due more than two minutes ago; a feed due 30 s ago is just being polled.
    assert total(samples, "newswire_feeds_overdue") == 1
    assert total(samples, "newswire_feeds_overdue_max_seconds") == pytest.approx(900)
    assert {h: total(samples, "newswire_feeds", health=h)
            for h in ("new", "ok", "failing", "unhealthy")} == {
        "new": 0, "ok": 5, "failing": 0, "unhealthy": 1}
    labels = set(per_feed(samples, "newswire_feed_next_poll_timestamp_seconds"))
    assert "https://***@private.example/feed" in labels and odd_url in labels
    body = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert "hunter2" not in body and "reader" not in body


def test_series_cap_keeps_the_feeds_that_need_looking_at(
        tmp_path: Path, served: tuple[CollectorRegistry, int]) -> None:
    registry, port = served
    path = tmp_path / "state.sqlite3"
    now = time.time()
    with StateStore(path) as store:
        store.add_feeds([f"https://f{n}.example/rss" for n in range(6)], "cli", now)
        for n, errors in ((4, 3), (2, 1)):
            feed = store.feed(f"https://f{n}.example/rss")
            assert feed is not None
            store.save_feed(replace(feed, polls=errors, error_count=errors, next_poll=now + 600))
    registry.register(FeedHealthCollector(path, [], max_feed_series=2, min_interval=0))
    samples = scrape(port)
    assert set(per_feed(samples, "newswire_feed_consecutive_errors")) == {
        "https://f4.example/rss", "https://f2.example/rss"}
    assert total(samples, "newswire_feeds_without_series") == 4
    assert total(samples, "newswire_feeds", health="new") == 4  # totals count every feed


def test_scrapes_reuse_a_recent_read_and_survive_a_missing_store(
        tmp_path: Path, served: tuple[CollectorRegistry, int]) -> None:
    registry, port = served
    path = tmp_path / "ingest" / "state.sqlite3"
    registry.register(FeedHealthCollector(path, [], min_interval=0))
    samples = scrape(port)
    assert total(samples, "newswire_feed_state_readable") == 0  # no poller state yet
    assert total(samples, "newswire_feeds", health="ok") is None
    assert not path.exists()  # a scrape never creates the store

    with StateStore(path) as store:
        store.add_feed("https://a.example/rss", "cli")
        assert total(scrape(port), "newswire_feeds", health="new") == 1
        cached = FeedHealthCollector(path, [], min_interval=3600)
        other = CollectorRegistry()
        other.register(cached)
        before = {m.name: m for m in other.collect()}["newswire_feeds"]
        store.add_feed("https://b.example/rss", "cli")
        # Within min_interval the last read is served again: the store is not read per scrape.
        after = {m.name: m for m in other.collect()}["newswire_feeds"]
        assert after is before
        assert total(scrape(port), "newswire_feeds", health="new") == 2
