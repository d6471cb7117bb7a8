"""Property tests (hypothesis) for the cleaning stage's small pure helpers and the record
assembly: whatever the page or feed says, they answer with a value of the right shape."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from newswire.records import Article, CleanArticle, FeedEntry, Tags
from processors.clean import (
    _absolute_http,
    _published,
    _section_tags,
    build_article,
    detect_language,
    extract_record,
    feed_fallback,
    normalise_language,
)
from processors.enrich import from_feed

text = st.text(max_size=300)
maybe_text = st.none() | text
dates = st.none() | st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1),
                                 timezones=st.just(UTC))
BASE = "https://news.example/world/2026/story"


@given(maybe_text)
def test_language_codes_are_none_or_short_lowercase(code: str | None) -> None:
    got = normalise_language(code)
    assert got is None or (got.isalpha() and got.islower() and 2 <= len(got) <= 3)


@settings(deadline=None)
@given(text, maybe_text)
def test_language_detection_never_raises(sample: str, hint: str | None) -> None:
    got = detect_language(sample, hint)
    assert got is None or (got.isalpha() and 2 <= len(got) <= 3)


@given(maybe_text)
def test_links_resolve_to_absolute_http_or_nothing(candidate: str | None) -> None:
    got = _absolute_http(candidate, BASE)
    assert got is None or got.startswith(("http://", "https://"))


@given(st.lists(st.none() | text | st.integers() | st.lists(text, max_size=3), max_size=5))
def test_section_tags_are_distinct_trimmed_strings(groups: list) -> None:
    got = _section_tags(*groups)
    assert all(isinstance(t, str) and t == t.strip() and t for t in got)
    assert len({t.casefold() for t in got}) == len(got)


@given(maybe_text, st.none() | st.just("2026-11-30T08:00:00Z") | text, dates)
def test_published_is_utc_or_none(page: str | None, extractor: str | None,
                                  feed: datetime | None) -> None:
    got = _published(page, extractor, feed)
    assert got is None or got.utcoffset() is not None and got.utcoffset().total_seconds() == 0


@settings(deadline=None, max_examples=60)
@given(st.dictionaries(st.sampled_from(["id", "url", "html", "junk"]),
                       st.none() | text | st.integers(), max_size=4))
def test_extract_record_answers_every_record(record: dict) -> None:
    got = extract_record(record)
    assert got["id"] == record.get("id")
    assert ("error" in got) != ("text" in got)


@settings(deadline=None, max_examples=60)
@given(maybe_text, maybe_text, dates, text)
def test_feed_fallback_is_partial_or_rejected(title: str | None, summary: str | None,
                                              published: datetime | None, reason: str) -> None:
    got = feed_fallback(BASE, title, summary, published, reason or "why", "detail")
    if isinstance(got, CleanArticle):
        assert got.partial and "summary_fallback" in got.flags and got.text.strip()
    else:
        assert not (summary or "").strip() or got.reason


@settings(deadline=None, max_examples=40)
@given(maybe_text, maybe_text, dates)
def test_a_refused_page_still_gives_a_tagged_article_or_a_reason(
        title: str | None, summary: str | None, published: datetime | None) -> None:
    entry = FeedEntry(key="0" * 16, url=BASE, link=BASE, title=title, summary=summary,
                      published=published, feed=BASE + "/feed", source="news.example")
    done = from_feed(entry, "fetch:http_4xx", "HTTP 403")
    assert (done.clean is None) == (done.tags is None) == (done.reason is not None)
    if done.clean is not None and done.tags is not None:
        article = build_article(entry, done.clean, done.tags, story_id=entry.key,
                                fingerprint=None, ingested=datetime.now(UTC))
        assert Article.from_bytes(article.to_bytes()) == article
        assert article.id == entry.key and article.partial


@given(text, st.lists(st.text(min_size=1, max_size=20), max_size=3), st.booleans())
def test_build_article_keeps_the_key_and_round_trips(body: str, flags: list[str],
                                                     partial: bool) -> None:
    entry = FeedEntry(key="f" * 16, url=BASE, link=BASE, title="t", feed=BASE + "/feed",
                      source="news.example")
    clean = CleanArticle(url=BASE, text=body, flags=tuple(flags), partial=partial)
    article = build_article(entry, clean, Tags(), story_id=None, fingerprint=None,
                            ingested=datetime(2026, 12, 5, tzinfo=UTC),
                            redirects=(BASE + "/moved",))
    assert article.id == entry.key and article.text == body and article.partial == partial
    assert Article.from_bytes(article.to_bytes()) == article
