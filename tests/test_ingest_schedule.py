"""Adaptive schedule, poll outcomes and the SQLite state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ingest.outcome import after_poll
from ingest.parse import parse_feed
from ingest.schedule import (
    Hints,
    cache_max_age,
    is_unhealthy,
    next_interval,
    publishing_interval,
)
from ingest.state import FeedState, StateStore
from newswire.http import FetchResult
from newswire.records import FeedEntry
from newswire.settings import PollSettings

POLL = PollSettings(min_interval=120, max_interval=86_400, default_interval=600)
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def interval(**kw: object) -> float:
    args: dict[str, object] = dict(ok=True, rate_interval=None, previous=None, error_count=0,
                                   unhealthy=False, hints=Hints(), rand=0.5)
    args.update(kw)
    return next_interval(POLL, **args)  # type: ignore[arg-type]


def test_rate_drives_the_interval_within_bounds() -> None:
    every_10_min = [NOW - timedelta(minutes=10 * i) for i in range(10)]
    rate = publishing_interval(every_10_min, NOW)
    assert rate == 600
    assert interval(rate_interval=rate) == 300
    assert interval(rate_interval=30) == 120  # never faster than min_interval
    weekly = [NOW - timedelta(days=7 * i) for i in range(2)]
    assert interval(rate_interval=publishing_interval(weekly, NOW)) == 86_400  # capped at max


def test_a_quiet_feed_slows_down() -> None:
    old_burst = [NOW - timedelta(days=5, minutes=i) for i in range(10)]
    rate = publishing_interval(old_burst, NOW)
    assert rate is not None and rate > 3600
    assert publishing_interval([NOW], NOW) is None
    assert publishing_interval([None, None], NOW) is None


def test_publisher_hints_are_floors() -> None:
    assert interval(rate_interval=60, hints=Hints(ttl=3600)) == 3600
    assert interval(rate_interval=60, hints=Hints(update_period=1800)) == 1800
    assert interval(rate_interval=60, hints=Hints(max_age=900)) == 900
    assert interval(ok=False, error_count=1, hints=Hints(retry_after=7200)) == 7200
    assert interval(hints=Hints(ttl=10 * 86_400)) == 86_400  # still bounded by max_interval


def test_errors_back_off_exponentially_and_unhealthy_is_rare_not_dropped() -> None:
    values = [interval(ok=False, error_count=n) for n in range(1, 10)]
    assert values[:4] == [600, 1200, 2400, 4800]
    assert values == sorted(values) and values[-1] == 86_400
    assert interval(ok=False, error_count=1, unhealthy=True) == 86_400
    assert is_unhealthy(NOW - timedelta(days=4), NOW)
    assert not is_unhealthy(NOW - timedelta(hours=5), NOW) and not is_unhealthy(None, NOW)


@given(rate=st.one_of(st.none(), st.floats(0, 1e7)), errors=st.integers(0, 100),
       ok=st.booleans(), rand=st.floats(0, 0.999999), ttl=st.one_of(st.none(), st.floats(0, 1e8)))
def test_interval_is_always_within_bounds(rate: float | None, errors: int, ok: bool,
                                          rand: float, ttl: float | None) -> None:
    value = interval(rate_interval=rate, error_count=errors, ok=ok, rand=rand, hints=Hints(ttl=ttl))
    assert POLL.min_interval <= value <= POLL.max_interval


def test_jitter_spreads_feeds() -> None:
    low, high = interval(previous=1000, rand=0.0), interval(previous=1000, rand=0.999)
    assert low == 900 and 1099 < high <= 1100


def test_cache_control() -> None:
    assert cache_max_age({"cache-control": "public, max-age=300"}) == 300
    assert cache_max_age({"cache-control": "s-maxage=60, max-age=10"}) == 60
    assert cache_max_age({"cache-control": "no-cache, max-age=300"}) is None
    assert cache_max_age({}) is None


def _feed() -> FeedState:
    return FeedState(url="https://f.example/rss", fetch_url="https://f.example/rss",
                     origin="config", added_at=0.0)


RSS = b"""<rss version="2.0"><channel><title>F</title><ttl>60</ttl>
<item><title>a</title><link>https://f.example/a</link><pubDate>Wed, 01 May 2024 11:00:00 GMT</pubDate></item>
<item><title>b</title><link>https://f.example/b</link><pubDate>Wed, 01 May 2024 10:00:00 GMT</pubDate></item>
</channel></rss>"""


def test_outcomes_update_counts_validators_and_errors() -> None:
    now = NOW.timestamp()
    ok = FetchResult(url="https://f.example/rss", final_url="https://f.example/new", status=200,
                     headers={"etag": '"e1"', "last-modified": "x"}, body=RSS,
                     redirects=("https://f.example/new",), permanent_url="https://f.example/new")
    parsed = parse_feed(RSS, "https://f.example/rss")
    state = after_poll(_feed(), ok, parsed, now=now, poll=POLL, rand=0.5)
    assert state.etag == '"e1"' and state.fetch_url == "https://f.example/new"
    assert state.polls == 1 and state.last_success == now and state.title == "F"
    assert state.interval == 3600 and state.next_poll == now + 3600  # ttl 60 min is a floor

    not_modified = FetchResult(url=state.fetch_url, final_url=state.fetch_url, status=304)
    state = after_poll(state, not_modified, None, now=now + 3600, poll=POLL, rand=0.5)
    assert state.not_modified == 1 and state.polls == 2 and state.interval == 3600

    down = FetchResult(url=state.fetch_url, final_url=state.fetch_url, reason="connect_error",
                       error="refused")
    for day in range(5):
        state = after_poll(state, down, None, now=now + 86_400 * (day + 1), poll=POLL, rand=0.5)
    assert state.error_count == 5 and state.errors == 5 and state.unhealthy
    assert state.last_error_reason == "connect_error" and state.interval == 86_400
    assert state.etag == '"e1"'  # validators survive errors

    html = FetchResult(url=state.fetch_url, final_url=state.fetch_url, status=200,
                       headers={"content-type": "text/html"}, body=b"<html><body>x</body></html>")
    page = parse_feed(html.body, html.url, headers=html.headers)
    state = after_poll(state, html, page, now=now + 10 * 86_400, poll=POLL, rand=0.5)
    assert state.last_error_reason == "html_not_feed" and state.error_count == 6

    back = after_poll(state, ok, parsed, now=now + 11 * 86_400, poll=POLL, rand=0.5)
    assert back.error_count == 0 and not back.unhealthy and back.first_error_at is None


def _entry(link: str, title: str = "t", guid: str | None = None, feed: str = "f") -> FeedEntry:
    from newswire.keys import canonical_url, text_hash, url_key

    return FeedEntry(key=url_key(link), url=canonical_url(link), link=link, guid=guid,
                     title=title, feed=feed, source="s", content_hash=text_hash(title, None))


def test_state_feeds_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as store:
        assert store.add_feed("https://f.example/rss", "config", now=1.0)
        assert not store.add_feed("https://f.example/rss", "cli", now=2.0)
        feed = store.feed("https://f.example/rss")
        assert feed is not None and feed.origin == "cli" and feed.added_at == 1.0
        store.save_feed(replace(feed, etag='"x"', polls=3, fetch_url="https://f.example/moved"))
    with StateStore(path) as store:
        again = store.feed("https://f.example/moved")
        assert again is not None and again.etag == '"x"' and again.polls == 3
        assert [f.url for f in store.feeds(["cli"])] == ["https://f.example/rss"]
        assert store.remove_feed("https://f.example/rss") and store.feeds() == []


def test_seen_entries_new_updated_and_repeated(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite3") as store:
        a, b = _entry("https://x.example/a"), _entry("https://x.example/b")
        first = store.novel([a, b, a], now=10.0)
        assert [(n.entry.key, n.update) for n in first] == [(a.key, False), (b.key, False)]
        assert store.novel([a], now=11.0)[0].update is False  # not marked yet: still new
        store.mark_seen([a, b], now=12.0)
        assert store.novel([a, b], now=13.0) == []
        changed = _entry("https://x.example/a", title="t (updated)")
        assert [(n.entry.key, n.update) for n in store.novel([changed], now=14.0)] == [(a.key, True)]


def test_guid_recognises_a_relinked_entry_unless_guids_repeat(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite3") as store:
        store.mark_seen([_entry("https://x.example/a?v=1", guid="g1")], now=1.0)
        relinked = _entry("https://x.example/a?v=2", guid="g1")
        assert store.novel([relinked], now=2.0) == []
        dupes = [_entry("https://x.example/c", guid="same"), _entry("https://x.example/d", guid="same")]
        store.mark_seen(dupes[:1], now=3.0)
        assert [n.entry.url for n in store.novel(dupes, now=4.0)] == ["https://x.example/d"]


def test_seen_set_stays_bounded(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite3") as store:
        store.mark_seen([_entry(f"https://x.example/{i}", feed="f") for i in range(50)], now=0.0)
        store.mark_seen([_entry(f"https://x.example/n{i}", feed="g") for i in range(50)],
                        now=100 * 86_400.0)
        store.touch_feed("f", now=100 * 86_400.0)  # f's entries are still in its feed (a 304)
        assert store.prune_seen(now=101 * 86_400.0, max_age=30 * 86_400.0) == 0
        assert store.prune_seen(now=200 * 86_400.0, max_age=30 * 86_400.0) == 100
        store.mark_seen([_entry(f"https://x.example/m{i}") for i in range(30)], now=300.0 * 86_400)
        store.prune_seen(now=300.0 * 86_400, max_rows=10)
        assert store.seen_count() == 10
